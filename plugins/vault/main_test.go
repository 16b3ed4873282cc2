package vault_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"strings"
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
	watch = watchServer(srv)
	defer func() {
		if report := watch.close(); report != "" {
			fmt.Fprintln(os.Stderr, "vault tests:", report)
		}
	}()
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

// ctx is a context for one test operation. Once the shared Vault server
// has stopped answering, it fails the test, saying so (see watchServer),
// and is cancelled already, so the test's calls fail at once.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	if err := watch.check(t.Name()); err != nil {
		t.Error(err)
		cancel()
	}
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

// TestServerWatch: a test server outlives goroutines that lock a thread
// and end (as the host's plugin spawner does at Close; if the thread that
// started the server were one of them, the kernel would kill the server);
// once it is stopped, the watch reports it with its exit status and
// output, to the first test whole and once per test.
func TestServerWatch(t *testing.T) {
	s, err := vaulttest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	w := watchServer(s)
	defer w.close()
	for range 200 {
		done := make(chan struct{})
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
			close(done)
		}()
		<-done
	}
	time.Sleep(probeEvery * (probeFailures + 1))
	if err := w.check("TestA"); err != nil {
		t.Fatalf("the server died while threads ended: %v", err)
	}
	s.Stop()
	deadline := time.Now().Add(10 * time.Second)
	var report error
	for report == nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		report = w.check("TestA")
	}
	if report == nil {
		t.Fatal("no report after the server stopped")
	}
	for _, want := range []string{s.Addr, "exited (exit status", "TestA", "output lines", "shutdown triggered"} {
		if !strings.Contains(report.Error(), want) {
			t.Errorf("report lacks %q:\n%v", want, report)
		}
	}
	if strings.Contains(report.Error(), s.RootToken) {
		t.Errorf("report shows the root token")
	}
	if err := w.check("TestA"); err != nil {
		t.Errorf("a second report to the same test: %v", err)
	}
	if err := w.check("TestB"); err == nil || !strings.Contains(err.Error(), "see the failure of TestA") {
		t.Errorf("report to a later test = %v; want a pointer to TestA's", err)
	}
	if got := w.close(); got != report.Error() {
		t.Errorf("close returned %q; want the report", got)
	}
}
