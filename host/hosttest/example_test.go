package hosttest_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/shared"
)

// TestSomethingThatSigns is what an embedder's test looks like: a real
// host, the fake provider in process, no plugin binary.
func TestSomethingThatSigns(t *testing.T) {
	ctx := context.Background()
	h := hosttest.New(t)
	if _, err := h.CreateKey(ctx, "fake:release", shared.ECP256); err != nil {
		t.Fatal(err)
	}
	signer, err := h.Signer(ctx, "fake:release")
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("artifact"))
	sig, err := signer.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if err := shared.VerifyDigest(signer.Public(), shared.ES256, digest[:], sig); err != nil {
		t.Fatal(err)
	}
}

// Start gives a host backed by the in-process fake outside a test
// function (TestMain, benchmarks, examples); in a test use New(t).
func ExampleStart() {
	ctx := context.Background()
	h, stop, err := hosttest.Start()
	if err != nil {
		panic(err)
	}
	defer stop()

	if _, err := h.CreateKey(ctx, "fake:release", shared.Ed25519); err != nil {
		panic(err)
	}
	signer, err := h.Signer(ctx, "fake:release")
	if err != nil {
		panic(err)
	}
	msg := []byte("release v1.2.3")
	sig, err := signer.Sign(nil, msg, crypto.Hash(0)) // Ed25519 signs the message
	if err != nil {
		panic(err)
	}
	fmt.Println("verifies:", shared.VerifyMessage(signer.Public(), shared.EdDSA, msg, sig) == nil)
	// Output: verifies: true
}
