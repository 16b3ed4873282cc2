package fake_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/knhk/knhk/plugins/fake"
	"github.com/knhk/knhk/shared"
)

// The fake in-process, behind the request checks the plugin binary
// applies on the wire: create a key, sign a digest, check the signature
// with the standard library.
func ExampleNew() {
	ctx := context.Background()
	p := shared.Validate(fake.New(fake.Config{}))
	key := shared.KeyRef{ID: "demo"}

	created, err := p.CreateKey(ctx, shared.CreateKeyRequest{Key: key, Type: shared.ECP256})
	if err != nil {
		fmt.Println(err)
		return
	}
	digest := sha256.Sum256([]byte("hello"))
	sig, err := p.Sign(ctx, shared.SignRequest{Key: key, Algorithm: shared.ES256, Digest: digest[:]})
	if err != nil {
		fmt.Println(err)
		return
	}
	pk, err := p.PublicKey(ctx, shared.PublicKeyRequest{Key: key})
	if err != nil {
		fmt.Println(err)
		return
	}
	pub, kt, err := shared.ParsePublicKey(pk.DER)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("created", created.KeyID, "version", created.Version, "type", kt)
	fmt.Println("signed with version", sig.Version, "valid:", shared.VerifyDigest(pub, shared.ES256, digest[:], sig.Signature) == nil)
	// Output:
	// created demo version 1 type ec-p256
	// signed with version 1 valid: true
}

// Request parameters inject faults: here every second call fails as if the
// service were down. The same works through the plugin binary.
func ExampleNew_faults() {
	ctx := context.Background()
	p := shared.Validate(fake.New(fake.Config{}))
	_, _ = p.CreateKey(ctx, shared.CreateKeyRequest{Key: shared.KeyRef{ID: "flaky"}, Type: shared.Ed25519})

	flaky := shared.KeyRef{ID: "flaky", Params: map[string]string{
		"fault_error": "unavailable",
		"fault_every": "2",
	}}
	for i := 1; i <= 4; i++ {
		_, err := p.Sign(ctx, shared.SignRequest{Key: flaky, Algorithm: shared.EdDSA, Message: []byte("m")})
		fmt.Println("call", i, "unavailable:", errors.Is(err, shared.ErrUnavailable))
	}
	// Output:
	// call 1 unavailable: false
	// call 2 unavailable: true
	// call 3 unavailable: false
	// call 4 unavailable: true
}

// With a seed, the same name always gives the same key, in any process.
func ExampleNew_seed() {
	ctx := context.Background()
	key := shared.KeyRef{ID: "repro", Params: map[string]string{"seed": "my-test-seed"}}
	der := func() []byte {
		p := shared.Validate(fake.New(fake.Config{}))
		if _, err := p.CreateKey(ctx, shared.CreateKeyRequest{Key: key, Type: shared.Ed25519}); err != nil {
			return nil
		}
		pk, err := p.PublicKey(ctx, shared.PublicKeyRequest{Key: key})
		if err != nil {
			return nil
		}
		return pk.DER
	}
	a, b := der(), der()
	fmt.Println("same key:", a != nil && string(a) == string(b))
	// Output:
	// same key: true
}
