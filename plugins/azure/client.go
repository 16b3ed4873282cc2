package azure

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/knhk/knhk/shared"
)

// client returns the azkeys client for a vault and parameters: one per
// vault and the parameters that change how it is reached or who it
// authenticates as.
func (p *Provider) client(ctx context.Context, vault string, ps shared.Params) (*azkeys.Client, error) {
	key := vault + "\x00" + ps.Key(ParamCAFile, ParamTenantID, ParamClientID)
	return p.clients.Get(ctx, key, func(context.Context) (*azkeys.Client, error) {
		return p.newClient(vault, ps)
	})
}

// newClient makes an azkeys client. Its credential's tokens are recorded
// for redaction.
func (p *Provider) newClient(vault string, ps shared.Params) (*azkeys.Client, error) {
	tr, err := newTransport(ps.String(ParamCAFile))
	if err != nil {
		return nil, err
	}
	// Logging stays as the SDK's default: headers sanitised (Authorization
	// redacted), bodies never logged (LogOptions.IncludeBody unset), since
	// a body can echo the token.
	opts := azcore.ClientOptions{Retry: p.cfg.Retry, Transport: tr}
	cred := p.cfg.Credential
	if cred == nil {
		c, err := newCredential(p.token, ps, opts)
		if err != nil {
			return nil, fmt.Errorf("%w: azure: cannot set up Azure credentials: %s; %s", shared.ErrPermissionDenied, p.redact(oneLine(err.Error())), credentialHint())
		}
		cred = c
	}
	c, err := azkeys.NewClient(vault, markedCredential{cred, &p.tokens}, &azkeys.ClientOptions{
		ClientOptions: opts,
		// The SDK checks that the challenge's resource matches the vault's
		// domain, so a wrong vault URL cannot obtain a token for another
		// service. A loopback vault (a test server) has no such domain.
		DisableChallengeResourceVerification: isLoopback(vault),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: azure: cannot create a Key Vault client for %s: %s", shared.ErrInvalidArgument, vault, p.redact(err.Error()))
	}
	return c, nil
}

// newTransport is the HTTP transport for a vault and its credential: the
// system roots plus the CAs in caFile, if any. A certificate that does not
// verify will not verify on a retry either, so it fails at once. Every
// HTTP attempt (Key Vault and token requests) is a client span, a child of
// the span in the request's context (the plugin's gRPC server span); the
// global providers are no-op unless the plugin's telemetry is set up.
func newTransport(caFile string) (policy.Transporter, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("%w: azure: ca_file: %v", shared.ErrInvalidArgument, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: azure: ca_file %s holds no PEM certificate", shared.ErrInvalidArgument, shared.Quote(caFile))
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return certFailFast{&http.Client{Transport: otelhttp.NewTransport(tr, otelhttp.WithSpanNameFormatter(spanName))}}, nil
}

// spanName names a request's client span by method and, for Key Vault's
// key API, route, with key names and versions replaced by placeholders
// ("POST /keys/{name}/{version}/sign"), so span names stay few; the full
// URL is in the span's url.full attribute. Other requests (tokens) get the
// method alone.
func spanName(_ string, r *http.Request) string {
	if route := keyVaultRoute(r.URL.Path); route != "" {
		return r.Method + " " + route
	}
	return r.Method
}

// keyVaultRoute is the route template of a Key Vault key API path, or "".
func keyVaultRoute(path string) string {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	if seg[0] != "keys" || len(seg) > 4 {
		return ""
	}
	route := "/keys"
	for i, s := range seg[1:] {
		switch {
		case i == 0:
			route += "/{name}"
		case s == "create" || s == "rotate" || s == "versions" || i == 2 && (s == "sign" || s == "verify"):
			route += "/" + s
		case i == 1:
			route += "/{version}"
		default:
			return ""
		}
	}
	return route
}

// certFailFast marks TLS certificate errors as not worth retrying.
type certFailFast struct{ c *http.Client }

var _ policy.Transporter = certFailFast{}

// Do sends the request.
func (t certFailFast) Do(req *http.Request) (*http.Response, error) {
	resp, err := t.c.Do(req)
	var cve *tls.CertificateVerificationError
	if err != nil && errors.As(err, &cve) {
		return nil, &certError{err}
	}
	return resp, err
}

// certError is a TLS certificate error; NonRetriable tells the SDK's retry
// policy to give up at once.
type certError struct{ err error }

func (e *certError) Error() string { return e.err.Error() }
func (e *certError) Unwrap() error { return e.err }
func (e *certError) NonRetriable() {}

// isLoopback reports whether a vault URL points at this machine.
func isLoopback(vault string) bool {
	host := strings.TrimPrefix(vault, "https://")
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
