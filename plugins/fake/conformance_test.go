package fake_test

import (
	"path/filepath"
	"testing"

	"github.com/knhk/knhk/plugins/fake"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/shared/providertest"
)

// TestConformance runs the conformance kit against the built binary over
// go-plugin gRPC and against the in-process provider, in memory and with a
// state file, for every key type and algorithm.
func TestConformance(t *testing.T) {
	for name, cfg := range map[string]providertest.Config{
		"binary":           {Binary: pluginBin},
		"binary/state":     {Binary: pluginBin, Params: map[string]string{"state": filepath.Join(t.TempDir(), "keys.json")}},
		"in-process":       {Provider: fake.New(fake.Config{})},
		"in-process/seed":  {Provider: fake.New(fake.Config{}), Params: map[string]string{"seed": "conformance"}},
		"in-process/state": {Provider: fake.New(fake.Config{}), Params: map[string]string{"state": filepath.Join(t.TempDir(), "keys.json")}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg.KeyTypes = shared.KeyTypes
			cfg.Algorithms = shared.Algorithms
			providertest.Run(t, cfg)
		})
	}
}
