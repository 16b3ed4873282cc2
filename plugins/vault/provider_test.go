package vault_test

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/knhk/knhk/plugins/vault"
	"github.com/knhk/knhk/shared"
)

// newProvider returns the provider as callers in this process get it:
// behind the SDK's request checks.
func newProvider(t *testing.T) shared.Provider {
	t.Helper()
	p := vault.New(vault.Config{})
	t.Cleanup(func() { p.Close() })
	return shared.Validate(p)
}

// publicKey fetches and parses a key version's public key.
func publicKey(t *testing.T, p shared.Provider, ref shared.KeyRef, version string) (crypto.PublicKey, shared.PublicKeyResponse) {
	t.Helper()
	resp, err := p.PublicKey(ctx(t), shared.PublicKeyRequest{Key: ref, Version: version})
	if err != nil {
		t.Fatalf("PublicKey(%s, %q): %v", ref.ID, version, err)
	}
	pub, kt, err := shared.ParsePublicKey(resp.DER)
	if err != nil {
		t.Fatalf("PublicKey(%s): %v", ref.ID, err)
	}
	if kt != resp.Type {
		t.Fatalf("PublicKey(%s): DER is %s, response says %s", ref.ID, kt, resp.Type)
	}
	return pub, resp
}

// TestSignVerifyEveryAlgorithm signs digests and messages with every key
// type and algorithm, checks each signature with the standard library
// against the DER public key, and with Transit's verify.
func TestSignVerifyEveryAlgorithm(t *testing.T) {
	p := newProvider(t)
	for _, kt := range shared.KeyTypes {
		t.Run(string(kt), func(t *testing.T) {
			t.Parallel()
			id := "transit/" + keyName("sv-"+string(kt))
			ref := shared.KeyRef{ID: id, Params: params()}
			if c := create(t, p, id, kt, params()); c.KeyID != id || c.Version != "1" {
				t.Fatalf("CreateKey = %+v, want id %s version 1", c, id)
			}
			pub, pk := publicKey(t, p, ref, "")
			if pk.Type != kt || pk.Version != "1" {
				t.Fatalf("PublicKey = type %s version %s, want %s 1", pk.Type, pk.Version, kt)
			}
			msg := []byte("knhk vault " + string(kt))
			for _, alg := range kt.Algorithms() {
				reqs := []shared.SignRequest{{Key: ref, Algorithm: alg, Message: msg}}
				if alg != shared.EdDSA {
					d, _ := shared.Digest(alg, msg)
					reqs = append(reqs, shared.SignRequest{Key: ref, Algorithm: alg, Digest: d})
				}
				for _, req := range reqs {
					sig, err := p.Sign(ctx(t), req)
					if err != nil {
						t.Fatalf("Sign(%s, digest=%v): %v", alg, req.Digest != nil, err)
					}
					if sig.Version != "1" {
						t.Errorf("Sign(%s) version %q, want 1", alg, sig.Version)
					}
					if err := shared.VerifyMessage(pub, alg, msg, sig.Signature); err != nil {
						t.Errorf("Sign(%s, digest=%v): standard library says %v", alg, req.Digest != nil, err)
					}
					vr, err := p.Verify(ctx(t), shared.VerifyRequest{Key: ref, Algorithm: alg, Digest: req.Digest, Message: req.Message, Signature: sig.Signature})
					if err != nil || !vr.Valid || vr.Version != "1" {
						t.Errorf("Verify(%s) = %+v, %v; want valid version 1", alg, vr, err)
					}
					bad := bytes.Clone(sig.Signature)
					bad[len(bad)/2] ^= 0x40
					vr, err = p.Verify(ctx(t), shared.VerifyRequest{Key: ref, Algorithm: alg, Digest: req.Digest, Message: req.Message, Signature: bad})
					if err != nil || vr.Valid {
						t.Errorf("Verify(%s) of a tampered signature = %+v, %v; want invalid, no error", alg, vr, err)
					}
				}
			}
		})
	}
}

// TestPSSSaltIsHashLength checks PS* signatures use salt = hash length
// (RFC 7518), by verifying with exactly that salt length.
func TestPSSSaltIsHashLength(t *testing.T) {
	p := newProvider(t)
	id := keyName("pss")
	ref := shared.KeyRef{ID: id, Params: params()}
	create(t, p, id, shared.RSA2048, params())
	pub, _ := publicKey(t, p, ref, "")
	digest := sha256.Sum256([]byte("salt"))
	sig, err := p.Sign(ctx(t), shared.SignRequest{Key: ref, Algorithm: shared.PS256, Digest: digest[:]})
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyPSSHashSalt(pub, digest[:], sig.Signature); err != nil {
		t.Fatalf("PS256 signature does not verify with salt length 32: %v", err)
	}
}

