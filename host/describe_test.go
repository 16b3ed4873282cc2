package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/knhk/knhk/internal/procinfo"
	"github.com/knhk/knhk/shared"
)

// renamed serves a provider under another Describe name: a test plugin
// that is the fake under another file name says the name its file has.
type renamed struct {
	shared.Provider
	name string
}

func (r renamed) Describe(ctx context.Context) (shared.Description, error) {
	d, err := r.Provider.Describe(ctx)
	d.Name = r.name
	return d, err
}

// TestPluginNameMismatch: a plugin whose Describe name is not the one its
// file name says (the fake copied as knhk-plugin-other) is refused with
// ErrHandshake naming the file, the provider the file name implies and the
// name the plugin gave, and its process is stopped.
func TestPluginNameMismatch(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "knhk-plugin-other")
	copyFile(t, fakeBin, other, 0o755)
	h, _ := newHost(t, Config{PluginDirs: []string{dir}})
	_, err := h.ListKeys(context.Background(), "other", nil)
	t.Logf("the documented error: %v", err)
	if !errors.Is(err, ErrHandshake) {
		t.Fatalf("got %v; want ErrHandshake", err)
	}
	for _, want := range []string{other, `the file name says provider "other"`, `Describe says "fake"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	waitFor(t, "the misnamed plugin to be stopped", 5*time.Second, func() bool { return len(procinfo.Children("")) == 0 })
}

// TestPluginStdoutBeforeHandshake: a plugin that prints to stdout before
// go-plugin's handshake line gets ErrHandshake saying so and quoting the
// start of what it printed, not go-plugin's generic message.
func TestPluginStdoutBeforeHandshake(t *testing.T) {
	long := strings.Repeat("x", 200)
	for _, tc := range []struct {
		name, printed, want string
	}{
		{"line", "starting up, version 1.2", `plugin wrote to stdout before the handshake: "starting up, version 1.2"`},
		{"long line", long, `plugin wrote to stdout before the handshake: "` + long[:64] + `"…`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			chatty := filepath.Join(dir, "knhk-plugin-fake")
			// Then the real plugin, whose handshake line comes too late.
			script := "#!/bin/sh\necho '" + tc.printed + "'\nexec '" + fakeBin + "'\n"
			if err := os.WriteFile(chatty, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			h, _ := newHost(t, Config{PluginDirs: []string{dir}})
			_, err := h.ListKeys(context.Background(), "fake", nil)
			t.Logf("the documented error: %v", err)
			if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), chatty) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want ErrHandshake naming %s and saying %s", err, chatty, tc.want)
			}
			if strings.Contains(err.Error(), "Unrecognized remote plugin message") {
				t.Errorf("error %q keeps go-plugin's generic message", err)
			}
			waitFor(t, "the plugin to be stopped", 5*time.Second, func() bool { return len(procinfo.Children("")) == 0 })
		})
	}
}
