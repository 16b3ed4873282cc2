package sidecar

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc/credentials"

	"github.com/knhk/knhk/shared"
)

// DefaultSPIFFEFetchTimeout is how long Serve waits for the Workload API's
// first X.509-SVID (and JWT bundles) when SPIFFEConfig.FetchTimeout is
// zero.
const DefaultSPIFFEFetchTimeout = 30 * time.Second

// SPIFFEConfig gives the daemon a SPIFFE identity: its TCP listeners that
// name no certificate files (TLSConfig with only an Address) serve with
// the daemon's own X.509-SVID and accept callers by theirs, verified
// against the trust bundles, both from the SPIFFE Workload API (a SPIRE
// agent, say). Each TLS handshake takes the SVID and bundles current at
// that moment, so their rotation needs no restart; a connection keeps the
// certificates it was made with.
//
// A caller with an X.509-SVID is its SPIFFE ID and nothing else
// ("spiffe://example.org/ns/prod/web"): policies match it exactly, by path
// prefix ("spiffe://example.org/ns/prod/*") or by trust domain
// ("spiffe://example.org/*").
type SPIFFEConfig struct {
	// WorkloadAPI is the Workload API's address: "unix:///PATH" or
	// "tcp://IP:PORT". Empty: $SPIFFE_ENDPOINT_SOCKET. Unused when Source
	// is set.
	WorkloadAPI string

	// TrustDomains, when set, are the only trust domains whose SVIDs are
	// accepted as callers ("example.org"). Empty: every trust domain the
	// Workload API gives a bundle for (the daemon's own and those it
	// federates with).
	TrustDomains []string

	// JWTAudience, when set, lets HTTP/JSON callers authenticate with a
	// JWT-SVID instead of a client certificate: "Authorization: Bearer
	// TOKEN", where TOKEN's audience includes JWTAudience, it has not
	// expired, and it is signed by a key in its trust domain's JWT bundle
	// from the Workload API. The caller is then the token's subject (even
	// when the connection also carries a client certificate), and the
	// HTTP listener asks for a client certificate without requiring one.
	// Empty: bearer tokens are refused.
	JWTAudience string

	// FetchTimeout bounds how long Serve waits for the Workload API's
	// first answer. Zero: DefaultSPIFFEFetchTimeout.
	FetchTimeout time.Duration

	// Source, when set, is the daemon's X.509-SVID and trust bundles
	// instead of the Workload API's (go-spiffe's x509svid and x509bundle
	// sources: a *workloadapi.X509Source the caller manages, or static
	// ones in tests). The daemon does not close it.
	Source SPIFFESource

	// JWTBundles, with Source, are the JWT bundles JWT-SVIDs are checked
	// against (required when JWTAudience is set). The daemon does not
	// close it.
	JWTBundles jwtbundle.Source
}

// SPIFFESource is an X.509-SVID with the trust bundles to verify peers,
// such as *workloadapi.X509Source.
type SPIFFESource interface {
	x509svid.Source
	x509bundle.Source
}

// check refuses a SPIFFE configuration that cannot work.
func (s *SPIFFEConfig) check() error {
	if s.Source == nil && s.WorkloadAPI != "" {
		if err := workloadapi.ValidateAddress(s.WorkloadAPI); err != nil {
			return fmt.Errorf("spiffe workload_api %s: %w", shared.Quote(s.WorkloadAPI), err)
		}
	}
	if s.Source != nil && s.JWTAudience != "" && s.JWTBundles == nil {
		return errors.New("spiffe: a jwt audience with a given Source needs JWTBundles")
	}
	for _, td := range s.TrustDomains {
		if _, err := spiffeid.TrustDomainFromString(td); err != nil {
			return fmt.Errorf("spiffe trust domain %s: %w", shared.Quote(td), err)
		}
	}
	if s.FetchTimeout < 0 {
		return errors.New("spiffe fetch timeout must not be negative")
	}
	return nil
}

