package client_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/knhk/knhk/client"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/sidecar"
)

// TestSignVerify signs digests and messages with ES256 and EdDSA keys,
// over the stream and in unary calls, and checks every signature with the
// standard library against the key's public key, and with the daemon.
func TestSignVerify(t *testing.T) {
	ctx := context.Background()
	d := startDaemon(t, sidecar.Config{})
	msg := []byte("hello, sidecar")
	digest := sha256.Sum256(msg)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			c := dial(t, d.target, m.opts...)

			es := must(c.CreateKey(ctx, "fake:es-"+m.name+"?seed=s", shared.ECP256))(t)
			pk := must(es.PublicKey(ctx, ""))(t)
			pub, ok := pk.Key.(*ecdsa.PublicKey)
			if !ok || pk.Type != shared.ECP256 || pk.Version != "1" {
				t.Fatalf("public key %T %s version %q", pk.Key, pk.Type, pk.Version)
			}
			sig := must(es.SignDigest(ctx, digest[:], host.SignOptions{}))(t)
			if sig.Algorithm != shared.ES256 || sig.Version != "1" || !ecdsa.VerifyASN1(pub, digest[:], sig.Signature) {
				t.Errorf("ES256 digest signature: %s %q, valid %v", sig.Algorithm, sig.Version, ecdsa.VerifyASN1(pub, digest[:], sig.Signature))
			}
			if err := es.VerifyDigest(ctx, digest[:], sig.Signature, host.SignOptions{}); err != nil {
				t.Errorf("verify digest: %v", err)
			}
			sig = must(es.SignMessage(ctx, msg, host.SignOptions{Algorithm: shared.ES256, Version: "1"}))(t)
			if !ecdsa.VerifyASN1(pub, digest[:], sig.Signature) {
				t.Error("ES256 message signature does not verify")
			}
			if err := es.VerifyMessage(ctx, msg, sig.Signature, host.SignOptions{}); err != nil {
				t.Errorf("verify message: %v", err)
			}
			bad := slices.Clone(sig.Signature)
			bad[len(bad)-1] ^= 1
			wantIs(t, "corrupted ES256 signature", es.VerifyMessage(ctx, msg, bad, host.SignOptions{}), shared.ErrBadSignature)
			wantIs(t, "another message", es.VerifyDigest(ctx, make([]byte, 32), sig.Signature, host.SignOptions{}), shared.ErrBadSignature)

			ed := must(c.CreateKey(ctx, "fake:ed-"+m.name+"?seed=s", shared.Ed25519))(t)
			edPub, ok := must(ed.PublicKey(ctx, ""))(t).Key.(ed25519.PublicKey)
			if !ok {
				t.Fatal("not an Ed25519 public key")
			}
			sig = must(ed.SignMessage(ctx, msg, host.SignOptions{}))(t)
			if sig.Algorithm != shared.EdDSA || !ed25519.Verify(edPub, msg, sig.Signature) {
				t.Errorf("EdDSA signature: %s, valid %v", sig.Algorithm, ed25519.Verify(edPub, msg, sig.Signature))
			}
			if err := ed.VerifyMessage(ctx, msg, sig.Signature, host.SignOptions{}); err != nil {
				t.Errorf("verify EdDSA: %v", err)
			}
			wantIs(t, "EdDSA over another message", ed.VerifyMessage(ctx, []byte("other"), sig.Signature, host.SignOptions{}), shared.ErrBadSignature)
			// An empty message is a message: proto3 cannot tell it from
			// none, and the daemon signs it.
			sig = must(ed.SignMessage(ctx, nil, host.SignOptions{}))(t)
			if !ed25519.Verify(edPub, nil, sig.Signature) {
				t.Error("EdDSA signature over the empty message does not verify")
			}
		})
	}
}

