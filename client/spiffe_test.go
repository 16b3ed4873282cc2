package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log"
	"math/big"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/knhk/knhk/client"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/sidecar"
)

// testTrustDomain is a SPIFFE trust domain's CA, for static sources.
type testTrustDomain struct {
	td   spiffeid.TrustDomain
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// newTrustDomain makes a CA for the trust domain td.
func newTrustDomain(td string) (*testTrustDomain, error) {
	d := &testTrustDomain{td: spiffeid.RequireTrustDomainFromString(td)}
	var err error
	d.cert, d.key, err = makeCert(&x509.Certificate{
		Subject: pkix.Name{CommonName: td}, URIs: []*url.URL{d.td.ID().URL()},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, nil, nil)
	return d, err
}

func makeCert(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// staticSource is an X.509-SVID and its trust domain's bundle: what a
// *workloadapi.X509Source gives, fixed.
type staticSource struct {
	*x509svid.SVID
	*x509bundle.Bundle
}

// source issues an X.509-SVID for id, with the trust domain's bundle.
func (d *testTrustDomain) source(id string) (staticSource, error) {
	sid, err := spiffeid.FromString(id)
	if err != nil {
		return staticSource{}, err
	}
	cert, key, err := makeCert(&x509.Certificate{
		Subject: pkix.Name{CommonName: "svid"}, URIs: []*url.URL{sid.URL()},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, d.cert, d.key)
	if err != nil {
		return staticSource{}, err
	}
	return staticSource{
		SVID:   &x509svid.SVID{ID: sid, Certificates: []*x509.Certificate{cert}, PrivateKey: key},
		Bundle: x509bundle.FromX509Authorities(d.td, []*x509.Certificate{d.cert}),
	}, nil
}

// spiffeDaemon starts a daemon on a TCP listener with its X.509-SVID
// spiffe://example.org/knhk from a static source, serving the seeded fake
// key "release" (signing allowed to spiffe://example.org/ns/prod/*,
// public keys to the trust domain). It returns the address, the trust
// domain and a stop function.
func spiffeDaemon() (addr string, td *testTrustDomain, stop func(), err error) {
	td, err = newTrustDomain("example.org")
	if err != nil {
		return "", nil, nil, err
	}
	src, err := td.source("spiffe://example.org/knhk")
	if err != nil {
		return "", nil, nil, err
	}
	_, stopUnix := exampleDaemonWith(func(cfg *sidecar.Config) {
		l, lerr := net.Listen("tcp", "127.0.0.1:0")
		if lerr != nil {
			log.Fatal(lerr)
		}
		addr = l.Addr().String()
		l.Close()
		cfg.TLS = &sidecar.TLSConfig{Address: addr}
		cfg.SPIFFE = &sidecar.SPIFFEConfig{Source: src}
		cfg.Policies = []sidecar.Policy{
			{Keys: []string{"release"}, Principals: []string{"spiffe://example.org/ns/prod/*"}, Operations: []sidecar.Op{sidecar.OpSign}},
			{Keys: []string{"release"}, Principals: []string{"spiffe://example.org/*"}, Operations: []sidecar.Op{sidecar.OpPublicKey}},
		}
	})
	return addr, td, stopUnix, nil
}

// TestWithSPIFFE signs over TCP with the caller's X.509-SVID: the daemon
// knows it by its SPIFFE ID, a denial is ErrPolicyDenied naming it, and
// the client refuses a daemon with another ID than it expects.
func TestWithSPIFFE(t *testing.T) {
	ctx := context.Background()
	addr, td, stop, err := spiffeDaemon()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	daemonID := spiffeid.RequireFromString("spiffe://example.org/knhk")
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			web := must(td.source("spiffe://example.org/ns/prod/web"))(t)
			c := dial(t, addr, append([]client.Option{client.WithSPIFFE(web, tlsconfig.AuthorizeID(daemonID))}, m.opts...)...)
			k := must(c.Key(ctx, "release"))(t)
			pub := must(k.PublicKey(ctx, ""))(t).Key.(*ecdsa.PublicKey)
			digest := sha256.Sum256([]byte("by SPIFFE ID"))
			sig := must(k.SignDigest(ctx, digest[:], host.SignOptions{}))(t)
			if !ecdsa.VerifyASN1(pub, digest[:], sig.Signature) {
				t.Fatal("the signature does not verify")
			}

			// Default authorizer: any ID in the caller's trust domain.
			dev := must(td.source("spiffe://example.org/ns/dev/tool"))(t)
			cd := dial(t, addr, append([]client.Option{client.WithSPIFFE(dev, nil)}, m.opts...)...)
			_, err := must(cd.Key(ctx, "release"))(t).SignDigest(ctx, digest[:], host.SignOptions{})
			wantIs(t, "dev sign", err, client.ErrPolicyDenied, sidecar.ErrPolicyDenied, shared.ErrPermissionDenied)
			if err == nil || !strings.Contains(err.Error(), "spiffe://example.org/ns/dev/tool") {
				t.Fatalf("denial %v does not name the SPIFFE ID", err)
			}
			// The trust domain pattern allows dev the public key.
			if _, err := must(cd.Key(ctx, "release"))(t).PublicKey(ctx, ""); err != nil {
				t.Fatalf("dev public key: %v", err)
			}

			// Expecting another daemon ID: the client ends the handshake.
			wrong := dial(t, addr, append([]client.Option{client.WithSPIFFE(web, tlsconfig.AuthorizeID(spiffeid.RequireFromString("spiffe://example.org/not-knhk")))}, m.opts...)...)
			_, err = must(wrong.Key(ctx, "release"))(t).SignDigest(ctx, digest[:], host.SignOptions{})
			var ue *client.UnreachableError
			if !errors.As(err, &ue) {
				t.Fatalf("daemon with an unexpected SPIFFE ID: %v, want an UnreachableError", err)
			}
			// A daemon from another trust domain than the caller's.
			other := must(newTrustDomain("other.org"))(t)
			stranger := must(other.source("spiffe://other.org/web"))(t)
			stranger.Bundle = must(td.source("spiffe://example.org/x"))(t).Bundle // trusts example.org's CA
			sc := dial(t, addr, append([]client.Option{client.WithSPIFFE(stranger, nil)}, m.opts...)...)
			if _, err := must(sc.Key(ctx, "release"))(t).PublicKey(ctx, ""); !errors.As(err, &ue) {
				t.Fatalf("daemon outside the caller's trust domain: %v, want an UnreachableError", err)
			}
		})
	}
}

// TestWithSPIFFEMisuse: WithSPIFFE is for TCP targets, and not with
// WithTLS.
func TestWithSPIFFEMisuse(t *testing.T) {
	td := must(newTrustDomain("example.org"))(t)
	src := must(td.source("spiffe://example.org/web"))(t)
	ctx := context.Background()
	if _, err := client.Dial(ctx, "unix:///run/knhk/knhk.sock", client.WithSPIFFE(src, nil)); !errors.Is(err, shared.ErrInvalidArgument) {
		t.Errorf("unix target with WithSPIFFE: %v", err)
	}
	if _, err := client.Dial(ctx, "127.0.0.1:8443", client.WithSPIFFE(src, nil), client.WithTLS(nil)); err != nil {
		// WithTLS(nil) is no TLS config: only WithSPIFFE applies.
		t.Errorf("WithSPIFFE with a nil WithTLS: %v", err)
	}
	if _, err := client.Dial(ctx, "127.0.0.1:8443", client.WithSPIFFE(src, nil), client.WithTLS(tlsconfig.TLSClientConfig(src, nil))); !errors.Is(err, shared.ErrInvalidArgument) {
		t.Errorf("WithSPIFFE and WithTLS: %v", err)
	}
}
