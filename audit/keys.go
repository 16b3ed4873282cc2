package audit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// Key is a checkpoint key: what signs a log's checkpoints and what
// verifies them.
type Key struct {
	// Signer signs checkpoints (a Log's writer uses it).
	Signer note.Signer
	// Verifier checks them (Verify, and a Log reopening its file).
	Verifier note.Verifier
	// VerifierKey is the verifier key as text (name+hash+base64), what
	// `knhk-host audit verify --key` takes.
	VerifierKey string
}

// Signature types of C2SP signed notes (c2sp.org/signed-note).
const (
	sigEd25519 = 0x01 // Ed25519 over the note text
	sigECDSA   = 0x02 // ECDSA, ASN.1 DER over SHA-256(note text), as transparency-dev/witness
)

// maxKeyFile bounds a key file's size: a key is about 100 bytes.
const maxKeyFile = 4096

// validKeyName is the signed-note rule for key names: not empty, UTF-8,
// no spaces and no '+'.
func validKeyName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

func checkKeyName(name string) error {
	if !validKeyName(name) {
		return fmt.Errorf("checkpoint key name %q must be non-empty UTF-8 without spaces or '+' (e.g. the host name followed by /knhk-audit)", name)
	}
	return nil
}

// GenerateKey makes a new Ed25519 checkpoint key named name (a host name
// or URL-like name without spaces or '+', e.g. "build1.example/knhk-audit").
// skey is the private key text, for a file only the writer can read
// (LoadKeyFile); vkey is the verifier key text to give to whoever
// verifies the log (ParseVerifierKey, `knhk-host audit verify --key`).
func GenerateKey(name string) (skey, vkey string, err error) {
	if err := checkKeyName(name); err != nil {
		return "", "", err
	}
	return note.GenerateKey(rand.Reader, name)
}

// LoadKeyFile reads a checkpoint private key written by GenerateKey
// ("PRIVATE+KEY+name+hash+base64"). The file must not be readable or
// writable by group or others. Errors never quote the file's content.
func LoadKeyFile(path string) (*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("checkpoint key file: %w", err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("checkpoint key file %s is a directory", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("checkpoint key file %s is open to group or others (mode %04o); run chmod 600 %s", path, perm, path)
	}
	// A key is about 100 bytes; refuse anything much longer.
	buf, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("checkpoint key file %s: %w", path, err)
	}
	if len(buf) > maxKeyFile {
		return nil, fmt.Errorf("checkpoint key file %s is not a checkpoint key: it is over %d bytes", path, maxKeyFile)
	}
	skey := strings.TrimSpace(string(buf))
	clear(buf)
	k, err := parseSignerKey(skey)
	if err != nil {
		return nil, fmt.Errorf("checkpoint key file %s: %w", path, err)
	}
	return k, nil
}

// parseSignerKey makes a Key of an Ed25519 note private key. The errors
// say what is wrong without quoting the key.
func parseSignerKey(skey string) (*Key, error) {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return nil, errors.New("not a note private key (PRIVATE+KEY+NAME+HASH+KEY, as 'knhk-host audit keygen' writes)")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != sigEd25519 {
		return nil, errors.New("not an Ed25519 note private key")
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("malformed note private key (%v)", err)
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	clear(raw)
	vkey, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	return &Key{Signer: s, Verifier: v, VerifierKey: vkey}, nil
}

// NewKey makes a checkpoint key named name of s, whose public key must be
// Ed25519 (signed-note type 0x01) or ECDSA P-256 (type 0x02: an ASN.1 DER
// signature over the SHA-256 of the note text, key ID from the SHA-256 of
// the DER SubjectPublicKeyInfo, as c2sp.org/signed-note and
// transparency-dev/witness define it). s may be a knhk host.Signer, so the
// checkpoint key can live in a KMS. Every signature is checked against the
// public key before it is used.
func NewKey(name string, s crypto.Signer) (*Key, error) {
	if err := checkKeyName(name); err != nil {
		return nil, err
	}
	var vkey string
	var sign func(msg []byte) ([]byte, error)
	switch pub := s.Public().(type) {
	case ed25519.PublicKey:
		var err error
		if vkey, err = note.NewEd25519VerifierKey(name, pub); err != nil {
			return nil, err
		}
		sign = func(msg []byte) ([]byte, error) { return s.Sign(rand.Reader, msg, crypto.Hash(0)) }
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return nil, fmt.Errorf("checkpoint key: an ECDSA key must be on P-256, not %s", pub.Curve.Params().Name)
		}
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return nil, fmt.Errorf("checkpoint key: %w", err)
		}
		vkey = ecdsaVerifierKey(name, der)
		sign = func(msg []byte) ([]byte, error) {
			d := sha256.Sum256(msg)
			return s.Sign(rand.Reader, d[:], crypto.SHA256)
		}
	default:
		return nil, fmt.Errorf("checkpoint key: a %T cannot sign checkpoints: use an Ed25519 or ECDSA P-256 key", pub)
	}
	v, err := ParseVerifierKey(vkey)
	if err != nil {
		return nil, err
	}
	return &Key{Signer: &signer{v: v, sign: sign}, Verifier: v, VerifierKey: vkey}, nil
}

