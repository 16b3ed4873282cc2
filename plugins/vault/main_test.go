package vault_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/knhk/knhk/plugins/vault/internal/vaulttest"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/shared/providertest"
)

var (
	srv       *vaulttest.Server // the Vault dev server every test shares
	pluginBin string            // knhk-plugin-vault built for this run
)

// TestMain starts one real Vault server and builds the plugin binary for
// all tests, and stops the server when they end.
func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	var err error
	srv, err = vaulttest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vault tests:", err)
		return 1
	}
	defer srv.Stop()
	bin, remove, err := providertest.BuildTemp("./cmd/knhk-plugin-vault")
	if err != nil {
		fmt.Fprintln(os.Stderr, "vault tests:", err)
		return 1
	}
	defer remove()
	pluginBin = bin
	// The in-process provider and the plugin binary (which inherits this
	// environment) talk to the test server and log in with the root token
	// by default; tests that need another identity say so in parameters.
	for _, v := range []string{"VAULT_NAMESPACE", "VAULT_CACERT", "VAULT_ROLE_ID", "VAULT_SECRET_ID"} {
		os.Unsetenv(v)
	}
	os.Setenv("VAULT_ADDR", srv.Addr)
	os.Setenv("VAULT_TOKEN", srv.RootToken)
	os.Setenv("VAULT_MAX_RETRIES", "1") // a sealed or dead server fails fast
	return m.Run()
}

// params points requests at the test server.
func params(extra ...string) map[string]string {
	p := map[string]string{"addr": srv.Addr}
	for i := 0; i+1 < len(extra); i += 2 {
		p[extra[i]] = extra[i+1]
	}
	return p
}

// ctx is a context for one test operation.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// keyName is a fresh key name for one test.
func keyName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// create makes a key and fails the test if it cannot.
func create(t *testing.T, p shared.Provider, id string, kt shared.KeyType, prm map[string]string) shared.CreateKeyResponse {
	t.Helper()
	resp, err := p.CreateKey(ctx(t), shared.CreateKeyRequest{Key: shared.KeyRef{ID: id, Params: prm}, Type: kt})
	if err != nil {
		t.Fatalf("CreateKey(%s, %s): %v", id, kt, err)
	}
	return resp
}

// startServer starts an extra Vault server for a test that spoils it.
func startServer() (*vaulttest.Server, error) { return vaulttest.Start() }
