package vault_test

import (
	"cmp"
	"context"
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/knhk/knhk/plugins/vault/internal/vaulttest"
)

// writeFile writes content to a fresh file and returns its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// verifyPSSHashSalt verifies an RSA-PSS SHA-256 signature with salt length
// exactly the hash length.
func verifyPSSHashSalt(pub crypto.PublicKey, digest, sig []byte) error {
	rp, ok := pub.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("not an RSA key: %T", pub)
	}
	return rsa.VerifyPSS(rp, crypto.SHA256, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
}

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// watch follows the shared server (see watchServer); ctx consults it.
var watch *serverWatch

// How the shared server is watched: a busy server may miss a probe, so it
// counts as gone only after several in a row fail.
const (
	probeEvery    = time.Second
	probeTimeout  = 5 * time.Second
	probeFailures = 3
	outputLines   = 40 // of the server's output, in the report
)

// serverWatch follows a Vault server in the background: its exit, and a
// health probe every probeEvery. Once the server has exited or stopped
// answering it holds a report: when, how it exited, which test had last
// started an operation, and the server's last output lines (vaulttest
// keeps its stdout and stderr, bounded, root token and unseal key
// blanked).
type serverWatch struct {
	s        *vaulttest.Server
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	mu       sync.Mutex
	test     string          // the test that last asked for a context
	report   string          // "" while the server answers
	first    string          // the test that got the whole report
	reported map[string]bool // tests already failed with it
}

// watchServer starts watching s; close stops it.
func watchServer(s *vaulttest.Server) *serverWatch {
	w := &serverWatch{s: s, stop: make(chan struct{}), done: make(chan struct{}), reported: map[string]bool{}}
	go w.loop()
	return w
}

func (w *serverWatch) loop() {
	defer close(w.done)
	c, err := w.s.Client()
	if err != nil {
		w.fail(fmt.Sprintf("has no client: %v", err))
		return
	}
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	failures := 0
	for {
		select {
		case <-w.stop:
			return
		case <-w.s.Exited():
			w.fail(fmt.Sprintf("exited (%v)", cmp.Or(w.s.ExitErr(), error(errCleanExit))))
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		_, err := c.Sys().HealthWithContext(ctx)
		cancel()
		if err == nil {
			failures = 0
			continue
		}
		if failures++; failures >= probeFailures {
			w.fail(fmt.Sprintf("stopped answering (%d health checks in a row failed, the last with: %v)", failures, err))
			return
		}
	}
}

var errCleanExit = errors.New("exit status 0")

// fail writes the report: what happened, and the context.
func (w *serverWatch) fail(what string) {
	lines := strings.Split(strings.TrimRight(w.s.Output(), "\n"), "\n")
	if len(lines) > outputLines {
		lines = lines[len(lines)-outputLines:]
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.report = fmt.Sprintf("the Vault test server at %s %s at %s; the last test to start an operation was %s. Later tests fail at once. "+
		"Killed with no last words below: look for the OOM killer (dmesg) or for what ended the thread that started it. "+
		"Its last %d output lines:\n%s",
		w.s.Addr, what, time.Now().Format("15:04:05.000"), cmp.Or(w.test, "none"), len(lines), strings.Join(lines, "\n"))
}

// check notes the test asking and returns the report once the server has
// stopped answering: whole to the first test that asks, a pointer to it
// for the others, once per test.
func (w *serverWatch) check(test string) error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.test = test
	if w.report == "" || w.reported[test] {
		return nil
	}
	w.reported[test] = true
	if w.first == "" {
		w.first = test
		return errors.New(w.report)
	}
	return fmt.Errorf("the Vault test server stopped answering; see the failure of %s for when and its last output", w.first)
}

// close stops the watch and returns the report, "" if the server kept
// answering. Safe to call twice.
func (w *serverWatch) close() string {
	w.stopOnce.Do(func() { close(w.stop) })
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.report
}
