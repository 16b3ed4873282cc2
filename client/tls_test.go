package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/knhk/knhk/client"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/sidecar"
)

// issued is a certificate and its key.
type issued struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// issue makes a certificate from tmpl, signed by parent (nil: self-signed).
func issue(t *testing.T, tmpl *x509.Certificate, parent *issued) issued {
	t.Helper()
	key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))(t)
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	signer, parentCert := key, tmpl
	if parent != nil {
		signer, parentCert = parent.key, parent.cert
	}
	der := must(x509.CreateCertificate(rand.Reader, tmpl, parentCert, &key.PublicKey, signer))(t)
	return issued{cert: must(x509.ParseCertificate(der))(t), key: key}
}

// writePEM writes a certificate and its key as PEM files in dir.
func (c issued) writePEM(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	keyDER := must(x509.MarshalECPrivateKey(c.key))(t)
	for file, block := range map[string]*pem.Block{
		certFile: {Type: "CERTIFICATE", Bytes: c.cert.Raw},
		keyFile:  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// TestTLS signs over TCP with mutual TLS: the daemon knows the caller by
// its certificate, and a caller without one gets nowhere.
func TestTLS(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ca := issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "knhk test CA"}, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil)
	caFile, _ := ca.writePEM(t, dir, "ca")
	srvCert := issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "sidecar"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, &ca)
	certFile, keyFile := srvCert.writePEM(t, dir, "server")
	cliCert := issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "web", Organization: []string{"Example"}}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, &ca)

	// A free port: listen, note it, close.
	l := must(net.Listen("tcp", "127.0.0.1:0"))(t)
	addr := l.Addr().String()
	l.Close()
	startDaemon(t, sidecar.Config{
		TLS:             &sidecar.TLSConfig{Address: addr, CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile},
		AllowReferences: true,
		Policies:        []sidecar.Policy{{Keys: []string{"fake:*"}, Principals: []string{"x509:CN=web,O=Example"}, Operations: []sidecar.Op{"*"}}},
	})
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	c := dial(t, addr, client.WithTLS(&tls.Config{
		RootCAs:      roots,
		Certificates: []tls.Certificate{{Certificate: [][]byte{cliCert.cert.Raw}, PrivateKey: cliCert.key}},
	}))
	k := must(c.CreateKey(ctx, "fake:tls?seed=s", shared.ECP256))(t)
	pub := must(k.PublicKey(ctx, ""))(t).Key.(*ecdsa.PublicKey)
	digest := sha256.Sum256([]byte("over TCP"))
	sig := must(k.SignDigest(ctx, digest[:], host.SignOptions{}))(t)
	if !ecdsa.VerifyASN1(pub, digest[:], sig.Signature) {
		t.Error("the signature does not verify")
	}

	anon := dial(t, addr, client.WithTLS(&tls.Config{RootCAs: roots}))
	_, err := must(anon.Key(ctx, "fake:tls?seed=s"))(t).SignDigest(ctx, digest[:], host.SignOptions{})
	// The daemon ends the handshake; how the client hears of it varies
	// (a TLS alert, a broken pipe), but never as a call that got through.
	var ue *client.UnreachableError
	if !errors.As(err, &ue) {
		t.Errorf("no client certificate: %v, want an UnreachableError", err)
	}
	wantIs(t, "no client certificate", err, shared.ErrUnavailable)
}
