package aws_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/knhk/knhk/plugins/aws/internal/localkms"
	"github.com/knhk/knhk/shared/providertest"
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
	bin, remove, err := providertest.BuildTemp("./cmd/knhk-plugin-aws")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer remove()
	pluginBin = bin
	return m.Run()
}
