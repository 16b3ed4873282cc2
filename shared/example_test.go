package shared_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/knhk/knhk/shared"
)

// memProvider is a complete provider: one in-memory P-256 key named "demo".
// A real plugin's main.go holds this type and calls shared.Serve in main:
//
//	func main() {
//		if err := shared.Serve(newMemProvider()); err != nil {
//			log.Fatal(err)
//		}
//	}
type memProvider struct {
	shared.UnimplementedProvider // no create, list, rotate or provider-side verify
	key                          *ecdsa.PrivateKey
}

func newMemProvider() *memProvider {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return &memProvider{key: k}
}

func (p *memProvider) Describe(context.Context) (shared.Description, error) {
	return shared.Description{Name: "mem", Version: "0.1.0",
		KeyTypes: []shared.KeyType{shared.ECP256}, Algorithms: []shared.Algorithm{shared.ES256}}, nil
}

func (p *memProvider) find(ref shared.KeyRef, version string) error {
	if ref.ID != "demo" || (version != "" && version != "1") {
		return fmt.Errorf("mem: no key %q version %q: %w", ref.ID, version, shared.ErrKeyNotFound)
	}
	return nil
}

func (p *memProvider) PublicKey(_ context.Context, r shared.PublicKeyRequest) (shared.PublicKeyResponse, error) {
	if err := p.find(r.Key, r.Version); err != nil {
		return shared.PublicKeyResponse{}, err
	}
	der, err := x509.MarshalPKIXPublicKey(&p.key.PublicKey)
	return shared.PublicKeyResponse{DER: der, Version: "1", Type: shared.ECP256}, err
}

func (p *memProvider) Sign(_ context.Context, r shared.SignRequest) (shared.SignResponse, error) {
	if err := p.find(r.Key, r.Version); err != nil {
		return shared.SignResponse{}, err
	}
	if err := shared.CheckAlgorithm(shared.ECP256, r.Algorithm); err != nil {
		return shared.SignResponse{}, err
	}
	digest := r.Digest
	if r.Message != nil {
		digest, _ = shared.Digest(r.Algorithm, r.Message)
	}
	sig, err := ecdsa.SignASN1(rand.Reader, p.key, digest)
	return shared.SignResponse{Signature: sig, Version: "1"}, err
}

func (p *memProvider) KeyMetadata(_ context.Context, r shared.KeyMetadataRequest) (shared.KeyMetadata, error) {
	if err := p.find(r.Key, ""); err != nil {
		return shared.KeyMetadata{}, err
	}
	return shared.KeyMetadata{KeyID: "demo", Type: shared.ECP256, Algorithms: []shared.Algorithm{shared.ES256},
		CurrentVersion: "1", Versions: []shared.KeyVersion{{Version: "1", Enabled: true}}}, nil
}

// serveInProcess runs p the way a plugin binary would, but inside this
// process (go-plugin test mode), and connects to it like the host does.
func serveInProcess(ctx context.Context, p shared.Provider) (*shared.Client, func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	reattach := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	go shared.Serve(p, shared.WithTestConfig(&plugin.ServeTestConfig{Context: ctx, ReattachConfigCh: reattach, CloseCh: closed}))
	var rc *plugin.ReattachConfig
	select {
	case rc = <-reattach:
	case <-time.After(10 * time.Second):
		cancel()
		return nil, nil, fmt.Errorf("plugin did not start")
	}
	stop := func() { cancel(); <-closed }
	cfg := shared.ClientConfig(nil)
	cfg.Reattach = rc
	client := plugin.NewClient(cfg)
	rpc, err := client.Client()
	if err != nil {
		stop()
		return nil, nil, err
	}
	prov, err := shared.Dispense(rpc)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return prov, func() { client.Kill(); stop() }, nil
}

// A complete provider plugin is one type that implements shared.Provider
// and a main that calls shared.Serve. Here the plugin is served in-process
// and called as the host would call it.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prov, stop, err := serveInProcess(ctx, newMemProvider())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	key := shared.KeyRef{ID: "demo"}
	digest := sha256.Sum256([]byte("hello"))
	sig, err := prov.Sign(ctx, shared.SignRequest{Key: key, Algorithm: shared.ES256, Digest: digest[:]})
	if err != nil {
		fmt.Println(err)
		return
	}
	pk, _ := prov.PublicKey(ctx, shared.PublicKeyRequest{Key: key})
	pub, _, _ := shared.ParsePublicKey(pk.DER)
	fmt.Println("version", sig.Version, "verifies:", shared.VerifyDigest(pub, shared.ES256, digest[:], sig.Signature) == nil)
	// Output: version 1 verifies: true
}
