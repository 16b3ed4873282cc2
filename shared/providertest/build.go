package providertest

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
)

// Build compiles the Go package pkg (an import path, or a directory such as
// "./cmd/knhk-plugin-mykms") into the binary out, mode 0755, so a test's
// TestMain can build the plugin it runs the kit against. When the test
// runs with -race, the plugin is built with -race too, and the kit fails a
// test whose plugin reports a data race. The go command's build cache
// makes repeated builds cheap. Build output goes to stderr.
func Build(pkg, out string) error {
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("providertest: go %v: %w", cmd.Args[1:], err)
	}
	// The host refuses group- or world-writable plugins; do not depend on
	// the umask.
	return os.Chmod(out, 0o755)
}

// BuildTemp builds pkg (e.g. "./cmd/knhk-plugin-mykms") with Build into a
// new temporary directory as DIR/plugins/NAME, NAME being pkg's last path
// element, for a plugin suite's TestMain; the kit checks that NAME is
// knhk-plugin-<the name Describe reports>. remove deletes the directory;
// call it when the tests end.
func BuildTemp(pkg string) (bin string, remove func(), err error) {
	dir, err := os.MkdirTemp("", "knhk-plugin-test-")
	if err != nil {
		return "", nil, fmt.Errorf("providertest: %w", err)
	}
	remove = func() { os.RemoveAll(dir) }
	bin = filepath.Join(dir, "plugins", path.Base(pkg))
	if err := Build(pkg, bin); err != nil {
		remove()
		return "", nil, err
	}
	return bin, remove, nil
}
