package azure

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/knhk/knhk/shared"
)

// Version states (shared.VersionStater) live in Key Vault itself, as tags
// on each key version, so every host sharing the vault reads the same
// ones. Key Vault tags are per version: UpdateKey with a version replaces
// that version's tags and the versions list returns each version's own.
// A version's state is three tags:
//
//	knhk-version-state        pending | active | retiring | retired
//	knhk-version-state-since  when it entered that state, RFC 3339 (UTC, ns)
//	knhk-version-state-of     the version id the two above describe
//
// The last one is there because Key Vault's rotation copies the current
// version's tags to the new version: a copy names another version and is
// ignored. Key Vault documents no restriction on tag name characters (up
// to 15 tags, names and values up to 256 characters); these use only
// letters and dashes.
//
// Reading rule (readStates), the same for every host:
//
//   - A key has version states when at least one version carries its own
//     active tags; otherwise it has none (stale tags from a first pending
//     rotation that stopped halfway are ignored).
//   - If several versions carry their own active tags (a promotion that
//     stopped between its two writes), the one with the latest since is
//     active (ties: the later created, then the greater version id) and the
//     others read as retiring, since that one's since.
//   - A version without its own tags, in a key with states, is pending
//     since its creation time: a rotation that stopped before tagging, or
//     a version made outside knhk (the portal, Key Vault's rotation
//     policy), which has to be promoted before it signs.
//
// Writes are ordered so that every intermediate state reads right:
//
//   - First pending rotation: older versions are tagged retiring, then the
//     current one active (the key has states from this write on), then
//     the key is rotated and the new version tagged pending (it reads as
//     pending before that write too).
//   - Promotion: the new version is tagged active first, with a since
//     later than the active one's (so it wins even against a clock
//     behind), then the old active version retiring. Setting the active
//     version active again redoes the second write, which finishes a
//     promotion that stopped halfway.
//   - Rotation without pending of a key with states: rotate, then promote
//     the new version as above.
//
// Concurrent management operations on one key (two hosts promoting at
// once) are not serialised: Key Vault has no conditional update. The
// reading rule still gives exactly one active version.
const (
	// TagVersionState holds the version's state.
	TagVersionState = "knhk-version-state"
	// TagVersionStateSince holds when it entered the state (RFC 3339).
	TagVersionStateSince = "knhk-version-state-since"
	// TagVersionStateOf names the version the two tags describe.
	TagVersionStateOf = "knhk-version-state-of"
)

// maxTags is Key Vault's limit on tags per key version.
const maxTags = 15

var _ shared.VersionStater = (*Provider)(nil)

// kvVersion is one key version as the versions API lists it.
type kvVersion struct {
	version string
	created time.Time
	enabled bool
	tags    map[string]*string
}

// tag is a tag's value, "" when absent.
func tag(tags map[string]*string, name string) string {
	if v := tags[name]; v != nil {
		return *v
	}
	return ""
}

// hasStateTags reports whether tags carry a state tag, the version's own
// or one rotation copied. The current version of a key with states always
// does, since every version was tagged or copied its tags at rotation.
func hasStateTags(tags map[string]*string) bool {
	_, ok := tags[TagVersionState]
	return ok
}

// own is the state the version's own tags give it, if they name it.
func (v kvVersion) own() (shared.VersionState, time.Time, bool) {
	if !strings.EqualFold(tag(v.tags, TagVersionStateOf), v.version) {
		return "", time.Time{}, false
	}
	st, err := shared.ParseVersionState(tag(v.tags, TagVersionState))
	if err != nil {
		return "", time.Time{}, false
	}
	since, err := time.Parse(time.RFC3339Nano, tag(v.tags, TagVersionStateSince))
	if err != nil {
		return "", time.Time{}, false
	}
	return st, since.UTC(), true
}

// winner is the index of the active version under the reading rule, -1
// when no version carries its own active tags (no states).
func winner(vs []kvVersion) int {
	w := -1
	var ws time.Time
	for i, v := range vs {
		st, since, ok := v.own()
		if !ok || st != shared.VersionActive {
			continue
		}
		if w < 0 || since.After(ws) || since.Equal(ws) && newer(v, vs[w]) {
			w, ws = i, since
		}
	}
	return w
}

// newer orders versions with equal active-since times: the later
// created, then the greater version id, so every host picks the same.
func newer(a, b kvVersion) bool {
	if !a.created.Equal(b.created) {
		return a.created.After(b.created)
	}
	return a.version > b.version
}

