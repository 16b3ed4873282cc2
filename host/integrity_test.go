package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/knhk/knhk/internal/procinfo"
	"github.com/knhk/knhk/shared"
)

// markerRan reports whether the marker plugin at path was ever executed.
func markerRan(path string) bool {
	_, err := os.Stat(path + ".ran")
	return err == nil
}

// TestTamperedBinaryNeverRuns: a plugin changed after locking (one byte
// appended) is refused and never executed; a plugin missing from the lock
// file is refused too.
func TestTamperedBinaryNeverRuns(t *testing.T) {
	dir := t.TempDir()
	marker := testBinaryAs(t, dir, markerPlugin)
	copyFile(t, fakeBin, filepath.Join(dir, "knhk-plugin-fake"), 0o755)
	lock := filepath.Join(t.TempDir(), "knhk.lock")
	var pinned []PluginInfo
	for _, p := range Discover([]string{dir}) {
		if p.Name == "marker" { // only the marker is pinned
			pinned = append(pinned, p)
		}
	}
	if err := WriteLockFile(lock, pinned); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Control: the locked, untouched binary runs and leaves its marker.
	h, _ := newHost(t, Config{PluginDirs: []string{dir}, LockFile: lock})
	if _, err := h.ListKeys(ctx, "marker", nil); err != nil {
		t.Fatalf("locked plugin: %v", err)
	}
	if !markerRan(marker) {
		t.Fatal("the marker plugin ran but left no marker; the test proves nothing")
	}
	h.Close()
	os.Remove(marker + ".ran")

	// Tamper: append one byte.
	f, err := os.OpenFile(marker, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0})
	f.Close()
	pins, err := ReadLockFile(lock)
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := newHost(t, Config{PluginDirs: []string{dir}, LockFile: lock})
	_, err = h2.ListKeys(ctx, "marker", nil)
	if !errors.Is(err, ErrPluginRefused) {
		t.Fatalf("tampered plugin: %v; want ErrPluginRefused", err)
	}
	newSum, _ := fileSHA256(marker)
	for _, want := range []string{lock, newSum, pins.Sums[markerPlugin]} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if markerRan(marker) {
		t.Fatal("the tampered plugin was executed")
	}

	// The fake is not in the lock file: refused, named, never run.
	if _, err := h2.ListKeys(ctx, "fake", nil); !errors.Is(err, ErrPluginRefused) || !strings.Contains(err.Error(), "not in lock file") {
		t.Fatalf("unlocked plugin: %v", err)
	}
	if kids := procinfo.Children(""); len(kids) != 0 {
		t.Fatalf("refused plugins left processes: %v", kids)
	}
}

// TestUnsafeFilesRefused: symlinked, group- or world-writable and
// non-executable plugins are refused with a clear error and never run.
func TestUnsafeFilesRefused(t *testing.T) {
	src := t.TempDir()
	target := testBinaryAs(t, src, markerPlugin)
	tests := []struct {
		name    string
		setup   func(dir string) string // returns the plugin path
		errHas  string
		wantErr error
	}{
		{"symlink", func(dir string) string {
			p := filepath.Join(dir, markerPlugin)
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			return p
		}, "is a symlink", ErrPluginRefused},
		{"world-writable", func(dir string) string {
			p := filepath.Join(dir, markerPlugin)
			copyFile(t, target, p, 0o777)
			return p
		}, "group- or world-writable", ErrPluginRefused},
		{"group-writable", func(dir string) string {
			p := filepath.Join(dir, markerPlugin)
			copyFile(t, target, p, 0o775)
			return p
		}, "group- or world-writable", ErrPluginRefused},
		{"not executable", func(dir string) string {
			p := filepath.Join(dir, markerPlugin)
			copyFile(t, target, p, 0o644)
			return p
		}, "not executable", ErrPluginRefused},
		{"directory", func(dir string) string {
			p := filepath.Join(dir, markerPlugin)
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			return p
		}, "not a regular file", ErrPluginRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := tt.setup(dir)
			h, _ := newHost(t, Config{PluginDirs: []string{dir}})
			_, err := h.ListKeys(context.Background(), "marker", nil)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.errHas) || !strings.Contains(err.Error(), p) {
				t.Fatalf("got %v; want %v mentioning %q and the path", err, tt.wantErr, tt.errHas)
			}
			if markerRan(target) || markerRan(p) {
				t.Fatal("a refused plugin was executed")
			}
			// Discover lists it, with the reason and no hash.
			found := false
			for _, info := range Discover([]string{dir}) {
				if info.Name == "marker" {
					found = true
					if !errors.Is(info.Err, tt.wantErr) || info.SHA256 != "" {
						t.Fatalf("Discover: %+v", info)
					}
				}
			}
			if !found {
				t.Fatal("Discover did not list the refused plugin")
			}
		})
	}
}