// checkSPIFFEPrincipal refuses a policy principal that says spiffe:// but
// could never match a SPIFFE ID: an exact one must be a valid SPIFFE ID
// (lower-case trust domain, no empty, "." or ".." segments), and a
// pattern ending in "/*" must be a valid ID or trust domain before it.
func checkSPIFFEPrincipal(p string) error {
	if !strings.HasPrefix(strings.ToLower(p), "spiffe://") {
		return nil
	}
	prefix, pattern := strings.CutSuffix(p, "*")
	switch {
	case prefix == "spiffe://":
		// Any SPIFFE ID, of any trust domain with a bundle.
	case !pattern:
		if _, err := spiffeid.FromString(p); err != nil {
			return fmt.Errorf("principal %s is not a SPIFFE ID: %w", shared.Quote(p), err)
		}
	case strings.HasSuffix(prefix, "/"):
		if _, err := spiffeid.FromString(strings.TrimSuffix(prefix, "/")); err != nil {
			return fmt.Errorf("principal %s: %s is not a SPIFFE ID or trust domain: %w", shared.Quote(p), shared.Quote(strings.TrimSuffix(prefix, "/")), err)
		}
	case !strings.HasPrefix(prefix, "spiffe://"):
		return fmt.Errorf("principal %s: SPIFFE IDs begin with lower-case spiffe://", shared.Quote(p))
	}
	return nil
}

// spiffeSources are the daemon's SPIFFE identity while it serves.
type spiffeSources struct {
	x509      SPIFFESource
	jwt       jwtbundle.Source // nil: JWT-SVIDs are not accepted
	audience  string
	authorize tlsconfig.Authorizer
	closers   []func() error
}

// openSPIFFE opens the Workload API sources cfg asks for (or takes the
// given ones), waiting up to FetchTimeout for the first SVID.
func openSPIFFE(ctx context.Context, s *SPIFFEConfig, logger hclog.Logger) (*spiffeSources, error) {
	out := &spiffeSources{x509: s.Source, jwt: s.JWTBundles, audience: s.JWTAudience, authorize: tlsconfig.AuthorizeAny()}
	if len(s.TrustDomains) > 0 {
		var tds []spiffeid.TrustDomain
		for _, name := range s.TrustDomains {
			tds = append(tds, spiffeid.RequireTrustDomainFromString(name)) // checked by withDefaults
		}
		out.authorize = func(id spiffeid.ID, _ [][]*x509.Certificate) error {
			return memberOf(id, tds)
		}
	}
	if s.Source != nil {
		if s.JWTAudience == "" {
			out.jwt = nil
		}
		return out, nil
	}
	timeout := s.FetchTimeout
	if timeout == 0 {
		timeout = DefaultSPIFFEFetchTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var opts []workloadapi.ClientOption
	if s.WorkloadAPI != "" {
		opts = append(opts, workloadapi.WithAddr(s.WorkloadAPI))
	}
	where := s.WorkloadAPI
	if where == "" {
		where = "$" + workloadapi.SocketEnv
	}
	src, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(opts...))
	if err != nil {
		return nil, fmt.Errorf("%w: the SPIFFE Workload API at %s gave no X.509-SVID within %s: %w", ErrConfig, where, timeout, err)
	}
	out.x509 = src
	out.closers = append(out.closers, src.Close)
	if s.JWTAudience != "" {
		jsrc, err := workloadapi.NewJWTSource(ctx, workloadapi.WithClientOptions(opts...))
		if err != nil {
			out.close()
			return nil, fmt.Errorf("%w: the SPIFFE Workload API at %s gave no JWT bundles within %s: %w", ErrConfig, where, timeout, err)
		}
		out.jwt = jsrc
		out.closers = append(out.closers, jsrc.Close)
	}
	if svid, err := src.GetX509SVID(); err == nil {
		logger.Info("SPIFFE identity from the Workload API", "spiffe_id", svid.ID.String(), "serial", svid.Certificates[0].SerialNumber.String(), "expires", svid.Certificates[0].NotAfter.UTC().Format(time.RFC3339))
	}
	// Log each update: the SVID the next handshake serves.
	done := make(chan struct{})
	out.closers = append(out.closers, func() error { close(done); return nil })
	go func() {
		for {
			select {
			case <-done:
				return
			case <-src.Updated():
				if svid, err := src.GetX509SVID(); err == nil {
					logger.Info("SPIFFE X.509-SVID or bundle updated", "spiffe_id", svid.ID.String(), "serial", svid.Certificates[0].SerialNumber.String(), "expires", svid.Certificates[0].NotAfter.UTC().Format(time.RFC3339))
				}
			}
		}
	}()
	return out, nil
}

// memberOf accepts id when it is in one of tds.
func memberOf(id spiffeid.ID, tds []spiffeid.TrustDomain) error {
	for _, td := range tds {
		if id.MemberOf(td) {
			return nil
		}
	}
	return fmt.Errorf("SPIFFE ID %s is not in an accepted trust domain", shared.Quote(id.String()))
}