// signer signs notes with a crypto.Signer, checking each signature.
type signer struct {
	v    note.Verifier
	sign func(msg []byte) ([]byte, error)
}

func (s *signer) Name() string    { return s.v.Name() }
func (s *signer) KeyHash() uint32 { return s.v.KeyHash() }

func (s *signer) Sign(msg []byte) ([]byte, error) {
	sig, err := s.sign(msg)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	// A KMS key that was replaced, or a faulty plugin, must not seal a
	// log with signatures nobody can check.
	if !s.v.Verify(msg, sig) {
		return nil, fmt.Errorf("sign checkpoint: the signature does not verify with the checkpoint key %s+%08x", s.v.Name(), s.v.KeyHash())
	}
	return sig, nil
}

// ecdsaVerifierKey is the type 0x02 verifier key text of a P-256 public
// key in DER SubjectPublicKeyInfo form.
func ecdsaVerifierKey(name string, der []byte) string {
	return fmt.Sprintf("%s+%08x+%s", name, ecdsaKeyID(der), base64.StdEncoding.EncodeToString(append([]byte{sigECDSA}, der...)))
}

// ecdsaKeyID is a type 0x02 key ID: the SHA-256 of the DER
// SubjectPublicKeyInfo, first four bytes, big-endian.
func ecdsaKeyID(der []byte) uint32 {
	h := sha256.Sum256(der)
	return binary.BigEndian.Uint32(h[:4])
}

// ParseVerifierKey reads a verifier key text ("name+hash+base64"), as
// GenerateKey and Key.VerifierKey write it: Ed25519 (signed-note type
// 0x01) or ECDSA P-256 (type 0x02).
func ParseVerifierKey(vkey string) (note.Verifier, error) {
	vkey = strings.TrimSpace(vkey)
	if strings.HasPrefix(vkey, "PRIVATE+KEY+") {
		return nil, errors.New("this is a private key, not a verifier key: give the verifier key ('knhk-host audit keygen' printed it), and keep the private key secret")
	}
	name, rest, ok1 := strings.Cut(vkey, "+")
	hash16, key64, ok2 := strings.Cut(rest, "+")
	raw, err := base64.StdEncoding.DecodeString(key64)
	if !ok1 || !ok2 || !validKeyName(name) || len(hash16) != 8 || err != nil || len(raw) < 2 {
		return nil, errors.New("malformed verifier key: want NAME+HASH+BASE64 (as 'knhk-host audit keygen' prints)")
	}
	hash, err := strconv.ParseUint(hash16, 16, 32)
	if err != nil {
		return nil, errors.New("malformed verifier key: its hash is not 8 hex digits")
	}
	switch raw[0] {
	case sigEd25519:
		v, err := note.NewVerifier(vkey)
		if err != nil {
			return nil, fmt.Errorf("malformed Ed25519 verifier key: %w", err)
		}
		return v, nil
	case sigECDSA:
		der := raw[1:]
		if uint32(hash) != ecdsaKeyID(der) {
			return nil, errors.New("malformed ECDSA verifier key: its hash does not match the key")
		}
		pk, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return nil, fmt.Errorf("malformed ECDSA verifier key: %w", err)
		}
		pub, ok := pk.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			return nil, errors.New("ECDSA verifier key is not a P-256 key")
		}
		return &ecdsaVerifier{name: name, hash: uint32(hash), pub: pub}, nil
	}
	return nil, fmt.Errorf("verifier key has signature type 0x%02x; this verifier knows Ed25519 (0x01) and ECDSA P-256 (0x02)", raw[0])
}

// ecdsaVerifier checks type 0x02 signatures.
type ecdsaVerifier struct {
	name string
	hash uint32
	pub  *ecdsa.PublicKey
}

func (v *ecdsaVerifier) Name() string    { return v.name }
func (v *ecdsaVerifier) KeyHash() uint32 { return v.hash }

func (v *ecdsaVerifier) Verify(msg, sig []byte) bool {
	d := sha256.Sum256(msg)
	return ecdsa.VerifyASN1(v.pub, d[:], sig)
}
