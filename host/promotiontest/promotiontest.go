package promotiontest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/knhk/knhk/audit"
	"github.com/knhk/knhk/audit/audittest"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// NewHost starts a host with cfg plus what the provider's tests need
// (plugin directories, environment); Run sets Promotion, Audit and
// VersionStatesTTL and calls it several times for hosts sharing the key.
type NewHost func(t *testing.T, cfg host.Config) *host.Host

// Run runs the workflow on ref, an existing key without version states
// that RotateKey works on (for AWS an alias). Two approvers are needed of
// two configured; the canary gate is on. It checks that a pending version
// is published but cannot sign; that promotion is refused without
// approvals, with one, with an expired one, with the same approver twice,
// with one for another public key and with one by a key not configured;
// that it is accepted with two; that a second host sees the same active
// version; that the old version's signatures verify while it is retiring
// and stop verifying once retired; that the soak gate holds a version
// back; and that approvals and state changes are audit records.
// Signatures are checked with the standard library.
func Run(t *testing.T, newHost NewHost, ref string) {
	t.Helper()
	ctx := context.Background()
	alice, bob, mallory := approverKey(t, "alice"), approverKey(t, "bob"), approverKey(t, "mallory")
	log := audittest.Open(t, audit.Options{Host: "promotiontest"})
	gates := host.Gates{Canary: true, Approvals: host.ApprovalGate{Required: 2, Approvers: []string{alice.VerifierKey, bob.VerifierKey}}}
	ha := newHost(t, host.Config{Audit: log.Log, Promotion: map[string]host.Gates{ref: gates}})
	ka := key(t, ha, ref)

	digest := sha256.Sum256([]byte("signed by the first version"))
	old, err := ka.SignDigest(ctx, digest[:], host.SignOptions{})
	must(t, err, "sign before version states")
	pkOld, err := ka.PublicKey(ctx, old.Version)
	must(t, err, "public key of the first version")
	verify(t, pkOld, old, digest[:], "the first version's signature")

	// Pending: published, cannot sign; the active version signs.
	v2, err := ka.RotatePending(ctx)
	must(t, err, "rotate with pending")
	if v2 == old.Version {
		t.Fatalf("RotatePending returned the active version %q", v2)
	}
	pk2, err := ka.PublicKey(ctx, v2)
	must(t, err, "public key of the pending version")
	if _, err := ka.SignDigest(ctx, digest[:], host.SignOptions{Version: v2}); !errors.Is(err, shared.ErrFailedPrecondition) {
		t.Fatalf("signing with the pending version: %v; want ErrFailedPrecondition", err)
	}
	sig, err := ka.SignDigest(ctx, digest[:], host.SignOptions{})
	must(t, err, "sign while a version is pending")
	if sig.Version != old.Version {
		t.Fatalf("signed with version %q while %q is pending; want the active %q", sig.Version, v2, old.Version)
	}
	wantStates(t, ka, map[string]shared.VersionState{old.Version: shared.VersionActive, v2: shared.VersionPending})

	// Refusals.
	approve := func(s note.Signer) []byte {
		t.Helper()
		n, err := ka.Approve(ctx, v2, s, time.Hour)
		must(t, err, "approve")
		return n
	}
	byAlice, byBob := approve(alice.Signer), approve(bob.Signer)
	spki2 := fingerprint(pk2.DER)
	other := fingerprint(pkOld.DER)
	for _, c := range []struct {
		name      string
		approvals [][]byte
		want      string
	}{
		{"no approvals", nil, "0 of 2 approvers"},
		{"one approver", [][]byte{byAlice}, "1 of 2 approvers: alice"},
		{"the same approver twice", [][]byte{byAlice, approve(alice.Signer)}, "approved already"},
		{"an expired approval", [][]byte{byAlice, signed(t, host.Approval{Key: keyOf(ref), Version: v2, SPKISHA256: spki2, Expires: time.Now().Add(-time.Minute)}, bob.Signer)}, "expired"},
		{"an approval of another public key", [][]byte{byAlice, signed(t, host.Approval{Key: keyOf(ref), Version: v2, SPKISHA256: other, Expires: time.Now().Add(time.Hour)}, bob.Signer)}, "is for public key"},
		{"an approver not configured", [][]byte{byAlice, approve(mallory.Signer)}, "signed by no configured approver"},
	} {
		err := ka.Promote(ctx, v2, c.approvals...)
		var ge *host.GatesError
		if !errors.As(err, &ge) || !errors.Is(err, shared.ErrFailedPrecondition) || !unmet(ge, host.GateApprovals, c.want) {
			t.Fatalf("promote with %s: %v; want a GatesError with approvals unmet, saying %q", c.name, err, c.want)
		}
	}
	wantStates(t, ka, map[string]shared.VersionState{old.Version: shared.VersionActive, v2: shared.VersionPending})

	// Accepted with two approvers; the canary ran.
	res, err := ka.Gates(ctx, v2, byAlice, byBob)
	must(t, err, "gates")
	for _, r := range res {
		if r.Gate != host.GateCanary && !r.Met {
			t.Fatalf("gate %s unmet before promotion with two approvals: %s", r.Gate, r.Detail)
		}
	}
	must(t, ka.Promote(ctx, v2, byAlice, byBob), "promote with two approvals")
	sig2, err := ka.SignDigest(ctx, digest[:], host.SignOptions{})
	must(t, err, "sign after promotion")
	if sig2.Version != v2 {
		t.Fatalf("signed with version %q after promoting %q", sig2.Version, v2)
	}
	verify(t, pk2, sig2, digest[:], "the promoted version's signature")
	wantStates(t, ka, map[string]shared.VersionState{old.Version: shared.VersionRetiring, v2: shared.VersionActive})

	// Retiring: old signatures still verify, the version no longer signs.
	must(t, ka.VerifyDigest(ctx, digest[:], old.Signature, host.SignOptions{Version: old.Version}), "an old signature while its version is retiring")
	if _, err := ka.SignDigest(ctx, digest[:], host.SignOptions{Version: old.Version}); !errors.Is(err, shared.ErrFailedPrecondition) {
		t.Fatalf("signing with the retiring version: %v; want ErrFailedPrecondition", err)
	}

	// A second host sharing the key sees the same active version.
	hb := newHost(t, host.Config{VersionStatesTTL: -1})
	kb := key(t, hb, ref)
	sigB, err := kb.SignDigest(ctx, digest[:], host.SignOptions{})
	must(t, err, "sign on the second host")
	if sigB.Version != v2 {
		t.Fatalf("the second host signed with version %q; the active one is %q", sigB.Version, v2)
	}
	verify(t, pk2, sigB, digest[:], "the second host's signature")
	wantStates(t, kb, map[string]shared.VersionState{old.Version: shared.VersionRetiring, v2: shared.VersionActive})

	// Retired: old signatures stop verifying through the host.
	must(t, ka.Retire(ctx, old.Version), "retire the old version")
	if err := kb.VerifyDigest(ctx, digest[:], old.Signature, host.SignOptions{Version: old.Version}); !errors.Is(err, shared.ErrBadSignature) {
		t.Fatalf("an old signature once its version is retired (second host): %v; want ErrBadSignature", err)
	}

	// Soak: a version pending less than the soak time is held back.
	hs := newHost(t, host.Config{Audit: log.Log, Promotion: map[string]host.Gates{ref: {Soak: time.Hour}}})
	ks := key(t, hs, ref)
	v3, err := ks.RotatePending(ctx)
	must(t, err, "rotate with pending again")
	var ge *host.GatesError
	if err := ks.Promote(ctx, v3); !errors.As(err, &ge) || !unmet(ge, host.GateSoak, "of 1h0m0s") {
		t.Fatalf("promote before the soak time: %v; want the soak gate unmet", err)
	}
	// An abandoned pending version is retired without ever signing.
	must(t, ks.Retire(ctx, v3), "retire a pending version")
	wantStates(t, ks, map[string]shared.VersionState{old.Version: shared.VersionRetired, v2: shared.VersionActive, v3: shared.VersionRetired})

	// The audit trail: both approvals, the promotion by them, the retires.
	var ops []string
	for _, r := range audittest.Records(t, log.Path) {
		if r.Outcome != audit.OutcomeOK || r.KeyVersion == "" {
			continue
		}
		switch r.Operation {
		case "approve", "promote", "retire":
			ops = append(ops, r.Operation+" "+r.KeyVersion+" "+strings.Join(r.Approvers, ","))
		}
	}
	for _, want := range []string{"approve " + v2 + " alice", "approve " + v2 + " bob", "promote " + v2 + " alice,bob", "retire " + old.Version + " ", "retire " + v3 + " "} {
		if !slices.Contains(ops, want) {
			t.Fatalf("audit records %q lack %q", ops, want)
		}
	}
}

