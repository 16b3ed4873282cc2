package audit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// ecdsaTestKey is a checkpoint key of an ECDSA P-256 crypto.Signer.
func ecdsaTestKey(t testing.TB) *Key {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewKey("kms.example/audit", priv)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signAndOpen signs a checkpoint with k and opens it with the verifier
// parsed from k's verifier key text.
func signAndOpen(t *testing.T, k *Key) {
	t.Helper()
	msg, err := note.Sign(&note.Note{Text: "test/origin\n3\n" + strings.Repeat("A", 43) + "=\n"}, k.Signer)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ParseVerifierKey(k.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	if v.Name() != k.Verifier.Name() || v.KeyHash() != k.Verifier.KeyHash() {
		t.Fatalf("parsed verifier %s+%08x, key's %s+%08x", v.Name(), v.KeyHash(), k.Verifier.Name(), k.Verifier.KeyHash())
	}
	for _, v := range []note.Verifier{v, k.Verifier} {
		if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
			t.Fatalf("open a signed checkpoint: %v", err)
		}
	}
	// Another message under the same signature does not verify.
	bad := strings.Replace(string(msg), "\n3\n", "\n4\n", 1)
	if _, err := note.Open([]byte(bad), note.VerifierList(v)); err == nil {
		t.Fatal("an altered checkpoint opened")
	}
}

func TestGenerateAndLoadKey(t *testing.T) {
	skey, vkey, err := GenerateKey("build1.example/knhk-audit")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(skey, "PRIVATE+KEY+build1.example/knhk-audit+") || !strings.HasPrefix(vkey, "build1.example/knhk-audit+") {
		t.Fatalf("keys %q / %q", skey[:20], vkey)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.key")
	if err := os.WriteFile(path, []byte(skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if k.VerifierKey != vkey {
		t.Fatalf("loaded verifier key %q, generated %q", k.VerifierKey, vkey)
	}
	signAndOpen(t, k)

	// PRIVATE+KEY+name+hash+base64: the base64 may hold '+' itself.
	secret := strings.SplitN(skey, "+", 5)[4]
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) || strings.Contains(err.Error(), secret) {
		t.Errorf("group-readable key file: %v", err)
	}
	for name, content := range map[string]string{
		"a verifier key":   vkey,
		"garbage":          "PRIVATE+KEY+x+00000000+" + secret[:10],
		"a wrong hash":     strings.Replace(skey, skey[strings.Index(skey, "+knhk-audit+")+12:][:8], "00000000", 1),
		"another key type": "PRIVATE+KEY+x+00000000+" + base64.StdEncoding.EncodeToString(append([]byte{0x02}, make([]byte, 32)...)),
		"too long":         strings.Repeat("x", maxKeyFile+1),
	} {
		p := filepath.Join(dir, "bad.key")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadKeyFile(p)
		if err == nil || strings.Contains(err.Error(), secret) || (len(content) > 20 && strings.Contains(err.Error(), content)) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := LoadKeyFile(filepath.Join(dir, "absent.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("absent file: %v", err)
	}
	for _, name := range []string{"", "has space", "has+plus"} {
		if _, _, err := GenerateKey(name); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
}

func TestNewKeyEd25519(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewKey("kms.example/audit", priv)
	if err != nil {
		t.Fatal(err)
	}
	// The same key as note's own encoding: type 0x01.
	want, err := note.NewEd25519VerifierKey("kms.example/audit", pub)
	if err != nil {
		t.Fatal(err)
	}
	if k.VerifierKey != want {
		t.Fatalf("verifier key %q, want %q", k.VerifierKey, want)
	}
	signAndOpen(t, k)
}

func TestNewKeyECDSA(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewKey("kms.example/audit", priv)
	if err != nil {
		t.Fatal(err)
	}
	// c2sp.org/signed-note type 0x02: the key ID is the SHA-256 of the
	// DER SubjectPublicKeyInfo, and the key is 0x02 || that DER.
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	want := fmt.Sprintf("kms.example/audit+%08x+%s", binary.BigEndian.Uint32(sum[:4]), base64.StdEncoding.EncodeToString(append([]byte{0x02}, der...)))
	if k.VerifierKey != want {
		t.Fatalf("verifier key %q, want %q", k.VerifierKey, want)
	}
	signAndOpen(t, k)

	// The signature is ASN.1 DER ECDSA over SHA-256 of the note text.
	text := "o\n1\n" + strings.Repeat("A", 43) + "=\n"
	sig, err := k.Signer.Sign([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte(text))
	if !ecdsa.VerifyASN1(&priv.PublicKey, d[:], sig) {
		t.Fatal("not an ECDSA signature over SHA-256 of the text")
	}
}

// wrongSigner signs with another key than the one it reports.
type wrongSigner struct{ crypto.Signer }

func (w wrongSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return other.Sign(r, d, o)
}

func TestNewKeyRefuses(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := NewKey("a/b", p384); err == nil || !strings.Contains(err.Error(), "P-256") {
		t.Errorf("P-384: %v", err)
	}
	r, _ := rsa.GenerateKey(rand.Reader, 1024)
	if _, err := NewKey("a/b", r); err == nil || !strings.Contains(err.Error(), "Ed25519 or ECDSA P-256") {
		t.Errorf("RSA: %v", err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := NewKey("a b", p256); err == nil {
		t.Error("a name with a space accepted")
	}
	// A signer whose signatures do not match its public key (a KMS key
	// replaced behind a reference) is caught when it signs.
	k, err := NewKey("a/b", wrongSigner{p256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Signer.Sign([]byte("x\n")); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("wrong signer: %v", err)
	}
}

func TestParseVerifierKey(t *testing.T) {
	_, vkey, err := GenerateKey("a.example/log")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := ParseVerifierKey(" " + vkey + "\n"); err != nil || v.Name() != "a.example/log" {
		t.Fatalf("%v, %v", v, err)
	}
	ek := ecdsaTestKey(t)
	name, rest, _ := strings.Cut(ek.VerifierKey, "+")
	_, b64, _ := strings.Cut(rest, "+")
	for label, bad := range map[string]string{
		"empty":            "",
		"no hash":          "a.example/log+" + b64,
		"bad base64":       "a+00000000+!!!",
		"wrong ECDSA hash": name + "+00000000+" + b64,
		"unknown type":     "a+00000000+" + base64.StdEncoding.EncodeToString([]byte{0x09, 1, 2, 3}),
		"ed25519 hash":     strings.Replace(vkey, vkey[len("a.example/log+"):][:8], "00000000", 1),
	} {
		if _, err := ParseVerifierKey(bad); err == nil {
			t.Errorf("%s: accepted", label)
		}
	}
}
