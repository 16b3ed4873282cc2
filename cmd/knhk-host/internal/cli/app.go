package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"

	"github.com/knhk/knhk/audit"
	"github.com/knhk/knhk/client"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/telemetry"
)

// telemetryService is this program's OpenTelemetry service.name unless
// OTEL_SERVICE_NAME says otherwise.
const telemetryService = "knhk-host"

// telemetryFlushTimeout bounds the flush of spans and metrics as a run
// ends (the run's own context may be cancelled by then).
const telemetryFlushTimeout = 10 * time.Second

// app is one run of the command line: the standard streams, the global
// flags, the loaded config and the host, opened on first use.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	pluginDirs []string // --plugin-dir, else plugin_dirs from --config
	lockFile   string
	configPath string
	logLevel   string
	output     string
	server     string // --server, else $KNHK_SERVER: the daemon's socket or TCP address
	auditLog   string // --audit-log, else the config's audit path
	auditKey   string // --audit-key, else the config's checkpoint_key

	cfg     *config
	host    *host.Host
	client  *client.Client // with --server: the daemon, instead of host
	audit   *audit.Log     // the host's audit log, when configured
	started bool           // cobra parsed the command line and a command started
	// auditKeyHost holds a checkpoint key that is a provider's key.
	auditKeyHost *host.Host

	daemon        *cobra.Command              // the serve command
	stopTelemetry func(context.Context) error // flushes and stops what telemetry.Setup started
	metrics       http.Handler                // serve with a health address: /metrics

	// --spiffe-socket and --server-spiffe-id: how a TCP --server is
	// authenticated; spiffeSource is the caller's X.509-SVID for it.
	spiffeSocket, serverSPIFFEID string
	spiffeSource                 io.Closer
}

