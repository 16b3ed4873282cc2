package host_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// The zero Config finds plugins in KNHK_PLUGIN_PATH (set here by the test
// setup to a directory holding knhk-plugin-fake) and next to the binary.
func ExampleNew() {
	ctx := context.Background()
	h, err := host.New(ctx, host.Config{})
	if err != nil {
		panic(err)
	}
	defer h.Close() // stops every plugin process

	// The fake plugin starts on first use.
	key, err := h.CreateKey(ctx, "fake:release", shared.ECP256)
	if err != nil {
		panic(err)
	}
	digest := sha256.Sum256([]byte("artifact"))
	sig, err := key.SignDigest(ctx, digest[:], host.SignOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println(sig.Algorithm, "version", sig.Version)
	fmt.Println("verifies:", key.VerifyDigest(ctx, digest[:], sig.Signature, host.SignOptions{}) == nil)
	// Output:
	// ES256 version 1
	// verifies: true
}

// A host signer is a crypto.Signer: here it signs a self-signed X.509
// certificate whose private key never leaves the plugin.
func ExampleHost_Signer() {
	ctx := context.Background()
	h, err := host.New(ctx, host.Config{})
	if err != nil {
		panic(err)
	}
	defer h.Close()
	if _, err := h.CreateKey(ctx, "fake:ca", shared.Ed25519); err != nil {
		panic(err)
	}

	signer, err := h.Signer(ctx, "fake:ca")
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "knhk example CA"},
		NotBefore:    time.Now(),
		NotAfter:     time.Now().Add(time.Hour),
		IsCA:         true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		panic(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	fmt.Println(cert.Subject.CommonName, cert.SignatureAlgorithm)
	fmt.Println("verifies:", cert.CheckSignatureFrom(cert) == nil)

	// It is a crypto.MessageSigner too.
	msg := []byte("hello")
	sig, err := signer.SignMessage(nil, msg, crypto.Hash(0))
	if err != nil {
		panic(err)
	}
	fmt.Println("message verifies:", shared.VerifyMessage(signer.Public(), shared.EdDSA, msg, sig) == nil)
	// Output:
	// knhk example CA Ed25519
	// verifies: true
	// message verifies: true
}

func ExampleParseRef() {
	r, err := host.ParseRef("aws:arn:aws:kms:eu-west-1:111122223333:key/abcd?region=eu-west-1")
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Provider, r.KeyID, r.Params["region"])
	_, err = host.ParseRef("release-key")
	fmt.Println(err)
	// Output:
	// aws arn:aws:kms:eu-west-1:111122223333:key/abcd eu-west-1
	// malformed key reference: "release-key": no ':' between provider and key id; want PROVIDER:KEYID[?name=value&...], e.g. fake:demo?state=/tmp/keys.json: invalid argument
}

// Concurrent signatures for one plugin leave in shared SignBatch calls,
// each one still verified on its own; Host.Stats shows the traffic.
func ExampleHost_Stats() {
	ctx := context.Background()
	h, err := host.New(ctx, host.Config{})
	if err != nil {
		panic(err)
	}
	defer h.Close()
	if _, err := h.CreateKey(ctx, "fake:busy", shared.Ed25519); err != nil {
		panic(err)
	}
	signer, err := h.Signer(ctx, "fake:busy")
	if err != nil {
		panic(err)
	}
	var (
		wg     sync.WaitGroup
		failed atomic.Int64
	)
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 4 {
				msg := fmt.Appendf(nil, "message %d.%d", g, i)
				sig, err := signer.Sign(nil, msg, crypto.Hash(0))
				if err != nil || shared.VerifyMessage(signer.Public(), shared.EdDSA, msg, sig) != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	st := h.Stats()
	fmt.Println("failed:", failed.Load())
	fmt.Println("batched:", st.SignBatches > 0 && st.BatchedSignatures > st.SignBatches)
	// Output:
	// failed: 0
	// batched: true
}

// A key whose next version must be approved by two people before it
// signs: the new version is pending (published, not signing) until
// Promote finds both approvals.
func ExampleKey_Promote() {
	ctx := context.Background()
	// Approver keys: files from `knhk-host audit keygen`, or knhk keys.
	aliceSkey, aliceVkey, _ := note.GenerateKey(rand.Reader, "alice")
	bobSkey, bobVkey, _ := note.GenerateKey(rand.Reader, "bob")
	alice, _ := note.NewSigner(aliceSkey)
	bob, _ := note.NewSigner(bobSkey)
	h, err := host.New(ctx, host.Config{Promotion: map[string]host.Gates{
		"fake:promoted": {Canary: true, Approvals: host.ApprovalGate{Required: 2, Approvers: []string{aliceVkey, bobVkey}}},
	}})
	if err != nil {
		panic(err)
	}
	defer h.Close()
	key, err := h.CreateKey(ctx, "fake:promoted", shared.ECP256)
	if err != nil {
		panic(err)
	}
	v, err := key.RotatePending(ctx)
	if err != nil {
		panic(err)
	}
	byAlice, err := key.Approve(ctx, v, alice, time.Hour)
	if err != nil {
		panic(err)
	}
	var unmet *host.GatesError
	if err := key.Promote(ctx, v, byAlice); errors.As(err, &unmet) {
		fmt.Println("refused:", unmet.Unmet[0].Gate, unmet.Unmet[0].Detail)
	}
	byBob, err := key.Approve(ctx, v, bob, time.Hour)
	if err != nil {
		panic(err)
	}
	if err := key.Promote(ctx, v, byAlice, byBob); err != nil {
		panic(err)
	}
	digest := sha256.Sum256([]byte("release"))
	sig, err := key.SignDigest(ctx, digest[:], host.SignOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println("signed by version", sig.Version)
	// Output:
	// refused: approvals 1 of 2 approvers: alice
	// signed by version 2
}
