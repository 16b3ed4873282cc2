package main

import (
	"context"
	"crypto"
	"fmt"
	"os"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/internal/procinfo"
	"github.com/knhk/knhk/shared"
)

var (
	algs    = []shared.Algorithm{shared.ES256, shared.EdDSA}
	callers = []int{1, 16, 64}
)

func key(alg shared.Algorithm, n int, verify string) string {
	return fmt.Sprintf("%s/%d/%s", alg, n, verify)
}

// rows12 measures row 1, the limit (the same keys signing in this
// process, alone and followed by a verification: what verify-after-sign
// costs in process), and row 2, signing through the host and the fake
// plugin binary (go-plugin gRPC, AutoMTLS) with verify-after-sign off and
// on, side by side: each host run alternates with the matching in-process
// run. The 64-caller runs include the host with batching off.
func (b *bench) rows12(ctx context.Context) error {
	type hostKey struct {
		verify   string
		batching bool
	}
	hosts := map[hostKey]map[shared.Algorithm]crypto.Signer{}
	stats := map[hostKey]*host.Host{}
	for _, v := range []string{"on", "off"} {
		for _, batching := range []bool{true, false} {
			h, stop, err := b.newHost(host.Config{DisableVerifyAfterSign: v == "off", DisableBatching: !batching})
			if err != nil {
				return err
			}
			defer stop()
			signers, err := b.keys.signers(ctx, h)
			if err != nil {
				return err
			}
			for alg, s := range signers { // with verification off, check one here
				sig, err := signOnce(s, alg)
				if err != nil {
					return err
				}
				if err := check(s.Public(), alg, sig); err != nil {
					return fmt.Errorf("the plugin's %s signature does not verify: %w", alg, err)
				}
			}
			hosts[hostKey{v, batching}], stats[hostKey{v, batching}] = signers, h
		}
	}
	for _, alg := range algs {
		if b.onlyAlg != "" && string(alg) != b.onlyAlg {
			continue
		}
		var local crypto.Signer = b.keys.ec
		if alg == shared.EdDSA {
			local = b.keys.ed
		}
		pub := b.keys.public(alg)
		for _, v := range []string{"off", "on"} {
			if b.onlyVerify != "" && v != b.onlyVerify {
				continue
			}
			limit := func(int) error {
				sig, err := signOnce(local, alg)
				if err == nil && v == "on" {
					err = check(pub, alg, sig)
				}
				return err
			}
			via := func(s crypto.Signer) func(int) error {
				return func(int) error { _, err := signOnce(s, alg); return err }
			}
			batched := stats[hostKey{v, true}]
			for _, n := range callers {
				if b.onlyCallers != 0 && n != b.onlyCallers {
					continue
				}
				ops := []func(int) error{limit, via(hosts[hostKey{v, true}][alg])}
				if b.soak > 0 {
					fmt.Fprintf(os.Stderr, "driving host → fake plugin, %s, %d callers, verify %s for %s (bench pid %d)\n", alg, n, v, b.soak, os.Getpid())
					m, err := drive(n, b.soak, ops[1])
					if err != nil {
						return err
					}
					fmt.Fprintf(os.Stderr, "%.0f signatures/s\n", m.OpsPerSec)
					continue
				}
				if n == 64 {
					ops = append(ops, via(hosts[hostKey{v, false}][alg]))
				}
				before := batched.Stats()
				ms, ratios, err := alternateRounds(n, b.dur, rounds, ops...)
				if err != nil {
					return err
				}
				after := batched.Stats()
				lim, hst := ms[0], ms[1]
				k := key(alg, n, v)
				b.cpu[k] = boundary(hst.Use, lim.Use)
				cpuNote := fmt.Sprintf("CPU per signature: host process %.1f µs, plugin process %.1f µs, in process (row 1) %.1f µs, so the boundary costs %.1f core-µs; "+
					"context switches per signature: host %.2f, plugin %.2f, in process %.2f",
					hst.Use.HostUs, hst.Use.PluginUs, lim.Use.HostUs, b.cpu[k], hst.Use.HostCS, hst.Use.PluginCS, lim.Use.HostCS)
				b.limit[k], b.host[k], b.ratio[k] = lim, hst, ratios[1]
				name := "in-process sign"
				if v == "on" {
					name = "in-process sign+verify"
				}
				ops1, p50, p99 := fromMeasure(lim)
				b.res.add(Row{Row: 1, Name: name, Alg: string(alg), Callers: n, Verify: v, OpsPerSec: ops1, P50us: p50, P99us: p99, CPU: &lim.Use})
				note := cpuNote
				if nb := after.SignBatches - before.SignBatches; nb > 0 {
					note = join(note, fmt.Sprintf("%.1f signatures per SignBatch call", float64(after.BatchedSignatures-before.BatchedSignatures)/float64(nb)))
				}
				b.res.add(hostRow("host → fake plugin", alg, n, v, hst, ratios[1], note))
				if n == 64 {
					off := ms[2].Use
					b.res.add(hostRow("host → fake, batching off", alg, n, v, ms[2], ratios[2],
						fmt.Sprintf("CPU per signature: host process %.1f µs, plugin process %.1f µs; context switches per signature: host %.2f, plugin %.2f",
							off.HostUs, off.PluginUs, off.HostCS, off.PluginCS)))
				}
			}
		}
	}
	for _, pid := range procinfo.Children("knhk-plugin-fake") {
		b.peak("knhk-plugin-fake", pid)
	}
	return nil
}

// boundary is what the boundary costs per signature in CPU time, in
// core-µs: the host's and the plugin's CPU time per signature less what
// the same work costs in process.
func boundary(host, limit cpuUse) float64 {
	return host.HostUs + host.PluginUs - limit.HostUs
}

// rounds is how many times rows12 alternates between what it compares.
const rounds = 6

func hostRow(name string, alg shared.Algorithm, n int, v string, m measure, ratio float64, note string) Row {
	ops, p50, p99 := fromMeasure(m)
	return Row{Row: 2, Name: name, Alg: string(alg), Callers: n, Verify: v, OpsPerSec: ops, P50us: p50, P99us: p99, Note: note,
		Ratio: ratio, RatioTo: "row 1, median of rounds", CPU: &m.Use}
}

// join joins non-empty notes.
func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
