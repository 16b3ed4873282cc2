package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/knhk/knhk/client"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// serverEnv names the daemon when --server is not given.
const serverEnv = "KNHK_SERVER"

// localOnly is the annotation of a command that runs here whatever
// --server says (plugins, plugins lock, serve); its value says why.
const localOnly = "knhk.local-only"

// keyOps is what the commands do with a key. *host.Key (plugins run
// here) and *client.Key (through the daemon, --server) both have these
// methods, so the commands do not know which they hold.
type keyOps interface {
	SignDigest(ctx context.Context, digest []byte, opts host.SignOptions) (host.Signature, error)
	SignMessage(ctx context.Context, message []byte, opts host.SignOptions) (host.Signature, error)
	VerifyDigest(ctx context.Context, digest, sig []byte, opts host.SignOptions) error
	VerifyMessage(ctx context.Context, message, sig []byte, opts host.SignOptions) error
	PublicKey(ctx context.Context, version string) (host.PublicKey, error)
	Metadata(ctx context.Context) (shared.KeyMetadata, error)
	Rotate(ctx context.Context) (string, error)
}

var (
	_ keyOps = (*host.Key)(nil)
	_ keyOps = (*client.Key)(nil)
)

// keySpec is the key a command names: a reference (--key, or a key named
// in --config, with --param merged in), or, with --server, a key name of
// the daemon's, sent as given.
type keySpec struct {
	ref  host.Ref
	name string // the daemon's key name; "" for a reference
}

// String is the key as the host or the daemon is given it.
func (s keySpec) String() string {
	if s.name != "" {
		return s.name
	}
	return s.ref.String()
}

// show is the key as output names it: a daemon's key name, or a
// reference without its parameters (see show).
func (s keySpec) show() string {
	if s.name != "" {
		return s.name
	}
	return show(s.ref)
}

// errName is the key as an error names it.
func (s keySpec) errName() string { return safe(s.show()) }

// keyID is the provider's key id, or the daemon's key name.
func (s keySpec) keyID() string {
	if s.name != "" {
		return s.name
	}
	return s.ref.KeyID
}

// backend carries out the key commands: with the host in this process,
// or through the daemon (--server).
type backend interface {
	Key(ctx context.Context, spec keySpec) (keyOps, error)
	// CreateKey returns the new key and how to name it: a provider may
	// choose the key id itself.
	// With opts.ReplicateTo it also returns the replicas' references.
	CreateKey(ctx context.Context, spec keySpec, kt shared.KeyType, opts host.CreateOptions) (keyOps, keySpec, []host.Ref, error)
	ListKeys(ctx context.Context, provider string, params map[string]string) ([]shared.KeySummary, error)
}

// backend is the daemon's client with --server, else the local host.
func (a *app) backend() backend {
	if a.client != nil {
		return serverBackend{a.client}
	}
	return localBackend{a}
}

// openKey opens the key spec names.
func (a *app) openKey(ctx context.Context, spec keySpec) (keyOps, error) {
	k, err := a.backend().Key(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("open key %s: %w", spec.errName(), err)
	}
	return k, nil
}

// localBackend runs the plugins in this process's host.
type localBackend struct{ a *app }

func (b localBackend) Key(ctx context.Context, spec keySpec) (keyOps, error) {
	h, err := b.a.openHost(ctx)
	if err != nil {
		return nil, err
	}
	return h.Key(ctx, spec.String())
}

func (b localBackend) CreateKey(ctx context.Context, spec keySpec, kt shared.KeyType, opts host.CreateOptions) (keyOps, keySpec, []host.Ref, error) {
	h, err := b.a.openHost(ctx)
	if err != nil {
		return nil, spec, nil, err
	}
	k, replicas, err := h.CreateKeyWith(ctx, spec.String(), kt, opts)
	if err != nil {
		return nil, spec, nil, err
	}
	return k, keySpec{ref: k.Ref()}, replicas, nil
}

func (b localBackend) ListKeys(ctx context.Context, provider string, params map[string]string) ([]shared.KeySummary, error) {
	h, err := b.a.openHost(ctx)
	if err != nil {
		return nil, err
	}
	return h.ListKeys(ctx, provider, params)
}

// serverBackend goes through the daemon.
type serverBackend struct{ c *client.Client }

func (b serverBackend) Key(ctx context.Context, spec keySpec) (keyOps, error) {
	return b.c.Key(ctx, spec.String())
}

func (b serverBackend) CreateKey(ctx context.Context, spec keySpec, kt shared.KeyType, opts host.CreateOptions) (keyOps, keySpec, []host.Ref, error) {
	if len(opts.ReplicateTo) > 0 {
		return nil, spec, nil, usagef("run keys create --replicate-to without --server (and without $KNHK_SERVER): it needs the plugin here", "the daemon's API cannot replicate keys")
	}
	k, err := b.c.CreateKey(ctx, spec.String(), kt)
	if err != nil {
		return nil, spec, nil, err
	}
	if spec.name == "" {
		// The provider may have picked the id: the handle names it.
		ref, err := host.ParseRef(k.Name())
		if err != nil {
			return nil, spec, nil, err
		}
		spec.ref = ref
	}
	return k, spec, nil, nil
}

