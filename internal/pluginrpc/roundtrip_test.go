package pluginrpc

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
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
	return shared.Description{Name: "counting", KeyTypes: shared.KeyTypes, Algorithms: shared.Algorithms, Quotas: testQuotas}, nil
}

// testQuotas is what countingProvider declares: every field set.
var testQuotas = []shared.QuotaClass{{
	Name: "sign-rsa", Operations: []shared.Operation{shared.OpSign, shared.OpVerify}, KeyTypes: []shared.KeyType{shared.RSA2048, shared.RSA4096},
	Scope: []string{"region", shared.ScopeKeyOrigin}, Rate: 12.5, Burst: 3, Weights: map[shared.KeyType]int{shared.RSA4096: 8}, Source: "https://example.com/quotas",
}, {Name: "rest", Rate: 100}}

// TestDescribeQuotas: the quota classes cross the boundary whole.
func TestDescribeQuotas(t *testing.T) {
	d, err := connect(t, &countingProvider{}).Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d.Quotas, testQuotas) {
		t.Errorf("quotas %+v, want %+v", d.Quotas, testQuotas)
	}
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
	res := collect(t, c, context.Background(), reqs)
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

// collect runs a batch through c and returns its results in order,
// failing t unless every item got exactly one.
func collect(t *testing.T, c *Client, ctx context.Context, reqs []shared.SignRequest) []shared.SignResult {
	t.Helper()
	res := make([]shared.SignResult, len(reqs))
	got := make([]int, len(reqs))
	c.SignBatch(ctx, reqs, func(i int, r shared.SignResult) {
		got[i]++
		res[i] = r
	})
	for i, n := range got {
		if n != 1 {
			t.Fatalf("item %d got %d results", i, n)
		}
	}
	return res
}

// streamingProvider signs every item at once except "slow" ones, which
// wait for release; with bugs it breaks the BatchSigner contract the way
// a careless native batch could.
type streamingProvider struct {
	countingProvider
	release chan struct{}
	twice   bool // emit the first item's result twice
	skip    bool // return without a result for the last item
	late    bool // emit the last item's result after returning
}

func (p *streamingProvider) SignBatch(ctx context.Context, reqs []shared.SignRequest, emit func(int, shared.SignResult)) {
	var wg sync.WaitGroup
	for i, r := range reqs {
		switch {
		case p.skip && i == len(reqs)-1:
			continue
		case p.late && i == len(reqs)-1:
			go func() {
				time.Sleep(100 * time.Millisecond)
				emit(i, shared.SignResult{Response: shared.SignResponse{Signature: []byte("late"), Version: "7"}})
			}()
			continue
		case r.Key.ID == "slow":
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-p.release
				emit(i, shared.SignItem(ctx, p, r))
			}()
			continue
		}
		res := shared.SignItem(ctx, p, r)
		emit(i, res)
		if p.twice && i == 0 {
			emit(i, shared.SignResult{Err: shared.ErrUnavailable})
		}
	}
	wg.Wait()
}

// TestSignBatchStreams: results cross the wire as the provider emits them,
// natively or through the SDK's fallback: the fast items' results arrive
// while a slow item is still being signed, then the slow one's.
func TestSignBatchStreams(t *testing.T) {
	d := sha256.Sum256([]byte("x"))
	item := func(id string) shared.SignRequest {
		return shared.SignRequest{Key: shared.KeyRef{ID: id}, Algorithm: shared.ES256, Digest: d[:]}
	}
	for _, native := range []bool{true, false} {
		t.Run(fmt.Sprintf("native=%v", native), func(t *testing.T) {
			release := make(chan struct{})
			var p shared.Provider = &streamingProvider{release: release}
			if !native {
				p = &countingProvider{block: "slow"}
			}
			c := connect(t, p)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			reqs := []shared.SignRequest{item("a"), item("slow"), item("b"), item("c")}
			fast := make(chan int, len(reqs))
			done := make(chan struct{})
			var res []shared.SignResult
			go func() {
				defer close(done)
				res = make([]shared.SignResult, len(reqs))
				c.SignBatch(ctx, reqs, func(i int, r shared.SignResult) {
					res[i] = r
					fast <- i
				})
			}()
			for range 3 {
				select {
				case i := <-fast:
					if reqs[i].Key.ID == "slow" {
						t.Fatal("the slow item's result came before the others")
					}
				case <-time.After(10 * time.Second):
					t.Fatal("the fast items' results did not come while the slow item was held")
				}
			}
			if native {
				close(release)
			} else {
				cancel() // the fallback's slow Sign waits for its context
			}
			<-done
			for i, r := range res {
				if reqs[i].Key.ID == "slow" {
					continue
				}
				if r.Err != nil || string(r.Response.Signature) != "sig:"+reqs[i].Key.ID {
					t.Errorf("item %d: %+v", i, r)
				}
			}
			if native && res[1].Err != nil {
				t.Errorf("slow item: %v", res[1].Err)
			}
		})
	}
}

// TestSignBatchContract: the SDK holds a native batch to one result per
// item: a second result is dropped, a missing one becomes ErrUnavailable,
// and one emitted after SignBatch returned never reaches the host.
func TestSignBatchContract(t *testing.T) {
	d := sha256.Sum256([]byte("x"))
	reqs := []shared.SignRequest{
		{Key: shared.KeyRef{ID: "a"}, Algorithm: shared.ES256, Digest: d[:]},
		{Key: shared.KeyRef{ID: "b"}, Algorithm: shared.ES256, Digest: d[:]},
	}
	for _, tc := range []struct {
		name string
		p    *streamingProvider
		last error // nil: a good signature for the last item
	}{
		{"twice", &streamingProvider{twice: true}, nil},
		{"skip", &streamingProvider{skip: true}, shared.ErrUnavailable},
		{"late", &streamingProvider{late: true}, shared.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := collect(t, connect(t, tc.p), context.Background(), reqs)
			if res[0].Err != nil || string(res[0].Response.Signature) != "sig:a" {
				t.Errorf("first item: %+v", res[0])
			}
			if tc.last == nil && (res[1].Err != nil || string(res[1].Response.Signature) != "sig:b") {
				t.Errorf("last item: %+v", res[1])
			}
			if tc.last != nil && !errors.Is(res[1].Err, tc.last) {
				t.Errorf("last item: %+v, want %v", res[1], tc.last)
			}
			time.Sleep(200 * time.Millisecond) // the late result, if any, is dropped meanwhile
		})
	}
}
