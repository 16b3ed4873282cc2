package host

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
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/knhk/knhk/shared"
)

// newKey creates a fake key of type kt in the test's state file and
// returns its reference.
func newKey(t *testing.T, h *Host, state, id string, kt shared.KeyType) string {
	t.Helper()
	ref := fakeRef(t, state, id, "")
	if _, err := h.CreateKey(context.Background(), ref, kt); err != nil {
		t.Fatalf("CreateKey %s: %v", kt, err)
	}
	return ref
}

func selfSigned(t *testing.T, signer crypto.Signer, sigAlg x509.SignatureAlgorithm) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		SignatureAlgorithm:    sigAlg,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		t.Fatalf("CreateCertificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("ParseCertificate: %v", err)
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		t.Fatalf("self-signed certificate does not verify: %v", err)
	}
	return cert
}

func TestX509SelfSignedEveryKeyType(t *testing.T) {
	h, _ := newHost(t, Config{})
	state := filepath.Join(t.TempDir(), "keys.json")
	for _, kt := range shared.KeyTypes {
		t.Run(string(kt), func(t *testing.T) {
			ref := newKey(t, h, state, "x509-"+string(kt), kt)
			signer, err := h.Signer(context.Background(), ref)
			if err != nil {
				t.Fatal(err)
			}
			algs := []x509.SignatureAlgorithm{x509.UnknownSignatureAlgorithm} // the key type's default
			if strings.HasPrefix(string(kt), "rsa") {
				algs = append(algs, x509.SHA384WithRSA, x509.SHA256WithRSAPSS, x509.SHA512WithRSAPSS)
			}
			for _, a := range algs {
				cert := selfSigned(t, signer, a)
				if kt2, err := shared.KeyTypeOf(cert.PublicKey); err != nil || kt2 != kt {
					t.Fatalf("certificate key type %s, %v; want %s", kt2, err, kt)
				}
			}
		})
	}
}

func TestTLSHandshakeWithPluginKey(t *testing.T) {
	h, _ := newHost(t, Config{})
	state := filepath.Join(t.TempDir(), "keys.json")
	for _, kt := range []shared.KeyType{shared.ECP256, shared.RSA2048, shared.Ed25519} {
		t.Run(string(kt), func(t *testing.T) {
			signer, err := h.Signer(context.Background(), newKey(t, h, state, "tls-"+string(kt), kt))
			if err != nil {
				t.Fatal(err)
			}
			cert := selfSigned(t, signer, x509.UnknownSignatureAlgorithm)
			ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
				Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: signer, Leaf: cert}},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			served := make(chan error, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					served <- err
					return
				}
				defer c.Close()
				if err := c.(*tls.Conn).Handshake(); err != nil {
					served <- err
					return
				}
				_, err = c.Write([]byte("hello"))
				served <- err
			}()
			pool := x509.NewCertPool()
			pool.AddCert(cert)
			conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "localhost"})
			if err != nil {
				t.Fatalf("client handshake: %v", err)
			}
			defer conn.Close()
			got, err := io.ReadAll(io.LimitReader(conn, 5))
			if err != nil || string(got) != "hello" {
				t.Fatalf("read %q, %v", got, err)
			}
			if err := <-served; err != nil {
				t.Fatalf("server: %v", err)
			}
			if st := conn.ConnectionState(); !st.HandshakeComplete || st.PeerCertificates[0].Equal(cert) == false {
				t.Fatalf("handshake incomplete or wrong peer certificate")
			}
		})
	}
}