// Run runs the command line with args (without the program name) and
// returns the exit status. Results go to stdout, errors and logs to stderr,
// nothing else anywhere. Plugins started on the way are stopped, the
// connection to the daemon (--server) closed, and telemetry flushed,
// before Run returns.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	// The audit log's last checkpoint may be signed through the
	// checkpoint key's host: close the log before any host.
	if cerr := a.closeAudit(); cerr != nil && err == nil {
		err = cerr
	}
	if a.host != nil {
		if cerr := a.host.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("stop plugins: %w", cerr)
		}
	}
	if a.client != nil {
		if cerr := a.client.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close the connection to the sidecar: %w", cerr)
		}
	}
	if a.spiffeSource != nil {
		_ = a.spiffeSource.Close()
	}
	a.flushTelemetry(ctx)
	if err == nil {
		return ExitOK
	}
	if !a.started {
		// cobra refused the command line before any command ran, maybe
		// before parsing -o: look for it so the error has the asked format.
		err = &usageError{err: tidySuggestion(err)}
		if a.output != formatJSON && scanOutputFlag(args) == formatJSON {
			a.output = formatJSON
		}
	}
	path := "knhk-host"
	if cmd != nil {
		path = cmd.CommandPath()
	}
	return renderError(stderr, err, path, a.output == formatJSON)
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "knhk-host",
		Short: "Sign and verify with keys held in key-management services, through provider plugins",
		Long: `knhk-host signs, verifies and manages keys held in cloud key-management
services. Each service is reached through a provider plugin, a binary named
knhk-plugin-<provider> found in the plugin directories: exactly those named
with --plugin-dir (or plugin_dirs in --config), else $KNHK_PLUGIN_PATH
(colon-separated), then plugins/ next to knhk-host.

A key reference names the provider, the provider's key id and parameters:
  PROVIDER:KEYID[?name=value&...]     e.g. fake:demo?state=/tmp/keys.json
Parameters may also be given with --param name=value, and a --config file may
name keys, so that --key NAME works anywhere a reference does.

A config file (--config FILE, HCL) sets defaults and names keys; flags win:
  plugin_dirs    = ["./bin/plugins"]   # paths are relative to the file
  lock_file      = "knhk.lock"
  log_level      = "warn"
  start_timeout  = "10s"
  call_timeout   = "30s"
  public_key_ttl = "5m"
  key "release" {
    ref    = "aws:alias/release"
    params = { region = "eu-west-1" }
  }
  audit {                              # record every operation; see 'knhk-host audit'
    path           = "audit.log"
    checkpoint_key = "audit.key"       # made by 'knhk-host audit keygen'
  }

With --server (or $KNHK_SERVER), sign, verify, pubkey, metadata, rotate and
keys go through a knhk-host serve daemon on its unix socket instead: it holds
the keys' plugins and credentials and checks its policy for this user. --key
then names one of the daemon's keys, or a reference it allows; --config,
--plugin-dir and --lock-file do not apply to those commands. plugins always
runs here.

Results go to stdout, nothing else does; errors go to stderr as one line
(one JSON object with -o json); logs go to stderr when --log-level asks.

OpenTelemetry traces and metrics follow the standard OTEL_* environment:
nothing is exported unless OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER or an
OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT, ...) asks; service.name defaults
to knhk-host, and plugins export as knhk-plugin-<provider>. A setting that
does not work is reported as one warning on stderr and the command runs
without telemetry: telemetry never stops signing.

` + exitCodesHelp,
		Example: `  knhk-host keys create --key 'fake:demo?state=/tmp/keys.json' --type ec-p256
  echo hello | knhk-host sign --key 'fake:demo?state=/tmp/keys.json' > hello.sig
  echo hello | knhk-host verify --key 'fake:demo?state=/tmp/keys.json' --sig hello.sig
  knhk-host pubkey --key 'fake:demo?state=/tmp/keys.json' | openssl pkey -pubin -noout -text
  knhk-host --server unix:///run/knhk/knhk.sock sign --key release --in release.tar.gz --out release.sig`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		PersistentPreRunE: a.setup,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usagef(fmt.Sprintf("run '%s --help' for usage", c.CommandPath()), "%v", err)
	})
	f := root.PersistentFlags()
	f.StringArrayVar(&a.pluginDirs, "plugin-dir", nil, "directory to find knhk-plugin-* binaries in; repeatable, and only these are searched (default: $KNHK_PLUGIN_PATH, then the plugins directory next to knhk-host)")
	f.StringVar(&a.lockFile, "lock-file", "", "plugin lock file pinning each plugin's SHA-256 (default: none, plugins are not pinned)")
	f.StringVar(&a.configPath, "config", "", "HCL config file naming keys and setting plugin directories, lock file, timeouts")
	f.StringVar(&a.logLevel, "log-level", "", "host and plugin log level on stderr: off, error, warn, info, debug, trace (default off)")
	f.StringVarP(&a.output, "output", "o", formatText, "output format: text or json (errors on stderr follow it)")
	f.StringVar(&a.auditLog, "audit-log", "", "record every operation run here in this audit log file (default: path in the config's audit block; none: no audit log)")
	f.StringVar(&a.auditKey, "audit-key", "", "the audit log's checkpoint key: a key file made by 'audit keygen', a key name from --config or a reference (default: checkpoint_key in the config's audit block)")
	f.StringVar(&a.server, "server", "", "sign, verify and manage keys through the knhk-host serve daemon at this unix socket (unix:///PATH or /PATH) or TCP address (HOST:PORT, with SPIFFE: --spiffe-socket) (default: $"+serverEnv+"; none: run plugins here)")
	f.StringVar(&a.spiffeSocket, "spiffe-socket", "", "SPIFFE Workload API whose X.509-SVID authenticates this caller to a TCP --server: unix:///PATH (default: $"+workloadapi.SocketEnv+")")
	f.StringVar(&a.serverSPIFFEID, "server-spiffe-id", "", "the SPIFFE ID a TCP --server must present (default: any ID in this caller's trust domain)")

	plugins := a.pluginsCmd()
	plugins.Annotations = map[string]string{localOnly: "it lists and locks this machine's plugins"}
	serve := a.serveCmd()
	serve.Annotations = map[string]string{localOnly: "it is the daemon"}
	a.daemon = serve
	root.AddCommand(
		plugins,
		serve,
		a.keysCmd(),
		a.signCmd(),
		a.verifyCmd(),
		a.pubkeyCmd(),
		a.rotateCmd(),
		a.versionsCmd(),
		a.approveCmd(),
		a.promoteCmd(),
		a.retireCmd(),
		a.metadataCmd(),
		a.auditCmd(),
	)
	return root
}

