package sidecar

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/internal/workers"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/telemetry"
)

// core is the daemon's API without a transport: it names the caller's
// key, checks the policy, keeps the per-caller limit and calls the host.
// The gRPC API, the HTTP/JSON API and the ExternalJWTSigner are thin
// layers over it.
type core struct {
	h     *host.Host
	state atomic.Pointer[state] // swapped whole by Reload

	mu       sync.Mutex     // guards inFlight
	inFlight map[string]int // calls in flight per caller

	drain     chan struct{} // closed when the daemon starts draining
	drainOnce sync.Once

	workers *workers.Pool // runs SignStream items

	metrics coreMetrics
}

// state is one configuration and the key handles opened under it.
type state struct {
	cfg     Config   // checked, defaults filled
	handles sync.Map // configured key name -> *host.Key
}

func newCore(h *host.Host, cfg Config) *core {
	c := &core{h: h, inFlight: map[string]int{}, drain: make(chan struct{}), workers: workers.New(), metrics: newCoreMetrics()}
	c.setConfig(cfg)
	return c
}

// setConfig makes cfg (checked, defaults filled) the one every call that
// starts from now on uses.
func (c *core) setConfig(cfg Config) { c.state.Store(&state{cfg: cfg}) }

func (c *core) cfg() *Config              { return &c.state.Load().cfg }
func (c *core) log() hclog.Logger         { return c.cfg().Logger }
func (c *core) jwt() *JWTConfig           { return c.cfg().JWT }
func (c *core) draining() <-chan struct{} { return c.drain }

// startDrain makes every new call fail with ErrDraining.
func (c *core) startDrain() { c.drainOnce.Do(func() { close(c.drain) }) }

// enter admits one call of caller's: refused while draining, or when the
// caller has MaxCallsPerCaller calls in flight. Call release when done.
func (c *core) enter(caller Caller) (release func(), err error) {
	select {
	case <-c.drain:
		return nil, ErrDraining
	default:
	}
	id := caller.String()
	limit := c.cfg().MaxCallsPerCaller
	c.mu.Lock()
	if c.inFlight[id] >= limit {
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %s has %d calls in flight", ErrTooManyCalls, id, limit)
	}
	c.inFlight[id]++
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			if c.inFlight[id]--; c.inFlight[id] <= 0 {
				delete(c.inFlight, id)
			}
			c.mu.Unlock()
		})
	}, nil
}

// resolve turns a caller's key into the reference to use and the name the
// policy matches: a configured name is itself, a reference (when allowed)
// its canonical form.
func (c *core) resolve(cfg *Config, key string) (ref, policyName string, err error) {
	if ref, ok := cfg.Keys[key]; ok {
		return ref, key, nil
	}
	if !strings.Contains(key, ":") {
		return "", "", fmt.Errorf("%w: no key named %s in the sidecar's config", shared.ErrKeyNotFound, shared.Quote(key))
	}
	if !cfg.AllowReferences {
		return "", "", fmt.Errorf("%w: this sidecar takes key names, not references (allow_references is off)", shared.ErrInvalidArgument)
	}
	r, err := host.ParseRef(key)
	if err != nil {
		return "", "", err
	}
	canon := r.String()
	return canon, canon, nil
}

// authorize checks that the policy allows caller op on the key named
// policyName, logs the decision at debug and counts a denial.
// A denial is recorded in the host's audit log, if it has one, as an
// operation on ref.
func (c *core) authorize(ctx context.Context, cfg *Config, caller Caller, op Op, ref, policyName string) error {
	for _, p := range cfg.Policies {
		if p.allows(caller.Principals, op, policyName) {
			logDecision(ctx, cfg, "allow", caller, op, policyName)
			return nil
		}
	}
	logDecision(ctx, cfg, "deny", caller, op, policyName)
	c.countDenial(ctx, caller, op)
	err := &deniedError{caller: caller.String(), op: op, key: policyName}
	if aerr := c.h.AuditDenial(ctx, op.auditName(), ref, err); aerr != nil {
		cfg.Logger.Error("a policy denial could not be recorded in the audit log", "caller", caller.String(), "op", string(op), "error", aerr)
	}
	return err
}

// logDecision logs a policy decision at debug (building the line only
// when debug is on: this runs for every call), with the call's trace and
// span ids when it is traced. A reference is logged without its
// parameters.
func logDecision(ctx context.Context, cfg *Config, decision string, caller Caller, op Op, key string) {
	if !cfg.Logger.IsDebug() {
		return
	}
	key, _, _ = strings.Cut(key, "?")
	args := []any{"caller", caller.String(), "pid", caller.PID, "op", string(op), "key", shared.Quote(key)}
	cfg.Logger.Debug(decision, append(args, telemetry.LogArgs(ctx)...)...)
}

