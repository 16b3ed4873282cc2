package cli

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/knhk/knhk/sidecar"
)

func (a *app) serveCmd() *cobra.Command {
	var socket string
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the signing sidecar: sign for local callers over a unix socket (and mutual TLS)",
		Long: `Run knhk as a daemon beside a workload. Callers in any language sign,
verify and manage keys through it over a unix socket (their uid and gid are
their identity), optionally gRPC and HTTP/JSON over TCP with mutual TLS (their
client certificate is their identity), and kube-apiserver signs
service-account tokens through it (Kubernetes' ExternalJWTSigner, on the same
socket). The keys, listeners and per-key policy come from --config: every call
no policy allows is denied.

  serve {
    socket           = "/run/knhk/knhk.sock"  # default $XDG_RUNTIME_DIR/knhk/knhk.sock
    socket_mode      = "0660"
    health_address   = "127.0.0.1:8081"      # /healthz, /readyz and /metrics
    jwt { key = "service-accounts" }
  }
  key "release" { ref = "aws:alias/release" }
  policy "ci" {
    keys       = ["release"]
    principals = ["unix:uid=1000", "spiffe://example.org/ns/ci/*"]
    operations = ["sign", "public_key"]
  }

SIGTERM or SIGINT drains: calls in flight finish (up to drain_timeout), new
ones are refused as unavailable, then knhk-host exits 0. SIGHUP rereads
--config and swaps keys, policy, limits and the JWT signer at once; a file
that does not load changes nothing and is logged. Logs go to stderr (default
level info).

Telemetry: each gRPC and HTTP/JSON call is a server span continuing the
caller's W3C trace context (traceparent), with the key operations' spans
below it; knhk.sidecar.requests and knhk.sidecar.denials count calls and
denials by caller (its first principal) and operation. They are exported as
the OTEL_* environment says (see knhk-host --help), and with health_address
the metrics are also served at /metrics in the Prometheus text format
(e.g. knhk_sidecar_requests_total), OTEL_* or not.`,
		Example: `  knhk-host serve --config /etc/knhk/knhk.hcl
  knhk-host serve --config knhk.hcl --socket /tmp/knhk.sock --log-level debug`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.serve(cmd.Context(), socket)
		},
	}
	cmd.Flags().StringVar(&socket, "socket", "", "unix socket to listen on (default: serve.socket in --config, else $XDG_RUNTIME_DIR/knhk/knhk.sock, else /run/knhk/knhk.sock)")
	return cmd
}

// serve runs the daemon until SIGTERM or SIGINT, reloading on SIGHUP.
func (a *app) serve(ctx context.Context, socket string) error {
	if a.logLevel == "" {
		a.logLevel = "info"
	}
	h, err := a.openHost(ctx)
	if err != nil {
		return err
	}
	lvl, err := a.level()
	if err != nil {
		return err
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "knhk-host.serve", Level: lvl, Output: a.stderr, JSONFormat: a.output == formatJSON})
	setTelemetryErrorLog(logger)
	cfg, err := a.cfg.sidecarConfig(a.configPath, socket, logger)
	if err != nil {
		return err
	}
	cfg.MetricsHandler = a.metrics
	srv, err := sidecar.New(h, cfg)
	if err != nil {
		return usagef("fix the serve block, keys or policies in --config", "%v", err)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				a.reload(srv, socket, logger)
			}
		}
	}()
	return srv.Serve(ctx)
}

// reload rereads the config file and hands it to the daemon; on any error
// the daemon keeps its configuration.
func (a *app) reload(srv *sidecar.Server, socket string, logger hclog.Logger) {
	fc, err := loadConfig(a.configPath)
	if err == nil {
		var cfg sidecar.Config
		if cfg, err = fc.sidecarConfig(a.configPath, socket, logger); err == nil {
			err = srv.Reload(cfg)
		}
	}
	if err != nil {
		logger.Error("reload failed: keeping the running configuration", "error", err)
	}
}
