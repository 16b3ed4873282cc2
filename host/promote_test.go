package host

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/knhk/knhk/audit/audittest"
	"github.com/knhk/knhk/shared"
)

// pendingKey creates ref (ECDSA P-256) and rotates it with pending,
// returning the pending version.
func pendingKey(t *testing.T, h *Host, ref string) string {
	t.Helper()
	ctx := context.Background()
	k, err := h.CreateKey(ctx, ref, shared.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	v, err := k.RotatePending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// unmetGate is the unmet gate of a GatesError, or fails the test.
func unmetGate(t *testing.T, err error, gate string) GateResult {
	t.Helper()
	var ge *GatesError
	if !errors.As(err, &ge) || !errors.Is(err, shared.ErrFailedPrecondition) {
		t.Fatalf("got %v; want a GatesError", err)
	}
	for _, r := range ge.Unmet {
		if r.Gate == gate {
			return r
		}
	}
	t.Fatalf("%v: the %s gate is not among the unmet", err, gate)
	return GateResult{}
}

// TestCanaryGate: a pending version whose signatures do not verify (the
// fake flips a bit) fails the canary and stays pending; a sound one
// passes it.
func TestCanaryGate(t *testing.T) {
	ctx := context.Background()
	ref := fakeRef(t, filepath.Join(t.TempDir(), "keys.json"), "c", "")
	h, _ := newHost(t, Config{Promotion: map[string]Gates{"fake:c": {Canary: true}}})
	v := pendingKey(t, h, ref)

	lying, err := h.Key(ctx, ref+"&fault_corrupt=true&fault_ops=sign")
	if err != nil {
		t.Fatal(err)
	}
	if r := unmetGate(t, lying.Promote(ctx, v), GateCanary); !strings.Contains(r.Detail, "signing the challenge") {
		t.Fatalf("canary detail: %q", r.Detail)
	}
	k, _ := h.Key(ctx, ref)
	if vs, _ := k.Versions(ctx); vs[1].State != shared.VersionPending {
		t.Fatalf("after a failed canary version %s is %s", v, vs[1].State)
	}
	if err := k.Promote(ctx, v); err != nil {
		t.Fatalf("promote with a sound canary: %v", err)
	}
}

// TestReplicasAgreeGate: replicas with the same seed hold the same
// version 2; one with another seed holds another key, and one without
// version 2 cannot agree.
func TestReplicasAgreeGate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := "fake:k?seed=s&state=" + filepath.Join(dir, "a.json")
	b := "fake:k?seed=s&state=" + filepath.Join(dir, "b.json")
	c := "fake:k?seed=other&state=" + filepath.Join(dir, "c.json")
	d := "fake:k?seed=s&state=" + filepath.Join(dir, "d.json")
	gates := map[string]Gates{a: {ReplicasAgree: true}}
	agree, _ := newHost(t, Config{Promotion: gates, KeyGroups: map[string]KeyGroup{"g": {Replicas: []string{a, b}, ProbeInterval: -1}}})
	for _, ref := range []string{a, b, c} {
		pendingKey(t, agree, ref)
	}
	if _, err := agree.CreateKey(ctx, d, shared.ECP256); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		other, want string
	}{
		{c, "with public key"},
		{d, "not found"},
	} {
		h, _ := newHost(t, Config{Promotion: gates, KeyGroups: map[string]KeyGroup{"g": {Replicas: []string{a, c.other}, ProbeInterval: -1}}})
		k, _ := h.Key(ctx, a)
		if r := unmetGate(t, k.Promote(ctx, "2"), GateReplicasAgree); !strings.Contains(strings.ToLower(r.Detail), c.want) {
			t.Fatalf("replicas_agree with %s: %q; want %q", c.other, r.Detail, c.want)
		}
	}
	k, _ := agree.Key(ctx, a)
	res, err := k.Gates(ctx, "2")
	if err != nil || len(res) != 2 || !res[1].Met || !strings.Contains(res[1].Detail, "same public key") {
		t.Fatalf("gates with agreeing replicas: %+v, %v", res, err)
	}
	if err := k.Promote(ctx, "2"); err != nil {
		t.Fatal(err)
	}
}

