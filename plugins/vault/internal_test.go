package vault

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/knhk/knhk/shared"
)

func TestParseKeyID(t *testing.T) {
	for _, c := range []struct {
		in          string
		mount, name string
		ok          bool
	}{
		{"release", "transit", "release", true},
		{"transit/release", "transit", "release", true},
		{"team/transit/release", "team/transit", "release", true},
		{"", "", "", false},
		{"/release", "", "", false},
		{"transit/", "", "", false},
		{"a//b", "", "", false},
		{"transit/../sys", "", "", false},
		{"transit/a?b", "", "", false},
		{"transit/a b", "", "", false},
	} {
		k, err := parseKeyID(c.in)
		if c.ok != (err == nil) || (c.ok && (k.mount != c.mount || k.name != c.name)) {
			t.Errorf("parseKeyID(%q) = %+v, %v", c.in, k, err)
		}
		if err != nil && !errors.Is(err, shared.ErrInvalidArgument) {
			t.Errorf("parseKeyID(%q): %v is not ErrInvalidArgument", c.in, err)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]int{"": 0, "1": 1, "12": 12, "v3": 3, "vault:v4": 4} {
		if got, err := parseVersion(in); err != nil || got != want {
			t.Errorf("parseVersion(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "-1", "x", "v", "1.5", "vault:"} {
		if _, err := parseVersion(in); !errors.Is(err, shared.ErrInvalidArgument) {
			t.Errorf("parseVersion(%q): %v, want ErrInvalidArgument", in, err)
		}
	}
}

func TestSplitSignature(t *testing.T) {
	v, b64, err := splitSignature("vault:v7:QUJD")
	if err != nil || v != 7 || b64 != "QUJD" {
		t.Fatalf("splitSignature = %d, %q, %v", v, b64, err)
	}
	for _, in := range []string{"QUJD", "vault:7:QUJD", "other:v1:QUJD", "vault:v0:QUJD", "vault:vx:QUJD"} {
		if _, _, err := splitSignature(in); err == nil {
			t.Errorf("splitSignature(%q) succeeded", in)
		}
	}
}

func TestParseParams(t *testing.T) {
	t.Setenv("VAULT_ADDR", "http://env:8200")
	s, err := parseParams(nil)
	if err != nil || s.String(ParamAddr) != "http://env:8200" || s.String(ParamAuth) != AuthToken {
		t.Fatalf("defaults: %+v, %v", s, err)
	}
	s, err = parseParams(map[string]string{"addr": "http://p:1", "auth": "kubernetes", "role": "r"})
	if err != nil || s.String(ParamAddr) != "http://p:1" || authMount(s) != "kubernetes" || jwtFile(s) != DefaultJWTFile {
		t.Fatalf("kubernetes: %+v, %v", s, err)
	}
	a, _ := parseParams(map[string]string{"namespace": "a/"})
	b, _ := parseParams(map[string]string{"namespace": "b/"})
	if a.Key(clientParams...) == b.Key(clientParams...) {
		t.Error("two namespaces share a cached client")
	}
	m1, _ := parseParams(map[string]string{"mount": "m1"})
	m2, _ := parseParams(map[string]string{"mount": "m2"})
	if m1.Key(clientParams...) != m2.Key(clientParams...) {
		t.Error("the mount parameter picks another client")
	}
	for _, bad := range []map[string]string{
		{"adr": "x"},
		{"auth": "ldap"},
		{"auth": "kubernetes"},
		{"auth": "approle", "role": "r"},
		{"auth": "approle", "role_id": "a", "role_id_file": "b"},
		{"token_file": "x", "auth": "approle"},
		{"addr": "vault.example.com:8200"},
		{"token_file": ""},
	} {
		if _, err := parseParams(bad); !errors.Is(err, shared.ErrInvalidArgument) {
			t.Errorf("parseParams(%v): %v, want ErrInvalidArgument", bad, err)
		}
	}
}

// TestAddrUserInfo: a password in the address is refused and never
// echoed, whether it comes from the addr parameter or from VAULT_ADDR.
func TestAddrUserInfo(t *testing.T) {
	_, err := parseParams(map[string]string{"addr": "http://admin:s3cret@127.0.0.1:1"})
	if !errors.Is(err, shared.ErrInvalidArgument) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("addr with a password: %v, want ErrInvalidArgument without the password", err)
	}
	t.Setenv("VAULT_ADDR", "http://admin:s3cret@127.0.0.1:1")
	_, err = parseParams(nil)
	if !errors.Is(err, shared.ErrInvalidArgument) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("VAULT_ADDR with a password: %v, want ErrInvalidArgument without the password", err)
	}
}

func TestPublicKeyDER(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if got, err := publicKeyDER(shared.ECP384, pemText); err != nil || string(got) != string(der) {
		t.Errorf("P-384 PEM: %v", err)
	}
	if _, err := publicKeyDER(shared.ECP256, pemText); err == nil {
		t.Error("a P-384 key passed as P-256")
	}
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	got, err := publicKeyDER(shared.Ed25519, base64.StdEncoding.EncodeToString(edPub))
	if err != nil {
		t.Fatal(err)
	}
	if pub, _ := x509.ParsePKIXPublicKey(got); !edPub.Equal(pub) {
		t.Error("Ed25519 DER does not hold the key")
	}
	for _, bad := range []string{"", "not pem", base64.StdEncoding.EncodeToString(edPub[:31])} {
		if _, err := publicKeyDER(shared.Ed25519, bad); !errors.Is(err, shared.ErrUnavailable) {
			t.Errorf("publicKeyDER(%q): %v", bad, err)
		}
	}
}

func TestSignParams(t *testing.T) {
	for _, c := range []struct {
		kt   shared.KeyType
		alg  shared.Algorithm
		want map[string]any
	}{
		{shared.RSA2048, shared.RS384, map[string]any{"signature_algorithm": "pkcs1v15", "hash_algorithm": "sha2-384", "prehashed": true}},
		{shared.RSA4096, shared.PS512, map[string]any{"signature_algorithm": "pss", "salt_length": "hash", "hash_algorithm": "sha2-512", "prehashed": true}},
		{shared.ECP521, shared.ES512, map[string]any{"marshaling_algorithm": "asn1", "hash_algorithm": "sha2-512", "prehashed": true}},
		{shared.Ed25519, shared.EdDSA, map[string]any{}},
	} {
		got, err := signParams(c.kt, c.alg, c.alg != shared.EdDSA)
		if err != nil || len(got) != len(c.want) {
			t.Errorf("signParams(%s, %s) = %v, %v", c.kt, c.alg, got, err)
			continue
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("signParams(%s, %s)[%s] = %v, want %v", c.kt, c.alg, k, got[k], v)
			}
		}
	}
	if _, err := signParams(shared.ECP256, shared.PS256, true); !errors.Is(err, shared.ErrUnsupportedAlgorithm) {
		t.Errorf("PS256 on P-256: %v", err)
	}
}