// deniedError is a policy denial: it names the principal and the
// operation, and is ErrPolicyDenied.
type deniedError struct {
	caller string
	op     Op
	key    string
}

func (e *deniedError) Error() string {
	// A reference's parameters may hold endpoints or secrets: name the
	// key by provider and key id only.
	key, _, _ := strings.Cut(e.key, "?")
	return fmt.Sprintf("permission denied: %s may not %s key %s (sidecar policy)", e.caller, e.op, shared.Quote(key))
}
func (e *deniedError) Unwrap() error { return ErrPolicyDenied }

// open resolves key, authorizes op on it and returns its host handle. A
// configured key's handle is kept with the configuration, so a busy
// caller does not parse its reference on every call.
func (c *core) open(ctx context.Context, caller Caller, op Op, key string) (*host.Key, error) {
	st := c.state.Load()
	ref, name, err := c.resolve(&st.cfg, key)
	if err != nil {
		return nil, err
	}
	if err := c.authorize(ctx, &st.cfg, caller, op, ref, name); err != nil {
		return nil, err
	}
	if name != key || ref == name {
		return c.h.Key(ctx, ref) // a reference
	}
	if k, ok := st.handles.Load(name); ok {
		return k.(*host.Key), nil
	}
	k, err := c.h.Key(ctx, ref)
	if err != nil {
		return nil, err
	}
	st.handles.Store(name, k)
	return k, nil
}

// SignInput is what to sign or verify: exactly one of Digest and Message.
type SignInput struct {
	Digest, Message []byte
	Algorithm       shared.Algorithm
	Version         string
}

func (in SignInput) opts() host.SignOptions {
	return host.SignOptions{Algorithm: in.Algorithm, Version: in.Version}
}

// errOneInput: a sign or verify request needs exactly one input.
var errOneInput = fmt.Errorf("%w: give exactly one of digest and message", shared.ErrInvalidArgument)

// check refuses an input over MaxRequestBytes.
func (in SignInput) check(cfg *Config) error {
	if n := len(in.Digest) + len(in.Message); n > cfg.MaxRequestBytes {
		return fmt.Errorf("%w: a request of %d bytes is over the sidecar's max_request_bytes (%d)", shared.ErrInvalidArgument, n, cfg.MaxRequestBytes)
	}
	return nil
}

// Sign signs in.Digest or in.Message with key.
func (c *core) Sign(ctx context.Context, caller Caller, key string, in SignInput) (_ host.Signature, err error) {
	defer func() { c.count(ctx, caller, OpSign, err) }()
	ctx = host.WithPrincipal(ctx, caller.String())
	if err := in.check(c.cfg()); err != nil {
		return host.Signature{}, err
	}
	k, err := c.open(ctx, caller, OpSign, key)
	if err != nil {
		return host.Signature{}, err
	}
	switch {
	case in.Digest != nil && in.Message == nil:
		return k.SignDigest(ctx, in.Digest, in.opts())
	case in.Message != nil && in.Digest == nil:
		return k.SignMessage(ctx, in.Message, in.opts())
	}
	return host.Signature{}, errOneInput
}

// Verify checks sig: nil when valid, an error that is
// shared.ErrBadSignature when not.
func (c *core) Verify(ctx context.Context, caller Caller, key string, in SignInput, sig []byte) (err error) {
	defer func() { c.count(ctx, caller, OpVerify, err) }()
	ctx = host.WithPrincipal(ctx, caller.String())
	if err := in.check(c.cfg()); err != nil {
		return err
	}
	k, err := c.open(ctx, caller, OpVerify, key)
	if err != nil {
		return err
	}
	switch {
	case in.Digest != nil && in.Message == nil:
		return k.VerifyDigest(ctx, in.Digest, sig, in.opts())
	case in.Message != nil && in.Digest == nil:
		return k.VerifyMessage(ctx, in.Message, sig, in.opts())
	}
	return errOneInput
}

// PublicKey returns a version's public key ("" for the current one).
func (c *core) PublicKey(ctx context.Context, caller Caller, key, version string) (_ host.PublicKey, err error) {
	defer func() { c.count(ctx, caller, OpPublicKey, err) }()
	ctx = host.WithPrincipal(ctx, caller.String())
	k, err := c.open(ctx, caller, OpPublicKey, key)
	if err != nil {
		return host.PublicKey{}, err
	}
	return k.PublicKey(ctx, version)
}

