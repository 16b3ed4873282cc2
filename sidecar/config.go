package sidecar

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// Defaults of Config's zero values.
const (
	DefaultSocketMode        os.FileMode = 0o660
	DefaultMaxRequestBytes               = 4 << 20
	DefaultMaxCallsPerCaller             = 256
	DefaultDrainTimeout                  = 30 * time.Second
	DefaultMaxTokenLifetime              = time.Hour
	DefaultRefreshHint                   = time.Minute
	// MinTokenLifetime is the least maximum token lifetime kube-apiserver
	// accepts from an ExternalJWTSigner.
	MinTokenLifetime = 10 * time.Minute
)

// ErrConfig marks a configuration the daemon refuses.
var ErrConfig = errors.New("bad sidecar config")

// Config is what the daemon serves and to whom. Its zero value serves
// nothing to nobody on the default socket: every call is denied until a
// Policy allows it.
type Config struct {
	// Keys names keys: a caller's key name maps to a key reference
	// PROVIDER:KEYID[?name=value&...] (parameters included), or to the
	// name of one of the host's key groups (host.Config.KeyGroups).
	Keys map[string]string

	// AllowReferences lets callers name keys by reference as well as by
	// name. Policies still apply, matched against the reference's
	// canonical form (host.Ref.String, parameters sorted). A reference's
	// parameters reach the plugin as given, endpoints included, so allow
	// references only to callers trusted with the provider's credentials.
	AllowReferences bool

	// Policies say who may do what to which key; what none allows is
	// denied.
	Policies []Policy

	// Socket is the unix socket every caller on the machine can reach
	// (its file mode permitting).
	Socket SocketConfig

	// TLS, when set, serves the gRPC API on TCP with mutual TLS.
	TLS *TLSConfig

	// HTTP, when set, serves the HTTP/JSON API on TCP with mutual TLS.
	HTTP *TLSConfig

	// SPIFFE, when set, gives the daemon its identity from the SPIFFE
	// Workload API: TLS and HTTP listeners without certificate files
	// serve with its X.509-SVID and take callers' SVIDs (and, on HTTP,
	// JWT-SVIDs when SPIFFE.JWTAudience is set).
	SPIFFE *SPIFFEConfig

	// HealthAddress, when set, serves plain HTTP /healthz (the daemon
	// runs) and /readyz (every configured key's plugin answers) on this
	// TCP address. It carries no key material and takes no calls.
	HealthAddress string

	// MetricsHandler, when set, is served at GET /metrics on
	// HealthAddress (which it then requires), e.g. a Prometheus
	// exporter's handler over the daemon's MeterProvider (knhk-host serve
	// serves one). Like the health endpoints it is plain HTTP beside the
	// API: serve nothing there that callers must not read. Fixed at
	// Serve; Reload keeps the one serving.
	MetricsHandler http.Handler

	// MaxRequestBytes bounds one request: an HTTP/JSON body, or the
	// digest or message of a gRPC sign or verify request (larger ones are
	// refused with shared.ErrInvalidArgument). gRPC messages may be up
	// to this or minGRPCMessage, whichever is larger, so that a
	// SignStream message carrying many small requests fits. Zero:
	// DefaultMaxRequestBytes.
	MaxRequestBytes int

	// MaxCallsPerCaller bounds the calls one caller (its first principal)
	// has in flight; more are refused with ErrTooManyCalls. Zero:
	// DefaultMaxCallsPerCaller.
	MaxCallsPerCaller int

	// DrainTimeout bounds how long a shutdown waits for calls in flight.
	// Zero: DefaultDrainTimeout.
	DrainTimeout time.Duration

	// JWT, when set, serves Kubernetes' ExternalJWTSigner (v1 and
	// v1alpha1) backed by one of Keys.
	JWT *JWTConfig

	// Logger receives the daemon's log lines; every policy decision is
	// logged at debug. Nil: no logging.
	Logger hclog.Logger
}

// SocketConfig is the unix socket listener.
type SocketConfig struct {
	// Path of the socket. Empty: DefaultSocketPath().
	Path string
	// Mode of the socket file. Zero: DefaultSocketMode (owner and group
	// may connect).
	Mode os.FileMode
}

// TLSConfig is a TCP listener with mutual TLS (TLS 1.3 only). Either
// every file is given (a static certificate, and client certificates
// verified against ClientCAFile: a listener without client
// authentication is refused), or none is and Config.SPIFFE is set (the
// daemon's X.509-SVID, and callers' SVIDs verified against the SPIFFE
// trust bundles).
type TLSConfig struct {
	Address      string // host:port
	CertFile     string // the server's certificate chain, PEM
	KeyFile      string // its private key, PEM
	ClientCAFile string // CAs that issue client certificates, PEM
}

// usesSPIFFE reports whether t names no files: its certificates come from
// the SPIFFE Workload API.
func (t *TLSConfig) usesSPIFFE() bool {
	return t.CertFile == "" && t.KeyFile == "" && t.ClientCAFile == ""
}

