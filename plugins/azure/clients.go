package azure

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
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
	opts := azcore.ClientOptions{Retry: p.cfg.Retry}
	if ps.caFile != "" {
		tr, err := transportWithCA(ps.caFile)
		if err != nil {
			return nil, err
		}
		opts.Transport = tr
	}
	cred := p.cfg.Credential
	if cred == nil {
		c, err := newCredential(p.token, ps, opts)
		if err != nil {
			return nil, fmt.Errorf("%w: cannot set up Azure credentials: %s; %s", shared.ErrPermissionDenied, p.redact(err.Error()), credentialHint())
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

// transportWithCA is an HTTP client trusting the system roots plus the CAs
// in caFile.
func transportWithCA(caFile string) (*http.Client, error) {
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
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}, nil
}

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
