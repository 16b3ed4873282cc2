package aws_test

import (
	"context"
	"fmt"
	"os"

	"github.com/knhk/knhk/plugins/aws"
	"github.com/knhk/knhk/plugins/aws/internal/localkms"
	"github.com/knhk/knhk/shared"
)

// ExampleNew creates a key under an alias in an emulated KMS, signs a
// message with it, and checks the signature with the standard library.
// A real deployment leaves out the endpoint and names a region.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "knhk-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	srv := localkms.New(dir)
	defer srv.Close()
	ctx := context.Background()
	p := shared.Validate(aws.New(aws.Config{})) // checks requests as the plugin does when served
	ref := shared.KeyRef{ID: "alias/example", Params: map[string]string{"endpoint": srv.URL}}

	if _, err = p.CreateKey(ctx, shared.CreateKeyRequest{Key: ref, Type: shared.ECP256}); err != nil {
		fmt.Println(err)
		return
	}
	msg := []byte("hello")
	sig, err := p.Sign(ctx, shared.SignRequest{Key: ref, Algorithm: shared.ES256, Message: msg})
	if err != nil {
		fmt.Println(err)
		return
	}
	pk, err := p.PublicKey(ctx, shared.PublicKeyRequest{Key: ref})
	if err != nil {
		fmt.Println(err)
		return
	}
	pub, kt, _ := shared.ParsePublicKey(pk.DER)
	fmt.Println(kt, shared.VerifyMessage(pub, shared.ES256, msg, sig.Signature) == nil, sig.Version == pk.Version)
	// Output: ec-p256 true true
}

// ExampleProvider_RotateKey rotates an alias: a new key becomes current
// and the old one stays, as version 1, for verification.
func ExampleProvider_RotateKey() {
	dir, err := os.MkdirTemp("", "knhk-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	srv := localkms.New(dir)
	defer srv.Close()
	ctx := context.Background()
	p := shared.Validate(aws.New(aws.Config{})) // checks requests as the plugin does when served
	ref := shared.KeyRef{ID: "alias/rotating", Params: map[string]string{"endpoint": srv.URL}}

	created, err := p.CreateKey(ctx, shared.CreateKeyRequest{Key: ref, Type: shared.RSA2048})
	if err != nil {
		fmt.Println(err)
		return
	}
	rotated, err := p.RotateKey(ctx, shared.RotateKeyRequest{Key: ref})
	if err != nil {
		fmt.Println(err)
		return
	}
	md, err := p.KeyMetadata(ctx, shared.KeyMetadataRequest{Key: ref})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(md.Versions), md.Versions[0].Version == created.Version, md.CurrentVersion == rotated.Version)
	// Output: 2 true true
}
