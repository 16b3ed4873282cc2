package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/knhk/knhk/shared"
)

// Version states (shared.VersionStater). A Transit key has no metadata of
// its own per version and nothing that can say "pending"
// (min_encryption_version only bounds signing from below, and signing
// with a named version must keep working in every state), so a key's
// states live in one KV version 2 secret, VERSION_STATES/MOUNT/NAME (the
// version_states parameter, default VAULT_KNHK_VERSION_STATES): a JSON
// document written whole with check-and-set. Every change is one CAS
// write of the whole document, so hosts racing each other cannot lose an
// update, and the document always names exactly one active version.
//
// A Transit version the document does not name (a rotation that crashed
// between Transit's rotate and the KV write, or one made outside knhk)
// reads as pending since its creation: it cannot sign until promoted.

var _ shared.VersionStater = (*Provider)(nil)

// statesFormat marks a version states document; any other is refused.
const statesFormat = "knhk-vault-version-states/v1"

// statesDoc is the KV secret's data:
//
//	{"format": "knhk-vault-version-states/v1", "key": "transit/release",
//	 "versions": [{"version": 1, "state": "retiring", "since": "..."},
//	              {"version": 2, "state": "active", "since": "..."}]}
type statesDoc struct {
	Format   string        `json:"format"`
	Key      string        `json:"key"` // MOUNT/NAME: a document copied to another key's path is refused
	Versions []stateRecord `json:"versions"`
}

// stateRecord is one version's state and since when it has it.
type stateRecord struct {
	Version int                 `json:"version"`
	State   shared.VersionState `json:"state"`
	Since   time.Time           `json:"since"`
}

// has reports whether the key has version states.
func (d statesDoc) has() bool { return len(d.Versions) > 0 }

// find is a version's record, nil when the document does not name it.
func (d *statesDoc) find(v int) *stateRecord {
	for i := range d.Versions {
		if d.Versions[i].Version == v {
			return &d.Versions[i]
		}
	}
	return nil
}

// active is the active version, 0 when there is none.
func (d statesDoc) active() int {
	for _, r := range d.Versions {
		if r.State == shared.VersionActive {
			return r.Version
		}
	}
	return 0
}

// set moves a version to st; a version already in st keeps its Since.
func (r *stateRecord) set(st shared.VersionState, now time.Time) {
	if r.State != st {
		r.State, r.Since = st, now
	}
}

// states is the document as the SDK's type, oldest first.
func (d statesDoc) states() shared.VersionStates {
	var out shared.VersionStates
	for _, r := range d.Versions {
		out.Versions = append(out.Versions, shared.VersionStateEntry{Version: strconv.Itoa(r.Version), State: r.State, Since: r.Since})
	}
	return out
}

// check refuses a document that is not knhk's, is another key's, or
// breaks the rules (a version twice, an unknown state, not exactly one
// active version).
func (d statesDoc) check(k keyID, where string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: vault: the version states of %s at %s %s; fix or delete that secret", shared.ErrFailedPrecondition, k, where, why)
	}
	switch {
	case d.Format != statesFormat:
		return bad(fmt.Sprintf("are not a knhk version states document (format %s, want %s)", shared.Quote(d.Format), statesFormat))
	case d.Key != k.String():
		return bad(fmt.Sprintf("are those of key %s", shared.Quote(d.Key)))
	}
	for _, r := range d.Versions {
		if r.Version < 1 {
			return bad(fmt.Sprintf("name version %d", r.Version))
		}
	}
	if err := d.states().Check(); err != nil {
		return bad(err.Error())
	}
	return nil
}

// merged is the document with every Transit version it does not name
// added as pending since its creation, oldest first. A document naming a
// version Transit never made means the key was deleted and made again.
func (d statesDoc) merged(k keyID, where string, info keyInfo) (statesDoc, error) {
	out := statesDoc{Format: d.Format, Key: d.Key}
	for _, r := range d.Versions {
		if r.Version > info.LatestVersion {
			return statesDoc{}, fmt.Errorf("%w: vault: the version states of %s at %s name version %d, but the Transit key's latest version is %d: was the key deleted and created again? Delete that secret (vault kv metadata delete %s)",
				shared.ErrFailedPrecondition, k, where, r.Version, info.LatestVersion, where)
		}
		out.Versions = append(out.Versions, r)
	}
	for v, kv := range info.versions {
		if d.find(v) == nil {
			out.Versions = append(out.Versions, stateRecord{Version: v, State: shared.VersionPending, Since: kv.CreationTime})
		}
	}
	slices.SortFunc(out.Versions, func(a, b stateRecord) int { return a.Version - b.Version })
	return out, nil
}

