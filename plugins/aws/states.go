package aws

import (
	"context"
	"fmt"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/knhk/knhk/shared"
)

// Version states (shared.CapVersionStates). An alias's versions are the
// chain of KMS keys in versions.go; two more tags on each key record its
// state:
//
//	knhk:version-state        pending, active, retiring or retired
//	knhk:version-state-since  when it entered that state (RFC 3339, UTC)
//
// The tags are bookkeeping; the alias is the truth. The active version is
// always the alias's target, whatever its tag says, so every user of the
// alias (knhk or not) signs with the active version only, and the key has
// exactly one active version at every instant: UpdateAlias is atomic, and
// KMS has no transaction across keys that tags alone could rely on. The
// state of every other version is its tag, except that a tag saying
// active (the alias has moved on since) reads as retiring, and a version
// without a state tag reads as retiring (it was current once: a key's
// versions from before it had states). Since is the tag's time when the
// tag says the state read, zero (unknown) when the tags lag.
//
// A key has version states when its alias's target carries
// knhk:version-state or knhk:next-version: the first pending rotation
// writes the former before anything else (see RotateKey), and every later
// rotation and promotion keeps the alias on a key that carries it. Only an
// alias can have states; a key named by key id has one version.
//
// Every change is ordered so that a crash (or a failed call) between two
// of its KMS calls leaves states that read as a consistent key with
// exactly one active version:
//
//   - a pending rotation creates the new key already tagged pending and
//     linked back (knhk:previous-version), then links it forward from the
//     newest version (knhk:next-version): before that link the new key is
//     not a version (the plugin schedules its deletion when the link
//     fails), after it the key is pending;
//   - a promotion moves the alias first (the commit: the new version is
//     active, the old one, still tagged active, reads as retiring), then
//     tags the new version active and the old one retiring. Repeating
//     the promotion (a no-op for the states) rewrites the tags that lag;
//   - retiring a version is one tag write.
const (
	TagState      = "knhk:version-state"
	TagStateSince = "knhk:version-state-since"
)

var _ shared.VersionStater = (*Provider)(nil)

// hasStates reports whether the chain's key has version states (see the
// comment above).
func (c chain) hasStates() bool {
	h := c.head()
	return c.alias != "" && h.tags[TagAlias] == c.alias && (h.tags[TagState] != "" || h.tags[TagNext] != "")
}

// entry is version i's state as the alias and tags say.
func (c chain) entry(i int) (shared.VersionStateEntry, error) {
	l := c.links[i]
	e := shared.VersionStateEntry{Version: l.id}
	tag := l.tags[TagState]
	if tag != "" {
		st, err := shared.ParseVersionState(tag)
		if err != nil {
			return e, fmt.Errorf("%w: key %s (a version of %s) has tag %s=%s, which is not a version state: fix or remove the tag",
				shared.ErrFailedPrecondition, l.id, c.alias, TagState, shared.Quote(tag))
		}
		e.State = st
	}
	switch {
	case i == c.target:
		e.State = shared.VersionActive
	case e.State == shared.VersionActive, e.State == "":
		e.State = shared.VersionRetiring
	}
	if string(e.State) == tag {
		e.Since, _ = time.Parse(time.RFC3339Nano, l.tags[TagStateSince])
	}
	return e, nil
}

// states are the chain's version states, none for a key without.
func (c chain) states() (shared.VersionStates, error) {
	var out shared.VersionStates
	if !c.hasStates() {
		return out, nil
	}
	for i := range c.links {
		e, err := c.entry(i)
		if err != nil {
			return shared.VersionStates{}, err
		}
		out.Versions = append(out.Versions, e)
	}
	return out, nil
}

// setState tags version i with a state since now, and records it in the
// chain.
func (p *Provider) setState(ctx context.Context, cl *kms.Client, c chain, i int, st shared.VersionState, now time.Time) error {
	since := now.UTC().Format(time.RFC3339Nano)
	if err := tagKey(ctx, cl, c.links[i].id, TagState, string(st), TagStateSince, since); err != nil {
		return err
	}
	c.links[i].tags[TagState], c.links[i].tags[TagStateSince] = string(st), since
	return nil
}

