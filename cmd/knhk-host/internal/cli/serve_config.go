package cli

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/sidecar"
)

// serveBlock is the config file's `serve { ... }`: the daemon's listeners
// and limits. Paths are relative to the config file.
//
//	serve {
//	  socket               = "/run/knhk/knhk.sock"
//	  socket_mode          = "0660"
//	  allow_references     = false
//	  max_request_bytes    = 4194304
//	  max_calls_per_caller = 256
//	  drain_timeout        = "30s"
//	  health_address       = "127.0.0.1:8081"  # /healthz, /readyz, /metrics
//	  tls  { address = "0.0.0.0:8443", cert_file = "server.pem", key_file = "server.key", client_ca_file = "clients-ca.pem" }
//	  http { address = "0.0.0.0:8444", cert_file = "server.pem", key_file = "server.key", client_ca_file = "clients-ca.pem" }
//	  jwt  { key = "service-accounts", max_token_lifetime = "1h", refresh_hint = "60s" }
//	}
//
// With SPIFFE, tls and http blocks without files serve with the daemon's
// X.509-SVID and take callers' SVIDs:
//
//	serve {
//	  spiffe {
//	    workload_api  = "unix:///run/spire/agent.sock"  # default: $SPIFFE_ENDPOINT_SOCKET
//	    trust_domains = ["example.org"]                 # default: every trust domain with a bundle
//	    jwt_audience  = "knhk"                          # JWT-SVIDs on http; default: none
//	    fetch_timeout = "30s"
//	  }
//	  tls  { address = "0.0.0.0:8443" }
//	  http { address = "0.0.0.0:8444" }
//	}
type serveBlock struct {
	Socket            string       `hcl:"socket,optional"`
	SocketMode        string       `hcl:"socket_mode,optional"`
	AllowReferences   bool         `hcl:"allow_references,optional"`
	MaxRequestBytes   int          `hcl:"max_request_bytes,optional"`
	MaxCallsPerCaller int          `hcl:"max_calls_per_caller,optional"`
	DrainTimeout      string       `hcl:"drain_timeout,optional"`
	HealthAddress     string       `hcl:"health_address,optional"`
	TLS               *tlsBlock    `hcl:"tls,block"`
	HTTP              *tlsBlock    `hcl:"http,block"`
	JWT               *jwtBlock    `hcl:"jwt,block"`
	SPIFFE            *spiffeBlock `hcl:"spiffe,block"`
}

// tlsBlock is a mutual-TLS listener: every file, or none (SPIFFE).
type tlsBlock struct {
	Address      string `hcl:"address"`
	CertFile     string `hcl:"cert_file,optional"`
	KeyFile      string `hcl:"key_file,optional"`
	ClientCAFile string `hcl:"client_ca_file,optional"` // checked with a clear message
}

// spiffeBlock is the daemon's SPIFFE identity from the Workload API.
type spiffeBlock struct {
	WorkloadAPI  string   `hcl:"workload_api,optional"`
	TrustDomains []string `hcl:"trust_domains,optional"`
	JWTAudience  string   `hcl:"jwt_audience,optional"`
	FetchTimeout string   `hcl:"fetch_timeout,optional"`
}

// jwtBlock is Kubernetes' ExternalJWTSigner.
type jwtBlock struct {
	Key              string `hcl:"key"`
	MaxTokenLifetime string `hcl:"max_token_lifetime,optional"`
	RefreshHint      string `hcl:"refresh_hint,optional"`
}

// policyBlock is one `policy "NAME" { ... }`: who may do what to which
// keys. Without one, the daemon denies everything. Operations: sign,
// verify, public_key, metadata, rotate, create, list, versions, approve,
// promote, retire, or "*" (sidecar.Ops).
//
//	policy "release-signers" {
//	  keys       = ["release"]
//	  principals = ["unix:uid=1000", "spiffe://example.org/ns/prod/*"]
//	  operations = ["sign", "verify", "public_key"]
//	}
type policyBlock struct {
	Name       string   `hcl:"name,label"`
	Keys       []string `hcl:"keys"`
	Principals []string `hcl:"principals"`
	Operations []string `hcl:"operations"`
}