// close closes the sources the daemon opened (in reverse order).
func (s *spiffeSources) close() {
	if s == nil {
		return
	}
	for i := len(s.closers) - 1; i >= 0; i-- {
		_ = s.closers[i]()
	}
	s.closers = nil
}

// serverTLS is a listener's TLS configuration from the SVID source: TLS
// 1.3, the daemon's current SVID, clients' SVIDs verified against the
// current bundles and authorized by trust domain. With optionalCert a
// client may come without a certificate (an HTTP caller with a JWT-SVID);
// one it sends is verified all the same.
func (s *spiffeSources) serverTLS(optionalCert bool) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13}
	tlsconfig.HookMTLSServerConfig(cfg, s.x509, s.x509, s.authorize)
	if optionalCert {
		verify := cfg.VerifyPeerCertificate
		cfg.ClientAuth = tls.RequestClientCert
		cfg.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return nil // no certificate: the request must carry a JWT-SVID
			}
			return verify(raw, chains)
		}
	}
	return cfg
}

// spiffeCreds are gRPC's TLS credentials for a SPIFFE listener: the
// handshake verified the client's X.509-SVID (tlsconfig), and the
// connection's AuthInfo carries its SPIFFE ID.
type spiffeCreds struct {
	credentials.TransportCredentials
}

// spiffeAuthInfo is a connection whose client presented an X.509-SVID
// that verified against the trust bundles.
type spiffeAuthInfo struct {
	credentials.TLSInfo
	ID spiffeid.ID
}

func (c spiffeCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, ai, err := c.TransportCredentials.ServerHandshake(conn)
	if err != nil {
		return nil, nil, err
	}
	ti, ok := ai.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		conn.Close()
		return nil, nil, errors.New("the client presented no X.509-SVID")
	}
	id, err := x509svid.IDFromCert(ti.State.PeerCertificates[0])
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, spiffeAuthInfo{TLSInfo: ti, ID: id}, nil
}

func (c spiffeCreds) Clone() credentials.TransportCredentials {
	return spiffeCreds{c.TransportCredentials.Clone()}
}

// callerOfSVID is the Caller of a verified X.509-SVID or JWT-SVID: its
// SPIFFE ID.
func callerOfSVID(id spiffeid.ID) Caller {
	return Caller{Principals: []string{id.String()}}
}

// httpIdentity is how an HTTP/JSON listener names its callers.
type httpIdentity struct {
	// spiffe: client certificates are X.509-SVIDs verified at the
	// handshake (a SPIFFE listener); else they were verified against
	// client_ca_file.
	spiffe bool
	// jwt, when set, accepts JWT-SVIDs with its audience.
	jwt *spiffeSources
}

// errBearer is a bearer token that does not authenticate (also
// shared.ErrPermissionDenied, as every unidentified caller).
type errBearer struct{ why string }

func (e *errBearer) Error() string { return e.why }
func (e *errBearer) Unwrap() error { return errNoIdentity }

// identify names the caller of r: a JWT-SVID in the Authorization header
// when there is one, else the verified client certificate.
func (id httpIdentity) identify(r *http.Request) (Caller, error) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		if id.jwt == nil || id.jwt.jwt == nil {
			return Caller{}, &errBearer{"the daemon takes no bearer tokens here (no spiffe jwt_audience): authenticate with a client certificate"}
		}
		scheme, token, _ := strings.Cut(auth, " ")
		token = strings.TrimSpace(token)
		if !strings.EqualFold(scheme, "Bearer") || token == "" {
			return Caller{}, &errBearer{"the Authorization header is not \"Bearer JWT-SVID\""}
		}
		svid, err := jwtsvid.ParseAndValidate(token, id.jwt.jwt, []string{id.jwt.audience})
		if err != nil {
			return Caller{}, &errBearer{"the JWT-SVID does not authenticate: " + err.Error()}
		}
		if err := id.jwt.authorize(svid.ID, nil); err != nil {
			return Caller{}, &errBearer{"the JWT-SVID does not authenticate: " + err.Error()}
		}
		return callerOfSVID(svid.ID), nil
	}
	if r.TLS == nil {
		return Caller{}, errNoIdentity
	}
	if id.spiffe {
		if len(r.TLS.PeerCertificates) == 0 {
			return Caller{}, errNoIdentity
		}
		sid, err := x509svid.IDFromCert(r.TLS.PeerCertificates[0])
		if err != nil {
			return Caller{}, errNoIdentity
		}
		return callerOfSVID(sid), nil
	}
	return callerFromTLS(r.TLS)
}