// readStates applies the reading rule to a key's versions, keeping their
// order: none when the key has no states, else one entry per version.
func readStates(vs []kvVersion) shared.VersionStates {
	w := winner(vs)
	if w < 0 {
		return shared.VersionStates{}
	}
	_, wsince, _ := vs[w].own()
	out := shared.VersionStates{Versions: make([]shared.VersionStateEntry, 0, len(vs))}
	for i, v := range vs {
		e := shared.VersionStateEntry{Version: v.version}
		st, since, ok := v.own()
		switch {
		case i == w:
			e.State, e.Since = shared.VersionActive, since
		case ok && st == shared.VersionActive:
			e.State, e.Since = shared.VersionRetiring, wsince // a promotion stopped halfway
		case ok:
			e.State, e.Since = st, since
		default:
			e.State, e.Since = shared.VersionPending, v.created
		}
		out.Versions = append(out.Versions, e)
	}
	return out
}

// listVersions lists a key's versions, oldest first by creation time
// (which has one-second resolution; equal times keep the service's order).
func (p *Provider) listVersions(ctx context.Context, c *azkeys.Client, id keyID) ([]kvVersion, error) {
	var out []kvVersion
	pager := c.NewListKeyPropertiesVersionsPager(id.name, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, p.mapError("list versions of", id.String(), err)
		}
		for _, item := range page.Value {
			if item == nil || item.KID == nil {
				continue
			}
			v := kvVersion{version: item.KID.Version(), tags: item.Tags}
			if a := item.Attributes; a != nil {
				v.enabled = a.Enabled != nil && *a.Enabled
				if a.Created != nil {
					v.created = a.Created.UTC()
				}
			}
			out = append(out, v)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].created.Before(out[j].created) })
	return out, nil
}

// find is the listed version with this id.
func find(vs []kvVersion, version string) (kvVersion, bool) {
	for _, v := range vs {
		if strings.EqualFold(v.version, version) {
			return v, true
		}
	}
	return kvVersion{}, false
}

// activeVersion is the key's active version, "" for a key without
// states. It lists the versions only when the current version's tags
// (from a get the caller made anyway) say the key may have states.
func (p *Provider) activeVersion(ctx context.Context, c *azkeys.Client, id keyID, currentTags map[string]*string) (string, error) {
	if !hasStateTags(currentTags) {
		return "", nil
	}
	vs, err := p.listVersions(ctx, c, id)
	if err != nil {
		return "", err
	}
	return readStates(vs).Active(), nil
}

// tagVersion writes a version's state tags, keeping its other tags.
func (p *Provider) tagVersion(ctx context.Context, c *azkeys.Client, id keyID, version string, tags map[string]*string, st shared.VersionState, since time.Time) error {
	nt := maps.Clone(tags)
	if nt == nil {
		nt = map[string]*string{}
	}
	nt[TagVersionState] = to.Ptr(string(st))
	nt[TagVersionStateSince] = to.Ptr(since.UTC().Format(time.RFC3339Nano))
	nt[TagVersionStateOf] = to.Ptr(version)
	if len(nt) > maxTags {
		return fmt.Errorf("%w: azure: key %s has %d tags besides knhk's; version states need 3 of Key Vault's %d", shared.ErrFailedPrecondition, describe(id, version), len(nt)-3, maxTags)
	}
	if _, err := c.UpdateKey(ctx, id.name, version, azkeys.UpdateKeyParameters{Tags: nt}, nil); err != nil {
		return p.mapError("tag the version state of", describe(id, version), err)
	}
	return nil
}

// startStates gives a key without version states its first: older
// versions retiring, then the current one active. A key with states is
// left alone.
func (p *Provider) startStates(ctx context.Context, c *azkeys.Client, id keyID) error {
	vs, err := p.listVersions(ctx, c, id)
	if err != nil || readStates(vs).Has() {
		return err
	}
	kb, err := c.GetKey(ctx, id.name, "", nil)
	if err != nil {
		return p.mapError("get key", id.String(), err)
	}
	current := versionOf(kb.Key.KID)
	now := time.Now().UTC()
	// Retiring tags first: without an active version they are not read.
	for _, v := range vs {
		if strings.EqualFold(v.version, current) {
			continue
		}
		if st, _, ok := v.own(); ok && (st == shared.VersionRetiring || st == shared.VersionRetired) {
			continue // an earlier attempt wrote it
		}
		if err := p.tagVersion(ctx, c, id, v.version, v.tags, shared.VersionRetiring, now); err != nil {
			return err
		}
	}
	return p.tagVersion(ctx, c, id, current, kb.Tags, shared.VersionActive, now)
}