// TestCompactJWS makes a compact JWS (RFC 7515) with the signer and checks
// it with the standard library only.
func TestCompactJWS(t *testing.T) {
	h, _ := newHost(t, Config{})
	state := filepath.Join(t.TempDir(), "keys.json")
	b64 := base64.RawURLEncoding
	tests := []struct {
		kt   shared.KeyType
		alg  string
		opts crypto.SignerOpts
	}{
		{shared.ECP256, "ES256", crypto.SHA256},
		{shared.ECP384, "ES384", crypto.SHA384},
		{shared.RSA2048, "RS256", crypto.SHA256},
		{shared.RSA2048, "PS256", &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}},
		{shared.Ed25519, "EdDSA", crypto.Hash(0)},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			signer, err := h.Signer(context.Background(), newKey(t, h, state, "jws-"+tt.alg, tt.kt))
			if err != nil {
				t.Fatal(err)
			}
			input := b64.EncodeToString([]byte(`{"alg":"`+tt.alg+`","typ":"JWT"}`)) + "." +
				b64.EncodeToString([]byte(`{"sub":"knhk","iat":1700000000}`))
			var sig []byte
			if tt.kt == shared.Ed25519 {
				sig, err = signer.Sign(nil, []byte(input), tt.opts)
			} else {
				hh := tt.opts.HashFunc().New()
				hh.Write([]byte(input))
				sig, err = signer.Sign(nil, hh.Sum(nil), tt.opts)
			}
			if err != nil {
				t.Fatal(err)
			}
			if pub, ok := signer.Public().(*ecdsa.PublicKey); ok {
				sig = derToRaw(t, sig, (pub.Curve.Params().BitSize+7)/8) // JWS wants r||s
			}
			jws := input + "." + b64.EncodeToString(sig)

			// Verify from the compact form alone, standard library only.
			parts := strings.Split(jws, ".")
			if len(parts) != 3 {
				t.Fatalf("not a compact JWS: %q", jws)
			}
			signed := []byte(parts[0] + "." + parts[1])
			raw, err := b64.DecodeString(parts[2])
			if err != nil {
				t.Fatal(err)
			}
			ok := false
			switch pub := signer.Public().(type) {
			case *ecdsa.PublicKey:
				d := tt.opts.HashFunc().New()
				d.Write(signed)
				n := len(raw) / 2
				ok = ecdsa.Verify(pub, d.Sum(nil), new(big.Int).SetBytes(raw[:n]), new(big.Int).SetBytes(raw[n:]))
			case *rsa.PublicKey:
				d := tt.opts.HashFunc().New()
				d.Write(signed)
				if pss, isPSS := tt.opts.(*rsa.PSSOptions); isPSS {
					ok = rsa.VerifyPSS(pub, crypto.SHA256, d.Sum(nil), raw, pss) == nil
				} else {
					ok = rsa.VerifyPKCS1v15(pub, tt.opts.HashFunc(), d.Sum(nil), raw) == nil
				}
			case ed25519.PublicKey:
				ok = ed25519.Verify(pub, signed, raw)
			}
			if !ok {
				t.Fatalf("JWS %s does not verify", tt.alg)
			}
		})
	}
}

// derToRaw turns an ASN.1 ECDSA signature into JWS's fixed-size r||s.
func derToRaw(t *testing.T, der []byte, size int) []byte {
	t.Helper()
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &rs); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 2*size)
	rs.R.FillBytes(out[:size])
	rs.S.FillBytes(out[size:])
	return out
}

func TestSignerOptions(t *testing.T) {
	h, _ := newHost(t, Config{})
	state := filepath.Join(t.TempDir(), "keys.json")
	ctx := context.Background()
	ec, err := h.Signer(ctx, newKey(t, h, state, "opts-ec", shared.ECP256))
	if err != nil {
		t.Fatal(err)
	}
	rsaS, err := h.Signer(ctx, newKey(t, h, state, "opts-rsa", shared.RSA2048))
	if err != nil {
		t.Fatal(err)
	}
	ed, err := h.Signer(ctx, newKey(t, h, state, "opts-ed", shared.Ed25519))
	if err != nil {
		t.Fatal(err)
	}
	d256 := sha256.Sum256([]byte("m"))
	bad := []struct {
		name   string
		s      crypto.Signer
		digest []byte
		opts   crypto.SignerOpts
		want   error
	}{
		{"ec short digest", ec, d256[:31], crypto.SHA256, shared.ErrInvalidArgument},
		{"ec wrong hash", ec, make([]byte, 48), crypto.SHA384, shared.ErrUnsupportedAlgorithm},
		{"rsa sha1", rsaS, make([]byte, 20), crypto.SHA1, shared.ErrUnsupportedAlgorithm},
		{"rsa pss odd salt", rsaS, d256[:], &rsa.PSSOptions{SaltLength: 7, Hash: crypto.SHA256}, shared.ErrUnsupportedAlgorithm},
		{"rsa no hash", rsaS, []byte("m"), crypto.Hash(0), shared.ErrUnsupportedAlgorithm},
		{"ed25519ph", ed, d256[:], &ed25519.Options{Hash: crypto.SHA512}, shared.ErrUnsupportedAlgorithm},
		{"ed25519 hashed", ed, d256[:], crypto.SHA256, shared.ErrUnsupportedAlgorithm},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			sig, err := tt.s.Sign(nil, tt.digest, tt.opts)
			if !errors.Is(err, tt.want) || sig != nil {
				t.Fatalf("Sign = %x, %v; want an error wrapping %v", sig, err, tt.want)
			}
		})
	}
	// SignMessage hashes (or sends) the message and honours PSS.
	msg := []byte("a whole message")
	for _, tt := range []struct {
		s    crypto.Signer
		alg  shared.Algorithm
		opts crypto.SignerOpts
	}{
		{ec, shared.ES256, crypto.SHA256},
		{rsaS, shared.PS384, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto, Hash: crypto.SHA384}},
		{rsaS, shared.RS512, crypto.SHA512},
		{ed, shared.EdDSA, crypto.Hash(0)},
	} {
		sig, err := tt.s.(crypto.MessageSigner).SignMessage(nil, msg, tt.opts)
		if err != nil {
			t.Fatalf("SignMessage %s: %v", tt.alg, err)
		}
		if err := shared.VerifyMessage(tt.s.Public(), tt.alg, msg, sig); err != nil {
			t.Fatalf("SignMessage %s: %v", tt.alg, err)
		}
	}
}
