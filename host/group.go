package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/knhk/knhk/shared"
)

// KeyGroup is one logical key held by several replicas (the same key in
// several regions or vaults): a name that Host.Key, Host.Signer and every
// entry point accept wherever a reference goes.
//
// The host proves the replicas hold the same key before it uses them: at
// first use and every ProbeInterval it fetches each replica's current
// public key and compares the SHA-256 of its SubjectPublicKeyInfo (and,
// where both have versions, the current version's name). The group's key
// is the one most replicas hold (a tie goes to the earlier replica; once
// chosen, it changes only when a strict majority of all replicas holds
// another). A replica holding another key, or none (key not found), is
// quarantined: never used, logged with both fingerprints, recorded in
// Config.Audit and shown by Host.KeyHealth, until a later check finds it
// in line again.
//
// Signatures go to the first usable replica in order; when it is
// unavailable (shared.ErrUnavailable, ErrPluginCrashed, ErrCallTimeout, an
// attempt that reached AttemptTimeout, a launch that failed its
// handshake) the next one is tried, within the caller's deadline. A bad
// request (invalid argument, unsupported algorithm, permission denied,
// failed precondition, ...) is returned at once: another replica would
// refuse it too. A replica that answers "key not found" is quarantined and
// the next one tried; only when every replica says so does the caller get
// shared.ErrKeyNotFound. A throttled call (shared.ErrThrottled) moves on
// to the next replica, whose quota is its own, but never counts against
// the throttled one's health. Each replica has a circuit breaker
// (sony/gobreaker): TripAfter unavailability failures in a row open it, so
// calls skip the replica; after BreakerTimeout one trial call (a caller's
// or a probe's) may close it again, and the preferred replica is used again
// (failback).
//
// A group has no versions of its own: a Signer pins the current version's
// name where the replicas have versions, and rotation is the provider's
// business (AWS replicates a multi-Region key's rotation itself): Key.Rotate
// on a group fails with shared.ErrFailedPrecondition. To create a group's
// replicas, create the key in each (or replicate it with the provider's
// tools) and name the references here.
type KeyGroup struct {
	// Replicas are the replicas' references, in order of preference. They
	// may name different providers (two Vaults, an AWS and an Azure key
	// holding imported material) but not other groups.
	Replicas []string

	// Failover is FailoverOrdered (the default) or FailoverHedged.
	Failover FailoverMode

	// HedgeDelay, in hedged mode, is how long a signature waits for the
	// first replica before it is also sent to the next one (the first
	// answer wins, the other is cancelled). Zero: 100ms.
	HedgeDelay time.Duration

	// AttemptTimeout bounds each attempt on one replica, so a replica that
	// hangs leaves time for the next: an attempt gets at most this, and at
	// most its share of the caller's remaining time (split among the
	// replicas still to try). Zero: 5s.
	AttemptTimeout time.Duration

	// ProbeInterval is how often every replica's public key is fetched and
	// compared (the sync check), which also probes the replicas' health.
	// Zero: 30s; negative: checked at first use only.
	ProbeInterval time.Duration

	// TripAfter is how many unavailability failures in a row open a
	// replica's breaker. Zero: 3.
	TripAfter uint32

	// BreakerTimeout is how long an open breaker stays open before one
	// trial call may close it. Zero: 10s.
	BreakerTimeout time.Duration
}

// FailoverMode says how a key group spreads a signature over its replicas.
type FailoverMode string

const (
	// FailoverOrdered tries the replicas one after the other, in order,
	// moving on only when one is unavailable.
	FailoverOrdered FailoverMode = "ordered"
	// FailoverHedged also sends a signature to the next replica when the
	// current one has not answered within HedgeDelay: it trades extra
	// calls for a tail latency bounded by the faster replica.
	FailoverHedged FailoverMode = "hedged"
)

// Defaults for zero KeyGroup fields.
const (
	DefaultHedgeDelay     = 100 * time.Millisecond
	DefaultAttemptTimeout = 5 * time.Second
	DefaultProbeInterval  = 30 * time.Second
	DefaultTripAfter      = 3
	DefaultBreakerTimeout = 10 * time.Second
)

