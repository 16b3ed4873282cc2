package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/knhk/knhk/shared"
)

// execRuns is how many CLI processes row 3 starts, one after another.
const execRuns = 30

// row3 is one process per signature, the model of exec-based plugin
// systems: the built knhk-host CLI run once per signature (it launches
// the fake plugin, signs, verifies, exits).
func (b *bench) row3(ctx context.Context) error {
	in := filepath.Join(b.tmp, "digest.bin")
	if err := os.WriteFile(in, digest[:], 0o600); err != nil {
		return err
	}
	cli := filepath.Join(b.bin, "knhk-host")
	args := []string{"sign", "--plugin-dir", filepath.Join(b.bin, "plugins"), "--key", b.keys.fileRef(shared.ES256), "--prehashed", "--in", in}
	var lat []time.Duration
	start := time.Now()
	for range execRuns {
		t0 := time.Now()
		var out, errb bytes.Buffer
		cmd := exec.CommandContext(ctx, cli, args...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w: %s", cli, err, errb.String())
		}
		lat = append(lat, time.Since(t0))
		sig, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(out.Bytes())))
		if err != nil {
			return fmt.Errorf("knhk-host sign printed %q: %w", out.String(), err)
		}
		if err := check(b.keys.public(shared.ES256), shared.ES256, sig); err != nil {
			return fmt.Errorf("knhk-host sign: %w", err)
		}
	}
	elapsed := time.Since(start)
	m := percentiles(lat, elapsed)
	m.lat = nil
	ops, p50, p99 := fromMeasure(m)
	row := Row{Row: 3, Name: "one CLI process per signature", Alg: "ES256", Callers: 1, Verify: "on", OpsPerSec: ops, P50us: p50, P99us: p99,
		Note: fmt.Sprintf("%d runs of knhk-host sign, each launching the fake plugin", execRuns)}
	if h := b.host[key(shared.ES256, 1, "on")]; h.OpsPerSec > 0 {
		row.Ratio, row.RatioTo = h.OpsPerSec/ops, "row 2 ES256/1/on ÷ this"
	}
	b.res.add(row)
	b.exec = m
	return nil
}
