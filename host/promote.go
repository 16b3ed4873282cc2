package host

import (
	"context"
	"crypto/rand"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/knhk/knhk/shared"
)

// Promotion gates: what a pending version must pass before Promote makes
// it active, per key (Config.Promotion). A key without gates is promoted
// on request, as the state rules allow.

// Gates are the checks Promote makes before a pending version signs.
type Gates struct {
	// Canary: the version signs a random challenge, which must verify
	// with the standard library against the version's public key and,
	// when the provider offers verification, with the provider.
	Canary bool
	// ReplicasAgree: every other replica of each key group the key is a
	// replica of (Config.KeyGroups) holds the version with the same
	// public key. Met trivially by a key in no group.
	ReplicasAgree bool
	// Approvals: enough distinct approvers signed an approval of the
	// version (Key.Approve).
	Approvals ApprovalGate
	// Soak is the least time the version must have been pending (from
	// the provider's record of when it became pending).
	Soak time.Duration
}

// ApprovalGate asks for Required distinct approvers among Approvers.
// Required 0 turns the gate off.
type ApprovalGate struct {
	Required int
	// Approvers are signed-note verifier keys ("NAME+HASH+KEY", as
	// `knhk-host audit keygen` prints them) or knhk key references
	// ("aws:alias/alice-approver"), whose public key is fetched (Ed25519
	// or ECDSA P-256; see Host.ApproverSigner).
	Approvers []string
}

// Gate names, as GateResult.Gate and the CLI give them.
const (
	GateState         = "state"
	GateCanary        = "canary"
	GateReplicasAgree = "replicas_agree"
	GateApprovals     = "approvals"
	GateSoak          = "soak"
)

// GateResult is one gate's verdict on a version.
type GateResult struct {
	Gate string
	Met  bool
	// Deferred: not checked now (the canary signs, so it runs only when
	// promoting).
	Deferred bool
	// Detail says what was found: "2 of 2 approvers: alice, bob",
	// "pending 10m of 1h".
	Detail string
	// Approvers are, for the approvals gate, the approvers counted.
	Approvers []string
}

// GatesError is Promote's refusal: the gates the version did not meet.
// It wraps shared.ErrFailedPrecondition.
type GatesError struct {
	Key, Version string
	Unmet        []GateResult
}

// Error lists the unmet gates.
func (e *GatesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: promotion of %s version %s refused: %d gate(s) not met:", shared.ErrFailedPrecondition, e.Key, shared.Quote(e.Version), len(e.Unmet))
	for _, g := range e.Unmet {
		fmt.Fprintf(&b, " %s (%s);", g.Gate, g.Detail)
	}
	return strings.TrimSuffix(b.String(), ";")
}

// Unwrap makes errors.Is(err, shared.ErrFailedPrecondition) hold.
func (e *GatesError) Unwrap() error { return shared.ErrFailedPrecondition }

// checkPromotion checks Config.Promotion in New and indexes it by key.
func checkPromotion(p map[string]Gates) (map[string]Gates, error) {
	out := make(map[string]Gates, len(p))
	for ref, g := range p {
		r, err := ParseRef(ref)
		if err != nil {
			return nil, fmt.Errorf("promotion gates: %w", err)
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: promotion gates of %s: %s", shared.ErrInvalidArgument, approverName(r), fmt.Sprintf(format, args...))
		}
		if g.Soak < 0 {
			return nil, bad("soak %s is negative", g.Soak)
		}
		a := g.Approvals
		if a.Required < 0 || a.Required > len(a.Approvers) {
			return nil, bad("%d approvals required of %d approvers", a.Required, len(a.Approvers))
		}
		seen := map[string]bool{}
		for _, spec := range a.Approvers {
			if _, err := parseApprover(spec); err != nil {
				return nil, fmt.Errorf("promotion gates of %s: %w", approverName(r), err)
			}
			if seen[spec] {
				return nil, bad("approver %s is listed twice", shared.Quote(approverLabel(spec)))
			}
			seen[spec] = true
		}
		if prev, dup := out[approverName(r)]; dup && !reflect.DeepEqual(prev, g) {
			return nil, bad("given twice, differently (gates apply to PROVIDER:KEYID, whatever the parameters)")
		}
		out[approverName(r)] = g
	}
	return out, nil
}