// setup checks the global flags and loads the config before any command.
func (a *app) setup(cmd *cobra.Command, _ []string) error {
	a.started = true // cobra has parsed the command line
	if a.output != formatText && a.output != formatJSON {
		bad := a.output
		a.output = formatText
		return usagef("use -o text or -o json", "unknown output format %s", shared.Quote(bad))
	}
	cfg, err := loadConfig(a.configPath)
	if err != nil {
		return err
	}
	a.cfg = cfg
	if len(a.pluginDirs) == 0 {
		a.pluginDirs = cfg.PluginDirs
	}
	if a.lockFile == "" {
		a.lockFile = cfg.LockFile
	}
	if a.logLevel == "" {
		a.logLevel = cfg.LogLevel
	}
	if _, err := a.level(); err != nil {
		return err
	}
	a.startTelemetry(cmd)
	return a.setupServer(cmd)
}

// startTelemetry sets OpenTelemetry up for this run (telemetry.Setup, from
// the OTEL_* environment). serve with a health address also gets a
// Prometheus exporter, served at /metrics there, whatever the environment
// says. A setup that fails is a warning on stderr, not the command's
// error: a malformed OTEL_* setting (an unknown exporter, a bad endpoint)
// leaves the run without telemetry, and signing goes on.
func (a *app) startTelemetry(cmd *cobra.Command) {
	// stdout carries results only: console exporters write to stderr.
	opts := []telemetry.Option{telemetry.WithConsoleWriter(a.stderr)}
	var metrics http.Handler
	if cmd == a.daemon && a.cfg.Serve != nil && a.cfg.Serve.HealthAddress != "" {
		reg := prometheus.NewRegistry()
		exp, err := otelprom.New(otelprom.WithRegisterer(reg))
		if err != nil {
			a.warnTelemetry("no /metrics: the Prometheus exporter did not start", err)
		} else {
			opts = append(opts, telemetry.WithMetricReader(exp))
			metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		}
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	stop, err := telemetry.Setup(ctx, telemetryService, opts...)
	if err != nil {
		a.warnTelemetry("running without telemetry: its OTEL_* settings do not work", err)
		metrics = nil
	}
	a.stopTelemetry, a.metrics = stop, metrics
	// Failures while running (an unreachable collector) are log lines,
	// shown as --log-level says (serve logs them with its logger); one
	// that loses data also fails the flush at the end, which warns.
	lvl, _ := a.level() // checked already
	setTelemetryErrorLog(hclog.New(&hclog.LoggerOptions{
		Name:       "knhk-host",
		Level:      lvl,
		Output:     a.stderr,
		JSONFormat: a.output == formatJSON,
	}))
}

// setTelemetryErrorLog sends OpenTelemetry's errors to logger at warn
// (instead of the standard library's log on stderr).
func setTelemetryErrorLog(logger hclog.Logger) {
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("telemetry", "error", err)
	}))
}

// flushTelemetry exports what telemetry has not yet and stops it; a
// failure is a warning.
func (a *app) flushTelemetry(ctx context.Context) {
	if a.stopTelemetry == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), telemetryFlushTimeout)
	defer cancel()
	if err := a.stopTelemetry(ctx); err != nil {
		a.warnTelemetry("flushing telemetry failed", err)
	}
	a.stopTelemetry = nil
}

// warnTelemetry reports a telemetry failure on stderr whatever
// --log-level says (its default is off): whoever set OTEL_* wants to know
// it does not work. It is a log line, in JSON with -o json.
func (a *app) warnTelemetry(msg string, err error) {
	hclog.New(&hclog.LoggerOptions{
		Name:       "knhk-host",
		Level:      hclog.Warn,
		Output:     a.stderr,
		JSONFormat: a.output == formatJSON,
	}).Warn(msg, "error", err)
}