// sidecarConfig turns the config file into the daemon's configuration.
// socket (--socket) wins over the file's.
func (c *config) sidecarConfig(path, socket string, logger hclog.Logger) (sidecar.Config, error) {
	out := sidecar.Config{Keys: map[string]string{}, Logger: logger}
	for name, k := range c.Keys {
		if len(k.Replicas) > 0 {
			out.Keys[name] = name // a key group: the host resolves the name
			continue
		}
		ref, err := host.ParseRef(k.Ref)
		if err != nil {
			return out, fmt.Errorf("%w: %s: key %s: %w", errConfig, path, shared.Quote(name), err)
		}
		ref.Params = merge(ref.Params, k.Params)
		out.Keys[name] = ref.String()
	}
	for _, p := range c.Policies {
		pol := sidecar.Policy{Keys: p.Keys, Principals: p.Principals}
		for _, op := range p.Operations {
			pol.Operations = append(pol.Operations, sidecar.Op(op))
		}
		out.Policies = append(out.Policies, pol)
	}
	s := c.Serve
	if s == nil {
		s = &serveBlock{}
	}
	out.Socket.Path = s.Socket
	if socket != "" {
		out.Socket.Path = socket
	}
	if out.Socket.Path != "" {
		out.Socket.Path = relTo(c.base, out.Socket.Path)
	}
	if s.SocketMode != "" {
		m, err := strconv.ParseUint(s.SocketMode, 8, 32)
		if err != nil {
			return out, fmt.Errorf("%w: %s: socket_mode %s is not an octal file mode (write e.g. \"0660\")", errConfig, path, shared.Quote(s.SocketMode))
		}
		out.Socket.Mode = os.FileMode(m)
	}
	out.AllowReferences = s.AllowReferences
	out.MaxRequestBytes = s.MaxRequestBytes
	out.MaxCallsPerCaller = s.MaxCallsPerCaller
	out.HealthAddress = s.HealthAddress
	var err error
	if out.DrainTimeout, err = duration(path, "drain_timeout", s.DrainTimeout); err != nil {
		return out, err
	}
	out.TLS = c.listener(s.TLS)
	out.HTTP = c.listener(s.HTTP)
	if sp := s.SPIFFE; sp != nil {
		out.SPIFFE = &sidecar.SPIFFEConfig{WorkloadAPI: sp.WorkloadAPI, TrustDomains: sp.TrustDomains, JWTAudience: sp.JWTAudience}
		if out.SPIFFE.FetchTimeout, err = duration(path, "spiffe fetch_timeout", sp.FetchTimeout); err != nil {
			return out, err
		}
	}
	if j := s.JWT; j != nil {
		out.JWT = &sidecar.JWTConfig{Key: j.Key}
		if out.JWT.MaxTokenLifetime, err = duration(path, "jwt max_token_lifetime", j.MaxTokenLifetime); err != nil {
			return out, err
		}
		if out.JWT.RefreshHint, err = duration(path, "jwt refresh_hint", j.RefreshHint); err != nil {
			return out, err
		}
	}
	return out, nil
}

// listener is a tls or http block with its paths made absolute.
func (c *config) listener(b *tlsBlock) *sidecar.TLSConfig {
	if b == nil {
		return nil
	}
	t := &sidecar.TLSConfig{Address: b.Address}
	for _, f := range []struct{ in, out *string }{{&b.CertFile, &t.CertFile}, {&b.KeyFile, &t.KeyFile}, {&b.ClientCAFile, &t.ClientCAFile}} {
		if *f.in != "" {
			*f.out = relTo(c.base, *f.in)
		}
	}
	return t
}

// duration parses an optional duration attribute ("" is zero).
func duration(path, name, in string) (time.Duration, error) {
	if in == "" {
		return 0, nil
	}
	v, err := time.ParseDuration(in)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%w: %s: %s = %s is not a duration (write e.g. \"30s\" or \"2m\")", errConfig, path, name, shared.Quote(in))
	}
	return v, nil
}