// promote makes a version active and the other active ones retiring, in
// that order (see the reading rule). vs are the key's versions, read
// just before.
func (p *Provider) promote(ctx context.Context, c *azkeys.Client, id keyID, vs []kvVersion, version string) error {
	target, ok := find(vs, version)
	if !ok {
		return fmt.Errorf("%w: azure: key %s has no version %s", shared.ErrKeyNotFound, id, shared.Quote(version))
	}
	since := time.Now().UTC()
	if w := winner(vs); w >= 0 && vs[w].version == target.version {
		_, since, _ = vs[w].own() // already active: keep its since
	} else {
		if w >= 0 {
			// Later than the active version's since, even if this
			// host's clock is behind the one that wrote it.
			if _, ws, _ := vs[w].own(); !since.After(ws) {
				since = ws.Add(time.Microsecond)
			}
		}
		if err := p.tagVersion(ctx, c, id, target.version, target.tags, shared.VersionActive, since); err != nil {
			return err
		}
	}
	for _, v := range vs {
		if v.version == target.version {
			continue
		}
		if st, _, ok := v.own(); ok && st == shared.VersionActive {
			if err := p.tagVersion(ctx, c, id, v.version, v.tags, shared.VersionRetiring, since); err != nil {
				return err
			}
		}
	}
	return nil
}

// GetVersionStates reads the key's version states from its versions'
// tags (one versions list); none for a key without states.
func (p *Provider) GetVersionStates(ctx context.Context, req shared.GetVersionStatesRequest) (shared.VersionStates, error) {
	t, err := p.resolve(ctx, req.Key)
	if err != nil {
		return shared.VersionStates{}, err
	}
	vs, err := p.listVersions(ctx, t.client, t.id)
	if err != nil {
		return shared.VersionStates{}, err
	}
	return readStates(vs), nil
}

// SetVersionState moves a version to a state by tagging it (a promotion
// also tags the old active version retiring) and returns the key's
// states read afresh.
func (p *Provider) SetVersionState(ctx context.Context, req shared.SetVersionStateRequest) (shared.VersionStates, error) {
	t, err := p.resolve(ctx, req.Key)
	if err != nil {
		return shared.VersionStates{}, err
	}
	id, c := t.id, t.client
	version, err := id.pick(req.Version)
	if err != nil {
		return shared.VersionStates{}, err
	}
	if version == "" {
		return shared.VersionStates{}, fmt.Errorf("%w: azure: name the version whose state to set", shared.ErrInvalidArgument)
	}
	vs, err := p.listVersions(ctx, c, id)
	if err != nil {
		return shared.VersionStates{}, err
	}
	states := readStates(vs)
	v, found := find(vs, version)
	switch {
	case !found:
		return shared.VersionStates{}, fmt.Errorf("%w: azure: key %s has no version %s", shared.ErrKeyNotFound, id, shared.Quote(version))
	case !states.Has():
		return shared.VersionStates{}, fmt.Errorf("%w: azure: key %s has no version states; rotate it with pending first", shared.ErrFailedPrecondition, id)
	}
	cur, _ := states.Entry(v.version)
	if err := shared.CheckVersionTransition(v.version, cur.State, req.State); err != nil {
		return shared.VersionStates{}, err
	}
	switch {
	case req.State == shared.VersionActive:
		err = p.promote(ctx, c, id, vs, v.version)
	case cur.State != req.State:
		err = p.tagVersion(ctx, c, id, v.version, v.tags, req.State, time.Now())
	}
	if err != nil {
		return shared.VersionStates{}, err
	}
	p.cfg.Logger.Debug("set version state", "key", id.String(), "version", v.version, "state", req.State)
	if vs, err = p.listVersions(ctx, c, id); err != nil {
		return shared.VersionStates{}, err
	}
	return readStates(vs), nil
}

// rotatePending is RotateKey with Pending: states first (a key without
// gets them), then the rotation, then the new version tagged pending.
func (p *Provider) rotatePending(ctx context.Context, c *azkeys.Client, id keyID) (string, error) {
	if err := p.startStates(ctx, c, id); err != nil {
		return "", err
	}
	resp, err := c.RotateKey(ctx, id.name, nil)
	if err != nil {
		return "", p.mapError("rotate key", id.String(), err)
	}
	version := versionOf(resp.Key.KID)
	// Untagged, the new version already reads as pending (since its
	// creation); the tag records the time precisely.
	if err := p.tagVersion(ctx, c, id, version, resp.Tags, shared.VersionPending, time.Now()); err != nil {
		p.cfg.Logger.Warn("rotated key; the new version reads as pending but could not be tagged", "key", id.String(), "version", version, "error", err)
	}
	return version, nil
}

// activateRotated makes the version a rotation without Pending just made
// active, when the key has states (it reads as pending until then).
// copied are the new version's tags, copied by the rotation from the
// version that was current: without a state tag the key has no states
// and nothing more is read.
func (p *Provider) activateRotated(ctx context.Context, c *azkeys.Client, id keyID, version string, copied map[string]*string) error {
	if !hasStateTags(copied) {
		return nil
	}
	vs, err := p.listVersions(ctx, c, id)
	if err != nil || !readStates(vs).Has() {
		return err
	}
	if err := p.promote(ctx, c, id, vs, version); err != nil {
		return fmt.Errorf("rotated key %s to version %s, which stays pending until promoted: %w", id, version, err)
	}
	return nil
}