// TestVaultRoute: the client spans' names keep the route of every path
// the provider calls and drop mount, key and auth mount names.
func TestVaultRoute(t *testing.T) {
	for _, c := range []struct{ path, want string }{
		{"/v1/transit/keys/release", "/v1/{mount}/keys/{name}"},
		{"/v1/team-a/transit/keys/release", "/v1/{mount}/keys/{name}"},
		{"/v1/transit/keys", "/v1/{mount}/keys"},
		{"/v1/transit/keys/release/rotate", "/v1/{mount}/keys/{name}/rotate"},
		{"/v1/transit/sign/release/sha2-256", "/v1/{mount}/sign/{name}/{hash}"},
		{"/v1/transit/sign/release", "/v1/{mount}/sign/{name}"},
		{"/v1/transit/verify/release/sha2-512", "/v1/{mount}/verify/{name}/{hash}"},
		{"/v1/auth/approle/login", "/v1/auth/{mount}/login"},
		{"/v1/auth/team/k8s/login", "/v1/auth/{mount}/login"},
		{"/v1/auth/token/lookup-self", "/v1/auth/token/lookup-self"},
		{"/v1/sys/health", "/v1/sys/health"},
		{"/v1/transit/export/signing-key/release", ""},
		{"/v1/transit/keys/release/config/extra", ""},
		{"/other", ""},
	} {
		if got := vaultRoute(c.path); got != c.want {
			t.Errorf("vaultRoute(%q) = %q, want %q", c.path, got, c.want)
		}
	}
}
