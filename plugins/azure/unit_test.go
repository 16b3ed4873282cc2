package azure

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/knhk/knhk/shared"
)

func TestParseKeyID(t *testing.T) {
	tests := []struct {
		in                   string
		vault, name, version string
		wantErr              bool
	}{
		{in: "https://myvault.vault.azure.net/keys/k1", vault: "https://myvault.vault.azure.net", name: "k1"},
		{in: "https://MyVault.vault.azure.net/keys/k-1/0123456789abcdef0123456789abcdef", vault: "https://myvault.vault.azure.net", name: "k-1", version: "0123456789abcdef0123456789abcdef"},
		{in: "https://hsm1.managedhsm.azure.net/keys/k1/", vault: "https://hsm1.managedhsm.azure.net", name: "k1"},
		{in: "https://v.vault.azure.cn/keys/k1", vault: "https://v.vault.azure.cn", name: "k1"},
		{in: "https://127.0.0.1:8443/keys/k1", vault: "https://127.0.0.1:8443", name: "k1"},
		{in: "http://myvault.vault.azure.net/keys/k1", wantErr: true},
		{in: "https://myvault.vault.azure.net/secrets/k1", wantErr: true},
		{in: "https://myvault.vault.azure.net/keys/", wantErr: true},
		{in: "https://myvault.vault.azure.net/keys/k_1", wantErr: true},
		{in: "https://myvault.vault.azure.net/keys/k1/v1/extra", wantErr: true},
		{in: "https://myvault.vault.azure.net/keys/k1?x=1", wantErr: true},
		{in: "https://user@myvault.vault.azure.net/keys/k1", wantErr: true},
		{in: "myvault/keys/k1", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		id, err := parseKeyID(tt.in)
		if tt.wantErr {
			if !errors.Is(err, shared.ErrInvalidArgument) {
				t.Errorf("parseKeyID(%q) error = %v, want ErrInvalidArgument", tt.in, err)
			}
			continue
		}
		if err != nil || id.vault != tt.vault || id.name != tt.name || id.version != tt.version {
			t.Errorf("parseKeyID(%q) = %+v, %v; want %s %s %s", tt.in, id, err, tt.vault, tt.name, tt.version)
		}
	}
}

func TestPickVersion(t *testing.T) {
	pinned := keyID{vault: "https://v.vault.azure.net", name: "k", version: "abc"}
	if v, err := pinned.pick(""); err != nil || v != "abc" {
		t.Errorf("pick(\"\") = %q, %v; want abc", v, err)
	}
	if _, err := pinned.pick("def"); !errors.Is(err, shared.ErrInvalidArgument) {
		t.Errorf("pick of a different version = %v, want ErrInvalidArgument", err)
	}
	if _, err := (keyID{name: "k"}).pick("no/slash"); !errors.Is(err, shared.ErrInvalidArgument) {
		t.Errorf("pick of a malformed version = %v, want ErrInvalidArgument", err)
	}
}

func TestParseParams(t *testing.T) {
	ps, vault, err := parseParams(map[string]string{"ca_file": "/x.pem", "tenant_id": "t", "client_id": "c", "hsm": "true", "vault_url": "https://V.vault.azure.net/"})
	if err != nil {
		t.Fatal(err)
	}
	if ps.String(ParamCAFile) != "/x.pem" || ps.String(ParamTenantID) != "t" || ps.String(ParamClientID) != "c" || !ps.Bool(ParamHSM) || vault != "https://v.vault.azure.net" {
		t.Errorf("parseParams = %v %q, want ca_file /x.pem, tenant t, client c, hsm, vault https://v.vault.azure.net", ps.Key(), vault)
	}
	for _, bad := range []map[string]string{{"region": "x"}, {"hsm": "maybe"}, {"vault_url": "http://v"}, {"vault_url": "https://v/keys"}} {
		if _, _, err := parseParams(bad); !errors.Is(err, shared.ErrInvalidArgument) {
			t.Errorf("parseParams(%v) = %v, want ErrInvalidArgument", bad, err)
		}
	}
}

func TestECDSAEncoding(t *testing.T) {
	for _, tc := range []struct {
		curve elliptic.Curve
		alg   shared.Algorithm
	}{{elliptic.P256(), shared.ES256}, {elliptic.P384(), shared.ES384}, {elliptic.P521(), shared.ES512}} {
		k, err := ecdsa.GenerateKey(tc.curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		digest, _ := shared.Digest(tc.alg, []byte("hello"))
		der, err := ecdsa.SignASN1(rand.Reader, k, digest)
		if err != nil {
			t.Fatal(err)
		}
		size := ecSize(tc.alg)
		raw, ok := derToRaw(der, size)
		if !ok || len(raw) != 2*size {
			t.Fatalf("%s: derToRaw failed (%d bytes)", tc.alg, len(raw))
		}
		back, err := rawToDER(raw, size)
		if err != nil {
			t.Fatal(err)
		}
		if err := shared.VerifyDigest(&k.PublicKey, tc.alg, digest, back); err != nil {
			t.Errorf("%s: round-tripped signature does not verify: %v", tc.alg, err)
		}
		if _, err := rawToDER(raw[1:], size); !errors.Is(err, shared.ErrUnavailable) {
			t.Errorf("%s: short r||s = %v, want ErrUnavailable", tc.alg, err)
		}
		if _, ok := derToRaw(append(der, 0), size); ok {
			t.Errorf("%s: DER with trailing data accepted", tc.alg)
		}
	}
}

func TestJWKToDER(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPoint, _ := ek.PublicKey.Bytes()
	tests := []struct {
		name string
		jwk  *azkeys.JSONWebKey
		kt   shared.KeyType
		err  error
	}{
		{"rsa", &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeRSAHSM), N: rk.N.Bytes(), E: []byte{1, 0, 1}}, shared.RSA2048, nil},
		{"ec", &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeEC), Crv: to.Ptr(azkeys.CurveNameP384), X: ecPoint[1:49], Y: ecPoint[49:]}, shared.ECP384, nil},
		{"p256k", &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeEC), Crv: to.Ptr(azkeys.CurveNameP256K), X: ecPoint[1:33], Y: ecPoint[33:65]}, "", shared.ErrUnsupportedAlgorithm},
		{"off curve", &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeEC), Crv: to.Ptr(azkeys.CurveNameP384), X: ecPoint[1:49], Y: ecPoint[1:49]}, "", shared.ErrUnavailable},
		{"oct", &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeOct)}, "", shared.ErrUnsupportedAlgorithm},
		{"nil", nil, "", shared.ErrUnavailable},
	}
	for _, tt := range tests {
		der, kt, err := jwkToDER(tt.jwk)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("%s: err = %v, want %v", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || kt != tt.kt {
			t.Fatalf("%s: jwkToDER = %s, %v; want %s", tt.name, kt, err, tt.kt)
		}
		if _, err := x509.ParsePKIXPublicKey(der); err != nil {
			t.Errorf("%s: DER does not parse: %v", tt.name, err)
		}
	}
	// The RSA key's DER is the key we started from.
	der, _, _ := jwkToDER(tests[0].jwk)
	want, _ := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	if sha256.Sum256(der) != sha256.Sum256(want) {
		t.Error("RSA DER differs from the original public key")
	}
}

