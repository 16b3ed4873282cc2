package main

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// pluginLayout is a knhk-host copy with a plugin directory next to it, a
// KNHK_PLUGIN_PATH directory and a directory to name with --plugin-dir,
// each holding a differently named copy of the fake plugin.
type pluginLayout struct {
	host      string // knhk-host, with plugins/ next to it
	nextTo    string // plugins/ next to host: knhk-plugin-nextto
	env       string // for KNHK_PLUGIN_PATH: knhk-plugin-envonly
	flag      string // for --plugin-dir: knhk-plugin-fake
	lock      string // a lock file path, not written yet
	emptyFlag string // an empty directory for --plugin-dir
}

func newPluginLayout(t *testing.T) pluginLayout {
	t.Helper()
	root := t.TempDir()
	l := pluginLayout{
		host:      filepath.Join(root, "bin", "knhk-host"),
		nextTo:    filepath.Join(root, "bin", "plugins"),
		env:       filepath.Join(root, "env"),
		flag:      filepath.Join(root, "flag"),
		lock:      filepath.Join(root, "knhk.lock"),
		emptyFlag: filepath.Join(root, "empty"),
	}
	copyExec(t, knhkHost, l.host)
	copyExec(t, fakePlugin, filepath.Join(l.nextTo, "knhk-plugin-nextto"))
	copyExec(t, fakePlugin, filepath.Join(l.env, "knhk-plugin-envonly"))
	copyExec(t, fakePlugin, filepath.Join(l.flag, "knhk-plugin-fake"))
	if err := os.Mkdir(l.emptyFlag, 0o755); err != nil {
		t.Fatal(err)
	}
	return l
}

// copyExec copies an executable to dst (making its directory), mode 0755
// whatever the umask.
func copyExec(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, 0o755); err != nil {
		t.Fatal(err)
	}
}

// lockedNames returns the plugin file names a lock file pins, sorted.
func lockedNames(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 && !strings.HasPrefix(line, "#") {
			names = append(names, f[0])
		}
	}
	sort.Strings(names)
	return names
}

// TestPluginDirOnly: with --plugin-dir (or plugin_dirs in --config) only
// the named directories are searched, not KNHK_PLUGIN_PATH nor plugins/
// next to knhk-host, and plugins lock pins only what they hold. Without
// either, the documented default holds: KNHK_PLUGIN_PATH, then plugins/
// next to knhk-host.
func TestPluginDirOnly(t *testing.T) {
	l := newPluginLayout(t)
	knhkIn := func(args ...string) result { return run(t, l.host, l.env, nil, args...) }

	// plugins lock pins only what --plugin-dir holds.
	if r := knhkIn("--plugin-dir", l.flag, "--lock-file", l.lock, "plugins", "lock"); r.code != 0 || r.stderr != "" ||
		!strings.Contains(r.stdout, "fake") || strings.Contains(r.stdout, "envonly") || strings.Contains(r.stdout, "nextto") {
		t.Fatalf("plugins lock --plugin-dir: %v, want the fake alone", r)
	}
	if got := lockedNames(t, l.lock); strings.Join(got, " ") != "knhk-plugin-fake" {
		t.Fatalf("lock file pins %v, want knhk-plugin-fake alone", got)
	}

	// A plugin found only in KNHK_PLUGIN_PATH or next to knhk-host is not
	// found; the message names the --plugin-dir directory alone.
	for _, name := range []string{"envonly", "nextto"} {
		r := knhkIn("--plugin-dir", l.flag, "keys", "list", "--provider", name)
		if r.code != 2 || !strings.Contains(r.stderr, "knhk-plugin-"+name) || !strings.Contains(r.stderr, l.flag) ||
			strings.Contains(r.stderr, l.env) || strings.Contains(r.stderr, l.nextTo) || strings.Contains(r.stderr, "KNHK_PLUGIN_PATH") {
			t.Fatalf("keys list --provider %s --plugin-dir: %v, want not found in %s alone", name, r, l.flag)
		}
		oneLine(t, r.stderr)
	}

	// The listing shows the --plugin-dir plugin alone.
	var list []struct {
		Name string `json:"name"`
		Path string `json:"path"`
	}
	r := knhkIn("--plugin-dir", l.flag, "plugins", "-o", "json")
	if r.code != 0 {
		t.Fatalf("plugins --plugin-dir: %v", r)
	}
	decodeJSONAny(t, r.stdout, &list)
	if len(list) != 1 || list[0].Name != "fake" || list[0].Path != filepath.Join(l.flag, "knhk-plugin-fake") {
		t.Fatalf("plugins --plugin-dir: %+v, want the fake in %s alone", list, l.flag)
	}

	// An empty --plugin-dir finds nothing, and says where it looked.
	for _, args := range [][]string{{"plugins"}, {"--lock-file", l.lock, "plugins", "lock"}} {
		r := knhkIn(append([]string{"--plugin-dir", l.emptyFlag}, args...)...)
		if !strings.Contains(r.stderr, "no plugins found in "+l.emptyFlag) || strings.Contains(r.stderr, l.env) || strings.Contains(r.stderr, l.nextTo) {
			t.Fatalf("%v --plugin-dir EMPTY: %v, want nothing found in %s alone", args, r, l.emptyFlag)
		}
	}

	// plugin_dirs in --config is as exclusive as the flag.
	cfg := writeFile(t, t.TempDir(), "knhk.hcl", []byte("plugin_dirs = [\""+l.flag+"\"]\nlock_file = \"cfg.lock\"\n"))
	if r := knhkIn("--config", cfg, "plugins", "lock"); r.code != 0 {
		t.Fatalf("plugins lock with plugin_dirs: %v", r)
	}
	if got := lockedNames(t, filepath.Join(filepath.Dir(cfg), "cfg.lock")); strings.Join(got, " ") != "knhk-plugin-fake" {
		t.Fatalf("plugin_dirs lock file pins %v, want knhk-plugin-fake alone", got)
	}

	// Without --plugin-dir: KNHK_PLUGIN_PATH, then plugins/ next to
	// knhk-host, and nothing else.
	defaultLock := filepath.Join(t.TempDir(), "default.lock")
	if r := knhkIn("--lock-file", defaultLock, "plugins", "lock"); r.code != 0 {
		t.Fatalf("plugins lock without --plugin-dir: %v", r)
	}
	if got := lockedNames(t, defaultLock); strings.Join(got, " ") != "knhk-plugin-envonly knhk-plugin-nextto" {
		t.Fatalf("default lock file pins %v, want knhk-plugin-envonly and knhk-plugin-nextto", got)
	}
}

