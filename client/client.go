package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffegrpc/grpccredentials"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
	sidecarv1 "github.com/knhk/knhk/sidecar/proto/knhk/sidecar/v1"
	"github.com/knhk/knhk/telemetry"
)

// Client is a connection to a knhk signing sidecar (knhk-host serve). It
// is safe for concurrent use; make one per daemon and share it. Close it
// when done.
type Client struct {
	target string
	conn   *grpc.ClientConn
	api    sidecarv1.SignerClient
	mux    *mux // nil with WithoutStream
	closed atomic.Bool
}

// Option configures Dial.
type Option func(*options)

type options struct {
	tls      *tls.Config
	spiffe   SPIFFESource
	serverID tlsconfig.Authorizer
	noStream bool
}

// SPIFFESource is the caller's X.509-SVID and the trust bundles to verify
// the daemon's with, such as *workloadapi.X509Source (go-spiffe).
type SPIFFESource interface {
	x509svid.Source
	x509bundle.Source
}

// WithSPIFFE authenticates to a TCP target with SPIFFE: the client
// presents its current X.509-SVID from source and verifies the daemon's
// against source's trust bundles at each handshake (so rotated SVIDs and
// bundles apply to new connections), and the daemon knows the caller by
// its SPIFFE ID. server authorizes the daemon's SPIFFE ID, e.g.
// tlsconfig.AuthorizeID(spiffeid.RequireFromString("spiffe://example.org/knhk"));
// nil accepts any ID in the trust domain of the caller's own SVID. The
// client does not close source. Not with WithTLS, nor for a unix socket.
func WithSPIFFE(source SPIFFESource, server tlsconfig.Authorizer) Option {
	return func(o *options) { o.spiffe, o.serverID = source, server }
}

// WithTLS sets the TLS configuration of a TCP target: the daemon's TCP
// listener takes mutual TLS only, so cfg needs the client's certificate
// (Certificates or GetClientCertificate) and the CAs that issued the
// daemon's (RootCAs; nil: the system's). cfg is cloned; a zero MinVersion
// becomes TLS 1.3, which the daemon requires. Default: none, and a TCP
// target is refused without it. A unix socket target takes no TLS: the
// daemon identifies the caller by the socket peer's credentials.
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) { o.tls = cfg }
}

// WithoutStream makes every signature its own unary Sign call. Default:
// signatures go over one SignStream per Client, opened on first use,
// which carries concurrent signatures together (see the package
// documentation).
func WithoutStream() Option {
	return func(o *options) { o.noStream = true }
}

// Dial makes a Client for the daemon at target:
//
//	unix:///run/knhk/knhk.sock   a unix socket by absolute path
//	unix:knhk.sock               a unix socket by relative path
//	/run/knhk/knhk.sock          the same as unix:///run/knhk/knhk.sock
//	host:port, dns:///host:port  TCP, with WithTLS or WithSPIFFE (mutual TLS) required
//
// Plain-text TCP is never used. Dial does not connect: the connection is
// made on the first call, and remade after it breaks, so a daemon that is
// not running shows as an UnreachableError from that call. A malformed
// target is an error here, and so is ctx having ended.
func Dial(ctx context.Context, target string, opts ...Option) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	grpcTarget, unix, err := parseTarget(target)
	if err != nil {
		return nil, err
	}
	var creds credentials.TransportCredentials
	switch {
	case o.tls != nil && o.spiffe != nil:
		return nil, fmt.Errorf("%w: WithTLS and WithSPIFFE both configure the connection's TLS: give one", shared.ErrInvalidArgument)
	case unix && (o.tls != nil || o.spiffe != nil):
		return nil, fmt.Errorf("%w: WithTLS and WithSPIFFE are for TCP targets; the unix socket %s takes none", shared.ErrInvalidArgument, shared.Quote(target))
	case unix:
		// The kernel carries the bytes; the daemon identifies the caller
		// by SO_PEERCRED.
		creds = insecure.NewCredentials()
	case o.spiffe != nil:
		authorize := o.serverID
		if authorize == nil {
			authorize = sameTrustDomain(o.spiffe)
		}
		creds = grpccredentials.MTLSClientCredentials(o.spiffe, o.spiffe, authorize)
	case o.tls == nil:
		return nil, fmt.Errorf("%w: TCP target %s needs WithTLS or WithSPIFFE (the daemon takes mutual TLS only)", shared.ErrInvalidArgument, shared.Quote(target))
	default:
		cfg := o.tls.Clone()
		if cfg.MinVersion == 0 {
			cfg.MinVersion = tls.VersionTLS13
		}
		creds = credentials.NewTLS(cfg)
	}
	conn, err := grpc.NewClient(grpcTarget,
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent("knhk-client/"+shared.BuildVersion()),
		// A client span per call, sending the caller's W3C trace context
		// to the daemon (global providers: no-op unless set).
		grpc.WithStatsHandler(telemetry.GRPCClientHandler()),
		// A whole message to sign must fit (host.MaxWholeMessage), and
		// so must the answer.
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(shared.MaxMessageSize), grpc.MaxCallRecvMsgSize(shared.MaxMessageSize)),
		// A local daemon that restarts is back within seconds: retry the
		// connection often rather than with gRPC's two-minute ceiling.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
			MinConnectTimeout: 10 * time.Second,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: target %s: %w", shared.ErrInvalidArgument, shared.Quote(target), err)
	}
	c := &Client{target: target, conn: conn, api: sidecarv1.NewSignerClient(conn)}
	if !o.noStream {
		c.mux = &mux{api: c.api, wrap: c.wrap}
	}
	return c, nil
}