func TestIsLoopback(t *testing.T) {
	for in, want := range map[string]bool{
		"https://127.0.0.1:443": true, "https://localhost": true, "https://[::1]:8443": true,
		"https://myvault.vault.azure.net": false, "https://10.0.0.1": false,
	} {
		if got := isLoopback(in); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestECCoordinatesAsIntegers reads JWK EC coordinates as big-endian
// integers, as Key Vault returns imported keys: 33-byte P-256 and 49-byte
// P-384 coordinates (a leading zero byte) and shortened ones make the same
// key; a coordinate too large for the field and a point off the curve are
// refused with errors that say so.
func TestECCoordinatesAsIntegers(t *testing.T) {
	for _, tc := range []struct {
		curve elliptic.Curve
		ecdh  ecdh.Curve
		crv   azkeys.CurveName
		kt    shared.KeyType
	}{
		{elliptic.P256(), ecdh.P256(), azkeys.CurveNameP256, shared.ECP256},
		{elliptic.P384(), ecdh.P384(), azkeys.CurveNameP384, shared.ECP384},
		{elliptic.P521(), ecdh.P521(), azkeys.CurveNameP521, shared.ECP521},
	} {
		size := (tc.curve.Params().BitSize + 7) / 8
		x, y := shortXPoint(t, tc.ecdh, size)
		pub, err := ecdsa.ParseUncompressedPublicKey(tc.curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := x509.MarshalPKIXPublicKey(pub)
		jwk := func(x, y []byte) *azkeys.JSONWebKey {
			return &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeEC), Crv: to.Ptr(tc.crv), X: x, Y: y}
		}
		pad := func(b []byte, n int) []byte { return append(make([]byte, n), b...) }
		for name, in := range map[string]*azkeys.JSONWebKey{
			"field size":             jwk(x, y),
			"one leading zero":       jwk(pad(x, 1), pad(y, 1)),
			"several zeros":          jwk(pad(x, 3), y),
			"shorter than the field": jwk(x[1:], y), // x's top byte is zero
		} {
			der, kt, err := jwkToDER(in)
			if err != nil || kt != tc.kt || !bytes.Equal(der, want) {
				t.Errorf("%s %s: jwkToDER = %s, %v; want the original %s key", tc.crv, name, kt, err, tc.kt)
			}
		}

		// x = p (one past the largest coordinate) does not fit the field.
		p := tc.curve.Params().P.Bytes()
		if _, _, err := jwkToDER(jwk(p, y)); !errors.Is(err, shared.ErrUnavailable) || !strings.Contains(err.Error(), "does not fit "+string(tc.crv)) {
			t.Errorf("%s: x = p: %v, want ErrUnavailable saying it does not fit %s", tc.crv, err, tc.crv)
		}
		// A non-zero byte in front makes another, too large, integer.
		if _, _, err := jwkToDER(jwk(append([]byte{1}, x...), y)); !errors.Is(err, shared.ErrUnavailable) || !strings.Contains(err.Error(), "does not fit") {
			t.Errorf("%s: x with a leading 0x01: %v, want ErrUnavailable saying it does not fit", tc.crv, err)
		}
		// Coordinates in range but not on the curve.
		_, _, err = jwkToDER(jwk(pad(x, 1), pad(x, 1)))
		if !errors.Is(err, shared.ErrUnavailable) || !strings.Contains(err.Error(), "not a point on "+string(tc.crv)) {
			t.Errorf("%s: point off the curve: %v, want ErrUnavailable saying it is not a point on %s", tc.crv, err, tc.crv)
		}
		if _, _, err := jwkToDER(jwk(nil, y)); !errors.Is(err, shared.ErrUnavailable) || !strings.Contains(err.Error(), "without its x coordinate") {
			t.Errorf("%s: no x: %v, want ErrUnavailable saying x is missing", tc.crv, err)
		}
	}
}

// shortXPoint returns the coordinates, at the field size, of the first
// point d*G (d = 1, 2, ...) whose x has a zero top byte, so that its
// minimal encoding is shorter than the field.
func shortXPoint(t *testing.T, c ecdh.Curve, size int) (x, y []byte) {
	t.Helper()
	// P-521 scalars are 66 bytes, like its coordinates.
	d := make([]byte, size)
	for i := 1; i < 1<<16; i++ {
		d[len(d)-2], d[len(d)-1] = byte(i>>8), byte(i)
		k, err := c.NewPrivateKey(d)
		if err != nil {
			t.Fatal(err)
		}
		pt := k.PublicKey().Bytes()
		if pt[1] == 0 {
			return pt[1 : 1+size], pt[1+size:]
		}
	}
	t.Fatal("no point with a short x")
	return nil, nil
}

// TestKeyVaultRoute: the client spans' names keep the route of every Key
// Vault path the provider calls and drop key names and versions.
func TestKeyVaultRoute(t *testing.T) {
	const v = "0123456789abcdef0123456789abcdef"
	for _, c := range []struct{ path, want string }{
		{"/keys", "/keys"},
		{"/keys/release", "/keys/{name}"},
		{"/keys/release/", "/keys/{name}"},
		{"/keys/release/create", "/keys/{name}/create"},
		{"/keys/release/rotate", "/keys/{name}/rotate"},
		{"/keys/release/versions", "/keys/{name}/versions"},
		{"/keys/release/" + v, "/keys/{name}/{version}"},
		{"/keys/release/" + v + "/sign", "/keys/{name}/{version}/sign"},
		{"/keys/release/" + v + "/verify", "/keys/{name}/{version}/verify"},
		{"/keys/release/" + v + "/encrypt", ""},
		{"/keys/release/" + v + "/sign/x", ""},
		{"/msi/token", ""},
		{"/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token", ""},
	} {
		if got := keyVaultRoute(c.path); got != c.want {
			t.Errorf("keyVaultRoute(%q) = %q, want %q", c.path, got, c.want)
		}
	}
}