// TestBadPluginsLeaveOthersWorking: a file that is not a plugin and a
// plugin speaking another protocol version each get ErrHandshake naming
// the file and the mismatch, while the fake in the same host keeps working.
func TestBadPluginsLeaveOthersWorking(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, fakeBin, filepath.Join(dir, "knhk-plugin-fake"), 0o755)
	junk := filepath.Join(dir, "knhk-plugin-junk")
	if err := os.WriteFile(junk, []byte("#!/bin/sh\necho 'hello, I am not a plugin'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "knhk-plugin-data")
	if err := os.WriteFile(data, []byte("just some bytes\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	wrong := testBinaryAs(t, dir, wrongProtoPlugin)
	cookie := testBinaryAs(t, dir, wrongCookiePlugin)
	h, _ := newHost(t, Config{PluginDirs: []string{dir}, StartTimeout: 5 * time.Second})
	ctx := context.Background()
	state := filepath.Join(t.TempDir(), "keys.json")
	if _, err := h.CreateKey(ctx, fakeRef(t, state, "ok", ""), shared.ECP256); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		provider, path, errHas string
	}{
		{"junk", junk, "hello, I am not a plugin"},
		{"data", data, "exec format error"},
		{"wrongproto", wrong, "Plugin version: 2"},
		{"wrongcookie", cookie, "These are not meant to be executed directly"},
	}
	for _, tt := range tests {
		t.Run(tt.provider, func(t *testing.T) {
			k, err := h.Key(ctx, tt.provider+":somekey")
			if err != nil {
				t.Fatal(err)
			}
			_, err = k.PublicKey(ctx, "")
			t.Logf("the documented error: %v", err)
			if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), tt.path) || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("got %v; want ErrHandshake naming %s and %q", err, tt.path, tt.errHas)
			}
			// The fake still works in the same host.
			s, err := h.Signer(ctx, fakeRef(t, state, "ok", ""))
			if err != nil {
				t.Fatalf("fake after a bad plugin: %v", err)
			}
			if _, err := s.SignMessage(nil, []byte("m"), shared.ES256.Hash()); err != nil {
				t.Fatalf("fake after a bad plugin: %v", err)
			}
		})
	}
	if kids := procinfo.Children(""); len(kids) != 1 { // the fake only
		t.Fatalf("processes after bad plugins: %v; want just the fake", kids)
	}
}

func TestPluginNotFound(t *testing.T) {
	h, _ := newHost(t, Config{PluginDirs: []string{t.TempDir()}})
	_, err := h.Signer(context.Background(), "nosuch:key")
	if !errors.Is(err, ErrPluginNotFound) || !strings.Contains(err.Error(), "knhk-plugin-nosuch") {
		t.Fatalf("got %v; want ErrPluginNotFound naming the file", err)
	}
	if _, err := h.Signer(context.Background(), "no-colon"); !errors.Is(err, ErrMalformedRef) || !strings.Contains(err.Error(), RefForm) {
		t.Fatalf("malformed ref: %v", err)
	}
}

