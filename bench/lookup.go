package main

import (
	"context"
	"fmt"
	"runtime"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// row4 looks up a cached public key, through Key.PublicKey (the host's
// cache) and through Signer.Public (a field), on every core, and counts
// the plugin calls made meanwhile: there must be none.
func (b *bench) row4(ctx context.Context) error {
	h, stop, err := b.newHost(host.Config{})
	if err != nil {
		return err
	}
	defer stop()
	signers, err := b.keys.signers(ctx, h)
	if err != nil {
		return err
	}
	s := signers[shared.ES256]
	k, err := h.Key(ctx, memRef(shared.ES256))
	if err != nil {
		return err
	}
	if _, err := k.PublicKey(ctx, ""); err != nil {
		return err
	}
	n := runtime.GOMAXPROCS(0)
	for _, l := range []struct {
		name string
		op   func() error
	}{
		{"Key.PublicKey (cached)", func() error {
			pk, err := k.PublicKey(ctx, "")
			if err == nil && pk.Key == nil {
				err = fmt.Errorf("no key")
			}
			return err
		}},
		{"Signer.Public", func() error {
			if s.Public() == nil {
				return fmt.Errorf("no key")
			}
			return nil
		}},
	} {
		before := h.Stats().Calls
		m, err := spin(n, b.dur/2, l.op)
		if err != nil {
			return err
		}
		calls := h.Stats().Calls - before
		if l.name == "Key.PublicKey (cached)" {
			b.looks, b.calls = m, calls
		} else if calls > b.calls {
			b.calls = calls
		}
		b.res.add(Row{Row: 4, Name: "public key " + l.name, Alg: "ES256", Callers: n, OpsPerSec: m.OpsPerSec,
			Note: fmt.Sprintf("%d lookups, %d plugin calls (host.Stats)", m.Ops, calls)})
	}
	return nil
}