func (b serverBackend) ListKeys(ctx context.Context, provider string, params map[string]string) ([]shared.KeySummary, error) {
	return b.c.ListKeys(ctx, provider, params)
}

// setupServer picks the daemon from --server or $KNHK_SERVER and makes
// its client. A local-only command refuses --server, and ignores the
// environment's.
func (a *app) setupServer(cmd *cobra.Command) error {
	given := cmd.Flags().Changed("server")
	if !given {
		a.server = os.Getenv(serverEnv)
	}
	if strings.TrimSpace(a.server) == "" {
		return nil
	}
	for c := cmd; c != nil; c = c.Parent() {
		why := c.Annotations[localOnly]
		if why == "" {
			continue
		}
		if given {
			return usagef("drop --server: "+why, "--server does not apply: this command runs locally, not through the sidecar")
		}
		a.server = ""
		return nil
	}
	if cmd.Flags().Changed("audit-log") {
		return usagef("drop --audit-log: the daemon records what it does in its own audit log", "--audit-log does not apply through the sidecar (--server)")
	}
	target, unix, err := serverTarget(a.server)
	if err != nil {
		return err
	}
	opts := []client.Option{client.WithoutStream()}
	if !unix {
		opt, err := a.spiffeOption(cmd)
		if err != nil {
			return err
		}
		opts = append(opts, opt)
	}
	c, err := client.Dial(cmd.Context(), target, opts...)
	if err != nil {
		return usagef("pass --server unix:///PATH (or $"+serverEnv+") naming the daemon's socket, or HOST:PORT with --spiffe-socket", "--server: %v", err)
	}
	a.client = c
	return nil
}

// serverTarget turns --server into a Dial target and says whether it is
// a unix socket: unix:... as it is, an absolute path as a unix socket,
// HOST:PORT or dns:///HOST:PORT as TCP, where the CLI authenticates with
// its SPIFFE X.509-SVID.
func serverTarget(s string) (target string, unix bool, err error) {
	s = strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(s, "unix:"):
		return s, true, nil
	case filepath.IsAbs(s):
		return "unix://" + s, true, nil
	}
	endpoint := s
	if rest, ok := strings.CutPrefix(s, "dns:///"); ok {
		endpoint = rest
	}
	if h, p, err := net.SplitHostPort(endpoint); err == nil && h != "" && p != "" && !strings.Contains(endpoint, "/") {
		return s, false, nil
	}
	return "", false, usagef("pass --server unix:///PATH or the daemon socket's absolute path, or HOST:PORT of its tls listener (with --spiffe-socket)", "--server %s is neither a unix socket nor a TCP address", shared.Quote(s))
}

// spiffeFetchTimeout bounds the wait for the CLI's X.509-SVID.
const spiffeFetchTimeout = 30 * time.Second

// spiffeOption is the client option of a TCP --server: the caller's
// X.509-SVID from the Workload API at --spiffe-socket (else
// $SPIFFE_ENDPOINT_SOCKET), the daemon authorized by --server-spiffe-id
// (else any ID in the caller's trust domain). The source is closed when
// the command ends.
func (a *app) spiffeOption(cmd *cobra.Command) (client.Option, error) {
	addr := strings.TrimSpace(a.spiffeSocket)
	if addr == "" {
		addr = os.Getenv(workloadapi.SocketEnv)
	}
	if addr == "" {
		return nil, usagef("pass --spiffe-socket unix:///PATH (or $"+workloadapi.SocketEnv+") naming the SPIFFE Workload API, or --server unix:///PATH for the daemon's socket", "--server %s is a TCP address: the daemon takes callers there by their SPIFFE X.509-SVID, and no Workload API is given", shared.Quote(a.server))
	}
	if err := workloadapi.ValidateAddress(addr); err != nil {
		return nil, usagef("pass --spiffe-socket unix:///PATH", "--spiffe-socket %s: %v", shared.Quote(addr), err)
	}
	var authorize tlsconfig.Authorizer
	if id := strings.TrimSpace(a.serverSPIFFEID); id != "" {
		sid, err := spiffeid.FromString(id)
		if err != nil {
			return nil, usagef("pass --server-spiffe-id spiffe://TRUST.DOMAIN/PATH", "--server-spiffe-id %s: %v", shared.Quote(id), err)
		}
		authorize = tlsconfig.AuthorizeID(sid)
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), spiffeFetchTimeout)
	defer cancel()
	src, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(workloadapi.WithAddr(addr)))
	if err != nil {
		return nil, fmt.Errorf("%w: the SPIFFE Workload API at %s gave no X.509-SVID: %w", shared.ErrUnavailable, shared.Quote(addr), err)
	}
	a.spiffeSource = src
	return client.WithSPIFFE(src, authorize), nil
}
