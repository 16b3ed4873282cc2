package spire_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	keymanagerv1 "github.com/spiffe/spire-plugin-sdk/proto/spire/plugin/server/keymanager/v1"
	configv1 "github.com/spiffe/spire-plugin-sdk/proto/spire/service/common/config/v1"
	"google.golang.org/grpc/codes"

	"github.com/knhk/knhk/shared"
)

// template is plugin_data naming SPIRE's keys fake:spire-<id>.
const template = `key_ref = "fake:spire-{id}"`

// TestGenerateAndSign covers every SPIRE key type: GenerateKey creates
// the knhk key of that type (the same public key knhk reports), and
// SignData signs with every hash and padding SPIRE can ask for, each
// signature checked with the standard library.
func TestGenerateAndSign(t *testing.T) {
	f := start(t, template)
	msg := []byte("SPIRE signs this")
	cases := []struct {
		id     string
		kt     keymanagerv1.KeyType
		knhkKT shared.KeyType
		hashes []crypto.Hash
	}{
		{"x509-CA-A", keymanagerv1.KeyType_EC_P256, shared.ECP256, []crypto.Hash{crypto.SHA256}},
		{"x509-CA-B", keymanagerv1.KeyType_EC_P384, shared.ECP384, []crypto.Hash{crypto.SHA384}},
		{"JWT-Signer-A", keymanagerv1.KeyType_RSA_2048, shared.RSA2048, []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512}},
		{"JWT-Signer-B", keymanagerv1.KeyType_RSA_4096, shared.RSA4096, []crypto.Hash{crypto.SHA256, crypto.SHA512}},
	}
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			pk := f.generate(c.id, c.kt)
			ref := "fake:spire-" + c.id
			if got := f.knhkPublicKey(ref); !bytes.Equal(got, pk.GetPkixData()) {
				t.Fatalf("SPIRE's public key differs from knhk's for %s", ref)
			}
			k, err := f.host().Key(ctx(t), ref)
			if err != nil {
				t.Fatal(err)
			}
			md, err := k.Metadata(ctx(t))
			if err != nil || md.Type != c.knhkKT {
				t.Fatalf("knhk key %s: metadata %+v, %v; want type %s", ref, md, err, c.knhkKT)
			}
			s := f.signer(pk)
			for _, h := range c.hashes {
				d := digest(h, msg)
				sig, err := s.Sign(nil, d, h)
				if err != nil {
					t.Fatalf("SignData %s: %v", h, err)
				}
				switch pub := s.Public().(type) {
				case *ecdsa.PublicKey:
					if !ecdsa.VerifyASN1(pub, d, sig) {
						t.Fatalf("ECDSA %s signature does not verify", h)
					}
					if ecdsa.VerifyASN1(pub, digest(h, []byte("another message")), sig) {
						t.Fatal("the signature verifies for another message too")
					}
				case *rsa.PublicKey:
					if err := rsa.VerifyPKCS1v15(pub, h, d, sig); err != nil {
						t.Fatalf("RSA PKCS#1 v1.5 %s signature: %v", h, err)
					}
					for _, salt := range []int{rsa.PSSSaltLengthEqualsHash, rsa.PSSSaltLengthAuto, h.Size()} {
						sig, err := s.Sign(nil, d, &rsa.PSSOptions{SaltLength: salt, Hash: h})
						if err != nil {
							t.Fatalf("SignData PSS %s salt %d: %v", h, salt, err)
						}
						if err := rsa.VerifyPSS(pub, h, d, sig, &rsa.PSSOptions{SaltLength: h.Size()}); err != nil {
							t.Fatalf("RSA-PSS %s salt %d signature: %v", h, salt, err)
						}
					}
				default:
					t.Fatalf("unexpected public key %T", pub)
				}
			}
		})
	}
}

