package pluginrpc

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/knhk/knhk/shared"
)

// countingProvider records calls and signs nothing real: enough to test the
// SDK's checks and batch plumbing, which never look at signature bytes.
type countingProvider struct {
	shared.UnimplementedProvider
	calls atomic.Int32
	fail  string // key id whose Sign fails with shared.ErrKeyNotFound
	block string // key id whose Sign waits for the context
	panic string // key id whose Sign panics
}

func (p *countingProvider) Describe(context.Context) (shared.Description, error) {
	return shared.Description{Name: "counting", KeyTypes: shared.KeyTypes, Algorithms: shared.Algorithms}, nil
}
func (p *countingProvider) PublicKey(context.Context, shared.PublicKeyRequest) (shared.PublicKeyResponse, error) {
	return shared.PublicKeyResponse{}, shared.ErrUnimplemented
}
func (p *countingProvider) KeyMetadata(context.Context, shared.KeyMetadataRequest) (shared.KeyMetadata, error) {
	return shared.KeyMetadata{}, shared.ErrUnimplemented
}
func (p *countingProvider) Sign(ctx context.Context, r shared.SignRequest) (shared.SignResponse, error) {
	p.calls.Add(1)
	switch r.Key.ID {
	case p.fail:
		return shared.SignResponse{}, fmt.Errorf("no key %q: %w", r.Key.ID, shared.ErrKeyNotFound)
	case p.block:
		<-ctx.Done()
		return shared.SignResponse{}, ctx.Err()
	case p.panic:
		panic("boom")
	}
	return shared.SignResponse{Signature: append([]byte("sig:"), r.Key.ID...), Version: "7"}, nil
}

// connect serves p through shared.Serve in go-plugin's test mode and connects to
// it as the host would.
func connect(t *testing.T, p shared.Provider) *Client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	reattach := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	go func() {
		if err := shared.Serve(p, shared.WithTestConfig(&plugin.ServeTestConfig{Context: ctx, ReattachConfigCh: reattach, CloseCh: closed})); err != nil {
			t.Error(err)
		}
	}()
	cfg := ClientConfig(nil)
	cfg.Reattach = <-reattach
	client := plugin.NewClient(cfg)
	t.Cleanup(func() { client.Kill(); cancel(); <-closed })
	rpc, err := client.Client()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dispense(rpc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestServeRefusesBadOptions(t *testing.T) {
	if err := shared.Serve(nil); err == nil {
		t.Fatal("Serve(nil) accepted")
	}
	if err := shared.Serve(&countingProvider{}, shared.WithLogger(nil)); err == nil {
		t.Fatal("WithLogger(nil) accepted")
	}
	if err := shared.Serve(&countingProvider{}, shared.WithTestConfig(nil)); err == nil {
		t.Fatal("WithTestConfig(nil) accepted")
	}
}

func TestServerChecksBeforeTheProvider(t *testing.T) {
	p := &countingProvider{}
	c := connect(t, p)
	ctx := context.Background()
	d := sha256.Sum256([]byte("x"))
	cases := []struct {
		name string
		req  shared.SignRequest
		want error
	}{
		{"empty key id", shared.SignRequest{Algorithm: shared.ES256, Digest: d[:]}, shared.ErrInvalidArgument},
		{"unknown algorithm", shared.SignRequest{Key: shared.KeyRef{ID: "k"}, Algorithm: "HS256", Digest: d[:]}, shared.ErrUnsupportedAlgorithm},
		{"short digest", shared.SignRequest{Key: shared.KeyRef{ID: "k"}, Algorithm: shared.ES384, Digest: d[:]}, shared.ErrInvalidArgument},
		{"EdDSA digest", shared.SignRequest{Key: shared.KeyRef{ID: "k"}, Algorithm: shared.EdDSA, Digest: d[:]}, shared.ErrInvalidArgument},
		{"no input", shared.SignRequest{Key: shared.KeyRef{ID: "k"}, Algorithm: shared.ES256}, shared.ErrInvalidArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Sign(ctx, tc.req)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if n := p.calls.Load(); n != 0 {
		t.Fatalf("provider was called %d times for bad requests", n)
	}
	if _, err := c.Sign(ctx, shared.SignRequest{Key: shared.KeyRef{ID: "k"}, Algorithm: shared.EdDSA, Message: []byte{}}); err != nil {
		t.Fatalf("empty message: %v", err)
	}
	if _, err := c.RotateKey(ctx, shared.RotateKeyRequest{Key: shared.KeyRef{ID: "k"}}); !errors.Is(err, shared.ErrUnimplemented) {
		t.Fatalf("rotate: %v", err)
	}
}

func TestPanicBecomesAnError(t *testing.T) {
	c := connect(t, &countingProvider{panic: "p"})
	d := sha256.Sum256([]byte("x"))
	_, err := c.Sign(context.Background(), shared.SignRequest{Key: shared.KeyRef{ID: "p"}, Algorithm: shared.ES256, Digest: d[:]})
	if err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("got %v", err)
	}
	// The server is still there.
	if _, err := c.Describe(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestSignBatchFallback(t *testing.T) {
	p := &countingProvider{fail: "bad", block: "slow"}
	c := connect(t, p)
	d := sha256.Sum256([]byte("x"))
	item := func(id string) shared.SignRequest {
		return shared.SignRequest{Key: shared.KeyRef{ID: id}, Algorithm: shared.ES256, Digest: d[:]}
	}
	slow := item("slow")
	slow.Deadline = time.Now().Add(50 * time.Millisecond)
	expired := item("a")
	expired.Deadline = time.Now().Add(-time.Second)
	short := item("b")
	short.Digest = d[:5]
	reqs := []shared.SignRequest{item("a"), item("bad"), slow, expired, short, item("c")}

	start := time.Now()
	res := c.SignBatch(context.Background(), reqs)
	if len(res) != len(reqs) {
		t.Fatalf("%d results for %d items", len(res), len(reqs))
	}
	for i, id := range []string{"a", "", "", "", "", "c"} {
		if id == "" {
			if res[i].Err == nil {
				t.Errorf("item %d: no error", i)
			}
			continue
		}
		if res[i].Err != nil || string(res[i].Response.Signature) != "sig:"+id || res[i].Response.Version != "7" {
			t.Errorf("item %d: %+v", i, res[i])
		}
	}
	if !errors.Is(res[2].Err, context.DeadlineExceeded) || !errors.Is(res[3].Err, context.DeadlineExceeded) {
		t.Errorf("deadlines: %v / %v", res[2].Err, res[3].Err)
	}
	if !errors.Is(res[4].Err, shared.ErrInvalidArgument) {
		t.Errorf("short digest: %v", res[4].Err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("batch waited for the slow item past its deadline")
	}
	if n := p.calls.Load(); n != 4 {
		t.Errorf("provider saw %d calls, want 4 (a, bad, slow, c)", n)
	}
}
