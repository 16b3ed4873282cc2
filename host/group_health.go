package host

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/knhk/knhk/shared"
)

// ReplicaState is a key group replica's health.
type ReplicaState string

const (
	// ReplicaHealthy: in sync with the group, its breaker closed, and
	// under 5% of its recent calls failed as unavailable.
	ReplicaHealthy ReplicaState = "healthy"
	// ReplicaDegraded: in use, but recent calls failed (5% or more), or
	// its breaker is half-open (a trial call decides), or its key has not
	// been compared with the group's yet.
	ReplicaDegraded ReplicaState = "degraded"
	// ReplicaDown: its breaker is open; calls skip it until a trial call
	// after KeyGroup.BreakerTimeout succeeds.
	ReplicaDown ReplicaState = "down"
	// ReplicaQuarantined: it holds another key than the group's (or none)
	// and is never used until a sync check finds it in line again.
	ReplicaQuarantined ReplicaState = "quarantined"
)

// degradedRate is the recent error rate from which a replica is degraded.
const degradedRate = 0.05

// ReplicaHealth is one replica as Host.KeyHealth sees it.
type ReplicaHealth struct {
	// Replica is the replica's reference as logs show it: PROVIDER:KEYID
	// and its parameters' names, with the region's value.
	Replica string       `json:"replica"`
	State   ReplicaState `json:"state"`
	// Fingerprint is the hex SHA-256 of the replica's current public key
	// (SubjectPublicKeyInfo) as last fetched, "" when it has none or
	// never answered; Version its current version, when it has versions.
	Fingerprint string `json:"fingerprint"`
	Version     string `json:"version,omitempty"`
	// Latency is the median duration of its recent calls (signatures,
	// probes; the last 64 within 5 minutes), ErrorRate the share of them
	// that failed as unavailable, Calls how many there were.
	Latency   time.Duration `json:"latency_ns"`
	ErrorRate float64       `json:"error_rate"`
	Calls     int           `json:"calls"`
	// LastError is its last call's error, if any call failed.
	LastError string `json:"last_error,omitempty"`
}

// GroupHealth is a key group's health: its key and its replicas, in order
// of preference.
type GroupHealth struct {
	Group    string       `json:"group"`
	Failover FailoverMode `json:"failover"`
	// Fingerprint is the hex SHA-256 of the group's public key, the one
	// the replicas must hold ("" when none has answered); Version its
	// version, when the replicas have versions.
	Fingerprint string          `json:"fingerprint"`
	Version     string          `json:"version,omitempty"`
	Replicas    []ReplicaHealth `json:"replicas"`
	// Err is why no group key is known, when none is.
	Err string `json:"error,omitempty"`
}

// KeyGroups lists the names of the configured key groups.
func (h *Host) KeyGroups() []string {
	names := make([]string, 0, len(h.cfg.KeyGroups))
	for n := range h.cfg.KeyGroups {
		names = append(names, n)
	}
	return names
}

// KeyHealth runs a sync check of the key group name now (within ctx) and
// reports it: the group's key and each replica's state, fingerprint,
// recent latency and error rate. A group none of whose replicas answers is
// reported with Err set, not as an error; the error is for a name that is
// not a group.
func (h *Host) KeyHealth(ctx context.Context, name string) (GroupHealth, error) {
	g, ok, err := h.group(name)
	if !ok {
		return GroupHealth{}, fmt.Errorf("%w: no key group named %s", shared.ErrKeyNotFound, shared.Quote(name))
	}
	if err != nil {
		return GroupHealth{}, err
	}
	out := GroupHealth{Group: name, Failover: g.cfg.Failover}
	if err := g.sync(ctx); err != nil {
		out.Err = err.Error()
	}
	g.mu.RLock()
	if g.want != nil {
		out.Fingerprint, out.Version = g.want.fp, g.want.pk.Version
	}
	g.mu.RUnlock()
	for _, r := range g.reps {
		out.Replicas = append(out.Replicas, r.health())
	}
	return out, nil
}

// health is the replica's state now.
func (r *replica) health() ReplicaHealth {
	st := r.cb.State()
	r.mu.Lock()
	defer r.mu.Unlock()
	lat, rate, n := r.recent.stats()
	h := ReplicaHealth{Replica: r.name(), Fingerprint: r.fp, Version: r.version, Latency: lat, ErrorRate: rate, Calls: n, LastError: r.lastErr}
	switch {
	case r.quarantined:
		h.State = ReplicaQuarantined
	case st == gobreaker.StateOpen:
		h.State = ReplicaDown
	case st == gobreaker.StateHalfOpen || rate >= degradedRate || !r.checked:
		h.State = ReplicaDegraded
	default:
		h.State = ReplicaHealthy
	}
	return h
}

// publicKey is a group's public key: the current one is the key its
// replicas share (refresh runs a sync round first); another version is
// asked of the replicas, with failover.
func (g *group) publicKey(ctx context.Context, version string, refresh bool) (PublicKey, error) {
	if refresh {
		if err := g.sync(ctx); err != nil {
			return PublicKey{}, err
		}
	}
	want, err := g.ensure(ctx)
	if err != nil {
		return PublicKey{}, err
	}
	if version == "" || version == want.pk.Version {
		return want.pk, nil
	}
	return do(ctx, g, func(ctx context.Context, r *replica) (PublicKey, error) {
		return g.h.sharedPublicKey(ctx, r.key.m, r.key.ref, version, refresh)
	})
}

// sign signs on a usable replica, with failover, and checks that the key
// that signed is the group's: the replica has verified the signature
// against its own key (verify-after-sign), whose fingerprint must be the
// group's. A replica whose key changed under it is quarantined and the
// next one tried.
func (g *group) sign(ctx context.Context, req shared.SignRequest) (Signature, error) {
	return do(ctx, g, func(ctx context.Context, r *replica) (Signature, error) {
		sig, err := r.key.sign(ctx, req)
		if err != nil {
			return Signature{}, err
		}
		g.mu.RLock()
		want := g.want
		g.mu.RUnlock()
		v := cmp.Or(sig.Version, req.Version)
		if v != "" && v != want.pk.Version {
			return sig, nil // an older version, pinned by a Signer: verified by the replica
		}
		pk, err := g.h.sharedPublicKey(ctx, r.key.m, r.key.ref, v, false)
		if err != nil {
			return Signature{}, err
		}
		if !bytes.Equal(pk.DER, want.pk.DER) {
			fp := fingerprint(pk.DER)
			g.compare(ctx, r, want, pk, fp)
			return Signature{}, fmt.Errorf("%w: key group %s, replica %d (%s) signed with key %s, not the group's %s; the signature was discarded: %w",
				ErrVerifyAfterSign, shared.Quote(g.name), r.idx+1, r.name(), fp, want.fp, shared.ErrBadSignature)
		}
		return sig, nil
	})
}