// TestKnhkKeyApprovers: approvers can be knhk keys (Ed25519, ECDSA
// P-256) named by reference; an RSA key cannot approve.
func TestKnhkKeyApprovers(t *testing.T) {
	ctx := context.Background()
	state := filepath.Join(t.TempDir(), "keys.json")
	ed, ec, rsa := fakeRef(t, state, "ed", ""), fakeRef(t, state, "ec", ""), fakeRef(t, state, "rsa", "")
	h, _ := newHost(t, Config{Promotion: map[string]Gates{"fake:rel": {Approvals: ApprovalGate{Required: 2, Approvers: []string{ed, ec}}}}})
	for ref, kt := range map[string]shared.KeyType{ed: shared.Ed25519, ec: shared.ECP256, rsa: shared.RSA2048} {
		if _, err := h.CreateKey(ctx, ref, kt); err != nil {
			t.Fatal(err)
		}
	}
	v := pendingKey(t, h, fakeRef(t, state, "rel", ""))
	k, _ := h.Key(ctx, fakeRef(t, state, "rel", ""))
	var notes [][]byte
	for _, ref := range []string{ed, ec} {
		s, err := h.ApproverSigner(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		n, err := k.Approve(ctx, v, s, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		notes = append(notes, n)
	}
	if _, err := h.ApproverSigner(ctx, rsa); !errors.Is(err, shared.ErrInvalidArgument) {
		t.Fatalf("an RSA approver: %v; want ErrInvalidArgument", err)
	}
	// One note carrying both signatures counts both approvers.
	if r := unmetGate(t, k.Promote(ctx, v, notes[0]), GateApprovals); r.Detail != "1 of 2 approvers: fake:ed" {
		t.Fatalf("one approval: %q", r.Detail)
	}
	if err := k.Promote(ctx, v, notes...); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Approve(ctx, v, audittest.NewKey(t, "late").Signer, time.Minute); !errors.Is(err, shared.ErrFailedPrecondition) {
		t.Fatalf("approving the active version: %v; want ErrFailedPrecondition", err)
	}
}

// TestSoakGate: a version pending less than the soak time is held back;
// past it, promoted.
func TestSoakGate(t *testing.T) {
	ctx := context.Background()
	ref := fakeRef(t, filepath.Join(t.TempDir(), "keys.json"), "s", "")
	h, _ := newHost(t, Config{Promotion: map[string]Gates{ref: {Soak: 300 * time.Millisecond}}})
	v := pendingKey(t, h, ref)
	k, _ := h.Key(ctx, ref)
	unmetGate(t, k.Promote(ctx, v), GateSoak)
	time.Sleep(400 * time.Millisecond)
	if err := k.Promote(ctx, v); err != nil {
		t.Fatalf("promote after the soak time: %v", err)
	}
}

// TestPromotionThroughProvider: the host's provider view goes through the
// gates too, so SetVersionState cannot skip them.
func TestPromotionThroughProvider(t *testing.T) {
	ctx := context.Background()
	ref := fakeRef(t, filepath.Join(t.TempDir(), "keys.json"), "p", "")
	h, _ := newHost(t, Config{Promotion: map[string]Gates{"fake:p": {Approvals: ApprovalGate{Required: 1, Approvers: []string{audittest.NewKey(t, "alice").VerifierKey}}}}})
	v := pendingKey(t, h, ref)
	p, err := h.Provider(ctx, "fake")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := ParseRef(ref)
	_, err = p.(shared.VersionStater).SetVersionState(ctx, shared.SetVersionStateRequest{Key: r.keyRef(), Version: v, State: shared.VersionActive})
	unmetGate(t, err, GateApprovals)
}

// TestPromotionConfig: gates that could never work are refused by New.
func TestPromotionConfig(t *testing.T) {
	vkey := audittest.NewKey(t, "alice").VerifierKey
	for name, gates := range map[string]map[string]Gates{
		"more required than approvers": {"fake:a": {Approvals: ApprovalGate{Required: 2, Approvers: []string{vkey}}}},
		"an approver twice":            {"fake:a": {Approvals: ApprovalGate{Required: 1, Approvers: []string{vkey, vkey}}}},
		"a bad verifier key":           {"fake:a": {Approvals: ApprovalGate{Required: 1, Approvers: []string{"alice+00000000+AAAA"}}}},
		"a negative soak":              {"fake:a": {Soak: -time.Second}},
		"a bad reference":              {"nocolon": {Canary: true}},
		"one key, two sets of gates":   {"fake:a?state=x": {Canary: true}, "fake:a?state=y": {Soak: time.Hour}},
	} {
		if _, err := New(context.Background(), Config{Promotion: gates}); err == nil {
			t.Errorf("%s: New accepted %v", name, gates)
		}
	}
}
