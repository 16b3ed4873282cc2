package host

import (
	"context"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/knhk/knhk/audit"
	"github.com/knhk/knhk/audit/audittest"
	"github.com/knhk/knhk/shared"
)

// TestVersionStates (issue #17, first slice) against the fake: a pending
// version is published but cannot sign; promoting it makes it sign (the
// signature verified with the standard library against its public key)
// and the old active version retiring, whose signatures still verify;
// a retired version neither signs nor verifies; every change is an
// audit record.
func TestVersionStates(t *testing.T) {
	tl := audittest.Open(t, audit.Options{Host: "test-host"})
	h, _ := newHost(t, Config{Audit: tl.Log})
	ctx := context.Background()
	state := filepath.Join(t.TempDir(), "keys.json")
	k, err := h.CreateKey(ctx, fakeRef(t, state, "rel", ""), shared.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("release 1"))
	old, err := k.SignDigest(ctx, digest[:], SignOptions{})
	if err != nil || old.Version != "1" {
		t.Fatalf("sign before states: %v, %v", old, err)
	}
	vs, err := k.Versions(ctx)
	if err != nil || len(vs) != 1 || vs[0].State != "" || !vs[0].Current {
		t.Fatalf("versions of a key without states: %+v, %v", vs, err)
	}

	v2, err := k.RotatePending(ctx)
	if err != nil || v2 != "2" {
		t.Fatalf("RotatePending: %q, %v", v2, err)
	}
	// Pending: published, cannot sign, even when named.
	pk2, err := k.PublicKey(ctx, v2)
	if err != nil {
		t.Fatalf("public key of the pending version: %v", err)
	}
	if _, err := k.SignDigest(ctx, digest[:], SignOptions{Version: v2}); !errors.Is(err, shared.ErrFailedPrecondition) {
		t.Fatalf("signing with the pending version: %v; want ErrFailedPrecondition", err)
	}
	// Unnamed: the active version signs, not the provider's latest.
	sig, err := k.SignDigest(ctx, digest[:], SignOptions{})
	if err != nil || sig.Version != "1" {
		t.Fatalf("sign while 2 is pending: %+v, %v; want version 1", sig, err)
	}
	if pk, err := k.PublicKey(ctx, ""); err != nil || pk.Version != "1" {
		t.Fatalf("current public key while 2 is pending: %v, %v", pk.Version, err)
	}
	vs, err = k.Versions(ctx)
	if err != nil || len(vs) != 2 || vs[0].State != shared.VersionActive || vs[1].State != shared.VersionPending || !vs[0].Current || vs[1].SPKISHA256 != hexSHA256(pk2.DER) {
		t.Fatalf("versions with 2 pending: %+v, %v", vs, err)
	}

	if err := k.Promote(ctx, v2); err != nil {
		t.Fatal(err)
	}
	sig2, err := k.SignDigest(ctx, digest[:], SignOptions{})
	if err != nil || sig2.Version != v2 {
		t.Fatalf("sign after promote: %+v, %v; want version 2", sig2, err)
	}
	if err := shared.VerifyDigest(pk2.Key, shared.ES256, digest[:], sig2.Signature); err != nil {
		t.Fatalf("the promoted version's signature against its public key (standard library): %v", err)
	}
	// The old active version: retiring, verifies, cannot sign.
	if err := k.VerifyDigest(ctx, digest[:], old.Signature, SignOptions{Version: "1"}); err != nil {
		t.Fatalf("an old signature while its version is retiring: %v", err)
	}
	if _, err := k.SignDigest(ctx, digest[:], SignOptions{Version: "1"}); !errors.Is(err, shared.ErrFailedPrecondition) {
		t.Fatalf("signing with the retiring version: %v", err)
	}
	if err := k.Retire(ctx, v2); !errors.Is(err, shared.ErrFailedPrecondition) {
		t.Fatalf("retiring the active version: %v", err)
	}
	if err := k.Retire(ctx, "1"); err != nil {
		t.Fatal(err)
	}
	if err := k.VerifyDigest(ctx, digest[:], old.Signature, SignOptions{Version: "1"}); !errors.Is(err, shared.ErrBadSignature) {
		t.Fatalf("an old signature once its version is retired: %v; want ErrBadSignature", err)
	}
	if _, err := k.SignDigest(ctx, digest[:], SignOptions{Version: "1"}); !errors.Is(err, shared.ErrFailedPrecondition) {
		t.Fatalf("signing with the retired version: %v", err)
	}
	if err := k.Promote(ctx, "1"); !errors.Is(err, shared.ErrFailedPrecondition) {
		t.Fatalf("promoting a retired version: %v", err)
	}

	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tl.Log.Close(); err != nil {
		t.Fatal(err)
	}
	var changes []string
	for _, r := range audittest.Records(t, tl.Path) {
		switch r.Operation {
		case "rotate", "promote", "retire":
			changes = append(changes, r.Operation+":"+r.KeyVersion+":"+r.VersionState+":"+r.Outcome)
		}
	}
	want := []string{"rotate:2:pending:ok", "promote:2:active:ok", "retire:2:retired:error", "retire:1:retired:ok", "promote:1:active:error"}
	if len(changes) != len(want) {
		t.Fatalf("state change records: %v; want %v", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Fatalf("state change records: %v; want %v", changes, want)
		}
	}
}