// level parses the log level; the default is off, so stderr carries only
// errors unless asked.
func (a *app) level() (hclog.Level, error) {
	s := strings.ToLower(strings.TrimSpace(a.logLevel))
	if s == "" || s == "off" {
		return hclog.Off, nil
	}
	l := hclog.LevelFromString(s)
	if l == hclog.NoLevel {
		return 0, usagef("use one of off, error, warn, info, debug, trace", "unknown log level %s", shared.Quote(a.logLevel))
	}
	return l, nil
}

// openHost starts the host on first use. Plugins themselves start lazily,
// on the first call that needs them.
func (a *app) openHost(ctx context.Context) (*host.Host, error) {
	if a.host != nil {
		return a.host, nil
	}
	lvl, err := a.level()
	if err != nil {
		return nil, err
	}
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "knhk-host",
		Level:      lvl,
		Output:     a.stderr,
		JSONFormat: a.output == formatJSON,
	})
	hc := host.Config{
		PluginDirs:     a.pluginDirs,
		OnlyPluginDirs: len(a.pluginDirs) > 0,
		LockFile:       a.lockFile,
		Logger:         logger,
		StartTimeout:   a.cfg.StartTimeout,
		CallTimeout:    a.cfg.CallTimeout,
		PublicKeyTTL:   a.cfg.PublicKeyTTL,
		PluginEnv:      a.cfg.PluginEnv,
		KeyGroups:      a.cfg.KeyGroups,
		Quotas:         a.cfg.Quotas,
		Promotion:      a.cfg.PromotionGates,
	}
	if a.audit, err = a.openAudit(ctx, hc); err != nil {
		return nil, err
	}
	hc.Audit = a.audit
	h, err := host.New(ctx, hc)
	if err != nil {
		return nil, fmt.Errorf("start host: %w", err)
	}
	a.host = h
	return h, nil
}

// searchDirs lists the plugin directories the command searches, in order:
// exactly the ones named (--plugin-dir, or plugin_dirs in --config), else
// $KNHK_PLUGIN_PATH, then plugins/ next to knhk-host.
func (a *app) searchDirs() []string {
	if len(a.pluginDirs) > 0 {
		return a.pluginDirs
	}
	return host.SearchDirs(nil)
}

// printer is where a command writes its result.
func (a *app) printer() printer {
	return printer{w: a.stdout, json: a.output == formatJSON}
}

// keyFlags are the flags of every command that works on one key.
type keyFlags struct {
	key    string
	params []string
}

func (k *keyFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&k.key, "key", "k", "", "key reference PROVIDER:KEYID[?name=value&...] or a key name from --config (required)")
	cmd.Flags().StringArrayVar(&k.params, "param", nil, "key parameter name=value, added to the reference's (repeatable)")
}

// resolve turns --key and --param into the key to open: a key named in
// the config file, or a reference string; --param values win. With
// --server, a name is the daemon's (the config file does not apply) and
// goes as given; a reference gets the --param values.
func (a *app) resolve(k keyFlags) (keySpec, error) {
	if strings.TrimSpace(k.key) == "" {
		if a.client != nil {
			return keySpec{}, usagef("pass --key NAME, a key name of the sidecar's, or a reference PROVIDER:KEYID it allows", "missing --key")
		}
		return keySpec{}, usagef("pass --key PROVIDER:KEYID (e.g. --key 'fake:demo?state=/tmp/keys.json') or a key name from --config", "missing --key")
	}
	var ref host.Ref
	var err error
	named, isNamed := a.cfg.Keys[k.key]
	switch {
	case a.client != nil && !strings.Contains(k.key, ":"):
		if len(k.params) > 0 {
			return keySpec{}, usagef("give --param with a reference PROVIDER:KEYID; the sidecar's key names carry their own parameters", "--param with the sidecar's key name %s", shared.Quote(k.key))
		}
		return keySpec{name: k.key}, nil
	case isNamed && a.client == nil && len(named.Replicas) > 0:
		if len(k.params) > 0 {
			return keySpec{}, usagef("a key group's replicas carry their own parameters (params in the config file)", "--param with the key group %s", shared.Quote(k.key))
		}
		return keySpec{name: k.key}, nil // the host resolves its key groups
	case isNamed && a.client == nil:
		ref, err = host.ParseRef(named.Ref)
		if err != nil {
			return keySpec{}, fmt.Errorf("%w: key %s in %s: %w", errConfig, shared.Quote(k.key), a.configPath, err)
		}
		ref.Params = merge(ref.Params, named.Params)
	default:
		ref, err = host.ParseRef(k.key)
		if err != nil {
			if !strings.Contains(k.key, ":") && a.configPath != "" {
				return keySpec{}, usagef(fmt.Sprintf("name a key defined in %s or give PROVIDER:KEYID", a.configPath), "no key named %s in the config file", shared.Quote(k.key))
			}
			return keySpec{}, err
		}
	}
	params, err := parseParams(k.params)
	if err != nil {
		return keySpec{}, err
	}
	ref.Params = merge(ref.Params, params)
	return keySpec{ref: ref}, nil
}