func TestPluginsAndLockRoundTrip(t *testing.T) {
	h, _ := newHost(t, Config{})
	infos := h.Plugins()
	var fake *PluginInfo
	for i := range infos {
		if infos[i].Name == "fake" {
			fake = &infos[i]
		}
	}
	if fake == nil {
		t.Fatalf("Plugins() = %+v; no fake", infos)
	}
	sum, err := fileSHA256(fakeBin)
	if err != nil {
		t.Fatal(err)
	}
	if fake.Err != nil || fake.Path != fakeBin || fake.SHA256 != sum || fake.Version == "" ||
		fake.ProtocolVersion != shared.ProtocolVersion || !contains(fake.Capabilities, shared.CapRotateKey) {
		t.Fatalf("fake plugin info %+v (want sha256 %s)", *fake, sum)
	}
	lock := filepath.Join(t.TempDir(), "knhk.lock")
	if err := WriteLockFile(lock, []PluginInfo{*fake}); err != nil {
		t.Fatal(err)
	}
	l, err := ReadLockFile(lock)
	if err != nil {
		t.Fatal(err)
	}
	if l.Sums["knhk-plugin-fake"] != sum || len(l.Sums) != 1 {
		t.Fatalf("lock file round trip: %+v", l.Sums)
	}
	// A host with that lock runs the fake.
	h2, _ := newHost(t, Config{LockFile: lock})
	if _, err := h2.ListKeys(context.Background(), "fake", nil); err != nil {
		t.Fatal(err)
	}
	if err := WriteLockFile(lock, []PluginInfo{{Name: "x", Err: ErrPluginRefused}}); !errors.Is(err, ErrLockFile) {
		t.Fatalf("locking a refused plugin: %v", err)
	}
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestReadLockFileErrors(t *testing.T) {
	good := strings.Repeat("ab", 32)
	tests := []struct {
		name, content, errHas string
	}{
		{"ok", "# c\n\nknhk-plugin-fake sha256:" + good + "\n", ""},
		{"one field", "knhk-plugin-fake\n", "want two fields"},
		{"bad name", "fake sha256:" + good + "\n", "not a plugin file name"},
		{"bad hash", "knhk-plugin-fake sha256:abc\n", "not sha256"},
		{"md5", "knhk-plugin-fake md5:" + good + "\n", "not sha256"},
		{"twice", "knhk-plugin-fake sha256:" + good + "\nknhk-plugin-fake sha256:" + good + "\n", "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "lock")
			if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			l, err := ReadLockFile(p)
			if tt.errHas == "" {
				if err != nil || l.Sums["knhk-plugin-fake"] != good {
					t.Fatalf("%+v, %v", l, err)
				}
				return
			}
			if !errors.Is(err, ErrLockFile) || !strings.Contains(err.Error(), tt.errHas) || !strings.Contains(err.Error(), p) {
				t.Fatalf("got %v; want ErrLockFile with %q and the path", err, tt.errHas)
			}
		})
	}
	if _, err := New(context.Background(), Config{LockFile: filepath.Join(t.TempDir(), "missing")}); !errors.Is(err, ErrLockFile) {
		t.Fatalf("New with a missing lock file: %v", err)
	}
}

func TestBackoff(t *testing.T) {
	p := Config{}.withDefaults().Retry
	want := []time.Duration{0, 0, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}
	for n, w := range want {
		if got := p.backoff(n); got != w {
			t.Errorf("backoff(%d) = %s, want %s", n, got, w)
		}
	}
	if got := p.backoff(100); got != DefaultMaxBackoff {
		t.Errorf("backoff(100) = %s, want the cap %s", got, DefaultMaxBackoff)
	}
}

// TestStartTimeout: a plugin that never completes the handshake fails at
// the start timeout with ErrHandshake and leaves no process.
func TestStartTimeout(t *testing.T) {
	dir := t.TempDir()
	slow := filepath.Join(dir, "knhk-plugin-slow")
	if err := os.WriteFile(slow, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	h, _ := newHost(t, Config{PluginDirs: []string{dir}, StartTimeout: 300 * time.Millisecond})
	k, _ := h.Key(context.Background(), "slow:k")
	_, err := k.PublicKey(context.Background(), "")
	if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), slow) || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("got %v; want ErrHandshake naming the file and the timeout", err)
	}
	waitFor(t, "the slow plugin to be killed", 5*time.Second, func() bool { return len(procinfo.Children("")) == 0 })
}

