package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// Row 11: throttle accuracy. The fake plugin emulates a service quota of
// throttleQuota requests/s (fault_quota); 64 callers sign as fast as they
// can through the host. With the host's quota set to the same rate, the
// callers should see no throttling error and get the quota's rate; with
// the host's quota set 50% too high (an account whose quota is lower
// than declared), the host learns from the throttled answers. Measured:
// signatures completed per second after a one-second warm-up (so the
// initial burst does not count), and throttling errors over the run.

// throttleQuota is the emulated service quota, well under what the host
// and the fake sign on two cores.
const throttleQuota = 500

// throttleResult is row 11's numbers for targets.go.
type throttleResult struct {
	rate      float64 // signatures/s, host quota = service quota
	throttled int64   // throttling errors in that run
}

func (b *bench) row11(ctx context.Context) error {
	for i, hostRate := range []float64{throttleQuota, 1.5 * throttleQuota} {
		rate, throttled, failed, err := b.throttleRun(ctx, hostRate)
		if err != nil {
			return err
		}
		if i == 0 {
			b.throttle = throttleResult{rate: rate, throttled: throttled}
		}
		b.res.add(Row{Row: 11, Name: fmt.Sprintf("throttle accuracy: service quota %d/s, host quota %g/s", throttleQuota, hostRate),
			Alg: "ES256", Callers: 64, OpsPerSec: rate,
			Note: fmt.Sprintf("%.3f× the service quota; %d throttling errors, %d other errors", rate/throttleQuota, throttled, failed)})
	}
	return nil
}

// throttleRun signs with 64 callers for the run's duration (at least 4s)
// against the fake's quota, the host's quota at hostRate, and returns
// the rate after the warm-up and the errors.
func (b *bench) throttleRun(ctx context.Context, hostRate float64) (rate float64, throttled, failed int64, err error) {
	h, stop, err := b.newHost(host.Config{Quotas: host.Quotas{Classes: map[string][]shared.QuotaClass{"fake": {{
		Name: "bench", Rate: hostRate, Scope: []string{"fault_quota"},
	}}}}})
	if err != nil {
		return 0, 0, 0, err
	}
	defer stop()
	if _, err := h.CreateKey(ctx, "fake:throttle", shared.ECP256); err != nil {
		return 0, 0, 0, err
	}
	k, err := h.Key(ctx, "fake:throttle?fault_quota="+strconv.Itoa(throttleQuota))
	if err != nil {
		return 0, 0, 0, err
	}
	const warmUp = time.Second
	run := max(b.dur, 4*time.Second)
	start := time.Now()
	from, until := start.Add(warmUp), start.Add(warmUp+run)
	var counted, thr, other atomic.Int64
	var wg sync.WaitGroup
	for c := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(until); i++ {
				digest := sha256.Sum256([]byte(strconv.Itoa(c) + "/" + strconv.Itoa(i)))
				sig, err := k.SignDigest(ctx, digest[:], host.SignOptions{})
				switch {
				case errors.Is(err, shared.ErrThrottled):
					thr.Add(1)
					continue
				case err != nil:
					other.Add(1)
					continue
				}
				if now := time.Now(); now.After(from) && now.Before(until) {
					counted.Add(1)
				}
				_ = sig
			}
		}()
	}
	wg.Wait()
	return float64(counted.Load()) / run.Seconds(), thr.Load(), other.Load(), nil
}
