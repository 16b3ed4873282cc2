package host

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/knhk/knhk/shared/providertest"
)

// TestConformanceThroughHost runs the conformance kit against the fake
// plugin binary as the host manages it: lazy launch, timeouts, retries,
// verify-after-sign and the public-key cache all in the path.
func TestConformanceThroughHost(t *testing.T) {
	h, _ := newHost(t, Config{})
	p, err := h.Provider(context.Background(), "fake")
	if err != nil {
		t.Fatal(err)
	}
	providertest.Run(t, providertest.Config{
		Provider:    p,
		Params:      map[string]string{"state": filepath.Join(t.TempDir(), "keys.json")},
		Concurrency: 16,
	})
}