// TestSignerCertificate uses the Signer as crypto.Signer for a
// self-signed certificate, which then verifies, for ECDSA, Ed25519 and
// RSA-PSS keys.
func TestSignerCertificate(t *testing.T) {
	ctx := context.Background()
	d := startDaemon(t, sidecar.Config{})
	c := dial(t, d.target)
	for _, tc := range []struct {
		kt  shared.KeyType
		alg x509.SignatureAlgorithm
	}{
		{shared.ECP256, x509.ECDSAWithSHA256},
		{shared.Ed25519, x509.PureEd25519},
		{shared.RSA2048, x509.SHA256WithRSAPSS},
	} {
		t.Run(string(tc.kt), func(t *testing.T) {
			ref := "fake:cert-" + string(tc.kt) + "?seed=s"
			must(c.CreateKey(ctx, ref, tc.kt))(t)
			s := must(c.Signer(ctx, ref))(t)
			if s.KeyType() != tc.kt || s.Version() != "1" {
				t.Errorf("signer: %s version %q", s.KeyType(), s.Version())
			}
			tmpl := &x509.Certificate{
				SerialNumber:          big.NewInt(1),
				Subject:               pkix.Name{CommonName: "knhk client test"},
				NotBefore:             time.Unix(1700000000, 0),
				NotAfter:              time.Unix(1900000000, 0),
				BasicConstraintsValid: true,
				IsCA:                  true,
				KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
				SignatureAlgorithm:    tc.alg,
			}
			der := must(x509.CreateCertificate(rand.Reader, tmpl, tmpl, s.Public(), s))(t)
			cert := must(x509.ParseCertificate(der))(t)
			if err := cert.CheckSignatureFrom(cert); err != nil {
				t.Errorf("the self-signed certificate does not verify: %v", err)
			}
		})
	}
}

// TestSignerOptions checks how Sign maps crypto.SignerOpts to algorithms,
// and that each signature verifies with the standard library.
func TestSignerOptions(t *testing.T) {
	ctx := context.Background()
	d := startDaemon(t, sidecar.Config{})
	c := dial(t, d.target)
	must(c.CreateKey(ctx, "fake:rsa?seed=s", shared.RSA2048))(t)
	s := must(c.Signer(ctx, "fake:rsa?seed=s"))(t)
	pub := s.Public().(*rsa.PublicKey)
	msg := []byte("options")
	for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		hh := h.New()
		hh.Write(msg)
		digest := hh.Sum(nil)
		sig := must(s.Sign(nil, digest, h))(t)
		if err := rsa.VerifyPKCS1v15(pub, h, digest, sig); err != nil {
			t.Errorf("%s PKCS#1 v1.5: %v", h, err)
		}
		sig = must(s.Sign(nil, digest, &rsa.PSSOptions{Hash: h, SaltLength: rsa.PSSSaltLengthEqualsHash}))(t)
		if err := rsa.VerifyPSS(pub, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
			t.Errorf("%s PSS: %v", h, err)
		}
		sig = must(s.SignMessage(nil, msg, h))(t)
		if err := rsa.VerifyPKCS1v15(pub, h, digest, sig); err != nil {
			t.Errorf("%s SignMessage: %v", h, err)
		}
	}
	digest := sha256.Sum256(msg)
	for name, opts := range map[string]crypto.SignerOpts{
		"MD5":          crypto.MD5,
		"no hash":      crypto.Hash(0),
		"PSS salt 10":  &rsa.PSSOptions{Hash: crypto.SHA256, SaltLength: 10},
		"short digest": crypto.SHA384, // a SHA-256 digest passed as SHA-384
	} {
		_, err := s.Sign(nil, digest[:], opts)
		if !errors.Is(err, shared.ErrUnsupportedAlgorithm) && !errors.Is(err, shared.ErrInvalidArgument) {
			t.Errorf("%s: %v, want a refusal", name, err)
		}
	}
}