// TestRefusalHints: a refused plugin's error says what to do for its own
// case, once. A group-writable plugin is told to chmod go-w, never to run
// plugins lock (which would refuse it too); a plugin missing from the lock
// file is told to run plugins lock once, not twice.
func TestRefusalHints(t *testing.T) {
	dir := t.TempDir()
	plugin := filepath.Join(dir, "knhk-plugin-fake")
	copyExec(t, fakePlugin, plugin)
	lock := filepath.Join(t.TempDir(), "knhk.lock")
	other := filepath.Join(t.TempDir(), "other.lock")
	ok(t, nil, "--plugin-dir", dir, "--lock-file", lock, "plugins", "lock")
	// A lock file that pins another plugin only.
	if err := os.WriteFile(other, []byte("knhk-plugin-other sha256:"+strings.Repeat("ab", 32)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The message after "knhk-host COMMAND: ", so the command's own name
	// (plugins lock) is not counted as advice.
	advice := func(r result) string {
		_, msg, _ := strings.Cut(r.stderr, ": ")
		return msg
	}

	if err := os.Chmod(plugin, 0o775); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"group-writable", []string{"keys", "list", "--provider", "fake"}},
		{"group-writable, lock file in use", []string{"--lock-file", lock, "keys", "list", "--provider", "fake"}},
		{"group-writable, sign", []string{"sign", "--key", "fake:k", "--in", plugin}},
		{"group-writable, plugins lock", []string{"--lock-file", filepath.Join(t.TempDir(), "new.lock"), "plugins", "lock"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := knhk(t, nil, append([]string{"--plugin-dir", dir}, tc.args...)...)
			msg := advice(r)
			if r.code != 3 || r.stdout != "" || strings.Count(msg, "chmod go-w") != 1 || strings.Contains(msg, "plugins lock") {
				t.Fatalf("%v, want exit 3 saying chmod go-w once and nothing about plugins lock", r)
			}
			oneLine(t, r.stderr)
			var e struct {
				Error string `json:"error"`
				Hint  string `json:"hint"`
			}
			r = knhk(t, nil, append([]string{"--plugin-dir", dir, "-o", "json"}, tc.args...)...)
			decodeJSONAny(t, r.stderr, &e)
			if !strings.Contains(e.Error, "chmod go-w") || e.Hint == "" || strings.Contains(e.Hint, "plugins lock") || strings.Contains(e.Hint, "chmod") {
				t.Fatalf("-o json: %+v, want the fix in the error once and no plugins lock hint", e)
			}
		})
	}
	if err := os.Chmod(plugin, 0o755); err != nil {
		t.Fatal(err)
	}

	// Missing from the lock file: "plugins lock" once.
	r := knhk(t, nil, "--plugin-dir", dir, "--lock-file", other, "keys", "list", "--provider", "fake")
	if r.code != 3 || strings.Count(r.stderr, "plugins lock") != 1 {
		t.Fatalf("plugin missing from the lock file: %v, want exit 3 naming plugins lock once", r)
	}
	oneLine(t, r.stderr)
}
