package azure

import (
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

// clientKey identifies one cached client: the vault plus every parameter
// that changes how it is reached or who it authenticates as.
type clientKey struct {
	vault, caFile, tenantID, clientID string
}

// clientFor returns the cached azkeys client for a vault and parameters,
// creating it on first use.
func (p *Provider) clientFor(vault string, ps params) (*azkeys.Client, error) {
	k := clientKey{vault: vault, caFile: ps.caFile, tenantID: ps.tenantID, clientID: ps.clientID}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[k]; ok {
		return c, nil
	}
	tr, err := newTransport(ps.caFile)
	if err != nil {
		return nil, err
	}
	opts := azcore.ClientOptions{Retry: p.cfg.Retry, Transport: tr}
	cred := p.cfg.Credential
	if cred == nil {
		c, err := newCredential(p.token, ps, opts)
		if err != nil {
			return nil, fmt.Errorf("%w: cannot set up Azure credentials: %s; %s", shared.ErrPermissionDenied, p.redact(oneLine(err.Error())), credentialHint())
		}
		cred = c
	}
	c, err := azkeys.NewClient(vault, markedCredential{cred}, &azkeys.ClientOptions{
		ClientOptions: opts,
		// The SDK checks that the challenge's resource matches the vault's
		// domain, so a wrong vault URL cannot obtain a token for another
		// service. A loopback vault (a test server) has no such domain.
		DisableChallengeResourceVerification: isLoopback(vault),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: cannot create a Key Vault client for %s: %v", shared.ErrInvalidArgument, vault, err)
	}
	p.clients[k] = c
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
			return nil, fmt.Errorf("%w: ca_file: %v", shared.ErrInvalidArgument, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: ca_file %s holds no PEM certificate", shared.ErrInvalidArgument, caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return certFailFast{&http.Client{Transport: tr}}, nil
}

// certFailFast marks TLS certificate errors as not worth retrying.
type certFailFast struct{ c *http.Client }

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

var _ policy.Transporter = certFailFast{}