// parseParams parses repeated name=value flags.
func parseParams(in []string) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(in))
	for _, p := range in {
		name, value, ok := strings.Cut(p, "=")
		if !ok || name == "" {
			return nil, usagef("write parameters as --param name=value", "malformed --param (no name=value)")
		}
		out[name] = value
	}
	return out, nil
}

// merge returns base with over's entries added (over wins).
func merge(base, over map[string]string) map[string]string {
	if len(over) == 0 {
		return base
	}
	out := make(map[string]string, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// show is how a reference appears in output: provider and key id, never
// the parameters, which may hold endpoints or tokens.
func show(r host.Ref) string { return r.Provider + ":" + r.KeyID }

// errName is how a reference appears in an error: as show has it, quoted
// and cut short when it is long or not printable (see safe).
func errName(r host.Ref) string { return safe(show(r)) }

// safe is a caller's string (a key id, a provider name) as an error may
// show it: unchanged when it is short and printable, else quoted with
// escapes and cut short (shared.Quote), so it can neither rewrite the
// terminal nor flood it.
func safe(s string) string {
	if len(s) <= shared.MaxQuoted && utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	return shared.Quote(s)
}

// needsSubcommand is the RunE of a command group: naming the group alone is
// a usage error that lists its subcommands.
func needsSubcommand(cmd *cobra.Command, args []string) error {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	if len(args) > 0 {
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			return usagef(fmt.Sprintf("run '%s --help' for usage", cmd.CommandPath()), "unknown command %s for %q; did you mean %s?", shared.Quote(args[0]), cmd.CommandPath(), strings.Join(s, " or "))
		}
		return usagef(fmt.Sprintf("run '%s --help' for usage", cmd.CommandPath()), "unknown command %s for %q (want one of %s)", shared.Quote(args[0]), cmd.CommandPath(), strings.Join(names, ", "))
	}
	return usagef(fmt.Sprintf("run '%s --help' for usage", cmd.CommandPath()), "missing subcommand (want one of %s)", strings.Join(names, ", "))
}

// scanOutputFlag finds -o/--output in a command line cobra could not parse.
func scanOutputFlag(args []string) string {
	out := ""
	for i, arg := range args {
		if arg == "--" {
			break
		}
		switch {
		case (arg == "-o" || arg == "--output") && i+1 < len(args):
			out = args[i+1]
		case strings.HasPrefix(arg, "--output="):
			out = strings.TrimPrefix(arg, "--output=")
		case strings.HasPrefix(arg, "-o") && !strings.HasPrefix(arg, "--"):
			out = strings.TrimPrefix(strings.TrimPrefix(arg, "-o"), "=")
		}
	}
	return out
}

// tidySuggestion turns cobra's multi-line "Did you mean this?" list into
// the end of a one-line message.
func tidySuggestion(err error) error {
	msg, list, ok := strings.Cut(err.Error(), "\n\nDid you mean this?\n")
	if !ok {
		return err
	}
	return fmt.Errorf("%s; did you mean %s?", msg, strings.Join(strings.Fields(list), " or "))
}
