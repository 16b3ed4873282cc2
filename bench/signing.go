package main

import (
	"context"
	"crypto"
	"fmt"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

var (
	algs    = []shared.Algorithm{shared.ES256, shared.EdDSA}
	callers = []int{1, 16, 64}
)

func key(alg shared.Algorithm, n int, verify string) string {
	return fmt.Sprintf("%s/%d/%s", alg, n, verify)
}

// row1 is the limit: the same keys signing in this process, alone and
// followed by a verification (what verify-after-sign costs in process).
func (b *bench) row1(context.Context) error {
	for _, alg := range algs {
		var signer crypto.Signer = b.keys.ec
		if alg == shared.EdDSA {
			signer = b.keys.ed
		}
		pub := b.keys.public(alg)
		for _, n := range []int{1, 64} {
			for _, verify := range []string{"off", "on"} {
				m, err := drive(n, b.dur, func(int) error {
					sig, err := signOnce(signer, alg)
					if err == nil && verify == "on" {
						err = check(pub, alg, sig)
					}
					return err
				})
				if err != nil {
					return err
				}
				b.limit[key(alg, n, verify)] = m
				name := "in-process sign"
				if verify == "on" {
					name = "in-process sign+verify"
				}
				ops, p50, p99 := fromMeasure(m)
				b.res.add(Row{Row: 1, Name: name, Alg: string(alg), Callers: n, Verify: verify, OpsPerSec: ops, P50us: p50, P99us: p99})
			}
		}
	}
	return nil
}

// row2 signs through the host and the fake plugin binary (go-plugin gRPC,
// AutoMTLS), verify-after-sign on and off, batching on (the default); the
// 64-caller runs are repeated with batching off to show what it buys.
func (b *bench) row2(ctx context.Context) error {
	type setup struct {
		verify   string
		batching bool
		callers  []int
	}
	for _, s := range []setup{{"on", true, callers}, {"off", true, callers}, {"on", false, []int{64}}, {"off", false, []int{64}}} {
		h, stop, err := b.newHost(host.Config{DisableVerifyAfterSign: s.verify == "off", DisableBatching: !s.batching})
		if err != nil {
			return err
		}
		err = b.row2On(ctx, h, s.verify, s.batching, s.callers)
		if pid := pluginPID("knhk-plugin-fake"); pid != 0 {
			b.peak("knhk-plugin-fake", pid)
		}
		stop()
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) row2On(ctx context.Context, h *host.Host, verify string, batching bool, ns []int) error {
	signers, err := b.keys.signers(ctx, h)
	if err != nil {
		return err
	}
	for _, alg := range algs {
		s := signers[alg]
		// With verification off, check one signature here.
		sig, err := signOnce(s, alg)
		if err != nil {
			return err
		}
		if err := check(s.Public(), alg, sig); err != nil {
			return fmt.Errorf("the plugin's %s signature does not verify: %w", alg, err)
		}
		for _, n := range ns {
			before := h.Stats()
			m, err := drive(n, b.dur, func(int) error {
				_, err := signOnce(s, alg)
				return err
			})
			if err != nil {
				return err
			}
			st := h.Stats()
			limitKey := key(alg, n, verify)
			if n == 16 { // row 1 has 1 and 64 goroutines; 2 cores saturate at 2
				limitKey = key(alg, 64, verify)
			}
			lim := b.limit[limitKey]
			name, note := "host → fake plugin", ""
			if batching {
				b.host[key(alg, n, verify)] = m
				if batches := st.SignBatches - before.SignBatches; batches > 0 {
					note = fmt.Sprintf("%.1f signatures per SignBatch call on average", float64(st.BatchedSignatures-before.BatchedSignatures)/float64(batches))
				}
			} else {
				name = "host → fake, batching off"
			}
			ops, p50, p99 := fromMeasure(m)
			row := Row{Row: 2, Name: name, Alg: string(alg), Callers: n, Verify: verify, OpsPerSec: ops, P50us: p50, P99us: p99, Note: note}
			if lim.OpsPerSec > 0 {
				row.Ratio, row.RatioTo = ops/lim.OpsPerSec, "row 1 "+limitKey
			}
			b.res.add(row)
		}
	}
	return nil
}