// TestSearchOrder: Config dirs, then KNHK_PLUGIN_PATH, then plugins/ next
// to the executable; the first directory holding a plugin wins.
func TestSearchOrder(t *testing.T) {
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	t.Setenv(PluginPathEnv, b+string(os.PathListSeparator)+c)
	dirs := SearchDirs([]string{a, b})
	exe, _ := os.Executable()
	want := []string{a, b, c, filepath.Join(filepath.Dir(exe), "plugins")}
	if strings.Join(dirs, "|") != strings.Join(want, "|") {
		t.Fatalf("SearchDirs = %v, want %v", dirs, want)
	}
	for _, d := range []string{b, c} {
		if err := os.WriteFile(filepath.Join(d, "knhk-plugin-x"), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p, err := findPlugin(dirs, "x")
	if err != nil || p != filepath.Join(b, "knhk-plugin-x") {
		t.Fatalf("findPlugin = %q, %v; want the one in %s", p, err, b)
	}
	infos := Discover([]string{a})
	if len(infos) != 1 || infos[0].Path != filepath.Join(b, "knhk-plugin-x") || infos[0].SHA256 == "" {
		t.Fatalf("Discover = %+v", infos)
	}
}

// TestSwappedPluginNeverRuns (integrity, item 1): while a goroutine swaps
// the plugin file for a tampered one and back in a tight loop, 200
// launches with a lock file each run the pinned file or are refused; the
// tampered file never runs. The host executes the file it opened and
// hashed, not the path again.
func TestSwappedPluginNeverRuns(t *testing.T) {
	dir, work := t.TempDir(), t.TempDir()
	marker := filepath.Join(work, "tampered.ran")
	good, tampered := filepath.Join(work, "good"), filepath.Join(work, "tampered")
	writeScript(t, good, "exit 0\n")
	writeScript(t, tampered, "touch "+marker+"\nexit 0\n")
	plugin := filepath.Join(dir, "knhk-plugin-swap")
	if err := os.Link(good, plugin); err != nil {
		t.Fatal(err)
	}
	sum, err := fileSHA256(good)
	if err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(t.TempDir(), "knhk.lock")
	if err := WriteLockFile(lock, []PluginInfo{{Name: "swap", SHA256: sum}}); err != nil {
		t.Fatal(err)
	}
	h, _ := newHost(t, Config{PluginDirs: []string{dir}, LockFile: lock,
		Retry: RetryPolicy{InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}})

	stop := make(chan struct{})
	var swaps atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tmp := filepath.Join(dir, ".swap")
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, src := range []string{tampered, good} {
				os.Remove(tmp)
				if err := os.Link(src, tmp); err != nil {
					t.Error(err)
					return
				}
				if err := os.Rename(tmp, plugin); err != nil {
					t.Error(err)
					return
				}
			}
			swaps.Add(1)
		}
	}()
	ran, refused := 0, 0
	for i := 0; i < 200; i++ {
		_, err := h.ListKeys(context.Background(), "swap", nil)
		switch {
		case errors.Is(err, ErrPluginRefused) && strings.Contains(err.Error(), "lock file"):
			refused++
		case errors.Is(err, ErrPluginCrashed): // the pinned script ran and exited
			ran++
		default:
			t.Fatalf("launch %d: %v", i, err)
		}
		time.Sleep(2 * time.Millisecond) // past the relaunch backoff
	}
	close(stop)
	wg.Wait()
	t.Logf("%d swaps, %d launches of the pinned file, %d refused", swaps.Load(), ran, refused)
	if exists(marker) {
		t.Fatal("the tampered plugin ran")
	}
	if ran == 0 || refused == 0 {
		t.Fatalf("%d runs, %d refusals: the swap race was not exercised", ran, refused)
	}
}

// TestRelativePluginDirIsNotPATH (item 2): with plugin directory ".", the
// plugin in the working directory runs, not a same-named one on $PATH.
func TestRelativePluginDirIsNotPATH(t *testing.T) {
	here, onPath := t.TempDir(), t.TempDir()
	writeScript(t, filepath.Join(here, "knhk-plugin-where"), "touch "+filepath.Join(here, "ran")+"\n")
	writeScript(t, filepath.Join(onPath, "knhk-plugin-where"), "touch "+filepath.Join(onPath, "ran")+"\n")
	t.Setenv("PATH", onPath+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Chdir(here)
	h, _ := newHost(t, Config{PluginDirs: []string{"."}, OnlyPluginDirs: true})
	_, err := h.ListKeys(context.Background(), "where", nil)
	if !errors.Is(err, ErrPluginCrashed) || !strings.Contains(err.Error(), filepath.Join(here, "knhk-plugin-where")) {
		t.Fatalf("got %v; want the script in the working directory to run and exit (named by its absolute path)", err)
	}
	if exists(filepath.Join(onPath, "ran")) {
		t.Fatal("the plugin on $PATH ran")
	}
	if !exists(filepath.Join(here, "ran")) {
		t.Fatal("the plugin in the plugin directory did not run")
	}
}
