package azure_test

import (
	"context"
	"fmt"
	"os"

	"github.com/knhk/knhk/plugins/azure"
	"github.com/knhk/knhk/plugins/azure/internal/kvtest"
	"github.com/knhk/knhk/shared"
)

// Example creates a key in a vault, signs a digest with it and checks the
// signature against the public key. The vault here is the tests' Key Vault
// server; with a real one, the key id is
// https://<vault>.vault.azure.net/keys/<name> and ca_file is not needed.
func Example() {
	srv, err := kvtest.New("")
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	// A static bearer token, as AZURE_AUTH_TOKEN; without it the provider
	// uses DefaultAzureCredential.
	os.Setenv(azure.EnvAuthToken, srv.Token)
	defer os.Unsetenv(azure.EnvAuthToken)

	ctx := context.Background()
	p := azure.New(azure.Config{})
	ref := shared.KeyRef{ID: srv.KeyID("release"), Params: map[string]string{azure.ParamCAFile: srv.CAFile}}
	if _, err := p.CreateKey(ctx, shared.CreateKeyRequest{Key: ref, Type: shared.ECP256}); err != nil {
		panic(err)
	}
	digest, _ := shared.Digest(shared.ES256, []byte("release v1.0"))
	sig, err := p.Sign(ctx, shared.SignRequest{Key: ref, Algorithm: shared.ES256, Digest: digest})
	if err != nil {
		panic(err)
	}
	pk, err := p.PublicKey(ctx, shared.PublicKeyRequest{Key: ref})
	if err != nil {
		panic(err)
	}
	pub, kt, _ := shared.ParsePublicKey(pk.DER)
	fmt.Println(kt, shared.VerifyDigest(pub, shared.ES256, digest, sig.Signature) == nil, sig.Version == pk.Version)
	// Output: ec-p256 true true
}

// ExampleProvider_RotateKey rotates a key natively: a new version signs,
// the old one keeps verifying.
func ExampleProvider_RotateKey() {
	srv, err := kvtest.New("")
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	os.Setenv(azure.EnvAuthToken, srv.Token)
	defer os.Unsetenv(azure.EnvAuthToken)

	ctx := context.Background()
	p := azure.New(azure.Config{})
	ref := shared.KeyRef{ID: srv.KeyID("signing"), Params: map[string]string{azure.ParamCAFile: srv.CAFile}}
	first, err := p.CreateKey(ctx, shared.CreateKeyRequest{Key: ref, Type: shared.ECP384})
	if err != nil {
		panic(err)
	}
	rotated, err := p.RotateKey(ctx, shared.RotateKeyRequest{Key: ref})
	if err != nil {
		panic(err)
	}
	md, err := p.KeyMetadata(ctx, shared.KeyMetadataRequest{Key: ref})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(md.Versions), md.Versions[0].Version == first.Version, md.CurrentVersion == rotated.Version)
	// Output: 2 true true
}
