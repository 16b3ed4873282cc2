package hosttest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/plugins/fake"
	"github.com/knhk/knhk/shared"
)

// moving is a provider whose key ids are aliases: creating a key under an
// alias makes a new key and points the alias at it, and returns the new
// key's own id (as a service that names keys itself would).
type moving struct {
	*fake.Provider
	mu     sync.Mutex
	target map[string]string
	made   int
}

func (p *moving) resolve(k shared.KeyRef) shared.KeyRef {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.target[k.ID]; ok {
		k.ID = t
	}
	return k
}

func (p *moving) CreateKey(ctx context.Context, req shared.CreateKeyRequest) (shared.CreateKeyResponse, error) {
	alias := req.Key.ID
	p.mu.Lock()
	p.made++
	req.Key.ID = fmt.Sprintf("%s-%d", alias, p.made)
	p.mu.Unlock()
	resp, err := p.Provider.CreateKey(ctx, req)
	if err == nil {
		p.mu.Lock()
		p.target[alias] = req.Key.ID
		p.mu.Unlock()
	}
	return resp, err
}

func (p *moving) PublicKey(ctx context.Context, req shared.PublicKeyRequest) (shared.PublicKeyResponse, error) {
	req.Key = p.resolve(req.Key)
	return p.Provider.PublicKey(ctx, req)
}

// TestCreateKeyRefreshesEveryName: whichever way a key is created (the
// Host or the provider Host.Provider returns), the host forgets the cached
// public keys of the name asked for and of the id the provider returned.
func TestCreateKeyRefreshesEveryName(t *testing.T) {
	ctx := context.Background()
	for _, via := range []string{"Host.CreateKey", "Host.Provider"} {
		t.Run(via, func(t *testing.T) {
			p := &moving{Provider: fake.New(fake.Config{}), target: map[string]string{}}
			h := hosttest.New(t, hosttest.WithProvider("moving", p))
			create := func() {
				t.Helper()
				if via == "Host.CreateKey" {
					if _, err := h.CreateKey(ctx, "moving:release", shared.ECP256); err != nil {
						t.Fatal(err)
					}
					return
				}
				mp, err := h.Provider(ctx, "moving")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := mp.CreateKey(ctx, shared.CreateKeyRequest{Key: shared.KeyRef{ID: "release"}, Type: shared.ECP256}); err != nil {
					t.Fatal(err)
				}
			}
			alias, err := h.Key(ctx, "moving:release")
			if err != nil {
				t.Fatal(err)
			}
			create()
			first, err := alias.PublicKey(ctx, "") // cached now
			if err != nil {
				t.Fatal(err)
			}
			create() // the alias now names another key
			second, err := alias.PublicKey(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			if string(first.DER) == string(second.DER) {
				t.Fatalf("via %s: the alias still has the public key of the key it named before", via)
			}
		})
	}
}
