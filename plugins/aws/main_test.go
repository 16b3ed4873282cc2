package awskms_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/knhk/knhk/plugins/aws/internal/localkms"
)

// pluginBin is the knhk-plugin-aws binary TestMain builds for the tests
// that go through a real plugin process.
var pluginBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// The provider (in process) and the plugin processes (which inherit
	// the environment) take credentials from the standard chain: static
	// test values, no shared files, no instance metadata.
	for _, kv := range localkms.Env() {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	os.Unsetenv("AWS_PROFILE")
	os.Unsetenv("AWS_ENDPOINT_URL")
	os.Unsetenv("AWS_ENDPOINT_URL_KMS")
	dir, err := os.MkdirTemp("", "knhk-aws-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	pluginBin = filepath.Join(dir, "plugins", "knhk-plugin-aws")
	cmd := exec.Command("go", "build", "-o", pluginBin, "./cmd/knhk-plugin-aws")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building knhk-plugin-aws:", err)
		return 1
	}
	return m.Run()
}
