package shared

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"testing"
)

func TestKeyTypeAlgorithms(t *testing.T) {
	total := map[Algorithm]bool{}
	for _, kt := range KeyTypes {
		algs := kt.Algorithms()
		if len(algs) == 0 {
			t.Fatalf("%s has no algorithms", kt)
		}
		if kt.DefaultAlgorithm() != algs[0] {
			t.Fatalf("%s default %s", kt, kt.DefaultAlgorithm())
		}
		for _, a := range algs {
			total[a] = true
			if err := CheckAlgorithm(kt, a); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(total) != len(Algorithms) {
		t.Fatalf("key types cover %d of %d algorithms", len(total), len(Algorithms))
	}
	if err := CheckAlgorithm(ECP256, ES384); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Fatalf("ec-p256 with ES384: %v", err)
	}
	if _, err := ParseKeyType("rsa-1024"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("rsa-1024: %v", err)
	}
	if _, err := ParseAlgorithm("HS256"); !errors.Is(err, ErrUnsupportedAlgorithm) {
		t.Fatalf("HS256: %v", err)
	}
}

func TestVerifyHelpers(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edk, _ := ed25519.GenerateKey(rand.Reader)
	msg := []byte("knhk")

	d256, _ := Digest(PS256, msg)
	// Maximum salt, as some KMS emulators sign: must still verify.
	pss, _ := rsa.SignPSS(rand.Reader, rk, crypto.SHA256, d256, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	if err := VerifyDigest(&rk.PublicKey, PS256, d256, pss); err != nil {
		t.Fatal(err)
	}
	if err := VerifyDigest(&rk.PublicKey, RS256, d256, pss); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("PSS signature accepted as PKCS#1 v1.5: %v", err)
	}
	d384, _ := Digest(ES384, msg)
	es, _ := ecdsa.SignASN1(rand.Reader, ek, d384)
	if err := VerifyMessage(&ek.PublicKey, ES384, msg, es); err != nil {
		t.Fatal(err)
	}
	if err := VerifyMessage(&ek.PublicKey, ES384, []byte("other"), es); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered message: %v", err)
	}
	if err := VerifyDigest(&ek.PublicKey, ES384, d256, es); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("short digest: %v", err)
	}
	ed := ed25519.Sign(edk, msg)
	if err := VerifyMessage(edk.Public(), EdDSA, msg, ed); err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(edk.Public())
	if _, kt, err := ParsePublicKey(der); err != nil || kt != Ed25519 {
		t.Fatalf("ParsePublicKey: %s %v", kt, err)
	}
	if _, _, err := ParsePublicKey([]byte("junk")); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("junk DER: %v", err)
	}
}
