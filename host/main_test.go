package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/knhk/knhk/internal/contract"
	"github.com/knhk/knhk/plugins/fake"
	"github.com/knhk/knhk/shared"
	kmsv1 "github.com/knhk/knhk/shared/proto/knhk/kms/v1"
	"github.com/knhk/knhk/shared/providertest"
)

// Test plugins. The fake is the real plugin binary, built once. The others
// are this test binary itself, copied under a plugin name: TestMain looks
// at its own name and behaves as that plugin.
const (
	markerPlugin      = "knhk-plugin-marker"      // writes <its path>.ran, then serves the fake
	wrongProtoPlugin  = "knhk-plugin-wrongproto"  // serves the fake on protocol version 2
	wrongCookiePlugin = "knhk-plugin-wrongcookie" // expects another magic cookie
	crashyPlugin      = "knhk-plugin-crashy"      // writes a line to stderr and exits 3, before the handshake
)

// envDumpDir: a copy of this test binary in a directory of that name,
// whatever its plugin name, writes its environment to <its path>.env and
// exits (see TestPluginEnvironment).
const envDumpDir = "envdump"

// childHostEnv, when set (to a plugin directory), makes this test binary a
// small host that signs in a loop with the fake from that directory (see
// TestNoPluginOutlivesItsHost).
const childHostEnv = "KNHK_TEST_CHILD_HOST"

var (
	fakeDir string // holds only knhk-plugin-fake
	fakeBin string
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(childHostEnv); dir != "" {
		os.Exit(childHost(dir))
	}
	if filepath.Base(filepath.Dir(os.Args[0])) == envDumpDir {
		if err := os.WriteFile(os.Args[0]+".env", []byte(strings.Join(os.Environ(), "\n")), 0o600); err != nil {
			os.Exit(2)
		}
		os.Exit(0)
	}
	switch filepath.Base(os.Args[0]) {
	case crashyPlugin:
		fmt.Fprintln(os.Stderr, "crashy: cannot read my configuration")
		os.Exit(3)
	case markerPlugin:
		if err := os.WriteFile(os.Args[0]+".ran", []byte("executed\n"), 0o600); err != nil {
			os.Exit(2)
		}
		_ = shared.Serve(renamed{fake.New(fake.Config{}), "marker"}) // the host wants the file's name
		os.Exit(0)
	case wrongProtoPlugin, wrongCookiePlugin:
		hs := contract.Handshake
		if filepath.Base(os.Args[0]) == wrongProtoPlugin {
			hs.ProtocolVersion = shared.ProtocolVersion + 1
		} else {
			hs.MagicCookieValue = "some other application's cookie"
		}
		goplugin.Serve(&goplugin.ServeConfig{
			HandshakeConfig: hs,
			Plugins:         contract.Plugins(kmsv1.UnimplementedKeyProviderServer{}), // refused at the handshake
			GRPCServer:      goplugin.DefaultGRPCServer,
		})
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "knhk-host-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	fakeDir = filepath.Join(dir, "plugins")
	fakeBin = filepath.Join(fakeDir, "knhk-plugin-fake")
	if err := providertest.Build("github.com/knhk/knhk/plugins/fake/cmd/knhk-plugin-fake", fakeBin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The examples use the zero Config, which finds plugins here.
	os.Setenv(PluginPathEnv, fakeDir)
	return m.Run()
}

// logBuffer collects log output for assertions and echoes it to the test.
type logBuffer struct {
	t  testing.TB
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newHost makes a Host for a test, closed at the end: plugins from fakeDir
// unless cfg says otherwise, short timeouts, logs captured.
func newHost(t testing.TB, cfg Config) (*Host, *logBuffer) {
	t.Helper()
	logs := &logBuffer{t: t}
	if cfg.PluginDirs == nil {
		cfg.PluginDirs = []string{fakeDir}
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "knhk", Level: hclog.Warn, Output: logs})
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = 10 * time.Second
	}
	h, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, logs
}

// fakeRef is a reference to a fake key kept in a per-test state file, so
// keys survive plugin restarts; extra adds parameters ("fault_x=y&...").
func fakeRef(t testing.TB, state, id, extra string) string {
	t.Helper()
	r := "fake:" + id + "?state=" + state
	if extra != "" {
		r += "&" + extra
	}
	return r
}

// pid is the process id of a provider's running plugin (0: none).
func (h *Host) pid(name string) int {
	h.mu.Lock()
	m := h.plugins[name]
	h.mu.Unlock()
	if m == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cur == nil || m.cur.proc == nil {
		return 0
	}
	return m.cur.proc.pid
}

// copyFile copies src to dst with the given mode.
func copyFile(t testing.TB, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, mode); err != nil { // umask may have narrowed it
		t.Fatal(err)
	}
}

// fileSHA256 hashes a file.
func fileSHA256(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// testBinaryAs copies this test binary into dir under a plugin name.
func testBinaryAs(t testing.TB, dir, name string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	copyFile(t, exe, p, 0o755)
	return p
}

// writeScript writes an executable shell script.
func writeScript(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// gone reports whether a process has ended (a zombie counts: it runs
// nothing and waits only for its parent, maybe an init that does not reap).
func gone(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(stat)
	rest := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(rest) == 0 || rest[0] == "Z"
}