// initialStates are a key's first states, made at its first pending
// rotation: its latest version active, older ones retiring.
func initialStates(k keyID, info keyInfo, now time.Time) statesDoc {
	d := statesDoc{Format: statesFormat, Key: k.String()}
	for _, v := range info.versionList() {
		st := shared.VersionRetiring
		if v == info.LatestVersion {
			st = shared.VersionActive
		}
		d.Versions = append(d.Versions, stateRecord{Version: v, State: st, Since: now})
	}
	return d
}

// stateStore is where one key's version states live: a KV v2 secret.
type stateStore struct {
	p     *Provider
	c     *client
	key   keyID
	base  string // the version_states path
	mount string // the KV v2 mount, e.g. "secret"
	path  string // the key's secret in it, e.g. "knhk/version-states/transit/release"
}

// where names the secret as the vault kv commands write it.
func (s *stateStore) where() string { return s.mount + "/" + s.path }

// errNoStatesPath is the refusal of a version state change when no KV
// path is configured.
func errNoStatesPath(k keyID) error {
	return fmt.Errorf("%w: vault: key %s: Transit cannot keep version states, so they are kept in a KV version 2 secret: set the %s parameter (e.g. %s=secret/knhk/version-states) or %s in the plugin's environment",
		shared.ErrFailedPrecondition, k, ParamVersionStates, ParamVersionStates, EnvVersionStates)
}

// stateStore is the target key's state store; nil when version_states is
// not configured.
func (p *Provider) stateStore(ctx context.Context, t target) (*stateStore, error) {
	if t.states == "" {
		return nil, nil
	}
	mount, err := p.kvMount(ctx, t.c, t.states)
	if err != nil {
		return nil, err
	}
	path := t.key.String()
	if rel := strings.Trim(strings.TrimPrefix(t.states, mount), "/"); rel != "" {
		path = rel + "/" + path
	}
	return &stateStore{p: p, c: t.c, key: t.key, base: t.states, mount: mount, path: path}, nil
}

// kvMountKey caches a version_states path's mount per client.
type kvMountKey struct {
	c    *client
	path string
}

// kvMount finds the KV v2 mount holding path, as the vault kv commands
// do (sys/internal/ui/mounts, which any token that may use some path
// under the mount can read), and checks that it is KV version 2: version
// 1 has no check-and-set and would take the document silently. Found
// mounts are remembered per client.
func (p *Provider) kvMount(ctx context.Context, c *client, path string) (string, error) {
	key := kvMountKey{c: c, path: path}
	if m, ok := p.kvMounts.Load(key); ok {
		return m.(string), nil
	}
	lookup := "sys/internal/ui/mounts/" + path
	secret, err := c.read(ctx, lookup)
	var re *api.ResponseError
	if errors.As(err, &re) && re.StatusCode < http.StatusInternalServerError && re.StatusCode != http.StatusTooManyRequests {
		return "", c.redact(fmt.Errorf("%w: vault: %s %s: Vault at %s finds no secrets engine there that the token may use (%s); enable a KV version 2 engine (vault secrets enable -path=secret kv-v2), let the token read, create and update MOUNT/data/PREFIX/*, or set %s to another path",
			shared.ErrFailedPrecondition, ParamVersionStates, shared.Quote(path), c.addr, strings.Join(re.Errors, "; "), ParamVersionStates))
	}
	if err != nil {
		return "", c.mapError("find the secrets engine of "+ParamVersionStates+" "+path, lookup, err)
	}
	var m struct {
		Path    string         `json:"path"`
		Type    string         `json:"type"`
		Options map[string]any `json:"options"`
	}
	if secret == nil || decode(secret.Data, &m) != nil || m.Path == "" {
		return "", fmt.Errorf("%w: vault: Vault at %s did not say which secrets engine holds %s", shared.ErrUnavailable, c.addr, shared.Quote(path))
	}
	mount := strings.Trim(m.Path, "/")
	version := fmt.Sprint(m.Options["version"])
	if m.Type != "kv" || version != "2" {
		return "", fmt.Errorf("%w: vault: %s %s is in a %s engine (options version %s) mounted at %s, not KV version 2, whose check-and-set writes keep concurrent hosts from losing changes",
			shared.ErrFailedPrecondition, ParamVersionStates, shared.Quote(path), shared.Quote(m.Type), shared.Quote(version), shared.Quote(mount))
	}
	if mount != path && !strings.HasPrefix(path, mount+"/") {
		return "", fmt.Errorf("%w: vault: Vault at %s says %s is in the engine mounted at %s", shared.ErrUnavailable, c.addr, shared.Quote(path), shared.Quote(mount))
	}
	p.kvMounts.Store(key, mount)
	return mount, nil
}

