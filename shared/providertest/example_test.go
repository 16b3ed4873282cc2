package providertest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/shared/providertest"
)

// pluginBin is the plugin binary a suite's TestMain builds with
// providertest.BuildTemp("./cmd/knhk-plugin-mykms"), as the package
// documentation shows.
var pluginBin string

// A plugin author's conformance test: run the kit against the binary
// TestMain built, as the host would launch it.
func ExampleRun() {
	// In a _test.go file of the plugin's module:
	_ = func(t *testing.T) {
		providertest.Run(t, providertest.Config{
			Binary: pluginBin,
			Params: map[string]string{"region": "eu-west-1"},
			// Restrict what is tested; the default is what Describe claims.
			KeyTypes: []shared.KeyType{shared.ECP256, shared.RSA2048},
		})
	}
}

// Launch starts a plugin binary for a test of one's own.
func ExampleLaunch() {
	_ = func(t *testing.T) {
		p := providertest.Launch(t, pluginBin)
		d, err := p.Describe(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println(d.Name, d.KeyTypes)
	}
}

// A provider that cannot create keys is tested with keys made beforehand,
// one per key type; only those key types are tested.
func ExampleConfig_suppliedKeys() {
	_ = func(t *testing.T) {
		providertest.Run(t, providertest.Config{
			Binary: pluginBin, // knhk-plugin-myhsm
			Params: map[string]string{"slot": "0"},
			Keys: map[shared.KeyType]string{
				shared.ECP256:  "conformance-ec",
				shared.RSA3072: "conformance-rsa",
			},
			// Ids of the shape the HSM expects, for the not-found checks.
			MissingKeyID: "conformance-missing",
			Concurrency:  16,
		})
	}
}
