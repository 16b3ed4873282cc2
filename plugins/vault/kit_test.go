package vault_test

import (
	"testing"

	"github.com/knhk/knhk/shared/providertest"
)

// TestConformanceInProcess runs the conformance kit against the provider
// in this process, against the real Vault server.
func TestConformanceInProcess(t *testing.T) {
	providertest.Run(t, providertest.Config{Provider: newProvider(t), Params: params()})
}

// TestConformanceBinary runs the conformance kit against the built
// knhk-plugin-vault, launched as the host launches plugins.
func TestConformanceBinary(t *testing.T) {
	providertest.Run(t, providertest.Config{Binary: pluginBin, Params: params()})
}
