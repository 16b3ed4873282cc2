package vault_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/knhk/knhk/plugins/vault"
	"github.com/knhk/knhk/shared"
)

// The provider used directly: create a Transit key, sign with it, and check
// the signature against its public key. Like the vault CLI, it reads
// VAULT_ADDR and VAULT_TOKEN when the parameters do not say otherwise.
// shared.Validate puts the SDK's request checks in front of it, as Serve
// does in the plugin binary.
func Example() {
	v := vault.New(vault.Config{})
	defer v.Close()
	p := shared.Validate(v)
	ctx := context.Background()
	key := shared.KeyRef{ID: "transit/example-release"}

	_, err := p.CreateKey(ctx, shared.CreateKeyRequest{Key: key, Type: shared.Ed25519})
	if err != nil && !errors.Is(err, shared.ErrAlreadyExists) {
		fmt.Println(err)
		return
	}
	pk, err := p.PublicKey(ctx, shared.PublicKeyRequest{Key: key})
	if err != nil {
		fmt.Println(err)
		return
	}
	pub, kt, _ := shared.ParsePublicKey(pk.DER)
	msg := []byte("release v1.2.3")
	sig, err := p.Sign(ctx, shared.SignRequest{Key: key, Algorithm: shared.EdDSA, Message: msg})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(kt, "version", sig.Version, "verifies:", shared.VerifyMessage(pub, shared.EdDSA, msg, sig.Signature) == nil)
	// Output: ed25519 version 1 verifies: true
}

// Parameters pick the Vault and the identity per request: here an AppRole
// login whose secret id is read from a file.
func ExampleNew_appRole() {
	v := vault.New(vault.Config{})
	defer v.Close()
	p := shared.Validate(v)
	_, err := p.Sign(context.Background(), shared.SignRequest{
		Key: shared.KeyRef{ID: "transit/release", Params: map[string]string{
			"addr":           "https://vault.example.com:8200",
			"auth":           "approle",
			"role_id":        "5f1c0e0a-role",
			"secret_id_file": "/run/secrets/vault-secret-id",
			"colour":         "blue", // a typo'd or unknown parameter is refused
		}},
		Algorithm: shared.EdDSA, Message: []byte("hello"),
	})
	fmt.Println(errors.Is(err, shared.ErrInvalidArgument))
	// Output: true
}
