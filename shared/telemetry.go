package shared

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel"

	"github.com/knhk/knhk/internal/errtype"
	"github.com/knhk/knhk/telemetry"
)

// The SDK's sentinels, for telemetry.ErrorType (which cannot import this
// package: it serves this package's plugins).
func init() {
	for _, k := range []struct {
		err  error
		name string
	}{
		{ErrUnsupportedAlgorithm, "unsupported_algorithm"},
		{ErrBadSignature, "bad_signature"},
		{ErrKeyNotFound, "key_not_found"},
		{ErrAlreadyExists, "already_exists"},
		{ErrInvalidArgument, "invalid_argument"},
		{ErrPermissionDenied, "permission_denied"},
		{ErrUnavailable, "unavailable"},
		{ErrFailedPrecondition, "failed_precondition"},
		{ErrUnimplemented, "unimplemented"},
	} {
		errtype.Register(errtype.General, k.err, k.name)
	}
}

// pluginPrefix starts every plugin's file name and its default
// service.name.
const pluginPrefix = "knhk-plugin-"

// Bounds on the plugin's telemetry: setting it up (a provider's Describe,
// the exporters), and flushing it at exit, well within the 2s the host
// leaves a plugin between asking it to stop and killing it.
const (
	telemetrySetupTimeout = 5 * time.Second
	telemetryFlushTimeout = time.Second
)

// setupTelemetry configures the plugin's OpenTelemetry from the
// environment the host passed on (telemetry.Setup), under service.name
// knhk-plugin-<provider>, and returns what flushes it at exit. A plugin
// without working telemetry still serves: the failure is logged.
func setupTelemetry(p Provider, log hclog.Logger) func() {
	ctx, cancel := context.WithTimeout(context.Background(), telemetrySetupTimeout)
	defer cancel()
	// Exporter errors (an unreachable collector) go to the plugin's log,
	// which reaches the host's, at warn.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("telemetry", "error", err)
	}))
	// A pull exporter has no place in a plugin: the host and every plugin
	// would serve the same port, and nobody scrapes a plugin. Its metrics
	// then go nowhere, and its traces still go where they are asked to.
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_METRICS_EXPORTER")), "prometheus") {
		os.Setenv("OTEL_METRICS_EXPORTER", "none")
		log.Debug("OTEL_METRICS_EXPORTER=prometheus is for the host: this plugin exports no metrics")
	}
	// Standard output carries go-plugin's handshake: the console
	// exporters write to standard error.
	shutdown, err := telemetry.Setup(ctx, pluginPrefix+providerName(ctx, p), telemetry.WithConsoleWriter(stderr))
	if err != nil {
		log.Warn("serving without telemetry: it cannot be set up", "error", err)
		return func() {}
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), telemetryFlushTimeout)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			log.Warn("flushing telemetry", "error", err)
		}
	}
}

// providerName is the name the provider gives itself, else the one its
// executable's file name says.
func providerName(ctx context.Context, p Provider) string {
	if d, err := p.Describe(ctx); err == nil && d.Name != "" {
		return d.Name
	}
	return strings.TrimPrefix(filepath.Base(os.Args[0]), pluginPrefix)
}
