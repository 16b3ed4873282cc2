package azure_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestHostLinksNoAzure checks the root module's host and CLI still link no
// Azure package: the SDK lives in this module only.
func TestHostLinksNoAzure(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./cmd/knhk-host", "./host/...")
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "github.com/knhk/knhk/host") {
		t.Fatalf("go list did not list the host:\n%s", out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "azure-sdk-for-go") || strings.Contains(line, "AzureAD") {
			t.Errorf("the host links %s", line)
		}
	}
}
