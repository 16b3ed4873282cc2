package keyfmt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/knhk/knhk/shared"
)

type equaler interface{ Equal(crypto.PublicKey) bool }

func testKeys(t *testing.T) map[shared.KeyType]crypto.PublicKey {
	t.Helper()
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[shared.KeyType]crypto.PublicKey{shared.RSA2048: &r.PublicKey}
	for kt, c := range map[shared.KeyType]elliptic.Curve{shared.ECP256: elliptic.P256(), shared.ECP384: elliptic.P384(), shared.ECP521: elliptic.P521()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys[kt] = &k.PublicKey
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys[shared.Ed25519] = pub
	return keys
}

func TestJWKRoundTrip(t *testing.T) {
	want := map[shared.KeyType]struct{ kty, crv, alg string }{
		shared.RSA2048: {"RSA", "", ""},
		shared.ECP256:  {"EC", "P-256", "ES256"},
		shared.ECP384:  {"EC", "P-384", "ES384"},
		shared.ECP521:  {"EC", "P-521", "ES512"},
		shared.Ed25519: {"OKP", "Ed25519", "EdDSA"},
	}
	for kt, pub := range testKeys(t) {
		t.Run(string(kt), func(t *testing.T) {
			j, err := NewJWK(pub, "")
			if err != nil {
				t.Fatal(err)
			}
			out, err := j.MarshalIndent()
			if err != nil {
				t.Fatal(err)
			}
			var back JWK
			if err := json.Unmarshal(out, &back); err != nil {
				t.Fatal(err)
			}
			w := want[kt]
			if back.Kty != w.kty || back.Crv != w.crv || back.Alg != w.alg || back.Use != "sig" {
				t.Fatalf("got kty=%q crv=%q alg=%q use=%q, want %+v", back.Kty, back.Crv, back.Alg, back.Use, w)
			}
			if back.Kid != back.Thumbprint() {
				t.Fatalf("kid %q is not the thumbprint %q", back.Kid, back.Thumbprint())
			}
			got, err := back.PublicKey()
			if err != nil {
				t.Fatal(err)
			}
			if !pub.(equaler).Equal(got) {
				t.Fatal("JWK does not decode to the same key")
			}
		})
	}
}

func TestJWKAlg(t *testing.T) {
	keys := testKeys(t)
	j, err := NewJWK(keys[shared.RSA2048], shared.PS384)
	if err != nil || j.Alg != "PS384" {
		t.Fatalf("RSA with PS384: alg %v, err %v", j, err)
	}
	if _, err := NewJWK(keys[shared.ECP256], shared.ES384); !errors.Is(err, shared.ErrUnsupportedAlgorithm) {
		t.Fatalf("P-256 with ES384: err %v, want ErrUnsupportedAlgorithm", err)
	}
}

// The thumbprint examples of RFC 7638 §3.1 and RFC 8037 Appendix A.3.
func TestThumbprintRFCExamples(t *testing.T) {
	for _, tc := range []struct {
		name string
		jwk  JWK
		want string
	}{
		{"RFC 7638", JWK{Kty: "RSA", E: "AQAB", N: "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},
		{"RFC 8037", JWK{Kty: "OKP", Crv: "Ed25519", X: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"},
	} {
		if got := tc.jwk.Thumbprint(); got != tc.want {
			t.Errorf("%s: thumbprint %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestJWKRejectsBadInput(t *testing.T) {
	for _, j := range []JWK{
		{Kty: "oct"},
		{Kty: "EC", Crv: "P-256", X: "AAAA", Y: "AAAA"},
		{Kty: "EC", Crv: "secp256k1", X: "AAAA", Y: "AAAA"},
		{Kty: "OKP", Crv: "Ed25519", X: "!!"},
		{Kty: "RSA", N: "", E: "AQAB"},
	} {
		if _, err := j.PublicKey(); !errors.Is(err, shared.ErrInvalidArgument) {
			t.Errorf("%+v: err %v, want ErrInvalidArgument", j, err)
		}
	}
}

func TestPEM(t *testing.T) {
	for kt, pub := range testKeys(t) {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		out, err := PEM(der)
		if err != nil {
			t.Fatalf("%s: %v", kt, err)
		}
		block, rest := pem.Decode(out)
		if block == nil || block.Type != "PUBLIC KEY" || len(rest) != 0 {
			t.Fatalf("%s: not one PUBLIC KEY block: %q", kt, out)
		}
		got, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil || !pub.(equaler).Equal(got) {
			t.Fatalf("%s: PEM does not decode to the key (%v)", kt, err)
		}
	}
	if _, err := PEM([]byte("not a key")); err == nil {
		t.Fatal("PEM accepted garbage")
	}
}