// JWTConfig configures the ExternalJWTSigner that kube-apiserver calls
// (--service-account-signing-endpoint) to sign service-account tokens.
type JWTConfig struct {
	// Key is the name (in Config.Keys) of the signing key: RSA (RS256) or
	// ECDSA P-256/P-384/P-521 (ES256/384/512).
	Key string
	// MaxTokenLifetime is the longest token lifetime kube-apiserver may
	// issue. At least MinTokenLifetime; zero: DefaultMaxTokenLifetime.
	MaxTokenLifetime time.Duration
	// RefreshHint is how often kube-apiserver should refetch the public
	// keys. Zero: DefaultRefreshHint.
	RefreshHint time.Duration
}

// DefaultSocketPath is $XDG_RUNTIME_DIR/knhk/knhk.sock, or
// /run/knhk/knhk.sock without XDG_RUNTIME_DIR.
func DefaultSocketPath() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "knhk", "knhk.sock")
	}
	return "/run/knhk/knhk.sock"
}

// withDefaults checks cfg and fills its zero values.
func (cfg Config) withDefaults() (Config, error) { return cfg.checked(nil) }

// checked is withDefaults for a daemon over a host with the key groups
// named groups: a key may map to one of those names.
func (cfg Config) checked(groups []string) (Config, error) {
	if cfg.Socket.Path == "" {
		cfg.Socket.Path = DefaultSocketPath()
	}
	if cfg.Socket.Mode == 0 {
		cfg.Socket.Mode = DefaultSocketMode
	}
	if cfg.Socket.Mode&^os.ModePerm != 0 {
		return cfg, fmt.Errorf("%w: socket mode %o has bits beyond the permissions", ErrConfig, cfg.Socket.Mode)
	}
	if cfg.MaxRequestBytes == 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.MaxCallsPerCaller == 0 {
		cfg.MaxCallsPerCaller = DefaultMaxCallsPerCaller
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.MaxRequestBytes < 0 || cfg.MaxCallsPerCaller < 0 || cfg.DrainTimeout < 0 {
		return cfg, fmt.Errorf("%w: max_request_bytes, max_calls_per_caller and drain_timeout must not be negative", ErrConfig)
	}
	if cfg.MaxRequestBytes > host.MaxWholeMessage {
		return cfg, fmt.Errorf("%w: max_request_bytes %d is over the largest message knhk carries (%d)", ErrConfig, cfg.MaxRequestBytes, host.MaxWholeMessage)
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.MetricsHandler != nil && cfg.HealthAddress == "" {
		return cfg, fmt.Errorf("%w: a metrics handler is served on the health address: set one", ErrConfig)
	}
	for name, ref := range cfg.Keys {
		if name == "" || strings.Contains(name, ":") {
			return cfg, fmt.Errorf("%w: key name %s must be non-empty and contain no ':' (that makes it a reference)", ErrConfig, shared.Quote(name))
		}
		// A key group's name (host.Config.KeyGroups) is resolved by the host.
		if _, err := host.ParseRef(ref); err != nil && !slices.Contains(groups, ref) {
			return cfg, fmt.Errorf("%w: key %s: %w", ErrConfig, shared.Quote(name), err)
		}
	}
	for _, l := range []struct {
		what string
		t    *TLSConfig
	}{{"tls", cfg.TLS}, {"http", cfg.HTTP}} {
		if l.t == nil {
			continue
		}
		if l.t.Address == "" {
			return cfg, fmt.Errorf("%w: %s listener needs an address", ErrConfig, l.what)
		}
		if l.t.usesSPIFFE() {
			if cfg.SPIFFE == nil {
				return cfg, fmt.Errorf("%w: %s listener on %s has no cert_file, key_file and client_ca_file, and there is no spiffe block to serve with an X.509-SVID instead", ErrConfig, l.what, l.t.Address)
			}
			continue
		}
		if l.t.CertFile == "" || l.t.KeyFile == "" {
			return cfg, fmt.Errorf("%w: %s listener needs cert_file and key_file (or none of the files, and a spiffe block)", ErrConfig, l.what)
		}
		if l.t.ClientCAFile == "" {
			return cfg, fmt.Errorf("%w: %s listener on %s has no client_ca_file: a TCP listener must authenticate its clients (mutual TLS)", ErrConfig, l.what, l.t.Address)
		}
	}
	if cfg.SPIFFE != nil {
		if err := cfg.SPIFFE.check(); err != nil {
			return cfg, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	for i, p := range cfg.Policies {
		if err := p.check(); err != nil {
			return cfg, fmt.Errorf("%w: policy %d: %w", ErrConfig, i+1, err)
		}
	}
	if j := cfg.JWT; j != nil {
		jj := *j
		if _, ok := cfg.Keys[jj.Key]; !ok {
			return cfg, fmt.Errorf("%w: jwt key %s is not a configured key name", ErrConfig, shared.Quote(jj.Key))
		}
		if jj.MaxTokenLifetime == 0 {
			jj.MaxTokenLifetime = DefaultMaxTokenLifetime
		}
		if jj.MaxTokenLifetime < MinTokenLifetime {
			return cfg, fmt.Errorf("%w: jwt max_token_lifetime %s is under kube-apiserver's minimum of %s", ErrConfig, jj.MaxTokenLifetime, MinTokenLifetime)
		}
		if jj.RefreshHint == 0 {
			jj.RefreshHint = DefaultRefreshHint
		}
		if jj.RefreshHint < time.Second {
			return cfg, fmt.Errorf("%w: jwt refresh_hint %s is under a second", ErrConfig, jj.RefreshHint)
		}
		cfg.JWT = &jj
	}
	return cfg, nil
}
