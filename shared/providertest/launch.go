package providertest

import (
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/knhk/knhk/shared"
)

// Launch starts a plugin binary exactly as the host does (go-plugin over
// gRPC, knhk's handshake, AutoMTLS) and returns its Provider, which is also
// a shared.BatchSigner. The plugin's log lines go to t.Log. The process is
// killed when the test ends; a plugin that fails to start fails the test.
func Launch(t testing.TB, binary string) shared.Provider {
	t.Helper()
	return launch(t, binary)
}

// launcher is the part of testing.TB Launch needs.
type launcher interface {
	Helper()
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

func launch(t launcher, binary string) *shared.Client {
	t.Helper()
	if binary == "" {
		t.Fatalf("providertest: no plugin binary given")
	}
	logs := &testLog{t: t}
	cfg := shared.ClientConfig(exec.Command(binary))
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Info, Output: logs})
	client := plugin.NewClient(cfg)
	t.Cleanup(func() {
		client.Kill() // waits for the log goroutines
		logs.close()
	})
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("providertest: starting plugin %s: %v", binary, err)
	}
	p, err := shared.Dispense(rpc)
	if err != nil {
		t.Fatalf("providertest: dispensing provider from %s: %v", binary, err)
	}
	return p
}

// testLog writes the plugin's log lines to t.Logf until the test ends.
type testLog struct {
	mu     sync.Mutex
	t      launcher
	closed bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (l *testLog) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}
