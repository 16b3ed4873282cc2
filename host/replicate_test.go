package host

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/knhk/knhk/shared"
)

// TestCreateKeyWithReplicateToRefused: the fake plugin does not claim
// shared.CapReplicateKey, so CreateKeyWith with ReplicateTo fails with
// ErrUnimplemented naming the provider and the capability, makes no key,
// and CreateKeyWith without options creates as CreateKey does, with no
// replicas.
func TestCreateKeyWithReplicateToRefused(t *testing.T) {
	h, _ := newHost(t, Config{})
	ctx := context.Background()
	ref := "fake:mr?state=" + filepath.Join(t.TempDir(), "keys.json")
	_, reps, err := h.CreateKeyWith(ctx, ref, shared.ECP256, CreateOptions{ReplicateTo: []string{"eu-west-1"}})
	if !errors.Is(err, shared.ErrUnimplemented) || !strings.Contains(err.Error(), "fake") || !strings.Contains(err.Error(), string(shared.CapReplicateKey)) || reps != nil {
		t.Fatalf("CreateKeyWith ReplicateTo on the fake: %v, %v; want ErrUnimplemented naming fake and %s", reps, err, shared.CapReplicateKey)
	}
	k, err := h.Key(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.PublicKey(ctx, ""); !errors.Is(err, shared.ErrKeyNotFound) {
		t.Fatalf("after the refused create, the key's public key: %v; want ErrKeyNotFound", err)
	}
	k, reps, err = h.CreateKeyWith(ctx, ref, shared.ECP256, CreateOptions{})
	if err != nil || reps != nil {
		t.Fatalf("CreateKeyWith without options: %v, %v", reps, err)
	}
	if _, err := k.PublicKey(ctx, ""); err != nil {
		t.Fatal(err)
	}
}
