package host

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/knhk/knhk/audit"
	"github.com/knhk/knhk/shared"
)

// The sync check: a key that cannot leave an HSM cannot be copied and
// compared, so "in sync" means "holds the same public key". Every round
// fetches each replica's current public key (bypassing the cache, through
// the replica's breaker, so it is also the active health probe) and
// compares fingerprints.

// shownParams are the parameters whose values a replica's name shows:
// they tell replicas apart and hold no secret.
var shownParams = map[string]bool{"region": true}

// display is a reference as logs and health output name a replica:
// PROVIDER:KEYID, then its parameters' names, with values only for those
// in shownParams (others may hold endpoints or tokens).
func (r Ref) display() string {
	var b strings.Builder
	b.WriteString(r.Provider + ":" + r.KeyID)
	names := make([]string, 0, len(r.Params))
	for n := range r.Params {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		b.WriteByte("?&"[min(i, 1)])
		b.WriteString(url.QueryEscape(n))
		if shownParams[n] {
			b.WriteString("=" + url.QueryEscape(r.Params[n]))
		}
	}
	return b.String()
}

// fetched is one replica's answer in a sync round.
type fetched struct {
	pk  PublicKey
	fp  string
	err error
	ran bool // false: its breaker was open, nothing was asked
}

// sync runs one sync round: fetch every replica's current key, choose or
// keep the group's key, quarantine the replicas that differ. It fails only
// when no group key is known after it.
func (g *group) sync(ctx context.Context) error {
	g.syncMu.Lock()
	defer g.syncMu.Unlock()
	res := make([]fetched, len(g.reps))
	var wg sync.WaitGroup
	for i, r := range g.reps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = g.fetch(ctx, r)
		}()
	}
	wg.Wait()

	g.mu.Lock()
	want := g.chooseKey(res)
	g.want = want
	g.mu.Unlock()
	if want == nil {
		return g.noKey(res)
	}
	for i, r := range g.reps {
		f := res[i]
		switch {
		case f.err == nil && f.ran:
			g.compare(ctx, r, want, f.pk, f.fp)
		case errors.Is(f.err, shared.ErrKeyNotFound):
			g.compare(ctx, r, want, PublicKey{}, "")
		}
	}
	return nil
}

// fetch asks one replica for its current public key, through its breaker.
func (g *group) fetch(ctx context.Context, r *replica) fetched {
	done, err := r.cb.Allow()
	if err != nil {
		return fetched{}
	}
	start := time.Now()
	pk, err := g.h.sharedPublicKey(ctx, r.key.m, r.key.ref, "", true)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w: %w", errAbandoned, err)
	}
	r.observe(time.Since(start), err)
	done(err)
	if err != nil {
		return fetched{err: err, ran: true}
	}
	return fetched{pk: pk, fp: fingerprint(pk.DER), ran: true}
}

// chooseKey is the group's key after a round: the one most replicas hold,
// a tie going to the earlier replica; once there is one, it changes only
// when a strict majority of all replicas holds another (so a round where
// only a stray replica answers cannot move it). g.mu is held.
func (g *group) chooseKey(res []fetched) *groupKey {
	count := map[string]int{}
	first := map[string]int{}
	for i, f := range res {
		if f.err != nil || !f.ran {
			continue
		}
		if _, ok := first[f.fp]; !ok {
			first[f.fp] = i
		}
		count[f.fp]++
	}
	best := ""
	for fp, n := range count {
		if best == "" || n > count[best] || (n == count[best] && first[fp] < first[best]) {
			best = fp
		}
	}
	if best == "" {
		return g.want
	}
	if g.want != nil && best != g.want.fp && count[best]*2 <= len(g.reps) {
		return g.want
	}
	if g.want != nil && best == g.want.fp {
		return g.want
	}
	if g.want != nil {
		g.h.log.Warn("key group's key changed: a majority of its replicas hold a new key",
			"group", g.name, "old_fingerprint", g.want.fp, "new_fingerprint", best)
	}
	return &groupKey{pk: res[first[best]].pk, fp: best}
}

