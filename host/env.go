package host

import (
	"strings"

	"github.com/knhk/knhk/internal/contract"
)

// AllPlugins is the Config.PluginEnv key whose variables every plugin gets.
const AllPlugins = "*"

// A plugin starts with only these variables of the host's environment,
// besides its provider's own (providerEnv) and Config.PluginEnv: what a
// program needs to run, reach a service through a proxy and trust its
// certificate, and the Go runtime's settings (so an operator can tune a
// plugin's GC), not another provider's credentials. A name ending in '*'
// is a prefix.
var baseEnv = []string{
	"PATH", "HOME", "TMPDIR", "USER", "LANG", "LC_*", "TZ",
	"GOGC", "GOMEMLIMIT", "GOMAXPROCS", "GODEBUG",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
	"OTEL_*",
}

// providerEnv lists the variables a provider's plugin gets from the host's
// environment: its service's SDK reads them (credentials, region, address).
// A provider not listed gets <NAME>_*, its name upper-cased with '-' as '_'.
var providerEnv = map[string][]string{
	"aws":   {"AWS_*"},
	"azure": {"AZURE_*", "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"},
	"vault": {"VAULT_*"},
}

// envPatterns is what the plugin for provider name may inherit.
func envPatterns(name string, extra map[string][]string) []string {
	own, ok := providerEnv[name]
	if !ok {
		own = []string{strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_*"}
	}
	out := append(append([]string(nil), baseEnv...), own...)
	out = append(out, extra[AllPlugins]...)
	return append(out, extra[name]...)
}

// pluginEnv is the environment the plugin for provider name starts with:
// the variables of environ (the host's, as os.Environ) that envPatterns
// allow (but OTEL_SERVICE_NAME), and KNHK_LOG_LEVEL set to the host's log level. go-plugin adds its
// own handshake variables.
func pluginEnv(environ []string, name string, extra map[string][]string, logLevel string) []string {
	patterns := envPatterns(name, extra)
	out := make([]string, 0, len(patterns)+1)
	for _, kv := range environ {
		k, _, ok := strings.Cut(kv, "=")
		// OTEL_SERVICE_NAME names the host's service: a plugin's spans
		// carry its own (knhk-plugin-<name>).
		if ok && k != contract.LogLevelEnv && k != "OTEL_SERVICE_NAME" && envAllowed(k, patterns) {
			out = append(out, kv)
		}
	}
	return append(out, contract.LogLevelEnv+"="+logLevel)
}

func envAllowed(name string, patterns []string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(name, prefix) {
				return true
			}
		} else if name == p {
			return true
		}
	}
	return false
}
