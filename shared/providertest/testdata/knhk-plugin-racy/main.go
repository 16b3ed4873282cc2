// Command knhk-plugin-racy is a provider plugin with a data race, for the
// conformance kit's own tests: Sign counts its calls without a lock. Its
// one P-256 key is named "demo".
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/knhk/knhk/shared"
)

type provider struct {
	shared.UnimplementedProvider
	key   *ecdsa.PrivateKey
	signs int // the race: concurrent Signs write it unguarded
}

func (p *provider) Describe(context.Context) (shared.Description, error) {
	return shared.Description{Name: "racy", KeyTypes: []shared.KeyType{shared.ECP256},
		Algorithms: shared.AlgorithmsFor(shared.ECP256)}, nil
}

func find(ref shared.KeyRef, version string) error {
	if ref.ID != "demo" || (version != "" && version != "1") {
		return fmt.Errorf("%w: racy: no key %s version %s", shared.ErrKeyNotFound, shared.Quote(ref.ID), shared.Quote(version))
	}
	return nil
}

func (p *provider) PublicKey(_ context.Context, r shared.PublicKeyRequest) (shared.PublicKeyResponse, error) {
	if err := find(r.Key, r.Version); err != nil {
		return shared.PublicKeyResponse{}, err
	}
	der, err := x509.MarshalPKIXPublicKey(&p.key.PublicKey)
	return shared.PublicKeyResponse{DER: der, Version: "1", Type: shared.ECP256}, err
}

func (p *provider) Sign(_ context.Context, r shared.SignRequest) (shared.SignResponse, error) {
	p.signs++
	if err := find(r.Key, r.Version); err != nil {
		return shared.SignResponse{}, err
	}
	if err := shared.CheckAlgorithm(shared.ECP256, r.Algorithm); err != nil {
		return shared.SignResponse{}, err
	}
	sig, err := ecdsa.SignASN1(rand.Reader, p.key, r.Digest)
	return shared.SignResponse{Signature: sig, Version: "1"}, err
}

func (p *provider) KeyMetadata(_ context.Context, r shared.KeyMetadataRequest) (shared.KeyMetadata, error) {
	if err := find(r.Key, ""); err != nil {
		return shared.KeyMetadata{}, err
	}
	return shared.KeyMetadata{KeyID: "demo", Type: shared.ECP256, Algorithms: []shared.Algorithm{shared.ES256},
		CurrentVersion: "1", Versions: []shared.KeyVersion{{Version: "1", Enabled: true}}}, nil
}

func main() {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err == nil {
		err = shared.Serve(&provider{key: key})
	}
	if err != nil {
		shared.Logger().Error("knhk-plugin-racy cannot serve", "error", err)
		os.Exit(1)
	}
}
