package main

import (
	"context"
	"os/exec"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/knhk/knhk/internal/pluginrpc"
)

// roundTrip times the floor under row 2's latency: one caller making
// Describe calls (no key, no signing, nothing to verify) straight over a
// go-plugin gRPC connection with AutoMTLS to the fake plugin binary, the
// host's machinery bypassed.
func (b *bench) roundTrip(ctx context.Context) error {
	if b.inproc {
		return nil
	}
	cfg := pluginrpc.ClientConfig(exec.Command(filepath.Join(b.bin, "plugins", "knhk-plugin-fake")))
	cfg.Logger = hclog.NewNullLogger()
	c := goplugin.NewClient(cfg)
	defer c.Kill()
	proto, err := c.Client()
	if err != nil {
		return err
	}
	rpc, err := pluginrpc.Dispense(proto)
	if err != nil {
		return err
	}
	m, err := drive(1, b.dur/2, func(int) error {
		_, err := rpc.Describe(ctx)
		return err
	})
	if err != nil {
		return err
	}
	b.rtt = m
	ops, p50, p99 := fromMeasure(m)
	b.res.add(Row{Row: 2, Name: "bare gRPC round trip (Describe)", Callers: 1, OpsPerSec: ops, P50us: p50, P99us: p99,
		Note: "go-plugin gRPC + AutoMTLS to the fake binary, no host, no signing: the floor under row 2's latency"})
	return nil
}
