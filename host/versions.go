package host

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/knhk/knhk/internal/pluginrpc"
	"github.com/knhk/knhk/shared"
)

// Version states (issue #17, first slice): a provider that claims
// shared.CapVersionStates keeps each key version's state with the key
// (pending, active, retiring, retired), so every host sharing the key
// agrees. For a key with states the host signs with the active version,
// named explicitly, never the provider's latest; a pending version is
// published (PublicKey by version) but cannot sign; a retiring one
// verifies but cannot sign; a retired one does neither. Keys without
// states, and providers without the capability, behave as before.
//
// Promotion gates (canary, replicas_agree, approvals, soak) are in
// promote.go, approvals in approval.go.

// stateCache caches keys' version states with a TTL.
type stateCache struct {
	ttl time.Duration // <= 0: off
	mu  sync.Mutex
	m   map[string]stateEntry
	// stateless holds, for keys read as having no states, the version an
	// unnamed signature was last found to come from while they had none
	// (see Key.checkUnnamed). It outlives the TTL: a version never goes
	// back to pending.
	stateless map[string]string
}

type stateEntry struct {
	states  shared.VersionStates
	expires time.Time
}

func newStateCache(ttl time.Duration) *stateCache {
	return &stateCache{ttl: ttl, m: map[string]stateEntry{}, stateless: map[string]string{}}
}

func (c *stateCache) get(r Ref) (shared.VersionStates, bool) {
	if c.ttl <= 0 {
		return shared.VersionStates{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[keyName(r)]
	if !ok || time.Now().After(e.expires) {
		return shared.VersionStates{}, false
	}
	return e.states, true
}

func (c *stateCache) put(r Ref, s shared.VersionStates) {
	if c.ttl <= 0 {
		return
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	makeRoom(c.m, now, func(e stateEntry) time.Time { return e.expires })
	c.m[keyName(r)] = stateEntry{states: s, expires: now.Add(c.ttl)}
}

// signedStateless reports whether an unnamed signature by version was
// already found made while the key had no states.
func (c *stateCache) signedStateless(r Ref, version string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stateless[keyName(r)] == version
}

// noteStateless records that version signed while the key had no states.
func (c *stateCache) noteStateless(r Ref, version string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.stateless) >= maxCacheEntries {
		clear(c.stateless)
	}
	c.stateless[keyName(r)] = version
}

func (c *stateCache) invalidate(r Ref) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, keyName(r))
}

// claimsVersionStates reports whether the plugin claims
// shared.CapVersionStates.
func (m *managed) claimsVersionStates(ctx context.Context) (bool, error) {
	if d := m.description(); d != nil {
		return d.Has(shared.CapVersionStates), nil
	}
	d, err := m.describe(ctx)
	if err != nil {
		return false, err
	}
	return d.Has(shared.CapVersionStates), nil
}

// errNoVersionStates is the refusal of a version state change for a
// provider without the capability.
func (m *managed) errNoVersionStates() error {
	return fmt.Errorf("%w: the %s provider keeps no version states (it does not claim %s): a new version is current at once", shared.ErrUnimplemented, m.name, shared.CapVersionStates)
}

// versionStates returns the key's version states, none for a provider
// without the capability; from the cache unless refresh.
func (h *Host) versionStates(ctx context.Context, m *managed, r Ref, refresh bool) (shared.VersionStates, error) {
	ok, err := m.claimsVersionStates(ctx)
	if err != nil || !ok {
		return shared.VersionStates{}, err
	}
	if !refresh {
		if s, ok := h.states.get(r); ok {
			return s, nil
		}
	}
	s, err := limited(ctx, m, quotaReq{op: shared.OpMetadata, ref: r}, "get version states", true, func(ctx context.Context, c *pluginrpc.Client) (shared.VersionStates, error) {
		return c.GetVersionStates(ctx, shared.GetVersionStatesRequest{Key: r.keyRef()})
	})
	switch {
	case errors.Is(err, shared.ErrUnimplemented):
		// Claimed but not served (a wrapper copying another provider's
		// claims): no states, as for a provider without the claim.
		s, err = shared.VersionStates{}, nil
	case errors.Is(err, shared.ErrKeyNotFound):
		// The operation itself says so, in its own words (and a wrapper
		// that renames keys may not rename them here): no states. Should
		// the key appear with states, checkUnnamed catches an unnamed
		// signature by a version that is not active.
		s, err = shared.VersionStates{}, nil
	}
	if err == nil {
		err = s.Check()
	}
	if err != nil {
		return shared.VersionStates{}, fmt.Errorf("reading the key's version states: %w", err)
	}
	h.states.put(r, s)
	return s, nil
}

