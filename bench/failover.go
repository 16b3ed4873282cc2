package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/plugins/fake"
	"github.com/knhk/knhk/shared"
)

// Row 10: key group failover. Two "regions" hold the same key (the fake,
// seed s), each served in this process under its own provider name so
// one can die alone; 8 callers sign through the group. A death is the
// preferred region starting to fail every call: at once with
// ErrUnavailable (a refused connection), or by hanging (a black hole,
// which the group's attempt timeout ends). Measured: from the death to
// the next signature that verifies, made by a call started after it;
// then the region comes back and the group fails back before the next
// death.

// failoverDeaths is how many deaths each mode measures.
const failoverDeaths = 40

// dyingRegion is the fake whose Sign and PublicKey fail or hang while
// dead.
type dyingRegion struct {
	shared.Provider
	dead atomic.Int32 // 0 alive, 1 fails fast, 2 hangs
}

func (d *dyingRegion) fault(ctx context.Context) error {
	switch d.dead.Load() {
	case 1:
		return fmt.Errorf("%w: region down", shared.ErrUnavailable)
	case 2:
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (d *dyingRegion) Sign(ctx context.Context, req shared.SignRequest) (shared.SignResponse, error) {
	if err := d.fault(ctx); err != nil {
		return shared.SignResponse{}, err
	}
	return d.Provider.Sign(ctx, req)
}

func (d *dyingRegion) PublicKey(ctx context.Context, req shared.PublicKeyRequest) (shared.PublicKeyResponse, error) {
	if err := d.fault(ctx); err != nil {
		return shared.PublicKeyResponse{}, err
	}
	return d.Provider.PublicKey(ctx, req)
}

func (b *bench) row10(ctx context.Context) error {
	east := &dyingRegion{Provider: fake.New(fake.Config{})}
	west := &dyingRegion{Provider: fake.New(fake.Config{})}
	const attempt = 250 * time.Millisecond
	h, stop, err := hosttest.Start(hosttest.WithConfig(host.Config{
		Logger: hclog.New(&hclog.LoggerOptions{Name: "knhk", Level: hclog.Error, Output: os.Stderr}),
		KeyGroups: map[string]host.KeyGroup{"release": {
			Replicas:       []string{"east:release?seed=s", "west:release?seed=s"},
			AttemptTimeout: attempt, BreakerTimeout: 50 * time.Millisecond, ProbeInterval: -1,
		}},
	}), hosttest.WithProvider("east", east), hosttest.WithProvider("west", west))
	if err != nil {
		return err
	}
	defer func() { _ = stop() }()
	for _, ref := range []string{"east:release?seed=s", "west:release?seed=s"} {
		if _, err := h.CreateKey(ctx, ref, shared.ECP256); err != nil {
			return err
		}
	}
	signer, err := h.Signer(ctx, "release")
	if err != nil {
		return err
	}
	digest := sha256.Sum256([]byte("failover"))
	sign := func() error {
		sig, err := signer.Sign(nil, digest[:], shared.ES256.Hash())
		if err != nil {
			return err
		}
		return shared.VerifyDigest(signer.Public(), shared.ES256, digest[:], sig)
	}
	for i, mode := range []struct {
		dead int32
		name string
	}{{1, "fails fast (unavailable)"}, {2, fmt.Sprintf("hangs (attempt timeout %s)", attempt)}} {
		var times []time.Duration
		var errs atomic.Int64
		for range failoverDeaths {
			// Load: 8 callers sign until the death has been measured.
			stopLoad := make(chan struct{})
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stopLoad:
							return
						default:
						}
						if err := sign(); err != nil {
							errs.Add(1)
						}
					}
				}()
			}
			time.Sleep(20 * time.Millisecond)
			died := time.Now()
			east.dead.Store(mode.dead)
			for sign() != nil {
			}
			times = append(times, time.Since(died))
			close(stopLoad)
			wg.Wait()
			east.dead.Store(0)
			// Failback: the breaker's timeout passes, a call closes it.
			time.Sleep(60 * time.Millisecond)
			for sign() != nil {
			}
		}
		slices.Sort(times)
		p50, p99 := times[len(times)/2], times[len(times)*99/100]
		b.failover[i] = p99
		b.res.add(Row{Row: 10, Name: "key group failover: replica death → next good signature, preferred region " + mode.name,
			Alg: "ES256", Callers: 8, P50us: us(p50), P99us: us(p99),
			Note: fmt.Sprintf("%d deaths, in-process fake regions; %d signatures failed under load", failoverDeaths, errs.Load())})
	}
	return nil
}