// TestRotation signs with v1, rotates, signs with v2 and again with v1
// named, and checks metadata lists both versions.
func TestRotation(t *testing.T) {
	p := newProvider(t)
	id := "transit/" + keyName("rot")
	ref := shared.KeyRef{ID: id, Params: params()}
	create(t, p, id, shared.ECP256, params())
	pub1, _ := publicKey(t, p, ref, "")
	d := sha256.Sum256([]byte("rotation"))
	sign := func(version string) shared.SignResponse {
		s, err := p.Sign(ctx(t), shared.SignRequest{Key: ref, Algorithm: shared.ES256, Digest: d[:], Version: version})
		if err != nil {
			t.Fatalf("Sign(version %q): %v", version, err)
		}
		return s
	}
	s1 := sign("")
	rot, err := p.RotateKey(ctx(t), shared.RotateKeyRequest{Key: ref})
	if err != nil || rot.Version != "2" {
		t.Fatalf("RotateKey = %+v, %v; want version 2", rot, err)
	}
	pub2, pk2 := publicKey(t, p, ref, "")
	if pk2.Version != "2" {
		t.Fatalf("current public key version %s, want 2", pk2.Version)
	}
	s2 := sign("")
	s1again := sign("1")
	if s1.Version != "1" || s2.Version != "2" || s1again.Version != "1" {
		t.Fatalf("versions %s, %s, %s; want 1, 2, 1", s1.Version, s2.Version, s1again.Version)
	}
	for _, c := range []struct {
		pub crypto.PublicKey
		sig []byte
	}{{pub1, s1.Signature}, {pub2, s2.Signature}, {pub1, s1again.Signature}} {
		if err := shared.VerifyDigest(c.pub, shared.ES256, d[:], c.sig); err != nil {
			t.Error(err)
		}
	}
	if err := shared.VerifyDigest(pub2, shared.ES256, d[:], s1.Signature); err == nil {
		t.Error("the v1 signature verifies against the v2 key; rotation did not change the key")
	}
	old, _ := publicKey(t, p, ref, "1")
	if !old.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub1) {
		t.Error("PublicKey(version 1) changed after rotation")
	}
	vr, err := p.Verify(ctx(t), shared.VerifyRequest{Key: ref, Algorithm: shared.ES256, Digest: d[:], Signature: s1.Signature, Version: "1"})
	if err != nil || !vr.Valid {
		t.Errorf("Verify(v1 signature, version 1) = %+v, %v", vr, err)
	}

	md, err := p.KeyMetadata(ctx(t), shared.KeyMetadataRequest{Key: ref})
	if err != nil {
		t.Fatal(err)
	}
	if md.KeyID != id || md.Type != shared.ECP256 || md.CurrentVersion != "2" || len(md.Versions) != 2 {
		t.Fatalf("metadata = %+v", md)
	}
	for i, v := range md.Versions {
		if v.Version != []string{"1", "2"}[i] || !v.Enabled || v.Created.IsZero() {
			t.Errorf("version %d = %+v", i, v)
		}
	}
	if !md.Versions[1].Created.After(md.Versions[0].Created) {
		t.Errorf("version 2 created %v, not after version 1 %v", md.Versions[1].Created, md.Versions[0].Created)
	}
	want := map[string]string{
		"latest_version": "2", "min_available_version": "0", "supports_signing": "true",
		"exportable": "false", "deletion_allowed": "false", "transit_type": "ecdsa-p256", "mount": "transit",
	}
	for k, v := range want {
		if md.Attributes[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, md.Attributes[k], v)
		}
	}
}

// TestNoAddress: without the addr parameter and VAULT_ADDR there is no
// Vault to talk to.
func TestNoAddress(t *testing.T) {
	t.Setenv("VAULT_ADDR", "")
	_, err := newProvider(t).PublicKey(ctx(t), shared.PublicKeyRequest{Key: shared.KeyRef{ID: "transit/x"}})
	if !errors.Is(err, shared.ErrInvalidArgument) || !strings.Contains(err.Error(), "VAULT_ADDR") {
		t.Fatalf("no address: %v, want ErrInvalidArgument naming VAULT_ADDR", err)
	}
}

// TestListKeys lists the mount and finds keys with their types and
// versions; non-signing Transit keys are left out.
func TestListKeys(t *testing.T) {
	p := newProvider(t)
	ed := keyName("list-ed")
	create(t, p, ed, shared.Ed25519, params())
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	aes := keyName("list-aes")
	if _, err := c.Logical().Write("transit/keys/"+aes, map[string]any{"type": "aes256-gcm96"}); err != nil {
		t.Fatal(err)
	}
	keys, err := p.ListKeys(ctx(t), shared.ListKeysRequest{Params: params("mount", "transit")})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, k := range keys {
		if k.KeyID == "transit/"+aes {
			t.Errorf("ListKeys lists AES key %s", aes)
		}
		if k.KeyID == "transit/"+ed {
			found = k.Type == shared.Ed25519 && k.CurrentVersion == "1"
		}
	}
	if !found {
		t.Errorf("ListKeys = %+v, want transit/%s ed25519 version 1", keys, ed)
	}
	if _, err := p.KeyMetadata(ctx(t), shared.KeyMetadataRequest{Key: shared.KeyRef{ID: aes, Params: params()}}); !errors.Is(err, shared.ErrFailedPrecondition) {
		t.Errorf("KeyMetadata of an AES key: %v, want ErrFailedPrecondition", err)
	}
}

