package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/knhk/knhk/client"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/sidecar"
)

// exampleDaemon starts what `knhk-host serve` would run, in this process
// so that the examples run: a daemon serving the fake provider's key
// "release" (ECDSA P-256) to this user, on a socket in a new directory.
// It returns the target to dial and a function that stops it all.
func exampleDaemon() (target string, stop func()) {
	return exampleDaemonWith(nil)
}

// exampleDaemonWith is exampleDaemon with its configuration changed by
// edit (when not nil) before it starts.
func exampleDaemonWith(edit func(*sidecar.Config)) (target string, stop func()) {
	ctx := context.Background()
	h, stopHost, err := hosttest.Start()
	if err != nil {
		log.Fatal(err)
	}
	if _, err := h.CreateKey(ctx, "fake:release?seed=example", shared.ECP256); err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "knhk-example-")
	if err != nil {
		log.Fatal(err)
	}
	cfg := sidecar.Config{
		Socket: sidecar.SocketConfig{Path: filepath.Join(dir, "knhk.sock")},
		Keys:   map[string]string{"release": "fake:release?seed=example"},
		Policies: []sidecar.Policy{{
			Keys:       []string{"release"},
			Principals: []string{fmt.Sprintf("unix:uid=%d", os.Getuid())},
			Operations: []sidecar.Op{sidecar.OpSign, sidecar.OpPublicKey},
		}},
	}
	if edit != nil {
		edit(&cfg)
	}
	return exampleServe(h, cfg, func() {
		stopHost()
		os.RemoveAll(dir)
	})
}

// exampleServe serves a daemon with cfg over h until the returned stop
// function is called, which then calls cleanup.
func exampleServe(h *host.Host, cfg sidecar.Config, cleanup func()) (target string, stop func()) {
	srv, err := sidecar.New(h, cfg)
	if err != nil {
		log.Fatal(err)
	}
	serveCtx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx) }()
	select {
	case <-srv.Listening():
	case err := <-served:
		log.Fatal(err)
	}
	return "unix://" + srv.SocketPath(), func() {
		cancel()
		<-served
		cleanup()
	}
}

// Dial the daemon's socket and sign a digest with one of its keys; the
// signature checks with the standard library.
func ExampleDial() {
	target, stop := exampleDaemon() // e.g. "unix:///run/knhk/knhk.sock"
	defer stop()

	ctx := context.Background()
	c, err := client.Dial(ctx, target)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	key, err := c.Key(ctx, "release")
	if err != nil {
		log.Fatal(err)
	}
	digest := sha256.Sum256([]byte("release v1.0.0"))
	sig, err := key.SignDigest(ctx, digest[:], host.SignOptions{})
	if err != nil {
		log.Fatal(err)
	}
	pk, err := key.PublicKey(ctx, sig.Version)
	if err != nil {
		log.Fatal(err)
	}
	valid := ecdsa.VerifyASN1(pk.Key.(*ecdsa.PublicKey), digest[:], sig.Signature)
	fmt.Println(sig.Algorithm, "with version", sig.Version, "valid:", valid)
	// Output: ES256 with version 1 valid: true
}

// A Signer is a crypto.Signer: here it signs a self-signed certificate,
// whose private key never leaves the daemon's provider.
func ExampleClient_Signer() {
	target, stop := exampleDaemon()
	defer stop()

	ctx := context.Background()
	c, err := client.Dial(ctx, target)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	signer, err := c.Signer(ctx, "release")
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "release signer"},
		NotBefore:             time.Now(),
		NotAfter:              time.Now().Add(24 * time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		log.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cert.Subject, cert.SignatureAlgorithm, "verifies:", cert.CheckSignatureFrom(cert) == nil)
	// Output: CN=release signer ECDSA-SHA256 verifies: true
}

// Dial the daemon's TCP listener with the caller's SPIFFE X.509-SVID: the
// daemon knows the caller by its SPIFFE ID, and the client accepts only
// the daemon's ID. In production the source is the Workload API's:
//
//	source, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(
//		workloadapi.WithAddr("unix:///run/spire/agent.sock")))
//	defer source.Close()
func ExampleWithSPIFFE() {
	addr, td, stop, err := spiffeDaemon() // e.g. "knhk.example.org:8443", serving as spiffe://example.org/knhk
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
	source, err := td.source("spiffe://example.org/ns/prod/web") // this caller's SVID
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	daemon := spiffeid.RequireFromString("spiffe://example.org/knhk")
	c, err := client.Dial(ctx, addr, client.WithSPIFFE(source, tlsconfig.AuthorizeID(daemon)))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	key, err := c.Key(ctx, "release")
	if err != nil {
		log.Fatal(err)
	}
	digest := sha256.Sum256([]byte("release v1.0.0"))
	sig, err := key.SignDigest(ctx, digest[:], host.SignOptions{})
	if err != nil {
		log.Fatal(err)
	}
	pk, err := key.PublicKey(ctx, sig.Version)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sig.Algorithm, "valid:", ecdsa.VerifyASN1(pk.Key.(*ecdsa.PublicKey), digest[:], sig.Signature))
	// Output: ES256 valid: true
}
