package shared

import (
	"os"
	"runtime/debug"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/knhk/knhk/internal/contract"
)

// LogLevelEnv is the environment variable through which the host passes
// its log level (trace, debug, info, warn, error, off) to every plugin it
// launches. Logger reads it.
const LogLevelEnv = contract.LogLevelEnv

// Logger returns the plugin's logger, the one Serve uses unless given
// WithLogger: JSON lines on stderr, which go-plugin forwards to the host,
// where they appear under the plugin's name at their own level. Its level
// is the host's (LogLevelEnv), info when unset. Provider code logs through
// it (a provider's Config.Logger defaults to it); never log a token, a
// credential or key material, and remember that stdout belongs to the
// handshake: a plugin must not print there.
func Logger() hclog.Logger { return pluginLogger() }

// stderr is the process's real standard error, kept before Serve runs:
// go-plugin then points os.Stderr at a pipe whose lines the host drops,
// while what goes to the real one reaches the host's log.
var stderr = os.Stderr

var pluginLogger = sync.OnceValue(func() hclog.Logger {
	level := hclog.LevelFromString(os.Getenv(LogLevelEnv))
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	return hclog.New(&hclog.LoggerOptions{Level: level, JSONFormat: true, Output: stderr})
})

// BuildVersion is the plugin binary's version as the Go toolchain
// recorded it: the main module's version when built from a tagged module
// (go install example.com/plugin@v1.2.0), else the VCS revision, else
// "dev". Describe reports it when a provider leaves Version empty.
func BuildVersion() string { return buildVersion() }

var buildVersion = sync.OnceValue(func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "dev-" + s.Value[:12]
		}
	}
	return "dev"
})
