package providertest

import (
	"fmt"
	"os"
	"os/exec"
)

// Build compiles the Go package pkg (an import path, or a directory such as
// "./cmd/knhk-plugin-mykms") into the binary out, mode 0755, so a test's
// TestMain can build the plugin it runs the kit against. The go command's
// build cache makes repeated builds cheap. Build output goes to stderr.
func Build(pkg, out string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("providertest: go build %s: %w", pkg, err)
	}
	// The host refuses group- or world-writable plugins; do not depend on
	// the umask.
	return os.Chmod(out, 0o755)
}
