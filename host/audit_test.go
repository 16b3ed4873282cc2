package host

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/knhk/knhk/audit"
	"github.com/knhk/knhk/audit/audittest"
	"github.com/knhk/knhk/shared"
)

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestAuditRecords: every operation through the host, successful or
// not, from every entry point, leaves one record naming its caller,
// key (without parameter values), version, algorithm and the hashes of
// input and signature; the log verifies after Close.
func TestAuditRecords(t *testing.T) {
	tl := audittest.Open(t, audit.Options{Host: "test-host"})
	l, path := tl.Log, tl.Path
	h, _ := newHost(t, Config{Audit: l, Principal: "test:embedder"})
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()

	k, err := h.CreateKey(ctx, fakeRef(t, state, "ec", ""), shared.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("audited"))
	sig, err := k.SignDigest(WithPrincipal(ctx, "unix:uid=4242"), digest[:], SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.VerifyDigest(ctx, digest[:], sig.Signature, SignOptions{}); err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), sig.Signature...)
	bad[len(bad)-1] ^= 1
	if err := k.VerifyDigest(ctx, digest[:], bad, SignOptions{}); !errors.Is(err, shared.ErrBadSignature) {
		t.Fatalf("verifying a bad signature: %v", err)
	}
	ed, err := h.CreateKey(ctx, fakeRef(t, state, "ed", ""), shared.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ed.Signer(ctx) // a public_key record
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("a whole message")
	edSig, err := s.Sign(nil, msg, crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(s.Public().(ed25519.PublicKey), msg, edSig) {
		t.Fatal("Ed25519 signature does not verify")
	}
	if _, err := k.Metadata(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ListKeys(ctx, "fake", map[string]string{"state": state}); err != nil {
		t.Fatal(err)
	}
	missing, err := h.Key(ctx, fakeRef(t, state, "missing", ""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := missing.SignDigest(ctx, digest[:], SignOptions{Algorithm: shared.ES256}); !errors.Is(err, shared.ErrKeyNotFound) {
		t.Fatalf("signing with a missing key: %v", err)
	}
	p, err := h.Provider(ctx, "fake")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Sign(ctx, shared.SignRequest{Key: shared.KeyRef{ID: "ec", Params: map[string]string{"state": state}}, Algorithm: shared.ES256, Digest: digest[:]}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	recs := audittest.Records(t, path)
	var ops []string
	for i, r := range recs {
		if r.Seq != int64(i) || r.Host != "test-host" || r.Time.IsZero() {
			t.Errorf("record %d: seq %d, host %q, time %v", i, r.Seq, r.Host, r.Time)
		}
		ops = append(ops, r.Operation+"/"+r.Outcome)
	}
	want := []string{
		"create_key/ok", "sign/ok", "verify/ok", "verify/error",
		"create_key/ok", "public_key/ok", "sign/ok", // Signer fetches the public key
		"metadata/ok", "rotate/ok", "list_keys/ok", "sign/error", "sign/ok",
	}
	if strings.Join(ops, " ") != strings.Join(want, " ") {
		t.Fatalf("records:\n %v\nwant\n %v", ops, want)
	}
	signed := recs[1]
	if signed.Principal != "unix:uid=4242" || signed.Key != "fake:ec" || strings.Join(signed.Params, ",") != "state" ||
		signed.Algorithm != "ES256" || signed.Input != "digest" || signed.InputSHA256 != hexSHA256(digest[:]) ||
		signed.SignatureSHA256 != hexSHA256(sig.Signature) || signed.KeyVersion != sig.Version || signed.KeyVersion == "" {
		t.Errorf("sign record: %+v\nsignature version %q", signed, sig.Version)
	}
	if r := recs[3]; r.ErrorType != "bad_signature" || r.SignatureSHA256 != hexSHA256(bad) || r.Principal != "test:embedder" {
		t.Errorf("failed verify record: %+v", r)
	}
	if r := recs[6]; r.Input != "message" || r.InputSHA256 != hexSHA256(msg) || r.Algorithm != "EdDSA" || r.SignatureSHA256 != hexSHA256(edSig) {
		t.Errorf("Ed25519 sign record: %+v", r)
	}
	if r := recs[9]; r.Key != "fake:" || strings.Join(r.Params, ",") != "state" {
		t.Errorf("list_keys record: %+v", r)
	}
	if r := recs[10]; r.Key != "fake:missing" || r.ErrorType != "key_not_found" {
		t.Errorf("failed sign record: %+v", r)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), state) {
		t.Error("the log holds a parameter value (the state path)")
	}
	v, err := audit.ParseVerifierKey(tl.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify([]string{path}, v, audit.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Intact() || rep.TreeSize != int64(len(recs)) {
		t.Fatalf("log does not verify: %+v", rep)
	}
}

// TestAuditFailClosed: once the log cannot take records, a signature is
// withheld with ErrAuditUnavailable (also shared.ErrUnavailable, so
// retryable), and rotate and create are refused before the provider
// acts.
func TestAuditFailClosed(t *testing.T) {
	tl := audittest.Open(t, audit.Options{})
	l, path := tl.Log, tl.Path
	h, _ := newHost(t, Config{Audit: l})
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()
	k, err := h.CreateKey(ctx, fakeRef(t, state, "ec", ""), shared.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	md, err := k.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil { // a closed log takes no more records
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("unrecorded"))
	sig, err := k.SignDigest(ctx, digest[:], SignOptions{})
	if !errors.Is(err, ErrAuditUnavailable) || !errors.Is(err, shared.ErrUnavailable) || !IsRetryable(err) || sig.Signature != nil {
		t.Fatalf("signing with the log closed: %v (signature %x)", err, sig.Signature)
	}
	if _, err := k.Rotate(ctx); !errors.Is(err, ErrAuditUnavailable) {
		t.Fatalf("rotating with the log closed: %v", err)
	}
	if _, err := h.CreateKey(ctx, fakeRef(t, state, "new", ""), shared.ECP256); !errors.Is(err, ErrAuditUnavailable) {
		t.Fatalf("creating with the log closed: %v", err)
	}
	// Nothing happened at the provider: the key has the same versions,
	// and the new key does not exist.
	plain, _ := newHost(t, Config{})
	pk, err := plain.Key(ctx, fakeRef(t, state, "ec", ""))
	if err != nil {
		t.Fatal(err)
	}
	after, err := pk.Metadata(ctx)
	if err != nil || after.CurrentVersion != md.CurrentVersion || len(after.Versions) != len(md.Versions) {
		t.Errorf("after a refused rotate: %+v, %v; before: %+v", after, err, md)
	}
	nk, err := plain.Key(ctx, fakeRef(t, state, "new", ""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nk.Metadata(ctx); !errors.Is(err, shared.ErrKeyNotFound) {
		t.Errorf("the refused create made a key: %v", err)
	}
	if n := len(audittest.Records(t, path)); n != 2 {
		t.Errorf("%d records, want 2 (create, metadata)", n)
	}
}
