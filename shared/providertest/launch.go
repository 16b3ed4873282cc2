package providertest

import (
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/knhk/knhk/internal/pluginrpc"
	"github.com/knhk/knhk/shared"
)

// Launch starts a plugin binary exactly as the host does (go-plugin over
// gRPC, knhk's handshake, AutoMTLS) and returns its Provider, which is also
// a shared.BatchSigner. The plugin's log lines go to t.Log. The process is
// killed when the test ends; a plugin that fails to start fails the test,
// and so does one that reports a data race on stderr (a plugin built with
// -race, as Build builds it when the test runs with -race).
func Launch(t testing.TB, binary string) shared.Provider {
	t.Helper()
	return launch(t, binary)
}

// launcher is the part of testing.TB Launch needs.
type launcher interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

func launch(t launcher, binary string) *pluginrpc.Client {
	t.Helper()
	if binary == "" {
		t.Fatalf("providertest: no plugin binary given")
	}
	logs := &testLog{t: t}
	races := &raceWatch{}
	cfg := pluginrpc.ClientConfig(exec.Command(binary))
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Info, Output: logs})
	cfg.Stderr = races
	client := plugin.NewClient(cfg)
	t.Cleanup(func() {
		client.Kill() // waits for the log goroutines
		logs.close()
		if report := races.report(); report != "" {
			t.Errorf("providertest: plugin %s reported a data race (it runs with the race detector):\n%s", binary, report)
		}
	})
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("providertest: starting plugin %s: %v", binary, err)
	}
	p, err := pluginrpc.Dispense(rpc)
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

// raceWatch reads the plugin's raw stderr (go-plugin copies it there line
// by line; the log only shows non-JSON lines at debug level) and keeps the
// first data race report the race detector prints.
type raceWatch struct {
	mu      sync.Mutex
	partial []byte   // an unfinished line
	lines   []string // the first report, from its WARNING line on
	inside  bool     // reading a report
}

// Bounds on the report kept for the failure message.
const raceReportLines = 40

func (w *raceWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := strings.IndexByte(string(w.partial), '\n')
		if i < 0 {
			break
		}
		w.line(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}

// line takes one stderr line.
func (w *raceWatch) line(s string) {
	switch {
	case strings.Contains(s, "WARNING: DATA RACE") && w.lines == nil:
		w.inside = true
	case !w.inside:
		return
	case strings.HasPrefix(s, "=================="), len(w.lines) >= raceReportLines:
		w.inside = false
		return
	}
	w.lines = append(w.lines, s)
}

// report is the first race report, or "" when there was none.
func (w *raceWatch) report() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.line(string(w.partial))
		w.partial = nil
	}
	return strings.Join(w.lines, "\n")
}