// approverKey is a new Ed25519 approver key named name.
func approverKey(t *testing.T, name string) *audit.Key {
	t.Helper()
	return audittest.NewKey(t, name)
}

func key(t *testing.T, h *host.Host, ref string) *host.Key {
	t.Helper()
	k, err := h.Key(context.Background(), ref)
	must(t, err, "key "+ref)
	return k
}

// keyOf is a reference's PROVIDER:KEYID, as approvals name keys.
func keyOf(ref string) string {
	r, err := host.ParseRef(ref)
	if err != nil {
		panic(err)
	}
	return r.Provider + ":" + r.KeyID
}

// signed signs an approval statement made by hand.
func signed(t *testing.T, a host.Approval, s note.Signer) []byte {
	t.Helper()
	a.Expires = a.Expires.Truncate(time.Second)
	n, err := note.Sign(&note.Note{Text: a.Text()}, s)
	must(t, err, "sign an approval")
	return n
}

func unmet(ge *host.GatesError, gate, detail string) bool {
	for _, r := range ge.Unmet {
		if r.Gate == gate && strings.Contains(r.Detail, detail) {
			return true
		}
	}
	return false
}

func wantStates(t *testing.T, k *host.Key, want map[string]shared.VersionState) {
	t.Helper()
	vs, err := k.Versions(context.Background())
	must(t, err, "versions")
	got := map[string]shared.VersionState{}
	for _, v := range vs {
		got[v.Version] = v.State
	}
	for v, st := range want {
		if got[v] != st {
			t.Fatalf("version %q is %q; want %q (all: %v)", v, got[v], st, got)
		}
	}
}

func verify(t *testing.T, pk host.PublicKey, sig host.Signature, digest []byte, what string) {
	t.Helper()
	if err := shared.VerifyDigest(pk.Key, sig.Algorithm, digest, sig.Signature); err != nil {
		t.Fatalf("%s against the version's public key (standard library): %v", what, err)
	}
}

func fingerprint(der []byte) string {
	h := sha256.Sum256(der)
	return hex.EncodeToString(h[:])
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
