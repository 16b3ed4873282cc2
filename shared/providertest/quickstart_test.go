package providertest

import (
	"bytes"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// quickstartRE finds the README's quick start files: a marker comment
// naming the file, then its Go code block.
var quickstartRE = regexp.MustCompile("(?s)<!-- quickstart: (\\S+) -->\n```go\n(.*?)```\n")

// TestREADMEQuickStart copies the README's plugin quick start verbatim
// into a new module outside the repository, pointed at this checkout with
// a replace directive as the README says, and runs its conformance test
// there: the quick start builds, and the plugin passes the kit.
func TestREADMEQuickStart(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := quickstartRE.FindAllSubmatch(readme, -1)
	if len(files) != 2 {
		t.Fatalf("README.md has %d quick start files; want 2 (the plugin's main.go and its conformance test)", len(files))
	}
	dir := t.TempDir()
	for _, f := range files {
		name, code := string(f[1]), f[2]
		if formatted, err := format.Source(code); err != nil || !bytes.Equal(formatted, code) {
			t.Errorf("README.md's %s is not gofmt'd Go (%v)", name, err)
		}
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, code, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// This checkout's go.sum holds the sums of every module the quick
	// start needs, so no checksum database is asked.
	sums, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sums, 0o644); err != nil {
		t.Fatal(err)
	}

	test := []string{"test", "-count=1"}
	if raceEnabled {
		test = append(test, "-race") // as the README says
	}
	test = append(test, "./...")
	for _, args := range [][]string{
		{"mod", "init", "example.com/memkms"},
		{"mod", "edit", "-replace", "github.com/knhk/knhk=" + root},
		{"mod", "tidy"},
		test,
	} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=mod"), "GOWORK=off", "GOTOOLCHAIN=local")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s in the quick start module: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("go %s:\n%s", strings.Join(args, " "), out)
	}
}
