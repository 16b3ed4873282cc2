package aws_test

import (
	"context"
	"crypto"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/knhk/knhk/plugins/aws"
	"github.com/knhk/knhk/plugins/aws/internal/localkms"
	"github.com/knhk/knhk/shared"
)

// env is one emulator and an in-process provider pointed at it, behind
// the SDK's request validation as the plugin serves it.
type env struct {
	srv    *localkms.Server
	p      shared.Provider
	params map[string]string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := localkms.Start(t)
	return &env{srv: srv, p: shared.Validate(aws.New(aws.Config{})), params: map[string]string{"endpoint": srv.URL}}
}

func (e *env) ref(id string) shared.KeyRef { return shared.KeyRef{ID: id, Params: e.params} }

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// create makes a key (under alias when alias is not empty) and returns the
// id CreateKey answered and the first version.
func (e *env) create(t *testing.T, alias string, kt shared.KeyType) (string, string) {
	t.Helper()
	r, err := e.p.CreateKey(ctxT(t), shared.CreateKeyRequest{Key: e.ref(alias), Type: kt})
	if err != nil {
		t.Fatalf("CreateKey(%q, %s): %v", alias, kt, err)
	}
	if r.KeyID == "" || r.Version == "" {
		t.Fatalf("CreateKey(%q, %s) = %+v: empty id or version", alias, kt, r)
	}
	return r.KeyID, r.Version
}

// publicKey fetches and parses a key's public key.
func (e *env) publicKey(t *testing.T, id, version string) (crypto.PublicKey, shared.PublicKeyResponse) {
	t.Helper()
	r, err := e.p.PublicKey(ctxT(t), shared.PublicKeyRequest{Key: e.ref(id), Version: version})
	if err != nil {
		t.Fatalf("PublicKey(%s, %q): %v", id, version, err)
	}
	pub, kt, err := shared.ParsePublicKey(r.DER)
	if err != nil {
		t.Fatal(err)
	}
	if kt != r.Type {
		t.Fatalf("PublicKey type %s, DER is %s", r.Type, kt)
	}
	return pub, r
}

// wantErr fails unless err wraps want.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// noSecrets fails if an error message carries the test credentials.
func noSecrets(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{localkms.SecretAccessKey, localkms.AccessKeyID} {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("error message leaks a credential: %v", err)
		}
	}
}

func digestOf(t *testing.T, alg shared.Algorithm, msg []byte) []byte {
	t.Helper()
	d, err := shared.Digest(alg, msg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
