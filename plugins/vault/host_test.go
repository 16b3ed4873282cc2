package vault_test

import (
	"crypto/sha256"
	"errors"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/shared/providertest"
)

// newHost returns a host that finds the built knhk-plugin-vault.
func newHost(t *testing.T) *host.Host {
	t.Helper()
	h, err := host.New(ctx(t), host.Config{PluginDirs: []string{filepath.Dir(pluginBin)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// ref is a host key reference to a key on the test server (or addr).
func ref(id string, kv ...string) string {
	q := url.Values{"addr": {srv.Addr}}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return "vault:" + id + "?" + q.Encode()
}

// TestConformanceThroughHost runs the conformance kit against the built
// knhk-plugin-vault as the host manages it, against the real Vault: all
// seven key types and ten algorithms.
func TestConformanceThroughHost(t *testing.T) {
	h := newHost(t)
	p, err := h.Provider(ctx(t), "vault")
	if err != nil {
		t.Fatal(err)
	}
	d, err := p.Describe(ctx(t))
	if err != nil || len(d.KeyTypes) != len(shared.KeyTypes) || len(d.Algorithms) != len(shared.Algorithms) {
		t.Fatalf("Describe through the host = %+v, %v; want all key types and algorithms", d, err)
	}
	providertest.Run(t, providertest.Config{Provider: p, Params: params()})
}

// TestRotationThroughHost: sign v1, rotate, sign v2, both verify, an
// explicit v1 still signs, metadata lists both.
func TestRotationThroughHost(t *testing.T) {
	h := newHost(t)
	k, err := h.CreateKey(ctx(t), ref("transit/"+keyName("host-rot")), shared.RSA3072)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("rotate through the host"))
	opts := func(v string) host.SignOptions { return host.SignOptions{Algorithm: shared.PS256, Version: v} }
	s1, err := k.SignDigest(ctx(t), d[:], opts(""))
	if err != nil || s1.Version != "1" {
		t.Fatalf("SignDigest before rotation = version %q, %v", s1.Version, err)
	}
	v, err := k.Rotate(ctx(t))
	if err != nil || v != "2" {
		t.Fatalf("Rotate = %q, %v; want 2", v, err)
	}
	s2, err := k.SignDigest(ctx(t), d[:], opts(""))
	if err != nil || s2.Version != "2" {
		t.Fatalf("SignDigest after rotation = version %q, %v; want 2", s2.Version, err)
	}
	s1b, err := k.SignDigest(ctx(t), d[:], opts("1"))
	if err != nil || s1b.Version != "1" {
		t.Fatalf("SignDigest with version 1 = version %q, %v", s1b.Version, err)
	}
	for _, s := range []host.Signature{s1, s2, s1b} {
		if err := k.VerifyDigest(ctx(t), d[:], s.Signature, opts(s.Version)); err != nil {
			t.Errorf("version %s signature: %v", s.Version, err)
		}
	}
	if err := k.VerifyDigest(ctx(t), d[:], s1.Signature, opts("2")); !errors.Is(err, shared.ErrBadSignature) {
		t.Errorf("v1 signature against v2 key: %v, want ErrBadSignature", err)
	}
	md, err := k.Metadata(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var versions []string
	for _, kv := range md.Versions {
		versions = append(versions, kv.Version)
	}
	if md.CurrentVersion != "2" || !slices.Equal(versions, []string{"1", "2"}) {
		t.Errorf("metadata: current %q, versions %v; want 2, [1 2]", md.CurrentVersion, versions)
	}
}

// TestErrorsThroughHost: a sign-only token cannot rotate, an unknown key
// is not found, and a sealed Vault is unavailable, all as typed errors in
// the host.
func TestErrorsThroughHost(t *testing.T) {
	h := newHost(t)
	name := "transit/" + keyName("host-deny")
	if _, err := h.CreateKey(ctx(t), ref(name), shared.ECP384); err != nil {
		t.Fatal(err)
	}
	tok := signerToken(t, "1h")
	k, err := h.Key(ctx(t), ref(name, "token_file", writeFile(t, tok)))
	if err != nil {
		t.Fatal(err)
	}
	d := make([]byte, 48)
	if _, err := k.SignDigest(ctx(t), d, host.SignOptions{}); err != nil {
		t.Fatalf("sign with the sign-only token: %v", err)
	}
	_, err = k.Rotate(ctx(t))
	if !errors.Is(err, shared.ErrPermissionDenied) {
		t.Fatalf("rotate with the sign-only token: %v, want ErrPermissionDenied", err)
	}
	if !strings.Contains(err.Error(), name+"/rotate") && !strings.Contains(err.Error(), strings.Replace(name, "transit/", "transit/keys/", 1)+"/rotate") {
		t.Errorf("error %q does not name the denied path", err)
	}
	assertNoSecrets(t, err.Error(), tok, srv.RootToken)

	missing, err := h.Key(ctx(t), ref("transit/"+keyName("host-missing")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := missing.SignDigest(ctx(t), d[:32], host.SignOptions{Algorithm: shared.ES256}); !errors.Is(err, shared.ErrKeyNotFound) {
		t.Errorf("sign with an unknown key: %v, want ErrKeyNotFound", err)
	}
	if _, err := missing.Metadata(ctx(t)); !errors.Is(err, shared.ErrKeyNotFound) {
		t.Errorf("metadata of an unknown key: %v, want ErrKeyNotFound", err)
	}

	s, err := startServer()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	sealedRef := "vault:sealed?" + url.Values{"addr": {s.Addr}, "token_file": {writeFile(t, s.RootToken)}}.Encode()
	sk, err := h.CreateKey(ctx(t), sealedRef, shared.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Seal(); err != nil {
		t.Fatal(err)
	}
	_, err = sk.SignMessage(ctx(t), []byte("sealed"), host.SignOptions{Version: "1"})
	if !errors.Is(err, shared.ErrUnavailable) {
		t.Errorf("sign on a sealed Vault through the host: %v, want ErrUnavailable", err)
	}
	if _, err := sk.Metadata(ctx(t)); !errors.Is(err, shared.ErrUnavailable) {
		t.Errorf("metadata on a sealed Vault through the host: %v, want ErrUnavailable", err)
	}
}