// stateOf is a version's state, refetching the states once when the
// version is missing from them or not in a state allowed by ok.
func (h *Host) stateOf(ctx context.Context, m *managed, r Ref, version string, ok func(shared.VersionState) bool) (shared.VersionStates, shared.VersionState, bool, error) {
	states, err := h.versionStates(ctx, m, r, false)
	if err != nil || !states.Has() {
		return states, "", false, err
	}
	if st, found := states.State(version); found && ok(st) {
		return states, st, true, nil
	}
	if states, err = h.versionStates(ctx, m, r, true); err != nil || !states.Has() {
		return states, "", false, err
	}
	st, found := states.State(version)
	return states, st, found, nil
}

// signVersion is the version a signature of the key uses: for a single
// key with version states, the active version when none is named, and a
// named version only if it is active (shared.ErrFailedPrecondition
// otherwise). Others: version as given.
func (k *Key) signVersion(ctx context.Context, version string) (string, error) {
	if k.g != nil {
		return version, nil
	}
	if version == "" {
		return k.activeVersion(ctx)
	}
	states, st, found, err := k.h.stateOf(ctx, k.m, k.ref, version, shared.VersionState.Signs)
	if err != nil || !found {
		return version, err // no states, or a version the provider will refuse
	}
	if st.Signs() {
		return version, nil
	}
	hint := ""
	if st == shared.VersionPending {
		hint = "; promote it first"
	}
	return "", fmt.Errorf("%w: key %s:%s version %s is %s and cannot sign: only the active version (%s) signs%s",
		shared.ErrFailedPrecondition, k.ref.Provider, k.ref.KeyID, shared.Quote(version), st, shared.Quote(states.Active()), hint)
}

// checkUnnamed closes the one gap the state cache leaves that matters: a
// host that read a key as having no states signs without naming a
// version, and if another host has since rotated it with pending, a
// provider whose default is its newest version (Azure, Vault) signs with
// the pending one. So for a provider that keeps states, the first
// unnamed signature by each version rereads the states, and one by a
// version that is not active is discarded (never returned) and made
// again by the active version. Keys without states pay one states read
// per new current version.
func (k *Key) checkUnnamed(ctx context.Context, req shared.SignRequest, resp shared.SignResponse) (shared.SignResponse, error) {
	d := k.m.description()
	if resp.Version == "" || d == nil || !d.Has(shared.CapVersionStates) || k.h.states.signedStateless(k.ref, resp.Version) {
		return resp, nil
	}
	states, err := k.h.versionStates(ctx, k.m, k.ref, true)
	if err != nil {
		return shared.SignResponse{}, err
	}
	active := states.Active()
	switch {
	case !states.Has():
		k.h.states.noteStateless(k.ref, resp.Version)
		return resp, nil
	case active == resp.Version:
		return resp, nil
	}
	st, _ := states.State(resp.Version)
	k.h.log.Warn("the provider signed with a version that is not active (the key's states changed since this host read them); discarded the signature, signing with the active version",
		"provider", k.m.name, "key", k.ref.KeyID, "signed", resp.Version, "state", st, "active", active)
	req.Version = active
	return k.h.sign(ctx, k.m, k.ref, req)
}

// verifyVersion is the version a local verification checks against: for
// a single key with version states, the active one when none is named;
// a named version must be active or retiring (an error wrapping
// shared.ErrBadSignature otherwise).
func (k *Key) verifyVersion(ctx context.Context, version string) (string, error) {
	if k.g != nil {
		return version, nil
	}
	if version == "" {
		return k.activeVersion(ctx)
	}
	_, st, found, err := k.h.stateOf(ctx, k.m, k.ref, version, shared.VersionState.Verifies)
	if err != nil || !found || st.Verifies() {
		return version, err
	}
	return "", fmt.Errorf("%w: key %s:%s version %s is %s: its signatures are not accepted (only active and retiring versions verify)",
		shared.ErrBadSignature, k.ref.Provider, k.ref.KeyID, shared.Quote(version), st)
}

// publicVersion is the version PublicKey("") means: the active one for a
// single key with version states.
func (k *Key) publicVersion(ctx context.Context, version string) (string, error) {
	if k.g != nil || version != "" {
		return version, nil
	}
	return k.activeVersion(ctx)
}