// TestCertificateSignedThroughPlugin makes a CA certificate as SPIRE
// does, with x509.CreateCertificate over the plugin's signer, and checks
// it with the standard library.
func TestCertificateSignedThroughPlugin(t *testing.T) {
	f := start(t, template)
	for _, kt := range []keymanagerv1.KeyType{keymanagerv1.KeyType_EC_P256, keymanagerv1.KeyType_EC_P384, keymanagerv1.KeyType_RSA_2048} {
		t.Run(kt.String(), func(t *testing.T) {
			s := f.signer(f.generate("x509-CA-"+kt.String(), kt))
			tmpl := &x509.Certificate{
				SerialNumber:          big.NewInt(1),
				Subject:               pkix.Name{CommonName: "knhk SPIRE CA"},
				NotBefore:             time.Now().Add(-time.Minute),
				NotAfter:              time.Now().Add(time.Hour),
				IsCA:                  true,
				BasicConstraintsValid: true,
				KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, s.Public(), s)
			if err != nil {
				t.Fatalf("CreateCertificate: %v", err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			if err := cert.CheckSignatureFrom(cert); err != nil {
				t.Fatalf("the self-signed certificate does not verify: %v", err)
			}
		})
	}
}

// TestGenerateRotates checks that a second GenerateKey overwrites the key
// as SPIRE expects: a new public key and fingerprint (a new knhk version),
// which GetPublicKey and SignData then use.
func TestGenerateRotates(t *testing.T) {
	f := start(t, template)
	first := f.generate("x509-CA-A", keymanagerv1.KeyType_EC_P256)
	second := f.generate("x509-CA-A", keymanagerv1.KeyType_EC_P256)
	if bytes.Equal(first.GetPkixData(), second.GetPkixData()) || first.GetFingerprint() == second.GetFingerprint() {
		t.Fatal("GenerateKey on an existing id kept the same key")
	}
	k, err := f.host().Key(ctx(t), "fake:spire-x509-CA-A")
	if err != nil {
		t.Fatal(err)
	}
	md, err := k.Metadata(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if md.CurrentVersion != "2" || len(md.Versions) != 2 {
		t.Fatalf("knhk key: current version %q of %d; want 2 of 2 (created, then rotated)", md.CurrentVersion, len(md.Versions))
	}
	got, err := f.km.GetPublicKey(ctx(t), &keymanagerv1.GetPublicKeyRequest{KeyId: "x509-CA-A"})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetPublicKey().GetFingerprint() != second.GetFingerprint() || !bytes.Equal(got.GetPublicKey().GetPkixData(), second.GetPkixData()) {
		t.Fatal("GetPublicKey does not return the rotated key")
	}
	d := digest(crypto.SHA256, []byte("after rotation"))
	sig, err := f.signer(second).Sign(nil, d, crypto.SHA256)
	if err != nil {
		t.Fatalf("SignData after rotation: %v", err)
	}
	if !ecdsa.VerifyASN1(f.signer(second).Public().(*ecdsa.PublicKey), d, sig) {
		t.Fatal("the signature does not verify with the rotated key")
	}
	if ecdsa.VerifyASN1(f.signer(first).Public().(*ecdsa.PublicKey), d, sig) {
		t.Fatal("the signature verifies with the old key: SignData did not use the new version")
	}
	// The signer SPIRE kept for the old key now sees a fingerprint
	// mismatch, which is how SPIRE detects a mismanaged key.
	if _, err := f.signer(first).Sign(nil, d, crypto.SHA256); err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Fatalf("signing with the old key's fingerprint: %v; want a fingerprint mismatch", err)
	}
}

// TestGenerateErrors: unknown key types, a type change knhk cannot make,
// and key ids that could bend the reference.
func TestGenerateErrors(t *testing.T) {
	f := start(t, template)
	_, err := f.km.GenerateKey(ctx(t), &keymanagerv1.GenerateKeyRequest{KeyId: "x509-CA-A"})
	wantCode(t, err, codes.InvalidArgument, "UNSPECIFIED_KEY_TYPE", "EC_P256")
	_, err = f.km.GenerateKey(ctx(t), &keymanagerv1.GenerateKeyRequest{KeyId: "x509-CA-A", KeyType: keymanagerv1.KeyType(99)})
	wantCode(t, err, codes.InvalidArgument, "not supported")

	f.generate("x509-CA-A", keymanagerv1.KeyType_EC_P256)
	_, err = f.km.GenerateKey(ctx(t), &keymanagerv1.GenerateKeyRequest{KeyId: "x509-CA-A", KeyType: keymanagerv1.KeyType_RSA_2048})
	wantCode(t, err, codes.FailedPrecondition, "x509-CA-A", "fake:spire-x509-CA-A", "ec-p256", "rsa-2048")

	for _, id := range []string{"", "a/b", "a?state=/etc/passwd", "../x", "a:b", strings.Repeat("x", 129)} {
		_, err = f.km.GenerateKey(ctx(t), &keymanagerv1.GenerateKeyRequest{KeyId: id, KeyType: keymanagerv1.KeyType_EC_P256})
		wantCode(t, err, codes.InvalidArgument, "SPIRE key id")
	}
	// Nothing was made for the refused ids.
	list, err := f.host().ListKeys(ctx(t), "fake", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].KeyID != "spire-x509-CA-A" {
		t.Fatalf("knhk keys %+v; want only spire-x509-CA-A", list)
	}
}

// TestGetPublicKey: an existing key is returned as GenerateKey did; a
// missing one is NotFound, as SPIRE requires.
func TestGetPublicKey(t *testing.T) {
	f := start(t, template)
	_, err := f.km.GetPublicKey(ctx(t), &keymanagerv1.GetPublicKeyRequest{KeyId: "x509-CA-A"})
	wantCode(t, err, codes.NotFound, "x509-CA-A")
	gen := f.generate("x509-CA-A", keymanagerv1.KeyType_RSA_2048)
	resp, err := f.km.GetPublicKey(ctx(t), &keymanagerv1.GetPublicKeyRequest{KeyId: "x509-CA-A"})
	if err != nil {
		t.Fatal(err)
	}
	checkPublicKey(t, resp.GetPublicKey(), "x509-CA-A", keymanagerv1.KeyType_RSA_2048)
	if resp.GetPublicKey().GetFingerprint() != gen.GetFingerprint() {
		t.Fatal("GetPublicKey's fingerprint differs from GenerateKey's")
	}
	_, err = f.km.GetPublicKey(ctx(t), &keymanagerv1.GetPublicKeyRequest{KeyId: "bad id"})
	wantCode(t, err, codes.InvalidArgument)
}

// TestGetPublicKeys: after a restart (a new plugin and knhk host on the
// same state file) SPIRE finds every key it made, the well-known ids and
// others (through ListKeys and the template), and nothing else.
func TestGetPublicKeys(t *testing.T) {
	state := filepath.Join(t.TempDir(), "keys.json")
	hcl := `key_ref = "fake:spire-{id}?state=` + state + `"`
	f := start(t, hcl)
	resp, err := f.km.GetPublicKeys(ctx(t), &keymanagerv1.GetPublicKeysRequest{})
	if err != nil || len(resp.GetPublicKeys()) != 0 {
		t.Fatalf("GetPublicKeys before any key: %v, %v; want none", resp.GetPublicKeys(), err)
	}
	made := map[string]string{}
	for id, kt := range map[string]keymanagerv1.KeyType{
		"x509-CA-A": keymanagerv1.KeyType_EC_P256, "JWT-Signer-B": keymanagerv1.KeyType_EC_P384,
		"bundle-acme-example.org": keymanagerv1.KeyType_EC_P256,
	} {
		made[id] = f.generate(id, kt).GetFingerprint()
	}
	// A key of the same provider that the template does not name.
	if _, err := f.host().CreateKey(ctx(t), "fake:other?state="+state, shared.ECP256); err != nil {
		t.Fatal(err)
	}
	check := func(f *fixture, when string) {
		t.Helper()
		resp, err := f.km.GetPublicKeys(ctx(t), &keymanagerv1.GetPublicKeysRequest{})
		if err != nil {
			t.Fatalf("%s: GetPublicKeys: %v", when, err)
		}
		got := map[string]string{}
		for _, pk := range resp.GetPublicKeys() {
			got[pk.GetId()] = pk.GetFingerprint()
		}
		if len(got) != len(made) {
			t.Fatalf("%s: GetPublicKeys returned %v; want %v", when, got, made)
		}
		for id, fp := range made {
			if got[id] != fp {
				t.Fatalf("%s: key %s has fingerprint %q; want %q", when, id, got[id], fp)
			}
		}
	}
	check(f, "same process")
	check(start(t, hcl), "after a restart")
}

// TestKeyBlocks: a key block maps one SPIRE key id to any reference and
// wins over key_ref; without key_ref other ids are NotFound.
func TestKeyBlocks(t *testing.T) {
	f := start(t, template+`
key "JWT-Signer-A" {
  ref = "fake:jwt/custom"
}`)
	pk := f.generate("JWT-Signer-A", keymanagerv1.KeyType_EC_P256)
	if !bytes.Equal(f.knhkPublicKey("fake:jwt/custom"), pk.GetPkixData()) {
		t.Fatal("JWT-Signer-A is not the key its block names")
	}
	if _, err := f.knhkPublicKeyErr("fake:spire-JWT-Signer-A"); !errors.Is(err, shared.ErrKeyNotFound) {
		t.Fatalf("the template's key for JWT-Signer-A: %v; want not found", err)
	}

	only := start(t, `
key "x509-CA-A" { ref = "fake:ca-a" }`)
	only.generate("x509-CA-A", keymanagerv1.KeyType_EC_P384)
	_, err := only.km.GenerateKey(ctx(t), &keymanagerv1.GenerateKeyRequest{KeyId: "x509-CA-B", KeyType: keymanagerv1.KeyType_EC_P384})
	wantCode(t, err, codes.NotFound, "x509-CA-B", "key_ref")
	resp, err := only.km.GetPublicKeys(ctx(t), &keymanagerv1.GetPublicKeysRequest{})
	if err != nil || len(resp.GetPublicKeys()) != 1 || resp.GetPublicKeys()[0].GetId() != "x509-CA-A" {
		t.Fatalf("GetPublicKeys: %v, %v; want x509-CA-A only", resp.GetPublicKeys(), err)
	}
}

func (f *fixture) knhkPublicKeyErr(ref string) ([]byte, error) {
	k, err := f.host().Key(ctx(f.t), ref)
	if err != nil {
		return nil, err
	}
	pk, err := k.PublicKey(ctx(f.t), "")
	return pk.DER, err
}

// TestSignDataErrors: options SPIRE might send that knhk cannot honour
// are InvalidArgument; an unknown key is NotFound.
func TestSignDataErrors(t *testing.T) {
	f := start(t, template)
	ec := f.generate("x509-CA-A", keymanagerv1.KeyType_EC_P256)
	rsaKey := f.generate("JWT-Signer-A", keymanagerv1.KeyType_RSA_2048)
	d256 := digest(crypto.SHA256, []byte("m"))
	hashOpt := func(h keymanagerv1.HashAlgorithm) *keymanagerv1.SignDataRequest_HashAlgorithm {
		return &keymanagerv1.SignDataRequest_HashAlgorithm{HashAlgorithm: h}
	}
	cases := []struct {
		name  string
		req   *keymanagerv1.SignDataRequest
		code  codes.Code
		parts []string
	}{
		{"no options", &keymanagerv1.SignDataRequest{KeyId: ec.GetId(), Data: d256}, codes.InvalidArgument, []string{"signer options"}},
		{"SHA-224", &keymanagerv1.SignDataRequest{KeyId: ec.GetId(), Data: d256[:28], SignerOpts: hashOpt(keymanagerv1.HashAlgorithm_SHA224)}, codes.InvalidArgument, []string{"SHA224"}},
		{"SHA3-256", &keymanagerv1.SignDataRequest{KeyId: ec.GetId(), Data: d256, SignerOpts: hashOpt(keymanagerv1.HashAlgorithm_SHA3_256)}, codes.InvalidArgument, []string{"SHA3_256"}},
		{"P-256 with SHA-384", &keymanagerv1.SignDataRequest{KeyId: ec.GetId(), Data: digest(crypto.SHA384, []byte("m")), SignerOpts: hashOpt(keymanagerv1.HashAlgorithm_SHA384)}, codes.InvalidArgument, []string{"x509-CA-A"}},
		{"short digest", &keymanagerv1.SignDataRequest{KeyId: ec.GetId(), Data: d256[:20], SignerOpts: hashOpt(keymanagerv1.HashAlgorithm_SHA256)}, codes.InvalidArgument, nil},
		{"PSS on ECDSA", &keymanagerv1.SignDataRequest{KeyId: ec.GetId(), Data: d256, SignerOpts: &keymanagerv1.SignDataRequest_PssOptions{PssOptions: &keymanagerv1.SignDataRequest_PSSOptions{SaltLength: -1, HashAlgorithm: keymanagerv1.HashAlgorithm_SHA256}}}, codes.InvalidArgument, []string{"PSS", "RSA"}},
		{"PSS salt 20", &keymanagerv1.SignDataRequest{KeyId: rsaKey.GetId(), Data: d256, SignerOpts: &keymanagerv1.SignDataRequest_PssOptions{PssOptions: &keymanagerv1.SignDataRequest_PSSOptions{SaltLength: 20, HashAlgorithm: keymanagerv1.HashAlgorithm_SHA256}}}, codes.InvalidArgument, []string{"salt"}},
		{"unknown key", &keymanagerv1.SignDataRequest{KeyId: "x509-CA-B", Data: d256, SignerOpts: hashOpt(keymanagerv1.HashAlgorithm_SHA256)}, codes.NotFound, []string{"x509-CA-B"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := f.km.SignData(ctx(t), c.req)
			wantCode(t, err, c.code, c.parts...)
			if len(resp.GetSignature()) != 0 {
				t.Fatal("a signature came back with the error")
			}
		})
	}
}

// TestProviderFailures: the host's verify-after-sign stops a bad
// signature from reaching SPIRE, provider errors keep their meaning as
// gRPC codes, and no parameter value (which may be a secret) shows in a
// message.
func TestProviderFailures(t *testing.T) {
	d := digest(crypto.SHA256, []byte("m"))
	sign := func(f *fixture, id string) (*keymanagerv1.SignDataResponse, error) {
		return f.km.SignData(ctx(t), &keymanagerv1.SignDataRequest{KeyId: id, Data: d,
			SignerOpts: &keymanagerv1.SignDataRequest_HashAlgorithm{HashAlgorithm: keymanagerv1.HashAlgorithm_SHA256}})
	}
	t.Run("corrupt signature", func(t *testing.T) {
		f := start(t, `key_ref = "fake:spire-{id}?fault_corrupt=true&fault_ops=sign"`)
		f.generate("x509-CA-A", keymanagerv1.KeyType_EC_P256)
		resp, err := sign(f, "x509-CA-A")
		wantCode(t, err, codes.Internal, "does not verify")
		if len(resp.GetSignature()) != 0 {
			t.Fatal("the corrupt signature reached SPIRE")
		}
	})
	for _, c := range []struct {
		fault string
		code  codes.Code
	}{
		{"unavailable", codes.Unavailable},
		{"permission_denied", codes.PermissionDenied},
		{"failed_precondition", codes.FailedPrecondition},
	} {
		t.Run(c.fault, func(t *testing.T) {
			f := start(t, `key_ref = "fake:spire-{id}?fault_error=`+c.fault+`&fault_ops=sign"`)
			f.generate("x509-CA-A", keymanagerv1.KeyType_EC_P256)
			_, err := sign(f, "x509-CA-A")
			wantCode(t, err, c.code, "x509-CA-A", "fake:spire-x509-CA-A")
		})
	}
	t.Run("no secrets in messages", func(t *testing.T) {
		f := start(t, `key_ref = "fake:spire-{id}?password=hunter2-secret"`)
		_, err := f.km.GenerateKey(ctx(t), &keymanagerv1.GenerateKeyRequest{KeyId: "x509-CA-A", KeyType: keymanagerv1.KeyType_EC_P256})
		wantCode(t, err, codes.InvalidArgument, "x509-CA-A")
		if strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("the error shows a parameter value: %v", err)
		}
	})
}

// TestConfigure: calls before Configure fail cleanly; bad plugin_data is
// InvalidArgument (and Validate says why); a provider whose plugin is not
// there is FailedPrecondition; a bad configuration leaves the running one
// in place; a good one replaces it.
func TestConfigure(t *testing.T) {
	f := serve(t)
	_, err := f.km.GetPublicKeys(ctx(t), &keymanagerv1.GetPublicKeysRequest{})
	wantCode(t, err, codes.FailedPrecondition, "not configured")

	bad := []struct{ hcl, why string }{
		{``, "key_ref"},
		{`key_ref = "fake:spire"`, "{id}"},
		{`key_ref = "fake:{id}-{id}"`, "exactly once"},
		{`key_ref = "fake:spire?x={id}"`, "key id"},
		{`key_ref = "{id}:spire"`, "key id"},
		{`key_ref = "Fake:spire-{id}"`, "provider"},
		{`key_ref = "fake:spire-{id}"` + "\nplugin_dirs = [\"plugins\"]", "absolute"},
		{`key_ref = "fake:spire-{id}"` + "\nlock_file = \"knhk.lock\"", "absolute"},
		{`key_ref = "fake:spire-{id}"` + "\ncall_timeout = \"soon\"", "call_timeout"},
		{`key_ref = "fake:spire-{id}"` + "\nplugin_env = { fake = [\"A B\"] }", "plugin_env"},
		{`key_ref = "fake:spire-{id}"` + "\nunknown = 1", "unknown"},
		{`key "a/b" { ref = "fake:x" }`, "SPIRE key id"},
		{`key "x509-CA-A" { ref = "fake:x" }` + "\n" + `key "x509-CA-A" { ref = "fake:y" }`, "twice"},
		{`key "x509-CA-A" { ref = "nocolon" }`, "x509-CA-A"},
	}
	for _, b := range bad {
		_, err := f.cfg.Configure(ctx(t), &configv1.ConfigureRequest{HclConfiguration: b.hcl})
		wantCode(t, err, codes.InvalidArgument, b.why)
		v, err := f.cfg.Validate(ctx(t), &configv1.ValidateRequest{HclConfiguration: b.hcl})
		if err != nil || v.GetValid() || len(v.GetNotes()) != 1 || !strings.Contains(v.GetNotes()[0], b.why) {
			t.Fatalf("Validate(%q) = %v, %v; want invalid with a note about %q", b.hcl, v, err, b.why)
		}
	}
	_, err = f.cfg.Configure(ctx(t), &configv1.ConfigureRequest{HclConfiguration: `key_ref = "nosuchprovider:spire-{id}"`})
	wantCode(t, err, codes.FailedPrecondition, "nosuchprovider", "plugin not found")

	if _, err := f.cfg.Configure(ctx(t), &configv1.ConfigureRequest{HclConfiguration: template}); err != nil {
		t.Fatal(err)
	}
	v, err := f.cfg.Validate(ctx(t), &configv1.ValidateRequest{HclConfiguration: template})
	if err != nil || !v.GetValid() {
		t.Fatalf("Validate(good) = %v, %v", v, err)
	}
	first := f.host()
	f.generate("x509-CA-A", keymanagerv1.KeyType_EC_P256)
	// A failed reconfiguration keeps the plugin working on the old host.
	if _, err := f.cfg.Configure(ctx(t), &configv1.ConfigureRequest{HclConfiguration: `key_ref = "fake"`}); err == nil {
		t.Fatal("a bad reconfiguration was accepted")
	}
	if _, err := f.km.GetPublicKey(ctx(t), &keymanagerv1.GetPublicKeyRequest{KeyId: "x509-CA-A"}); err != nil {
		t.Fatalf("after a failed reconfiguration: %v", err)
	}
	// A good one replaces the host (and closes the old one).
	if _, err := f.cfg.Configure(ctx(t), &configv1.ConfigureRequest{HclConfiguration: `key_ref = "fake:other-{id}"`}); err != nil {
		t.Fatal(err)
	}
	if f.host() == first {
		t.Fatal("reconfiguring made no new host")
	}
	if _, err := first.Key(ctx(t), "fake:x"); err == nil {
		t.Fatal("the previous host is still open")
	}
	f.generate("x509-CA-A", keymanagerv1.KeyType_EC_P256)
	if _, err := f.host().Key(ctx(t), "fake:other-x509-CA-A"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.knhkPublicKeyErr("fake:other-x509-CA-A"); err != nil {
		t.Fatalf("the new template was not used: %v", err)
	}
}