// sameTrustDomain authorizes a daemon whose SPIFFE ID is in the trust
// domain of the caller's current SVID.
func sameTrustDomain(src SPIFFESource) tlsconfig.Authorizer {
	return func(id spiffeid.ID, _ [][]*x509.Certificate) error {
		svid, err := src.GetX509SVID()
		if err != nil {
			return err
		}
		if !id.MemberOf(svid.ID.TrustDomain()) {
			return fmt.Errorf("the daemon's SPIFFE ID %s is not in this client's trust domain %s", id, svid.ID.TrustDomain())
		}
		return nil
	}
}

// parseTarget checks a Dial target and returns what gRPC is given and
// whether it is a unix socket.
func parseTarget(target string) (grpcTarget string, unix bool, err error) {
	bad := func(why string) (string, bool, error) {
		return "", false, fmt.Errorf("%w: target %s: %s (want unix:///PATH, unix:PATH, /PATH, host:port or dns:///host:port)", shared.ErrInvalidArgument, shared.Quote(target), why)
	}
	switch {
	case target == "":
		return bad("empty")
	case strings.HasPrefix(target, "/"):
		return "unix://" + target, true, nil
	case strings.HasPrefix(target, "unix:"):
		path := strings.TrimPrefix(target, "unix:")
		if rest, ok := strings.CutPrefix(path, "//"); ok {
			// unix://AUTHORITY/PATH: gRPC takes no authority.
			if !strings.HasPrefix(rest, "/") {
				return bad("a unix target's path after unix:// must be absolute")
			}
			path = rest
		}
		if strings.Trim(path, "/") == "" {
			return bad("no socket path")
		}
		return target, true, nil
	}
	endpoint := target
	if rest, ok := strings.CutPrefix(target, "dns:"); ok {
		if rest, ok = strings.CutPrefix(rest, "//"); ok {
			_, endpoint, _ = strings.Cut(rest, "/") // past the optional DNS server authority
		} else {
			endpoint = rest
		}
	} else if strings.Contains(target, "://") {
		return bad("unsupported scheme")
	} else {
		target = "dns:///" + target
	}
	host, port, err := net.SplitHostPort(endpoint)
	if err != nil || host == "" || port == "" {
		return bad("not host:port")
	}
	return target, false, nil
}

// Target is the address the Client was made with.
func (c *Client) Target() string { return c.target }

// Key returns a handle on the key name names: a key name from the
// daemon's config, or, when the daemon allows references, a reference
// PROVIDER:KEYID[?name=value&...]. It makes no call: an unknown key shows
// as shared.ErrKeyNotFound from the first call on the handle. A malformed
// reference is host.ErrMalformedRef here.
func (c *Client) Key(ctx context.Context, name string) (*Key, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	return &Key{c: c, name: name}, nil
}

// checkName refuses an empty key name and a malformed reference before
// anything is sent.
func checkName(name string) error {
	if strings.TrimSpace(name) == "" {
		return fmt.Errorf("%w: empty key name", shared.ErrInvalidArgument)
	}
	if strings.Contains(name, ":") {
		if _, err := host.ParseRef(name); err != nil {
			return err
		}
	}
	return nil
}

// CreateKey creates a key of type kt where name points (a reference, or
// a key name whose reference the daemon knows) and returns its handle.
// Creation is never retried: after an UnreachableError, look (Metadata,
// ListKeys) before creating the key again.
func (c *Client) CreateKey(ctx context.Context, name string, kt shared.KeyType) (*Key, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	resp, err := c.api.CreateKey(ctx, &sidecarv1.CreateKeyRequest{Key: name, KeyType: string(kt)})
	if err != nil {
		return nil, c.wrap(err)
	}
	// A provider may pick the key's id: a reference then names that id.
	if ref, err := host.ParseRef(name); err == nil && resp.GetKeyId() != "" && resp.GetKeyId() != ref.KeyID {
		ref.KeyID = resp.GetKeyId()
		name = ref.String()
	}
	return &Key{c: c, name: name}, nil
}

// ListKeys lists the keys of provider where params point (as in a
// reference's query).
func (c *Client) ListKeys(ctx context.Context, provider string, params map[string]string) ([]shared.KeySummary, error) {
	resp, err := c.api.ListKeys(ctx, &sidecarv1.ListKeysRequest{Provider: provider, Params: params})
	if err != nil {
		return nil, c.wrap(err)
	}
	out := make([]shared.KeySummary, 0, len(resp.GetKeys()))
	for _, k := range resp.GetKeys() {
		out = append(out, shared.KeySummary{
			KeyID:          k.GetKeyId(),
			Type:           shared.KeyType(k.GetKeyType()),
			CurrentVersion: k.GetCurrentVersion(),
			Aliases:        k.GetAliases(),
		})
	}
	return out, nil
}

// Signer returns a crypto.Signer for the current version of the key name
// names; see Key.Signer.
func (c *Client) Signer(ctx context.Context, name string) (*Signer, error) {
	k, err := c.Key(ctx, name)
	if err != nil {
		return nil, err
	}
	return k.Signer(ctx)
}

// Close ends the sign stream, fails the calls waiting on it with
// ErrClosed, and closes the connection. It waits for the Client's own
// goroutines to end. Later calls fail with ErrClosed.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	if c.mux != nil {
		c.mux.close()
	}
	return c.conn.Close()
}
