package host

import (
	"bufio"
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/knhk/knhk/internal/procinfo"
	"github.com/knhk/knhk/shared"
)

// TestCloseKillsTheProcessGroup (item 4): a plugin whose leader ignores
// SIGTERM and outlives its shutdown request, with a child holding its
// output pipes, is gone with all its processes within 5s of Close, and
// Close returns within 5s.
func TestCloseKillsTheProcessGroup(t *testing.T) {
	dir := t.TempDir()
	writeScript(t, filepath.Join(dir, "knhk-plugin-fake"), "trap '' TERM\nsleep 1000 &\n"+fakeBin+"\nsleep 1000\n")
	h, err := New(context.Background(), Config{PluginDirs: []string{dir}, OnlyPluginDirs: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.ListKeys(context.Background(), "fake", nil); err != nil {
		h.Close()
		t.Fatal(err)
	}
	leader := h.pid("fake")
	procs := append([]int{leader}, procinfo.Descendants(leader)...)
	if len(procs) < 3 {
		h.Close()
		t.Fatalf("plugin processes %v; want the script, the fake and a sleep", procs)
	}
	start := time.Now()
	closed := make(chan struct{})
	go func() { h.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5s")
	}
	waitFor(t, "every plugin process to be gone", 5*time.Second-time.Since(start), func() bool {
		for _, p := range procs {
			if !gone(p) {
				return false
			}
		}
		return true
	})
	t.Logf("Close took %s; processes %v gone", time.Since(start), procs)
}

// childHost is this test binary run as a host by
// TestNoPluginOutlivesItsHost: it signs in a loop with the fake in dir,
// after printing the plugin's process id.
func childHost(dir string) int {
	ctx := context.Background()
	h, err := New(ctx, Config{PluginDirs: []string{dir}, OnlyPluginDirs: true})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	k, err := h.CreateKey(ctx, "fake:child", shared.ECP256)
	if err == nil {
		var s *Signer
		if s, err = k.Signer(ctx); err == nil {
			fmt.Printf("plugin %d\n", h.pid("fake"))
			for i := 0; err == nil; i++ {
				d := sha256.Sum256(fmt.Appendf(nil, "message %d", i))
				_, err = s.Sign(nil, d[:], crypto.SHA256)
			}
		}
	}
	fmt.Println(err)
	return 1
}

// TestNoPluginOutlivesItsHost (item 5): a host killed with SIGKILL while
// signing leaves no plugin process behind, even one that does not watch
// its parent (here a script running the fake, whose own watch sees only
// the script).
func TestNoPluginOutlivesItsHost(t *testing.T) {
	dir := t.TempDir()
	writeScript(t, filepath.Join(dir, "knhk-plugin-fake"), fakeBin+"\n")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childHostEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	pid, perr := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "plugin "))
	if err != nil || perr != nil || pid == 0 {
		t.Fatalf("child host said %q (%v)", line, err)
	}
	procs := append([]int{pid}, procinfo.Descendants(pid)...)
	if len(procs) < 2 {
		t.Fatalf("plugin processes %v; want the script and the fake", procs)
	}
	time.Sleep(100 * time.Millisecond) // mid-sign
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitFor(t, "the plugin processes to end with their host", 3*time.Second, func() bool {
		for _, p := range procs {
			if !gone(p) {
				return false
			}
		}
		return true
	})
}

// TestStartupCrashIsACrash (item 8): a plugin that writes to stderr and
// exits before the handshake is ErrPluginCrashed (retryable), with its
// exit status and last stderr line, not a handshake failure.
func TestStartupCrashIsACrash(t *testing.T) {
	dir := t.TempDir()
	testBinaryAs(t, dir, crashyPlugin)
	h, _ := newHost(t, Config{PluginDirs: []string{dir}})
	_, err := h.ListKeys(context.Background(), "crashy", nil)
	t.Logf("the documented error: %v", err)
	if !errors.Is(err, ErrPluginCrashed) || !IsRetryable(err) || errors.Is(err, ErrHandshake) {
		t.Fatalf("got %v; want a retryable ErrPluginCrashed", err)
	}
	for _, want := range []string{"exit status 3", "crashy: cannot read my configuration", filepath.Join(dir, crashyPlugin)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q", want)
		}
	}
}
