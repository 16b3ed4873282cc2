package vaulttest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// VaultVersion is the Vault release the tests run against.
const VaultVersion = "v1.21.0"

// CachePath is where testdeps.sh puts the Vault binary:
// ${KNHK_CACHE:-$HOME/.cache/knhk}/vault-v1.21.0/vault.
func CachePath() (string, error) {
	dir := os.Getenv("KNHK_CACHE")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("vaulttest: no KNHK_CACHE and no home directory: %w", err)
		}
		dir = filepath.Join(home, ".cache", "knhk")
	}
	return filepath.Join(dir, "vault-"+VaultVersion, "vault"), nil
}

// Binary returns the path of the Vault server binary, building it with
// testdeps.sh when it is not in the cache yet (several minutes, once).
func Binary() (string, error) {
	path, err := CachePath()
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		return path, nil
	}
	script, err := testdepsScript()
	if err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "vaulttest: no Vault %s test server at %s; building it with %s (several minutes, once per machine)\n", VaultVersion, path, script)
	var out bytes.Buffer
	cmd := exec.Command("bash", script)
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("vaulttest: building Vault with %s failed: %w", script, err)
	}
	if got := strings.TrimSpace(out.String()); got != "" {
		path = got
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("vaulttest: %s ran but %s is missing: %w", script, path, err)
	}
	return path, nil
}

// testdepsScript finds plugins/vault/testdeps.sh next to this source file.
func testdepsScript() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("vaulttest: cannot locate testdeps.sh")
	}
	script := filepath.Join(filepath.Dir(file), "..", "..", "testdeps.sh")
	if _, err := os.Stat(script); err != nil {
		return "", fmt.Errorf("vaulttest: %w", err)
	}
	return filepath.Clean(script), nil
}