// TestVersionStatesTwoHosts: two hosts sharing a fake state file agree
// on the active version: a host that cached the states signs with the
// newly promoted version once it names it (refresh on a miss) and, once
// its cache expires, when it names none.
func TestVersionStatesTwoHosts(t *testing.T) {
	const ttl = 200 * time.Millisecond
	a, _ := newHost(t, Config{VersionStatesTTL: ttl})
	b, _ := newHost(t, Config{VersionStatesTTL: ttl})
	ctx := context.Background()
	ref := fakeRef(t, filepath.Join(t.TempDir(), "keys.json"), "shared", "")
	ka, err := a.CreateKey(ctx, ref, shared.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := b.Key(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := ka.RotatePending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sig, err := kb.SignMessage(ctx, []byte("m"), SignOptions{}); err != nil || sig.Version != "1" {
		t.Fatalf("host b while 2 is pending: %+v, %v", sig, err) // b caches 1 active, 2 pending
	}
	if err := ka.Promote(ctx, v2); err != nil {
		t.Fatal(err)
	}
	sig, err := kb.SignMessage(ctx, []byte("m"), SignOptions{Version: v2})
	if err != nil || sig.Version != v2 {
		t.Fatalf("host b naming the promoted version: %+v, %v", sig, err)
	}
	time.Sleep(ttl + 50*time.Millisecond)
	sig, err = kb.SignMessage(ctx, []byte("m"), SignOptions{})
	if err != nil || sig.Version != v2 {
		t.Fatalf("host b after the TTL: %+v, %v; want version %s", sig, err, v2)
	}
	if err := kb.VerifyMessage(ctx, []byte("m"), sig.Signature, SignOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestVersionStatesPlainKey: a key never rotated with pending has no
// states and behaves as before: rotate makes the new version current,
// older versions still sign when named; promote and retire refuse.
func TestVersionStatesPlainKey(t *testing.T) {
	h, _ := newHost(t, Config{})
	ctx := context.Background()
	k, err := h.CreateKey(ctx, fakeRef(t, filepath.Join(t.TempDir(), "keys.json"), "plain", ""), shared.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := k.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("x"))
	if sig, err := k.SignDigest(ctx, d[:], SignOptions{}); err != nil || sig.Version != v2 {
		t.Fatalf("sign after a plain rotate: %+v, %v", sig, err)
	}
	if sig, err := k.SignDigest(ctx, d[:], SignOptions{Version: "1"}); err != nil || sig.Version != "1" {
		t.Fatalf("sign with the old version of a plain key: %+v, %v", sig, err)
	}
	vs, err := k.Versions(ctx)
	if err != nil || len(vs) != 2 || vs[0].State != "" || vs[1].State != "" || !vs[1].Current {
		t.Fatalf("versions of a plain key: %+v, %v", vs, err)
	}
	if err := k.Promote(ctx, "1"); !errors.Is(err, shared.ErrFailedPrecondition) {
		t.Fatalf("promote on a key without states: %v", err)
	}
}