// TestErrors checks each kind of bad request gets its sentinel.
func TestErrors(t *testing.T) {
	p := newProvider(t)
	rsa := keyName("err-rsa")
	create(t, p, rsa, shared.RSA2048, params())
	ec := keyName("err-ec")
	create(t, p, ec, shared.ECP256, params())
	missing := keyName("missing")
	d256 := sha256.Sum256([]byte("x"))
	d384 := make([]byte, 48)
	sign := func(id, version string, alg shared.Algorithm, digest []byte, prm map[string]string) error {
		_, err := p.Sign(ctx(t), shared.SignRequest{Key: shared.KeyRef{ID: id, Params: prm}, Algorithm: alg, Digest: digest, Version: version})
		return err
	}
	for _, c := range []struct {
		name string
		err  error
		want error
		text string
	}{
		{"unknown key sign", sign(missing, "", shared.ES256, d256[:], params()), shared.ErrKeyNotFound, ""},
		{"unknown key in another mount", sign("transit/"+missing, "", shared.ES256, d256[:], params()), shared.ErrKeyNotFound, ""},
		{"unknown mount", sign("nosuchmount/"+missing, "", shared.ES256, d256[:], params()), shared.ErrKeyNotFound, ""},
		{"unknown version", sign(ec, "7", shared.ES256, d256[:], params()), shared.ErrKeyNotFound, ""},
		{"bad version", sign(ec, "seven", shared.ES256, d256[:], params()), shared.ErrInvalidArgument, "seven"},
		{"ES256 on RSA", sign(rsa, "", shared.ES256, d256[:], params()), shared.ErrUnsupportedAlgorithm, ""},
		{"ES384 on P-256", sign(ec, "", shared.ES384, d384, params()), shared.ErrUnsupportedAlgorithm, ""},
		{"short digest", sign(ec, "", shared.ES256, d256[:20], params()), shared.ErrInvalidArgument, ""},
		{"unknown parameter", sign(ec, "", shared.ES256, d256[:], params("region", "x")), shared.ErrInvalidArgument, "region"},
		{"unknown auth", sign(ec, "", shared.ES256, d256[:], params("auth", "ldap")), shared.ErrInvalidArgument, "ldap"},
		{"param for another auth", sign(ec, "", shared.ES256, d256[:], params("role_id", "x")), shared.ErrInvalidArgument, "role_id"},
		{"empty key id", sign("", "", shared.ES256, d256[:], params()), shared.ErrInvalidArgument, ""},
		{"relative key id", sign("transit/../sys/x", "", shared.ES256, d256[:], params()), shared.ErrInvalidArgument, ".."},
		{"bad token file", sign(ec, "", shared.ES256, d256[:], params("token_file", "/nonexistent/token")), shared.ErrInvalidArgument, "token_file"},
		{"invalid token", sign(ec, "", shared.ES256, d256[:], params("token_file", writeFile(t, "not-a-real-token"))), shared.ErrPermissionDenied, ""},
		{"create existing", func() error {
			_, err := p.CreateKey(ctx(t), shared.CreateKeyRequest{Key: shared.KeyRef{ID: ec, Params: params()}, Type: shared.ECP256})
			return err
		}(), shared.ErrAlreadyExists, ""},
		{"rotate unknown", func() error {
			_, err := p.RotateKey(ctx(t), shared.RotateKeyRequest{Key: shared.KeyRef{ID: missing, Params: params()}})
			return err
		}(), shared.ErrKeyNotFound, ""},
		{"public key of unknown version", func() error {
			_, err := p.PublicKey(ctx(t), shared.PublicKeyRequest{Key: shared.KeyRef{ID: ec, Params: params()}, Version: "3"})
			return err
		}(), shared.ErrKeyNotFound, ""},
		{"nobody listening", sign(ec, "", shared.ES256, d256[:], map[string]string{"addr": "http://127.0.0.1:1"}), shared.ErrUnavailable, "127.0.0.1:1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !errors.Is(c.err, c.want) {
				t.Fatalf("got %v, want %v", c.err, c.want)
			}
			if !strings.Contains(c.err.Error(), c.text) {
				t.Errorf("error %q does not mention %q", c.err, c.text)
			}
		})
	}
}