// noKey is the error of a round that found no key to trust.
func (g *group) noKey(res []fetched) error {
	var errs []string
	notFound := true
	for i, f := range res {
		notFound = notFound && errors.Is(f.err, shared.ErrKeyNotFound)
		switch {
		case f.err != nil:
			errs = append(errs, fmt.Sprintf("replica %d (%s): %v", i+1, g.reps[i].name(), f.err))
		case !f.ran:
			errs = append(errs, fmt.Sprintf("replica %d (%s): breaker open", i+1, g.reps[i].name()))
		}
	}
	if notFound {
		return fmt.Errorf("%w: key group %s: no replica holds the key: %s", shared.ErrKeyNotFound, shared.Quote(g.name), strings.Join(errs, "; "))
	}
	return fmt.Errorf("%w: key group %s: no replica answered with its public key: %s", shared.ErrUnavailable, shared.Quote(g.name), strings.Join(errs, "; "))
}

// compare checks a replica's key (fp "": it has none) against the group's
// and quarantines or releases it.
func (g *group) compare(ctx context.Context, r *replica, want *groupKey, pk PublicKey, fp string) {
	same := fp == want.fp && (pk.Version == "" || want.pk.Version == "" || pk.Version == want.pk.Version)
	r.mu.Lock()
	was := r.quarantined
	r.checked, r.quarantined, r.fp, r.version = true, !same, fp, pk.Version
	r.mu.Unlock()
	switch {
	case same && was:
		g.h.log.Info("key group replica holds the group's key again; back in use",
			"group", g.name, "replica", r.name(), "index", r.idx+1, "fingerprint", fp)
	case !same && !was:
		g.quarantined(ctx, r, want, fp, pk.Version)
	}
}

// quarantined reports a replica newly found holding another key: log,
// metric and audit record.
func (g *group) quarantined(ctx context.Context, r *replica, want *groupKey, fp, version string) {
	g.h.log.Error("key group replica holds another key than the group; quarantined, it will not be used",
		"group", g.name, "replica", r.name(), "index", r.idx+1,
		"group_fingerprint", want.fp, "replica_fingerprint", cmpOr(fp, "none (key not found)"),
		"group_version", want.pk.Version, "replica_version", version)
	g.h.gtel.countQuarantine(ctx, g.name, r.key.ref.Provider)
	if g.h.cfg.Audit == nil {
		return
	}
	rec := audit.Record{
		Principal:  g.h.cfg.Principal,
		Operation:  "key_group_check",
		KeyVersion: version,
		Outcome:    audit.OutcomeError,
		ErrorType:  "replica_key_mismatch",

		SPKISHA256:         fp,
		ExpectedSPKISHA256: want.fp,
	}
	rec.Key, rec.Params = auditKey(r.key.ref)
	if err := g.h.cfg.Audit.Append(context.WithoutCancel(ctx), rec); err != nil {
		g.h.log.Error("could not record a key group quarantine in the audit log", "group", g.name, "error", err)
	}
}

func cmpOr(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// ensure makes sure a sync round has found the group's key, and returns it.
func (g *group) ensure(ctx context.Context) (*groupKey, error) {
	g.mu.RLock()
	want := g.want
	g.mu.RUnlock()
	if want != nil {
		return want, nil
	}
	if err := g.sync(ctx); err != nil {
		return nil, err
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.want, nil
}

// check compares one replica not yet checked (it did not answer earlier
// rounds) before its first use.
func (g *group) check(ctx context.Context, r *replica, want *groupKey) error {
	pk, err := g.h.sharedPublicKey(ctx, r.key.m, r.key.ref, "", false)
	if err != nil {
		if errors.Is(err, shared.ErrKeyNotFound) {
			g.compare(ctx, r, want, PublicKey{}, "")
		}
		return err
	}
	g.compare(ctx, r, want, pk, fingerprint(pk.DER))
	return nil
}
