package main

import (
	"context"
	"crypto"
	"fmt"
	"os"
	"path/filepath"

	"github.com/knhk/knhk/audit"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// auditCallers is row 9's concurrency.
const auditCallers = 64

// auditRounds is how many times row 9 alternates its two hosts.
const auditRounds = 6

// auditResult is row 9.
type auditResult struct {
	off, on measure
	ratio   float64 // on ÷ off, median of the rounds
	stats   audit.Stats
}

// row9 measures what the audit log costs: 64 callers signing ES256
// through two hosts on the fake plugin binary (verify-after-sign on,
// batching on), one without an audit log and one with a fail-closed log
// in a temporary directory (every signature durable before it returns,
// fsync group commit), alternating round by round.
func (b *bench) row9(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "knhk-bench-audit-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	skey, _, err := audit.GenerateKey("bench.example/knhk-audit")
	if err != nil {
		return err
	}
	keyFile := filepath.Join(dir, "audit.key")
	if err := os.WriteFile(keyFile, []byte(skey), 0o600); err != nil {
		return err
	}
	key, err := audit.LoadKeyFile(keyFile)
	if err != nil {
		return err
	}
	l, err := audit.Open(ctx, audit.Options{Path: filepath.Join(dir, "audit.log"), Key: key})
	if err != nil {
		return err
	}
	defer l.Close()

	var signers [2]crypto.Signer
	for i, cfg := range []host.Config{{}, {Audit: l}} {
		h, stop, err := b.newHost(cfg)
		if err != nil {
			return err
		}
		defer stop()
		s, err := b.keys.signers(ctx, h)
		if err != nil {
			return err
		}
		signers[i] = s[shared.ES256]
	}
	before := l.Stats()
	if _, err := signOnce(signers[1], shared.ES256); err != nil {
		return err
	}
	if l.Stats().Records == before.Records {
		return fmt.Errorf("a host with Config.Audit set wrote no record")
	}
	op := func(s crypto.Signer) func(int) error {
		return func(int) error {
			_, err := signOnce(s, shared.ES256)
			return err
		}
	}
	before = l.Stats()
	ms, ratios, err := alternateRounds(auditCallers, b.dur, auditRounds, op(signers[0]), op(signers[1]))
	if err != nil {
		return err
	}
	after := l.Stats()
	b.aud = auditResult{off: ms[0], on: ms[1], ratio: ratios[1], stats: audit.Stats{
		Records:  after.Records - before.Records,
		Batches:  after.Batches - before.Batches,
		Failures: after.Failures - before.Failures,
	}}
	b.auditRows()
	return nil
}

// auditRows adds row 9 to the table.
func (b *bench) auditRows() {
	a := b.aud
	for i, m := range []measure{a.off, a.on} {
		ops, p50, p99 := fromMeasure(m)
		row := Row{Row: 9, Name: "audit log off", Alg: string(shared.ES256), Callers: auditCallers, Verify: "on",
			OpsPerSec: ops, P50us: p50, P99us: p99, CPU: &m.Use,
			Note: fmt.Sprintf("CPU per signature: host process %.1f µs, plugin process %.1f µs", m.Use.HostUs, m.Use.PluginUs)}
		if i == 1 {
			row.Name = "audit log on (fail-closed, fsync group commit)"
			row.Ratio, row.RatioTo = a.ratio, "audit log off, median of rounds"
			perFsync := 0.0
			if a.stats.Batches > 0 {
				perFsync = float64(a.stats.Records) / float64(a.stats.Batches)
			}
			row.Note = join(row.Note, fmt.Sprintf("%d records in %d fsyncs: %.1f records per fsync; %d failed", a.stats.Records, a.stats.Batches, perFsync, a.stats.Failures))
		}
		b.res.add(row)
	}
}