// Metadata describes key.
func (c *core) Metadata(ctx context.Context, caller Caller, key string) (_ shared.KeyMetadata, err error) {
	defer func() { c.count(ctx, caller, OpMetadata, err) }()
	ctx = host.WithPrincipal(ctx, caller.String())
	k, err := c.open(ctx, caller, OpMetadata, key)
	if err != nil {
		return shared.KeyMetadata{}, err
	}
	return k.Metadata(ctx)
}

// Rotate makes a new current version of key or, with pending, a new
// pending version, and returns it.
func (c *core) Rotate(ctx context.Context, caller Caller, key string, pending bool) (_ string, err error) {
	defer func() { c.count(ctx, caller, OpRotate, err) }()
	ctx = host.WithPrincipal(ctx, caller.String())
	k, err := c.open(ctx, caller, OpRotate, key)
	if err != nil {
		return "", err
	}
	if pending {
		return k.RotatePending(ctx)
	}
	return k.Rotate(ctx)
}

// Create creates key (a configured name whose key does not exist yet, or
// a reference) and returns the key id the provider gave it and its public
// key.
func (c *core) Create(ctx context.Context, caller Caller, key string, kt shared.KeyType) (_ string, _ host.PublicKey, err error) {
	defer func() { c.count(ctx, caller, OpCreate, err) }()
	ctx = host.WithPrincipal(ctx, caller.String())
	cfg := c.cfg()
	ref, name, err := c.resolve(cfg, key)
	if err != nil {
		return "", host.PublicKey{}, err
	}
	if err := c.authorize(ctx, cfg, caller, OpCreate, ref, name); err != nil {
		return "", host.PublicKey{}, err
	}
	k, err := c.h.CreateKey(ctx, ref, kt)
	if err != nil {
		return "", host.PublicKey{}, err
	}
	pk, err := k.PublicKey(ctx, "")
	return k.Ref().KeyID, pk, err
}

// List lists provider's keys. The policy is matched against the key
// pattern "PROVIDER:" with the parameters as a reference has them, and
// references must be allowed: listing reaches beyond the named keys.
func (c *core) List(ctx context.Context, caller Caller, provider string, params map[string]string) (_ []shared.KeySummary, err error) {
	defer func() { c.count(ctx, caller, OpList, err) }()
	ctx = host.WithPrincipal(ctx, caller.String())
	cfg := c.cfg()
	if !cfg.AllowReferences {
		return nil, fmt.Errorf("%w: listing keys needs allow_references (it reaches beyond the named keys)", shared.ErrInvalidArgument)
	}
	name := host.Ref{Provider: provider, Params: params}.String()
	if err := c.authorize(ctx, cfg, caller, OpList, name, name); err != nil {
		return nil, err
	}
	return c.h.ListKeys(ctx, provider, params)
}

// groupReady reports whether a key group has a replica to sign with:
// healthy or degraded, not down or quarantined.
func groupReady(ctx context.Context, h *host.Host, group string) error {
	gh, err := h.KeyHealth(ctx, group)
	if err != nil {
		return err
	}
	if gh.Err != "" { // no replica answered the sync check just run
		return fmt.Errorf("%w: key group %s: %s", shared.ErrUnavailable, shared.Quote(group), gh.Err)
	}
	var states []string
	for _, r := range gh.Replicas {
		if r.State == host.ReplicaHealthy || r.State == host.ReplicaDegraded {
			return nil
		}
		states = append(states, string(r.State))
	}
	return fmt.Errorf("%w: no replica of key group %s can sign (%s)", shared.ErrUnavailable, shared.Quote(group), strings.Join(states, ", "))
}

// ready reports whether every configured key's plugin (for a key group:
// one of its replicas) answers and the
// audit log, when there is one and it fails closed, can take records.
func (c *core) ready(ctx context.Context) error {
	seen := map[string]bool{}
	var errs []error
	groups := c.h.KeyGroups()
	for name, ref := range c.cfg().Keys {
		if slices.Contains(groups, ref) {
			if err := groupReady(ctx, c.h, ref); err != nil {
				errs = append(errs, fmt.Errorf("key %s: %w", name, err))
			}
			continue
		}
		r, err := host.ParseRef(ref)
		if err != nil || seen[r.Provider] {
			continue
		}
		seen[r.Provider] = true
		if err := c.h.Ping(ctx, r.Provider); err != nil {
			errs = append(errs, fmt.Errorf("key %s: %w", name, err))
		}
	}
	if l := c.h.AuditLog(); l != nil && !l.FailOpen() {
		if err := l.Ready(); err != nil {
			errs = append(errs, fmt.Errorf("audit log: %w", err))
		}
	}
	return errors.Join(errs...)
}