// gates are the key's promotion gates (none when not configured). They
// are found by PROVIDER:KEYID, so that a parameter added to the
// reference does not lose them.
func (k *Key) gates() Gates { return k.h.promotion[approverName(k.ref)] }

// Gates reports the key's promotion gates for a version against the
// approvals given, without promoting; the canary is Deferred (it signs).
// The first result is the state gate: only a pending version can be
// promoted.
func (k *Key) Gates(ctx context.Context, version string, approvals ...[]byte) ([]GateResult, error) {
	if k.g != nil {
		return nil, k.groupRefusal("check a version's gates")
	}
	states, err := k.h.versionStates(ctx, k.m, k.ref, true)
	if err != nil {
		return nil, err
	}
	return k.checkGates(ctx, states, version, approvals, false)
}

// checkGates evaluates every gate against the key's states, fresh from
// the provider; canary runs only when promoting.
func (k *Key) checkGates(ctx context.Context, states shared.VersionStates, version string, approvals [][]byte, promoting bool) ([]GateResult, error) {
	entry, _ := states.Entry(version)
	res := []GateResult{{Gate: GateState, Met: entry.State == shared.VersionPending, Detail: stateName(states, version)}}
	g := k.gates()
	var (
		pk   PublicKey
		spki string
	)
	if g.Canary || g.ReplicasAgree || g.Approvals.Required > 0 {
		var err error
		if pk, err = k.h.sharedPublicKey(ctx, k.m, k.ref, version, true); err != nil {
			return nil, err
		}
		spki = sha256Hex(pk.DER)
	}
	if g.Canary {
		r := GateResult{Gate: GateCanary, Deferred: !promoting, Detail: "signs a challenge when promoting"}
		if promoting {
			r.Detail = "a challenge signed by the version verified"
			if err := k.canary(ctx, version, pk); err != nil {
				r.Detail = err.Error()
			} else {
				r.Met = true
			}
		}
		res = append(res, r)
	}
	if g.ReplicasAgree {
		res = append(res, k.replicasAgree(ctx, version, spki))
	}
	if a := g.Approvals; a.Required > 0 {
		counted, problems := k.checkApprovals(ctx, a, version, spki, approvals)
		r := GateResult{Gate: GateApprovals, Met: len(counted) >= a.Required, Approvers: counted,
			Detail: fmt.Sprintf("%d of %d approvers", len(counted), a.Required)}
		if len(counted) > 0 {
			r.Detail += ": " + strings.Join(counted, ", ")
		}
		if len(problems) > 0 {
			r.Detail += "; " + strings.Join(problems, "; ")
		}
		res = append(res, r)
	}
	if g.Soak > 0 {
		r := GateResult{Gate: GateSoak}
		switch {
		case entry.State != shared.VersionPending:
			r.Detail = "not pending"
		case entry.Since.IsZero():
			r.Detail = "the provider does not record when the version became pending"
		default:
			pending := time.Since(entry.Since)
			r.Met = pending >= g.Soak
			r.Detail = fmt.Sprintf("pending %s of %s", pending.Round(time.Millisecond), g.Soak)
		}
		res = append(res, r)
	}
	return res, nil
}

// canary signs a random challenge with version, whose public key is pk,
// and checks the signature with the standard library and, when offered,
// the provider's verify.
func (k *Key) canary(ctx context.Context, version string, pk PublicKey) error {
	alg := pk.Type.DefaultAlgorithm()
	var err error
	challenge := make([]byte, 32)
	rand.Read(challenge)
	req := shared.SignRequest{Algorithm: alg, Version: version, Message: challenge}
	if alg != shared.EdDSA {
		if req.Digest, err = shared.Digest(alg, challenge); err != nil {
			return err
		}
		req.Message = nil
	}
	// Straight to the provider: the version is pending, which signVersion
	// refuses for everyone else.
	resp, err := k.h.sign(ctx, k.m, k.ref, req)
	if err != nil {
		return fmt.Errorf("signing the challenge: %w", err)
	}
	if resp.Version != version {
		return fmt.Errorf("the provider signed with version %s, not %s", shared.Quote(resp.Version), shared.Quote(version))
	}
	if err := shared.VerifyMessage(pk.Key, alg, challenge, resp.Signature); err != nil {
		return fmt.Errorf("the signature does not verify with the version's public key: %w", err)
	}
	if d := k.m.description(); d != nil && d.Has(shared.CapVerify) {
		v, err := k.m.verify(ctx, k.ref, shared.VerifyRequest{Key: k.ref.keyRef(), Algorithm: alg, Version: version, Digest: req.Digest, Message: req.Message, Signature: resp.Signature})
		if err != nil {
			return fmt.Errorf("the provider's verify: %w", err)
		}
		if !v.Valid {
			return fmt.Errorf("the provider's verify rejects the signature")
		}
	}
	return nil
}