// withDefaults fills in zero fields.
func (g KeyGroup) withDefaults() KeyGroup {
	if g.Failover == "" {
		g.Failover = FailoverOrdered
	}
	if g.HedgeDelay <= 0 {
		g.HedgeDelay = DefaultHedgeDelay
	}
	if g.AttemptTimeout <= 0 {
		g.AttemptTimeout = DefaultAttemptTimeout
	}
	if g.ProbeInterval == 0 {
		g.ProbeInterval = DefaultProbeInterval
	}
	if g.TripAfter == 0 {
		g.TripAfter = DefaultTripAfter
	}
	if g.BreakerTimeout <= 0 {
		g.BreakerTimeout = DefaultBreakerTimeout
	}
	return g
}

// checkKeyGroups refuses groups that could never work: checked in New, so
// a typo fails at start rather than at the first signature.
func checkKeyGroups(groups map[string]KeyGroup) error {
	for name, g := range groups {
		if name == "" || strings.Contains(name, ":") {
			return fmt.Errorf("%w: key group name %s must be non-empty and contain no ':' (that makes it a reference)", shared.ErrInvalidArgument, shared.Quote(name))
		}
		if len(g.Replicas) == 0 {
			return fmt.Errorf("%w: key group %s has no replicas", shared.ErrInvalidArgument, shared.Quote(name))
		}
		seen := map[string]bool{}
		for _, ref := range g.Replicas {
			r, err := ParseRef(ref)
			if err != nil {
				return fmt.Errorf("key group %s: %w", shared.Quote(name), err)
			}
			if seen[keyName(r)] {
				return fmt.Errorf("%w: key group %s names replica %s twice", shared.ErrInvalidArgument, shared.Quote(name), r.Provider+":"+r.KeyID)
			}
			seen[keyName(r)] = true
		}
		switch g.Failover {
		case "", FailoverOrdered, FailoverHedged:
		default:
			return fmt.Errorf("%w: key group %s: failover %s is not %q or %q", shared.ErrInvalidArgument, shared.Quote(name), shared.Quote(string(g.Failover)), FailoverOrdered, FailoverHedged)
		}
	}
	return nil
}

// group is a KeyGroup in use: its replicas' keys, breakers and health, and
// the key they were found to share.
type group struct {
	h    *Host
	name string
	cfg  KeyGroup
	reps []*replica

	syncMu sync.Mutex // one sync round at a time
	mu     sync.RWMutex
	want   *groupKey // the group's key; nil until a sync round found one
}

// groupKey is the key a group's replicas must hold.
type groupKey struct {
	pk PublicKey
	fp string // hex SHA-256 of pk.DER
}

// replica is one of a group's keys.
type replica struct {
	idx int
	key *Key
	cb  *gobreaker.TwoStepCircuitBreaker[struct{}]

	mu          sync.Mutex
	checked     bool   // its key has been compared with the group's
	quarantined bool   // it holds another key (or none)
	fp, version string // its current key as last fetched
	lastErr     string
	recent      window
}

// fingerprint is the hex SHA-256 of a SubjectPublicKeyInfo.
func fingerprint(der []byte) string {
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:])
}

// group returns the group named name, made on first use (its probes start
// then). ok is false when no group has that name.
func (h *Host) group(name string) (*group, bool, error) {
	gc, ok := h.cfg.KeyGroups[name]
	if !ok {
		return nil, false, nil
	}
	h.mu.Lock()
	g := h.groups[name]
	h.mu.Unlock()
	if g != nil {
		return g, true, nil
	}
	g = &group{h: h, name: name, cfg: gc.withDefaults()}
	for i, ref := range gc.Replicas {
		r, err := ParseRef(ref)
		if err != nil {
			return nil, true, err
		}
		m, err := h.plugin(r.Provider)
		if err != nil {
			return nil, true, fmt.Errorf("key group %s, replica %d: %w", shared.Quote(name), i+1, err)
		}
		rep := &replica{idx: i, key: &Key{h: h, m: m, ref: r}}
		rep.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
			Name:        name + "/" + r.Provider + ":" + r.KeyID,
			Timeout:     g.cfg.BreakerTimeout,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= g.cfg.TripAfter },
			// Only "this replica is unavailable" is a failure; any other
			// answer shows it is up. Calls cut short by their caller (or by
			// a hedge that another replica won) say nothing either way.
			IsSuccessful:  func(err error) bool { return err == nil || !replicaDown(err) },
			IsExcluded:    func(err error) bool { return errors.Is(err, errAbandoned) || errors.Is(err, shared.ErrThrottled) },
			OnStateChange: g.breakerChanged(rep),
		})
		g.reps = append(g.reps, rep)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed.Load() {
		return nil, true, ErrClosed
	}
	if old := h.groups[name]; old != nil {
		return old, true, nil
	}
	h.groups[name] = g
	if g.cfg.ProbeInterval > 0 {
		h.wg.Add(1)
		go g.probe()
	}
	return g, true, nil
}

