package hosttest_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/plugins/fake"
	"github.com/knhk/knhk/shared"
)

// unversioned fronts the fake like a provider without key versions whose
// reference can be repointed (an alias): every request for any key goes
// to the fake key named in target, and versions are hidden.
type unversioned struct {
	*fake.Provider
	target atomic.Value // string
}

func (u *unversioned) ref(k shared.KeyRef) shared.KeyRef {
	return shared.KeyRef{ID: u.target.Load().(string), Params: k.Params}
}

func (u *unversioned) PublicKey(ctx context.Context, req shared.PublicKeyRequest) (shared.PublicKeyResponse, error) {
	req.Key = u.ref(req.Key)
	resp, err := u.Provider.PublicKey(ctx, req)
	resp.Version = ""
	return resp, err
}

func (u *unversioned) Sign(ctx context.Context, req shared.SignRequest) (shared.SignResponse, error) {
	req.Key = u.ref(req.Key)
	resp, err := u.Provider.Sign(ctx, req)
	resp.Version = ""
	return resp, err
}

// TestSignerStaysConsistentWithPublic: when the key behind an unversioned
// reference changes, the Signer refuses to return signatures that do not
// match its Public key.
func TestSignerStaysConsistentWithPublic(t *testing.T) {
	fp := fake.New(fake.Config{})
	u := &unversioned{Provider: fp}
	u.target.Store("a")
	h := hosttest.New(t, hosttest.WithProvider("alias", u), hosttest.WithProvider(hosttest.FakeProvider, fp))
	ctx := context.Background()
	for _, id := range []string{"fake:a", "fake:b"} {
		if _, err := h.CreateKey(ctx, id, shared.ECP256); err != nil {
			t.Fatal(err)
		}
	}
	s, err := h.Signer(ctx, "alias:release")
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("m"))
	sig, err := s.Sign(nil, d[:], crypto.SHA256)
	if err != nil || shared.VerifyDigest(s.Public(), shared.ES256, d[:], sig) != nil {
		t.Fatalf("before the repoint: %x, %v", sig, err)
	}
	u.target.Store("b")
	sig, err = s.Sign(nil, d[:], crypto.SHA256)
	if !errors.Is(err, host.ErrVerifyAfterSign) || sig != nil {
		t.Fatalf("after the repoint: %x, %v; want ErrVerifyAfterSign", sig, err)
	}
	// A new Signer follows the repoint.
	s2, err := h.Signer(ctx, "alias:release")
	if err != nil {
		t.Fatal(err)
	}
	if sig, err := s2.Sign(nil, d[:], crypto.SHA256); err != nil || shared.VerifyDigest(s2.Public(), shared.ES256, d[:], sig) != nil {
		t.Fatalf("new signer: %v", err)
	}
}

// wrongVersion signs with the current version whatever version is asked.
type wrongVersion struct{ *fake.Provider }

func (w wrongVersion) Sign(ctx context.Context, req shared.SignRequest) (shared.SignResponse, error) {
	req.Version = ""
	return w.Provider.Sign(ctx, req)
}

func TestSignedWithAnotherVersionIsRefused(t *testing.T) {
	h := hosttest.New(t, hosttest.WithProvider("liar", wrongVersion{fake.New(fake.Config{})}))
	ctx := context.Background()
	k, err := h.CreateKey(ctx, "liar:k", shared.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("m"))
	sig, err := k.SignDigest(ctx, d[:], host.SignOptions{Version: "1"})
	if !errors.Is(err, host.ErrVerifyAfterSign) || sig.Signature != nil {
		t.Fatalf("signature from another version: %+v, %v", sig, err)
	}
	if _, err := k.SignDigest(ctx, d[:], host.SignOptions{}); err != nil {
		t.Fatalf("current version: %v", err)
	}
}

// counting counts the public-key requests that reach the provider.
type counting struct {
	*fake.Provider
	n atomic.Int64
}

func (c *counting) PublicKey(ctx context.Context, req shared.PublicKeyRequest) (shared.PublicKeyResponse, error) {
	c.n.Add(1)
	return c.Provider.PublicKey(ctx, req)
}

func TestPublicKeyCache(t *testing.T) {
	ctx := context.Background()
	d := sha256.Sum256([]byte("m"))
	for _, tt := range []struct {
		name      string
		ttl       time.Duration
		wantCalls int64 // for one Signer, ten signatures, then PublicKey twice
	}{
		{"default TTL", 0, 1},
		{"caching off", -1, 1 + 10 + 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &counting{Provider: fake.New(fake.Config{})}
			h := hosttest.New(t, hosttest.WithProvider("count", c), hosttest.WithConfig(host.Config{PublicKeyTTL: tt.ttl}))
			k, err := h.CreateKey(ctx, "count:k", shared.ECP256)
			if err != nil {
				t.Fatal(err)
			}
			s, err := k.Signer(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 10; i++ {
				if _, err := s.Sign(nil, d[:], crypto.SHA256); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < 2; i++ {
				if _, err := k.PublicKey(ctx, "1"); err != nil {
					t.Fatal(err)
				}
			}
			if got := c.n.Load(); got != tt.wantCalls {
				t.Fatalf("%d public-key requests reached the provider; want %d", got, tt.wantCalls)
			}
			// Rotation drops the key's entries: the current key is fetched again.
			before := c.n.Load()
			v, err := k.Rotate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pk, err := k.PublicKey(ctx, "")
			if err != nil || pk.Version != v || c.n.Load() != before+1 {
				t.Fatalf("after rotation: version %q (want %q), %d new requests, %v", pk.Version, v, c.n.Load()-before, err)
			}
		})
	}
}

// noMessages claims whole-message signing (the fake's Describe) but
// answers Unimplemented for it.
type noMessages struct{ *fake.Provider }

func (n noMessages) Sign(ctx context.Context, req shared.SignRequest) (shared.SignResponse, error) {
	if req.Message != nil && req.Algorithm != shared.EdDSA {
		return shared.SignResponse{}, shared.ErrUnimplemented
	}
	return n.Provider.Sign(ctx, req)
}

func TestUnimplementedMessageSigningFallsBackToDigest(t *testing.T) {
	h := hosttest.New(t, hosttest.WithProvider("nomsg", noMessages{fake.New(fake.Config{})}))
	ctx := context.Background()
	k, err := h.CreateKey(ctx, "nomsg:k", shared.ECP384)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("hashed by the host")
	sig, err := k.SignMessage(ctx, msg, host.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.VerifyMessage(ctx, msg, sig.Signature, host.SignOptions{}); err != nil || sig.Algorithm != shared.ES384 {
		t.Fatalf("%s: %v", sig.Algorithm, err)
	}
}
