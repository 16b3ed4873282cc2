package promotiontest_test

import (
	"context"
	"crypto/sha256"
	"path/filepath"
	"testing"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/host/promotiontest"
	"github.com/knhk/knhk/plugins/fake"
	"github.com/knhk/knhk/shared"
)

// TestFake runs the workflow against the fake provider, its states in a
// state file that every host's fake shares.
func TestFake(t *testing.T) {
	ref := "fake:release?state=" + filepath.Join(t.TempDir(), "keys.json")
	newHost := func(t *testing.T, cfg host.Config) *host.Host {
		return hosttest.New(t, hosttest.WithConfig(cfg))
	}
	if _, err := newHost(t, host.Config{}).CreateKey(context.Background(), ref, shared.ECP256); err != nil {
		t.Fatal(err)
	}
	promotiontest.Run(t, newHost, ref)
}

// newestDefault is the fake with Azure's and Vault's default: a request
// without a version signs with the key's newest version, pending or not.
type newestDefault struct{ *fake.Provider }

func (p newestDefault) newest(ctx context.Context, req shared.SignRequest) shared.SignRequest {
	if req.Version == "" {
		if md, err := p.KeyMetadata(ctx, shared.KeyMetadataRequest{Key: req.Key}); err == nil {
			req.Version = md.Versions[len(md.Versions)-1].Version
		}
	}
	return req
}

func (p newestDefault) Sign(ctx context.Context, req shared.SignRequest) (shared.SignResponse, error) {
	return p.Provider.Sign(ctx, p.newest(ctx, req))
}

func (p newestDefault) SignBatch(ctx context.Context, reqs []shared.SignRequest, emit func(int, shared.SignResult)) {
	for i := range reqs {
		reqs[i] = p.newest(ctx, reqs[i])
	}
	p.Provider.SignBatch(ctx, reqs, emit)
}

// TestUnnamedSignAfterFirstPendingRotation: a host that read a key as
// having no states, whose provider signs unnamed requests with its newest
// version, does not return a signature by the version another host has
// just made pending: it discards it and signs with the active version.
func TestUnnamedSignAfterFirstPendingRotation(t *testing.T) {
	ctx := context.Background()
	ref := "fake:u?state=" + filepath.Join(t.TempDir(), "keys.json")
	h := hosttest.New(t, hosttest.WithProvider("fake", newestDefault{fake.New(fake.Config{})}))
	k, err := h.CreateKey(ctx, ref, shared.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))
	if sig, err := k.SignDigest(ctx, digest[:], host.SignOptions{}); err != nil || sig.Version != "1" {
		t.Fatalf("first signature: %+v, %v", sig, err)
	}
	other := hosttest.New(t)
	ko, err := other.Key(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ko.RotatePending(ctx); err != nil {
		t.Fatal(err)
	}
	// h's cached states still say "none" (for up to VersionStatesTTL).
	sig, err := k.SignDigest(ctx, digest[:], host.SignOptions{})
	if err != nil || sig.Version != "1" {
		t.Fatalf("unnamed signature after another host's pending rotation: %+v, %v; want version 1", sig, err)
	}
	pk, err := k.PublicKey(ctx, "1")
	if err != nil {
		t.Fatal(err)
	}
	if err := shared.VerifyDigest(pk.Key, sig.Algorithm, digest[:], sig.Signature); err != nil {
		t.Fatalf("the signature against version 1's public key: %v", err)
	}
}