// breakerChanged logs a replica's breaker opening and closing.
func (g *group) breakerChanged(r *replica) func(string, gobreaker.State, gobreaker.State) {
	return func(_ string, from, to gobreaker.State) {
		args := []any{"group", g.name, "replica", r.key.ref.Provider + ":" + r.key.ref.KeyID, "index", r.idx + 1, "from", from.String(), "to", to.String()}
		if to == gobreaker.StateOpen {
			g.h.log.Warn("key group replica is unavailable; failing over", args...)
		} else {
			g.h.log.Info("key group replica breaker changed state", args...)
		}
	}
}

// probe runs the sync check every ProbeInterval until the host closes.
func (g *group) probe() {
	defer g.h.wg.Done()
	t := time.NewTicker(g.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-g.h.done:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), g.cfg.AttemptTimeout)
			_ = g.sync(ctx)
			cancel()
		}
	}
}

// errAbandoned marks an attempt its caller stopped waiting for (the caller
// left, or another replica answered first): no verdict on the replica.
var errAbandoned = errors.New("attempt abandoned")

// replicaDown reports whether err means "this replica is unavailable", the
// only failures that trip a breaker and fail over.
func replicaDown(err error) bool {
	switch {
	case errors.Is(err, ErrAuditUnavailable), errors.Is(err, ErrClosed):
		return false // the host's own trouble: every replica would hit it
	case errors.Is(err, shared.ErrThrottled):
		return false // the replica is up: throttling is never a replica failure
	case errors.Is(err, ErrPluginCrashed), errors.Is(err, ErrCallTimeout), errors.Is(err, ErrHandshake),
		errors.Is(err, ErrVerifyAfterSign), errors.Is(err, shared.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return true
	}
	return false
}

// window is a replica's recent call outcomes, for its health.
type window struct {
	lat  [64]time.Duration
	fail [64]bool
	at   [64]time.Time
	n, i int
}

// recentFor is how old an outcome may be and still count as recent.
const recentFor = 5 * time.Minute

func (w *window) add(d time.Duration, failed bool) {
	w.lat[w.i], w.fail[w.i], w.at[w.i] = d, failed, time.Now()
	w.i = (w.i + 1) % len(w.lat)
	w.n = min(w.n+1, len(w.lat))
}

// stats are the median latency and the error rate of the recent outcomes.
func (w *window) stats() (median time.Duration, errRate float64, calls int) {
	var lats []time.Duration
	fails := 0
	cutoff := time.Now().Add(-recentFor)
	for j := range w.n {
		if w.at[j].Before(cutoff) {
			continue
		}
		lats = append(lats, w.lat[j])
		if w.fail[j] {
			fails++
		}
	}
	if len(lats) == 0 {
		return 0, 0, 0
	}
	for a := 1; a < len(lats); a++ { // insertion sort: at most 64
		for b := a; b > 0 && lats[b] < lats[b-1]; b-- {
			lats[b], lats[b-1] = lats[b-1], lats[b]
		}
	}
	return lats[len(lats)/2], float64(fails) / float64(len(lats)), len(lats)
}

// observe records a call's outcome in the replica's health.
func (r *replica) observe(d time.Duration, err error) {
	if errors.Is(err, errAbandoned) {
		return
	}
	r.mu.Lock()
	r.recent.add(d, err != nil && replicaDown(err))
	if err != nil {
		r.lastErr = err.Error()
	}
	r.mu.Unlock()
}

// name is how logs and health name a replica: PROVIDER:KEYID and its
// parameters (endpoints and regions tell replicas apart), without the
// values of parameters that could be secrets.
func (r *replica) name() string { return r.key.ref.display() }

// usable reports whether the replica may take calls: its key has been
// found to be the group's.
func (r *replica) usable() (checked, quarantined bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.checked, r.quarantined
}
