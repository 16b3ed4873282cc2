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

// newTransport is the HTTP transport for a vault: the system roots plus
// the CAs in caFile, if any. A certificate that does not verify will not
// verify on a retry either, so it fails at once.
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
	return certFailFast{&http.Client{Transport: tr}}, nil
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