// errStatesRaced says another writer changed the document between read
// and write (check-and-set refused the write).
var errStatesRaced = errors.New("version states changed concurrently")

// load reads the document and the KV version that check-and-set must
// name to replace it: 0 when there is none. A missing or deleted secret
// is a key without states.
func (s *stateStore) load(ctx context.Context) (statesDoc, int, error) {
	var kvs *api.KVSecret
	_, err := s.c.retryDead(ctx, func() (*api.Secret, error) {
		got, err := s.c.api.KVv2(s.mount).Get(ctx, s.path)
		if err != nil {
			return nil, err
		}
		kvs = got
		return got.Raw, nil
	})
	if errors.Is(err, api.ErrSecretNotFound) {
		// Vault answers a path under a mount that is gone as it answers a
		// missing secret: look the mount up again, so that a disabled
		// engine is an error, not keys that all lost their states.
		s.p.kvMounts.Delete(kvMountKey{c: s.c, path: s.base})
		mount, err := s.p.kvMount(ctx, s.c, s.base)
		if err != nil {
			return statesDoc{}, 0, err
		}
		if mount != s.mount {
			return statesDoc{}, 0, fmt.Errorf("%w: vault: the KV engine holding %s %s moved from %s to %s; retry", shared.ErrUnavailable, ParamVersionStates, shared.Quote(s.base), shared.Quote(s.mount), shared.Quote(mount))
		}
		return statesDoc{}, 0, nil
	}
	if err != nil {
		return statesDoc{}, 0, s.error("read", err)
	}
	cas := 0
	if kvs.VersionMetadata != nil {
		cas = kvs.VersionMetadata.Version
	}
	if kvs.Data == nil { // the latest version was deleted
		return statesDoc{}, cas, nil
	}
	var doc statesDoc
	if err := decode(kvs.Data, &doc); err != nil {
		return statesDoc{}, 0, fmt.Errorf("%w: vault: the version states of %s at %s are not a knhk version states document; fix or delete that secret", shared.ErrFailedPrecondition, s.key, s.where())
	}
	if err := doc.check(s.key, s.where()); err != nil {
		return statesDoc{}, 0, err
	}
	return doc, cas, nil
}

// save replaces the document if its KV version is still cas;
// errStatesRaced when it is not.
func (s *stateStore) save(ctx context.Context, doc statesDoc, cas int) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("vault: encoding version states: %w", err)
	}
	var data map[string]any
	if err := json.Unmarshal(b, &data); err != nil {
		return fmt.Errorf("vault: encoding version states: %w", err)
	}
	_, err = s.c.retryDead(ctx, func() (*api.Secret, error) {
		got, err := s.c.api.KVv2(s.mount).Put(ctx, s.path, data, api.WithCheckAndSet(cas))
		if err != nil {
			return nil, err
		}
		return got.Raw, nil
	})
	var re *api.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusBadRequest && strings.Contains(strings.Join(re.Errors, " "), "check-and-set") {
		return errStatesRaced
	}
	if err != nil {
		return s.error("write", err)
	}
	return nil
}