// replicasAgree checks that every other replica of the key's groups holds
// version with public key fingerprint spki.
func (k *Key) replicasAgree(ctx context.Context, version, spki string) GateResult {
	r := GateResult{Gate: GateReplicasAgree, Met: true}
	var agreed, problems []string
	for name, g := range k.h.cfg.KeyGroups {
		if !groupHas(g, k.ref) {
			continue
		}
		for _, ref := range g.Replicas {
			rr, _ := ParseRef(ref) // checked in New
			if keyName(rr) == keyName(k.ref) {
				continue
			}
			label := fmt.Sprintf("%s replica %s", shared.Quote(name), approverName(rr))
			m, err := k.h.plugin(rr.Provider)
			var pk PublicKey
			if err == nil {
				pk, err = k.h.sharedPublicKey(ctx, m, rr, version, true)
			}
			switch {
			case err != nil:
				problems = append(problems, fmt.Sprintf("%s: %v", label, err))
			case sha256Hex(pk.DER) != spki:
				problems = append(problems, fmt.Sprintf("%s holds version %s with public key %s, not %s", label, shared.Quote(version), short(sha256Hex(pk.DER)), short(spki)))
			default:
				agreed = append(agreed, label)
			}
		}
	}
	switch {
	case len(problems) > 0:
		r.Met, r.Detail = false, strings.Join(problems, "; ")
	case len(agreed) == 0:
		r.Detail = "not a replica of a key group"
	default:
		r.Detail = "same public key at " + strings.Join(agreed, ", ")
	}
	return r
}

// groupHas reports whether r is one of g's replicas.
func groupHas(g KeyGroup, r Ref) bool {
	for _, ref := range g.Replicas {
		if rr, err := ParseRef(ref); err == nil && keyName(rr) == keyName(r) {
			return true
		}
	}
	return false
}

// Promote makes a pending version active, after its gates
// (Config.Promotion) are met: it signs from now on and the version active
// before is retiring (it still verifies). approvals are signed notes from
// Approve. Unmet gates give a *GatesError (wrapping
// shared.ErrFailedPrecondition) listing them. Promoting the active version
// is a no-op. Every host sharing the key sees the change once its cached
// states expire (Config.VersionStatesTTL) or a version misses in them.
func (k *Key) Promote(ctx context.Context, version string, approvals ...[]byte) error {
	if k.g != nil {
		return k.groupRefusal("promote a version")
	}
	_, err := k.m.promote(ctx, k, version, approvals)
	return err
}

// promote checks the gates and moves the version to active, as one
// audited operation.
func (m *managed) promote(ctx context.Context, k *Key, version string, approvals [][]byte) (shared.VersionStates, error) {
	return m.setVersionState(ctx, opPromote, k.ref, version, shared.VersionActive, func(ctx context.Context, run *opRun) error {
		states, err := k.h.versionStates(ctx, m, k.ref, true)
		if err != nil {
			return err
		}
		if st, _ := states.State(version); st == shared.VersionActive || !states.Has() {
			return nil // a no-op, or the provider's own refusal
		}
		res, err := k.checkGates(ctx, states, version, approvals, true)
		if err != nil {
			return err
		}
		ge := &GatesError{Key: approverName(k.ref), Version: version}
		for _, r := range res {
			if r.Gate == GateApprovals && r.Met {
				run.approvers(r.Approvers)
			}
			if !r.Met && r.Gate != GateState { // the state rules give their own error
				ge.Unmet = append(ge.Unmet, r)
			}
		}
		if len(ge.Unmet) > 0 {
			return ge
		}
		return nil
	})
}