// TestConcurrentStream signs from 64 goroutines at once over one stream;
// every signature verifies.
func TestConcurrentStream(t *testing.T) {
	ctx := context.Background()
	d := startDaemon(t, sidecar.Config{})
	c := dial(t, d.target)
	k := must(c.CreateKey(ctx, "fake:many?seed=s", shared.ECP256))(t)
	pub := must(k.PublicKey(ctx, ""))(t).Key.(*ecdsa.PublicKey)
	const workers, each = 64, 50
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := range each {
				digest := sha256.Sum256([]byte{byte(w), byte(i)})
				sig, err := k.SignDigest(ctx, digest[:], host.SignOptions{})
				if err == nil && !ecdsa.VerifyASN1(pub, digest[:], sig.Signature) {
					err = errors.New("a signature does not verify")
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestErrors checks that the daemon's errors match the sentinels, over
// the stream and in unary calls.
func TestErrors(t *testing.T) {
	ctx := context.Background()
	d := startDaemon(t, sidecar.Config{
		Keys:            map[string]string{"release": "fake:release?seed=s", "secret": "fake:secret?seed=s"},
		AllowReferences: true,
		Policies: []sidecar.Policy{
			{Keys: []string{"release", "fake:*"}, Principals: []string{self()}, Operations: []sidecar.Op{"*"}},
			{Keys: []string{"secret"}, Principals: []string{self()}, Operations: []sidecar.Op{sidecar.OpPublicKey}},
		},
	})
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			c := dial(t, d.target, m.opts...)
			digest := sha256.Sum256([]byte("x"))
			opts := host.SignOptions{Algorithm: shared.ES256}

			k := must(c.Key(ctx, "no-such-name"))(t)
			_, err := k.SignDigest(ctx, digest[:], opts)
			wantIs(t, "unknown key name", err, shared.ErrKeyNotFound)
			k = must(c.Key(ctx, "fake:absent-"+m.name))(t)
			_, err = k.SignDigest(ctx, digest[:], opts)
			wantIs(t, "absent key", err, shared.ErrKeyNotFound)
			_, err = k.Metadata(ctx)
			wantIs(t, "absent key's metadata", err, shared.ErrKeyNotFound)

			k = must(c.Key(ctx, "secret"))(t)
			_, err = k.SignDigest(ctx, digest[:], opts)
			wantIs(t, "sign denied by the policy", err, client.ErrPolicyDenied, shared.ErrPermissionDenied)
			if err != nil && !strings.Contains(err.Error(), self()) {
				t.Errorf("the denial does not name the caller: %v", err)
			}
			_, err = k.Rotate(ctx)
			wantIs(t, "rotate denied by the policy", err, client.ErrPolicyDenied)

			_, err = c.Key(ctx, "fake:")
			wantIs(t, "malformed reference", err, host.ErrMalformedRef, shared.ErrInvalidArgument)
			_, err = c.Key(ctx, "")
			wantIs(t, "empty name", err, shared.ErrInvalidArgument)

			must(c.CreateKey(ctx, "fake:es-"+m.name, shared.ECP256))(t)
			k = must(c.Key(ctx, "fake:es-"+m.name))(t)
			_, err = k.SignDigest(ctx, digest[:], host.SignOptions{Algorithm: shared.RS256})
			wantIs(t, "RS256 with an EC key", err, shared.ErrUnsupportedAlgorithm)
			_, err = k.SignDigest(ctx, digest[:16], opts)
			wantIs(t, "short digest", err, shared.ErrInvalidArgument)
			_, err = c.CreateKey(ctx, "fake:es-"+m.name, shared.ECP256)
			wantIs(t, "create twice", err, shared.ErrAlreadyExists)
			_, err = c.CreateKey(ctx, "fake:bad-param?nosuch=1", shared.ECP256)
			wantIs(t, "unknown parameter", err, shared.ErrInvalidArgument)
		})
	}
}

