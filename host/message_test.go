package host

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/knhk/knhk/shared"
)

// TestSignMessageTooLargeToSend signs a message over MaxWholeMessage with
// ES256 through a provider that signs whole messages (the fake): the host
// hashes it instead of sending it, and the signature verifies.
func TestSignMessageTooLargeToSend(t *testing.T) {
	h, _ := newHost(t, Config{})
	ctx := context.Background()
	ref := newKey(t, h, filepath.Join(t.TempDir(), "keys.json"), "ec", shared.ECP256)
	k, err := h.Key(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, MaxWholeMessage+1)
	msg[len(msg)-1] = 1
	sig, err := k.SignMessage(ctx, msg, SignOptions{})
	if err != nil {
		t.Fatalf("SignMessage of %d bytes: %v", len(msg), err)
	}
	pk, err := k.PublicKey(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(msg)
	if !ecdsa.VerifyASN1(pk.Key.(*ecdsa.PublicKey), sum[:], sig.Signature) {
		t.Fatal("the signature does not verify with the standard library")
	}
}

// TestSignMessageEdDSALimit: an Ed25519 message of exactly MaxWholeMessage
// bytes crosses to the plugin and is signed; one byte more is refused with
// a non-retryable shared.ErrInvalidArgument naming the limit, and nothing
// is sent.
func TestSignMessageEdDSALimit(t *testing.T) {
	// 63 MiB through a plugin built with -race takes a while.
	h, _ := newHost(t, Config{CallTimeout: 2 * time.Minute})
	ctx := context.Background()
	ref := newKey(t, h, filepath.Join(t.TempDir(), "keys.json"), "ed", shared.Ed25519)
	k, err := h.Key(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, MaxWholeMessage+1)
	sig, err := k.SignMessage(ctx, msg[:MaxWholeMessage], SignOptions{})
	if err != nil {
		t.Fatalf("SignMessage of MaxWholeMessage bytes: %v", err)
	}
	pk, err := k.PublicKey(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(pk.Key.(ed25519.PublicKey), msg[:MaxWholeMessage], sig.Signature) {
		t.Fatal("the signature does not verify with the standard library")
	}

	calls := h.Stats().Calls
	_, err = k.SignMessage(ctx, msg, SignOptions{Algorithm: shared.EdDSA})
	if !errors.Is(err, shared.ErrInvalidArgument) || IsRetryable(err) {
		t.Fatalf("SignMessage of MaxWholeMessage+1 bytes: %v, want a non-retryable ErrInvalidArgument", err)
	}
	if msg := err.Error(); !strings.Contains(msg, strconv.Itoa(MaxWholeMessage)) || strings.Contains(msg, "retry") {
		t.Fatalf("error %q should name the limit %d and not suggest a retry", msg, MaxWholeMessage)
	}
	if got := h.Stats().Calls; got != calls {
		t.Fatalf("the refused message made %d plugin calls, want none", got-calls)
	}
}