// activeVersion is what an unnamed version means for a single key: its
// active version when it has states, else "" (the provider's current).
func (k *Key) activeVersion(ctx context.Context) (string, error) {
	states, err := k.h.versionStates(ctx, k.m, k.ref, false)
	if err != nil || !states.Has() {
		return "", err
	}
	return states.Active(), nil
}

// VersionInfo is one version of a key: its state and public key
// fingerprint.
type VersionInfo struct {
	Version string
	// State is "" for a key without version states (its current version
	// signs, as always).
	State   shared.VersionState
	Created time.Time
	Enabled bool
	// Current: the version that signs when none is named (the active one
	// for a key with states).
	Current bool
	// SPKISHA256 is the SHA-256 of the version's DER SubjectPublicKeyInfo,
	// hex; "" when the provider would not give the public key.
	SPKISHA256 string
}

// Versions lists the key's versions, oldest first, with their states
// (fetched afresh) and fingerprints.
func (k *Key) Versions(ctx context.Context) ([]VersionInfo, error) {
	if k.g != nil {
		return nil, k.groupRefusal("list its versions")
	}
	md, err := k.m.keyMetadata(ctx, k.ref)
	if err != nil {
		return nil, err
	}
	states, err := k.h.versionStates(ctx, k.m, k.ref, true)
	if err != nil {
		return nil, err
	}
	current := md.CurrentVersion
	if states.Has() {
		current = states.Active()
	}
	out := make([]VersionInfo, 0, len(md.Versions))
	for _, v := range md.Versions {
		info := VersionInfo{Version: v.Version, Created: v.Created, Enabled: v.Enabled, Current: v.Version == current}
		info.State, _ = states.State(v.Version)
		if pk, err := k.h.sharedPublicKey(ctx, k.m, k.ref, v.Version, false); err == nil {
			info.SPKISHA256 = sha256Hex(pk.DER)
		}
		out = append(out, info)
	}
	return out, nil
}

// groupRefusal is the error of a version operation on a key group.
func (k *Key) groupRefusal(what string) error {
	return fmt.Errorf("%w: %s is a key group: %s with each replica's key (version states live with each key)",
		shared.ErrFailedPrecondition, shared.Quote(k.g.name), what)
}

// RotatePending makes a new key version in the pending state: published
// (PublicKey by version works) but not signing until Promote. The key
// gets version states if it had none (its current version becomes
// active). shared.ErrUnimplemented for a provider without
// shared.CapVersionStates. Never retried.
func (k *Key) RotatePending(ctx context.Context) (string, error) {
	if k.g != nil {
		return "", k.groupRefusal("rotate it")
	}
	resp, err := k.m.rotateKey(ctx, k.ref, true)
	if err != nil {
		return "", err
	}
	return resp.Version, nil
}

// Retire retires a retiring or pending version: it neither signs nor
// verifies any more. The active version cannot be retired: promote
// another first.
func (k *Key) Retire(ctx context.Context, version string) error {
	if k.g != nil {
		return k.groupRefusal("retire a version")
	}
	_, err := k.m.setVersionState(ctx, opRetire, k.ref, version, shared.VersionRetired, nil)
	return err
}

// setVersionState moves a version to a state, after check (when not nil)
// allows it; never retried. It drops the key's cached states and public
// keys, even on error.
func (m *managed) setVersionState(ctx context.Context, o op, r Ref, version string, state shared.VersionState, check func(context.Context, *opRun) error) (states shared.VersionStates, err error) {
	ctx, run := m.begin(ctx, o, r)
	run.version(version)
	run.versionState(state)
	defer func() { err = run.end(ctx, err) }()
	if version == "" {
		return states, fmt.Errorf("%w: name the version to %s", shared.ErrInvalidArgument, opNames[o])
	}
	if err := run.ready(); err != nil {
		return states, err
	}
	ok, err := m.claimsVersionStates(ctx)
	if err != nil {
		return states, err
	}
	if !ok {
		return states, m.errNoVersionStates()
	}
	if check != nil {
		if err := check(ctx, &run); err != nil {
			return states, err
		}
	}
	states, err = limited(ctx, m, quotaReq{op: shared.OpRotate, ref: r}, "set version state", false, func(ctx context.Context, c *pluginrpc.Client) (shared.VersionStates, error) {
		return c.SetVersionState(ctx, shared.SetVersionStateRequest{Key: r.keyRef(), Version: version, State: state})
	})
	m.h.states.invalidate(r)
	m.h.cache.invalidate(r)
	if err == nil {
		err = states.Check()
	}
	if err != nil {
		return shared.VersionStates{}, err
	}
	m.h.states.put(r, states)
	return states, nil
}
