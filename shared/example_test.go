package shared_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"fmt"

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
	// Validate (which Serve applies) hands a digest of the right length.
	sig, err := ecdsa.SignASN1(rand.Reader, p.key, r.Digest)
	return shared.SignResponse{Signature: sig, Version: "1"}, err
}

func (p *memProvider) KeyMetadata(_ context.Context, r shared.KeyMetadataRequest) (shared.KeyMetadata, error) {
	if err := p.find(r.Key, ""); err != nil {
		return shared.KeyMetadata{}, err
	}
	return shared.KeyMetadata{KeyID: "demo", Type: shared.ECP256, Algorithms: []shared.Algorithm{shared.ES256},
		CurrentVersion: "1", Versions: []shared.KeyVersion{{Version: "1", Enabled: true}}}, nil
}

// A complete provider plugin is one type that implements shared.Provider
// and a main that calls shared.Serve. Here the provider is called
// in-process through shared.Validate, the same checks Serve applies.
func Example() {
	ctx := context.Background()
	prov := shared.Validate(newMemProvider())

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

	// The SDK refuses a bad request before the provider sees it.
	_, err = prov.Sign(ctx, shared.SignRequest{Key: key, Algorithm: shared.ES256, Digest: digest[:20]})
	fmt.Println(err)
	// Output:
	// version 1 verifies: true
	// invalid argument: ES256 needs a 32-byte SHA-256 digest, got 20 bytes
}

// A provider declares its parameters once and parses every request's with
// the schema: unknown names, malformed values and secrets get the same
// errors in every plugin.
func ExampleParamSchema() {
	schema := shared.NewParamSchema("mykms",
		shared.Param{Name: "endpoint", Kind: shared.ParamURL, Required: true, Doc: "the KMS endpoint"},
		shared.Param{Name: "hsm", Kind: shared.ParamBool, Doc: "create HSM-backed keys"},
	)
	p, err := schema.Parse(map[string]string{"endpoint": "https://kms.example:8443", "hsm": "true"})
	fmt.Println(p.String("endpoint"), p.Bool("hsm"), err)

	_, err = schema.Parse(map[string]string{"endpoint": "https://kms.example:8443", "regoin": "eu"})
	fmt.Println(err)
	_, err = schema.Parse(map[string]string{"endpoint": "https://kms.example:8443", "password": "hunter2"})
	fmt.Println(err)
	// Output:
	// https://kms.example:8443 true <nil>
	// invalid argument: mykms: unknown parameter "regoin"; known: endpoint, hsm
	// invalid argument: mykms: parameter "password" looks like a secret and is refused: key references end up in configs, logs and shell history, so credentials come from the plugin's environment or a file (known parameters: endpoint, hsm)
}