// error maps a KV error: a 403 or 404 (no such mount any more) is a
// setting to fix, ErrFailedPrecondition naming what the token needs.
func (s *stateStore) error(op string, err error) error {
	var re *api.ResponseError
	if errors.As(err, &re) && (re.StatusCode == http.StatusForbidden || re.StatusCode == http.StatusNotFound) {
		return s.c.redact(fmt.Errorf("%w: vault: cannot %s the version states of %s at %s (Vault at %s answered %d: %s): the token must be allowed to read, create and update %s/data/%s, or set %s to a KV version 2 path it may use",
			shared.ErrFailedPrecondition, op, s.key, s.where(), s.c.addr, re.StatusCode, strings.Join(re.Errors, "; "), s.mount, s.path, ParamVersionStates))
	}
	return s.c.mapError(op+" the version states of "+s.key.String(), s.mount+"/data/"+s.path, err)
}

// casAttempts bounds the read-change-write loop of one change; each
// failed attempt lost to another writer's change, which succeeded.
const casAttempts = 20

// update applies change to the key's current document (merged with
// Transit's versions when read is set) and writes it with check-and-set,
// again on a fresh read whenever another writer got there first.
// change returns false to write nothing. update returns the document as
// written (or as read, when change wrote nothing).
func (s *stateStore) update(ctx context.Context, read bool, change func(doc *statesDoc, info keyInfo) (bool, error)) (statesDoc, error) {
	for attempt := range casAttempts {
		if attempt > 0 { // let the winner's other writes through
			select {
			case <-ctx.Done():
				return statesDoc{}, shared.ContextError(ctx.Err())
			case <-time.After(time.Duration(rand.IntN(20*attempt)+1) * time.Millisecond):
			}
		}
		doc, cas, err := s.load(ctx)
		if err != nil {
			return statesDoc{}, err
		}
		var info keyInfo
		if read { // after the document: every version it names is in Transit by now
			if info, err = s.c.readKey(ctx, s.key); err != nil {
				return statesDoc{}, err
			}
			if doc.has() {
				if doc, err = doc.merged(s.key, s.where(), info); err != nil {
					return statesDoc{}, err
				}
			}
		}
		write, err := change(&doc, info)
		if err != nil || !write {
			return doc, err
		}
		switch err := s.save(ctx, doc, cas); {
		case errors.Is(err, errStatesRaced):
			continue
		case err != nil:
			return statesDoc{}, err
		}
		return doc, nil
	}
	return statesDoc{}, fmt.Errorf("%w: vault: the version states of %s at %s changed under %d attempts to change them; retry", shared.ErrUnavailable, s.key, s.where(), casAttempts)
}

// states reads the key's states: none without a document.
func (s *stateStore) states(ctx context.Context) (shared.VersionStates, error) {
	doc, _, err := s.load(ctx)
	if err != nil || !doc.has() {
		return shared.VersionStates{}, err
	}
	info, err := s.c.readKey(ctx, s.key) // after the document, as in update
	if err != nil {
		return shared.VersionStates{}, err
	}
	if doc, err = doc.merged(s.key, s.where(), info); err != nil {
		return shared.VersionStates{}, err
	}
	return doc.states(), nil
}

// activeVersion is the key's active version, 0 when version_states is
// not configured or the key has no states.
func (p *Provider) activeVersion(ctx context.Context, t target) (int, error) {
	s, err := p.stateStore(ctx, t)
	if err != nil || s == nil {
		return 0, err
	}
	doc, _, err := s.load(ctx)
	if err != nil {
		return 0, err
	}
	return doc.active(), nil
}

// GetVersionStates returns the key's version states from its KV secret:
// none when version_states is not configured or the key has no states.
func (p *Provider) GetVersionStates(ctx context.Context, req shared.GetVersionStatesRequest) (shared.VersionStates, error) {
	t, err := p.resolve(ctx, req.Key)
	if err != nil {
		return shared.VersionStates{}, err
	}
	s, err := p.stateStore(ctx, t)
	if err != nil || s == nil {
		return shared.VersionStates{}, err
	}
	return s.states(ctx)
}