// syncTags rewrites the state tags that do not say the state the chain
// reads as (after a promotion, or a change a crash cut short). Failures
// are logged, not returned: the alias already says which version is
// active, and repeating the change retries them.
func (p *Provider) syncTags(ctx context.Context, cl *kms.Client, c chain, now time.Time) {
	for i, l := range c.links {
		e, err := c.entry(i)
		if err != nil || l.tags[TagState] == string(e.State) {
			continue
		}
		if err := p.setState(ctx, cl, c, i, e.State, now); err != nil {
			p.cfg.Logger.Warn("version state tag not updated (the alias holds the truth; repeating the change retries)",
				"alias", c.alias, "version", l.id, "state", e.State, "error", err)
		}
	}
}

// GetVersionStates reads an alias's version states from its keys' tags
// and its target. A key named by key id has none (and costs no call: the
// host asks on every signature it makes without a cached answer).
func (p *Provider) GetVersionStates(ctx context.Context, req shared.GetVersionStatesRequest) (shared.VersionStates, error) {
	t, err := p.resolve(ctx, req.Key)
	if err != nil || !t.key.isAlias() {
		return shared.VersionStates{}, err
	}
	c, err := p.current(ctx, t)
	if err != nil || !c.hasStates() {
		return shared.VersionStates{}, err
	}
	if c, err = p.walk(ctx, t, c, false); err != nil {
		return shared.VersionStates{}, err
	}
	return c.states()
}

// SetVersionState moves a version of an alias to a state (see
// shared.CheckVersionTransition): to active by moving the alias to it
// (the active version before reads as retiring at once), to retired by
// tagging it. Setting the state a version has rewrites state tags that
// lag behind the alias and changes nothing else.
func (p *Provider) SetVersionState(ctx context.Context, req shared.SetVersionStateRequest) (shared.VersionStates, error) {
	t, err := p.resolve(ctx, req.Key)
	if err != nil {
		return shared.VersionStates{}, err
	}
	if !t.key.isAlias() {
		return shared.VersionStates{}, fmt.Errorf("%w: %s is named by key id and has one version, so no version states: name the key by its alias (alias/NAME), whose versions are the keys it points at in turn",
			shared.ErrFailedPrecondition, t.key.raw)
	}
	c, err := p.current(ctx, t)
	if err != nil {
		return shared.VersionStates{}, err
	}
	if !c.hasStates() {
		return shared.VersionStates{}, fmt.Errorf("%w: %s has no version states; rotate it with pending first", shared.ErrFailedPrecondition, c.alias)
	}
	if c, err = p.walk(ctx, t, c, false); err != nil {
		return shared.VersionStates{}, err
	}
	v := idFromARN(req.Version)
	i := c.index(v)
	if i < 0 {
		return shared.VersionStates{}, fmt.Errorf("%w: %s is not a version of %s", shared.ErrKeyNotFound, shared.Quote(v), c.alias)
	}
	from, err := c.entry(i)
	if err != nil {
		return shared.VersionStates{}, err
	}
	if err := shared.CheckVersionTransition(v, from.State, req.State); err != nil {
		return shared.VersionStates{}, err
	}
	now := time.Now()
	switch {
	case from.State == req.State:
		p.syncTags(ctx, t.cl, c, now)
	case req.State == shared.VersionActive:
		if c, err = p.promote(ctx, t.cl, c, i, now); err != nil {
			return shared.VersionStates{}, err
		}
	default: // pending or retiring to retired: one tag
		if err := p.setState(ctx, t.cl, c, i, req.State, now); err != nil {
			return shared.VersionStates{}, err
		}
	}
	p.cfg.Logger.Debug("set version state", "alias", c.alias, "version", v, "from", from.State, "state", req.State)
	return c.states()
}

// promote makes version i active: it moves the alias to it (the commit,
// atomic in KMS), then brings the state tags in line (i active, the
// version the alias left retiring). It returns the chain as it now reads.
func (p *Provider) promote(ctx context.Context, cl *kms.Client, c chain, i int, now time.Time) (chain, error) {
	if _, err := cl.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: awssdk.String(c.alias), TargetKeyId: awssdk.String(c.links[i].id)}); err != nil {
		return chain{}, mapError("UpdateAlias", c.alias, err)
	}
	c.target = i
	p.syncTags(ctx, cl, c, now)
	return c, nil
}
