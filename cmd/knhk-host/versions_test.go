package main

import (
	"crypto/sha256"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"

	"github.com/knhk/knhk/shared"
)

// TestVersionStatesCLI (issue #17, first slice) through the built CLI and
// fake plugin: rotate --pending makes a pending version that is published
// (pubkey --version) but cannot sign; promote makes it sign (verified with
// the standard library) and moves version 1 to retiring, whose old
// signatures still verify; retire makes 1 neither sign nor verify;
// versions shows states and fingerprints.
func TestVersionStatesCLI(t *testing.T) {
	dir := t.TempDir()
	ref := "fake:rel?state=" + filepath.Join(dir, "keys.json")
	msg := []byte("release")
	ok(t, nil, withPlugins("keys", "create", "--key", ref, "--type", "ec-p256")...)
	var s1 struct{ Signature, Version string }
	decodeJSONAny(t, ok(t, msg, withPlugins("sign", "--key", ref, "-o", "json")...), &s1)
	sig1 := writeFile(t, dir, "sig1", mustB64(t, s1.Signature))

	if v := strings.TrimSpace(ok(t, nil, withPlugins("rotate", "--key", ref, "--pending")...)); v != "2" {
		t.Fatalf("rotate --pending printed %q", v)
	}
	pub2 := parsePEM(t, ok(t, nil, withPlugins("pubkey", "--key", ref, "--version", "2")...))
	if r := knhk(t, msg, withPlugins("sign", "--key", ref, "--version", "2")...); r.code == 0 || !strings.Contains(r.stderr, "pending") {
		t.Fatalf("sign with the pending version: %v", r)
	}
	var vs struct {
		Versions []struct {
			Version, State string
			SPKISHA256     string `json:"spki_sha256"`
			Current        bool
		}
	}
	out := ok(t, nil, withPlugins("versions", "--key", ref, "-o", "json")...)
	decodeJSONAny(t, out, &vs)
	if len(vs.Versions) != 2 || vs.Versions[0].State != "active" || vs.Versions[1].State != "pending" || vs.Versions[1].SPKISHA256 == "" {
		t.Fatalf("versions: %s", out)
	}
	if text := ok(t, nil, withPlugins("versions", "--key", ref)...); !strings.Contains(text, "pending") || !strings.Contains(text, "STATE") {
		t.Fatalf("versions (text): %s", text)
	}

	ok(t, nil, withPlugins("promote", "--key", ref, "--version", "2")...)
	var s2 struct{ Signature, Version string }
	decodeJSONAny(t, ok(t, msg, withPlugins("sign", "--key", ref, "-o", "json")...), &s2)
	if s2.Version != "2" {
		t.Fatalf("sign after promote: version %q", s2.Version)
	}
	d := sha256.Sum256(msg)
	if err := shared.VerifyDigest(pub2, shared.ES256, d[:], mustB64(t, s2.Signature)); err != nil {
		t.Fatalf("the promoted version's signature (standard library): %v", err)
	}
	ok(t, msg, withPlugins("verify", "--key", ref, "--version", "1", "--sig", sig1)...)

	ok(t, nil, withPlugins("retire", "--key", ref, "--version", "1")...)
	if r := knhk(t, msg, withPlugins("verify", "--key", ref, "--version", "1", "--sig", sig1)...); r.code == 0 {
		t.Fatalf("verify with the retired version: %v", r)
	}
	if r := knhk(t, msg, withPlugins("sign", "--key", ref, "--version", "1")...); r.code == 0 {
		t.Fatalf("sign with the retired version: %v", r)
	}
	if r := knhk(t, nil, withPlugins("retire", "--key", ref, "--version", "2")...); r.code == 0 || !strings.Contains(r.stderr, "active") {
		t.Fatalf("retire the active version: %v", r)
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPromotionGatesCLI: a key whose promotion block asks for the canary
// and two approvers (one a key file, one a fake key): promote refuses
// with exit 3 and the unmet gate listed until both have approved;
// approve stores each approval in the key's approvals_dir, where
// versions and promote find it; then the promoted version signs.
func TestPromotionGatesCLI(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "keys.json")
	alice := strings.TrimSpace(ok(t, nil, "audit", "keygen", "--name", "alice", "--out", filepath.Join(dir, "alice.key")))
	bob := "fake:bob?state=" + state
	config := writeFile(t, dir, "knhk.hcl", []byte(`
plugin_dirs = [`+hcl(pluginDir)+`]
key "rel" {
  ref    = "fake:rel"
  params = { state = `+hcl(state)+` }
  promotion {
    canary        = true
    approvals_dir = "approvals"
    approvals {
      required  = 2
      approvers = [`+hcl(alice)+`, `+hcl(bob)+`]
    }
  }
}
`))
	cli := func(args ...string) []string { return append([]string{"--config", config}, args...) }
	ok(t, nil, cli("keys", "create", "--key", "rel", "--type", "ec-p256")...)
	ok(t, nil, cli("keys", "create", "--key", bob, "--type", "ed25519")...)
	ok(t, nil, cli("rotate", "--key", "rel", "--pending")...)

	r := knhk(t, nil, cli("promote", "--key", "rel", "--version", "2")...)
	if r.code != 3 || !strings.Contains(r.stderr, "approvals (0 of 2 approvers") {
		t.Fatalf("promote without approvals: %v; want exit 3 naming the approvals gate", r)
	}
	note := ok(t, nil, cli("approve", "--key", "rel", "--version", "2", "--approver-key", filepath.Join(dir, "alice.key"))...)
	if !strings.HasPrefix(note, "knhk-approval/v1\nkey fake:rel\nversion 2\n") || !strings.Contains(note, "— alice ") {
		t.Fatalf("approve printed %q", note)
	}
	text := ok(t, nil, cli("versions", "--key", "rel")...)
	if !strings.Contains(text, "approvals  not met     1 of 2 approvers: alice") || !strings.Contains(text, "canary     at promote") {
		t.Fatalf("versions with one approval:\n%s", text)
	}
	if r := knhk(t, nil, cli("promote", "--key", "rel", "--version", "2")...); r.code != 3 || !strings.Contains(r.stderr, "1 of 2 approvers: alice") {
		t.Fatalf("promote with one approval: %v", r)
	}
	ok(t, nil, cli("approve", "--key", "rel", "--version", "2", "--approver-key", bob)...)
	ok(t, nil, cli("promote", "--key", "rel", "--version", "2")...)
	msg := []byte("release")
	var s struct{ Signature, Version string }
	decodeJSONAny(t, ok(t, msg, cli("sign", "--key", "rel", "-o", "json")...), &s)
	pub := parsePEM(t, ok(t, nil, cli("pubkey", "--key", "rel", "--version", "2")...))
	d := sha256.Sum256(msg)
	if s.Version != "2" || shared.VerifyDigest(pub, shared.ES256, d[:], mustB64(t, s.Signature)) != nil {
		t.Fatalf("sign after promote: version %q, or the signature does not verify", s.Version)
	}
}