// SetVersionState moves a version to a state in one check-and-set write
// of the key's document: a promotion moves the active version to
// retiring in the same write, so every host sees exactly one active
// version.
func (p *Provider) SetVersionState(ctx context.Context, req shared.SetVersionStateRequest) (shared.VersionStates, error) {
	want, err := parseVersion(req.Version)
	if err != nil {
		return shared.VersionStates{}, err
	}
	t, err := p.resolve(ctx, req.Key)
	if err != nil {
		return shared.VersionStates{}, err
	}
	s, err := p.stateStore(ctx, t)
	if err != nil {
		return shared.VersionStates{}, err
	}
	if s == nil {
		return shared.VersionStates{}, errNoStatesPath(t.key)
	}
	doc, err := s.update(ctx, true, func(doc *statesDoc, info keyInfo) (bool, error) {
		if !doc.has() {
			return false, fmt.Errorf("%w: vault: key %s has no version states (none at %s); rotate it with pending first", shared.ErrFailedPrecondition, t.key, s.where())
		}
		r := doc.find(want)
		if r == nil {
			return false, fmt.Errorf("vault: key %s has no version %d (it has %v): %w", t.key, want, info.versionList(), shared.ErrKeyNotFound)
		}
		if err := shared.CheckVersionTransition(strconv.Itoa(want), r.State, req.State); err != nil {
			return false, err
		}
		if r.State == req.State {
			return false, nil // a retried request: nothing to write, Since kept
		}
		now := time.Now().UTC()
		if req.State == shared.VersionActive {
			if old := doc.find(doc.active()); old != nil {
				old.set(shared.VersionRetiring, now)
			}
		}
		r.set(req.State, now)
		return true, nil
	})
	if err != nil {
		return shared.VersionStates{}, err
	}
	p.log.Debug("set version state", "key", t.key.String(), "version", want, "state", req.State, "states", s.where())
	return doc.states(), nil
}

// rotateWithStates rotates a key whose version_states are configured.
// Pending: a key without states first gets them (its latest version
// active, older ones retiring) in a check-and-set write; then Transit
// rotates, and the new version, which the document does not name, reads
// as pending since Transit made it. Without Pending, a key with states
// has its new version recorded active and its active one retiring in one
// write; a key without stays without.
//
// Whatever crashes between the steps, the document names exactly one
// active version, and a new version not recorded yet reads as pending.
func (p *Provider) rotateWithStates(ctx context.Context, t target, s *stateStore, pending bool) (shared.RotateKeyResponse, error) {
	had, _, err := s.load(ctx)
	if err != nil {
		return shared.RotateKeyResponse{}, err
	}
	if pending && !had.has() {
		if _, err := s.update(ctx, true, func(doc *statesDoc, info keyInfo) (bool, error) {
			if doc.has() {
				return false, nil // another host gave the key states meanwhile
			}
			*doc = initialStates(t.key, info, time.Now().UTC())
			return true, nil
		}); err != nil {
			return shared.RotateKeyResponse{}, err
		}
	}
	resp, err := p.rotateTransit(ctx, t)
	if err != nil || pending || !had.has() {
		return resp, err
	}
	n, _ := strconv.Atoi(resp.Version)
	_, err = s.update(ctx, true, func(doc *statesDoc, _ keyInfo) (bool, error) {
		r := doc.find(n) // merged: there, pending, unless recorded meanwhile
		if r == nil || r.State != shared.VersionPending {
			return false, nil // promoted or retired by someone since
		}
		now := time.Now().UTC()
		if active := doc.find(doc.active()); active != nil && active.Version > n {
			r.set(shared.VersionRetiring, now) // a newer version became active meanwhile
			return true, nil
		} else if active != nil {
			active.set(shared.VersionRetiring, now)
		}
		r.set(shared.VersionActive, now)
		return true, nil
	})
	if err != nil {
		return shared.RotateKeyResponse{}, fmt.Errorf("vault: rotated key %s to version %d, but could not make it active in %s, so it reads as pending until promoted: %w", t.key, n, s.where(), err)
	}
	return resp, nil
}