// TestManage covers create, list, metadata, rotate and versioned public
// keys.
func TestManage(t *testing.T) {
	ctx := context.Background()
	d := startDaemon(t, sidecar.Config{})
	c := dial(t, d.target)
	k := must(c.CreateKey(ctx, "fake:managed?seed=s", shared.ECP256))(t)
	if k.Name() != "fake:managed?seed=s" {
		t.Errorf("name %q", k.Name())
	}
	md := must(k.Metadata(ctx))(t)
	if md.KeyID != "managed" || md.Type != shared.ECP256 || md.CurrentVersion != "1" || len(md.Versions) != 1 || !md.Versions[0].Enabled || md.Versions[0].Created.IsZero() {
		t.Errorf("metadata %+v", md)
	}
	if !slices.Contains(md.Algorithms, shared.ES256) {
		t.Errorf("algorithms %v", md.Algorithms)
	}
	v1 := must(k.PublicKey(ctx, ""))(t)
	if v := must(k.Rotate(ctx))(t); v != "2" {
		t.Errorf("rotated to %q", v)
	}
	md = must(k.Metadata(ctx))(t)
	if md.CurrentVersion != "2" || len(md.Versions) != 2 {
		t.Errorf("metadata after rotation %+v", md)
	}
	v2 := must(k.PublicKey(ctx, ""))(t)
	if v2.Version != "2" || v2.Key.(*ecdsa.PublicKey).Equal(v1.Key) {
		t.Errorf("current public key after rotation: version %q, same key as version 1: %v", v2.Version, v2.Key.(*ecdsa.PublicKey).Equal(v1.Key))
	}
	if old := must(k.PublicKey(ctx, "1"))(t); !old.Key.(*ecdsa.PublicKey).Equal(v1.Key) {
		t.Error("version 1's public key changed")
	}
	// The old version still signs when named.
	digest := sha256.Sum256([]byte("old"))
	sig := must(k.SignDigest(ctx, digest[:], host.SignOptions{Version: "1"}))(t)
	if sig.Version != "1" || !ecdsa.VerifyASN1(v1.Key.(*ecdsa.PublicKey), digest[:], sig.Signature) {
		t.Errorf("version 1 signature: version %q", sig.Version)
	}
	must(c.CreateKey(ctx, "fake:other?seed=s", shared.Ed25519))(t)
	keys := must(c.ListKeys(ctx, "fake", nil))(t)
	byID := map[string]shared.KeySummary{}
	for _, s := range keys {
		byID[s.KeyID] = s
	}
	if s := byID["managed"]; s.Type != shared.ECP256 || s.CurrentVersion != "2" {
		t.Errorf("listed managed: %+v (all: %+v)", s, keys)
	}
	if s := byID["other"]; s.Type != shared.Ed25519 || s.CurrentVersion != "1" {
		t.Errorf("listed other: %+v (all: %+v)", s, keys)
	}
}

// TestDial checks the targets Dial takes and refuses.
func TestDial(t *testing.T) {
	ctx := context.Background()
	withTLS := client.WithTLS(&tls.Config{})
	for _, tc := range []struct {
		target string
		opts   []client.Option
		ok     bool
	}{
		{"unix:///run/knhk/knhk.sock", nil, true},
		{"unix:knhk.sock", nil, true},
		{"/run/knhk/knhk.sock", nil, true},
		{"knhk.example:8443", []client.Option{withTLS}, true},
		{"dns:///knhk.example:8443", []client.Option{withTLS}, true},
		{"dns://8.8.8.8/knhk.example:8443", []client.Option{withTLS}, true},
		{"[::1]:8443", []client.Option{withTLS}, true},
		{"knhk.example:8443", nil, false}, // never plain-text TCP
		{"unix:///run/knhk/knhk.sock", []client.Option{withTLS}, false},
		{"", nil, false},
		{"unix:", nil, false},
		{"unix://", nil, false},
		{"unix://host/path", nil, false},
		{"knhk.example", []client.Option{withTLS}, false},
		{"dns:///knhk.example", []client.Option{withTLS}, false},
		{"https://knhk.example:8443", []client.Option{withTLS}, false},
	} {
		c, err := client.Dial(ctx, tc.target, tc.opts...)
		if tc.ok != (err == nil) {
			t.Errorf("%q: %v, want ok %v", tc.target, err, tc.ok)
		}
		if err == nil {
			if c.Target() != tc.target {
				t.Errorf("%q: Target %q", tc.target, c.Target())
			}
			c.Close()
		} else {
			wantIs(t, tc.target, err, shared.ErrInvalidArgument)
		}
	}
}
