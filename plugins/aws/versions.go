package aws

import (
	"context"
	"errors"
	"fmt"
	"strings"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/knhk/knhk/shared"
)

// Key versions. AWS KMS cannot rotate an asymmetric key in place, so a
// knhk key that rotates is an alias, and its versions are the successive
// KMS keys the alias has pointed at. A version is named by its KMS key id.
// Tags on each key record the chain (see README.md):
//
//	knhk:alias             the alias the key is a version of ("alias/release")
//	knhk:previous-version  the key id of the version before it (absent on the first)
//	knhk:next-version      the key id of the version after it, when that one
//	                       was made by a rotation with version states
//
// The current version is the alias's target; older versions are found by
// following knhk:previous-version back from it, and versions newer than
// the target (pending ones, which the alias does not point at) by
// following knhk:next-version forward from it. states.go adds the
// version state tags.
const (
	TagAlias    = "knhk:alias"
	TagPrevious = "knhk:previous-version"
	TagNext     = "knhk:next-version"
)

// describe runs DescribeKey.
func describe(ctx context.Context, cl *kms.Client, id string) (*types.KeyMetadata, error) {
	out, err := cl.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: awssdk.String(id)})
	if err != nil {
		return nil, mapError("DescribeKey", id, err)
	}
	if out.KeyMetadata == nil || out.KeyMetadata.KeyId == nil {
		return nil, fmt.Errorf("%w: aws kms DescribeKey %s: response has no key metadata", shared.ErrUnavailable, id)
	}
	return out.KeyMetadata, nil
}

// keyTags lists a key's tags.
func keyTags(ctx context.Context, cl *kms.Client, id string) (map[string]string, error) {
	tags := map[string]string{}
	pages := kms.NewListResourceTagsPaginator(cl, &kms.ListResourceTagsInput{KeyId: awssdk.String(id)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, mapError("ListResourceTags", id, err)
		}
		for _, t := range page.Tags {
			tags[awssdk.ToString(t.TagKey)] = awssdk.ToString(t.TagValue)
		}
	}
	return tags, nil
}

// tagKey sets tags on a key (TagResource replaces the values of tags the
// key has).
func tagKey(ctx context.Context, cl *kms.Client, id string, kv ...string) error {
	tags := make([]types.Tag, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		tags = append(tags, types.Tag{TagKey: awssdk.String(kv[i]), TagValue: awssdk.String(kv[i+1])})
	}
	if _, err := cl.TagResource(ctx, &kms.TagResourceInput{KeyId: awssdk.String(id), Tags: tags}); err != nil {
		return mapError("TagResource", id, err)
	}
	return nil
}

// versionTarget returns what to send KMS to use version v of the key t
// names, after checking that v is a version of it. Any version of an
// alias's chain qualifies, whatever its state: the host refuses to sign
// with versions that are not active, and a canary needs the pending one.
func (p *Provider) versionTarget(ctx context.Context, t target, v string) (string, error) {
	v = idFromARN(v)
	if v == "" || strings.ContainsAny(v, ":/") {
		return "", fmt.Errorf("%w: version %s is not a KMS key id", shared.ErrInvalidArgument, shared.Quote(v))
	}
	if !t.key.isAlias() {
		if v != t.key.id {
			return "", fmt.Errorf("%w: %s is not a version of %s: a key named by key id or ARN has one version, its own key id (name the key by its alias to reach rotated versions)",
				shared.ErrKeyNotFound, shared.Quote(v), t.key.raw)
		}
		return t.key.raw, nil
	}
	mk := memberKey{conn: t.conn, alias: t.key.alias, version: v}
	if _, ok := p.members.Load(mk); ok {
		return v, nil
	}
	tags, err := keyTags(ctx, t.cl, v)
	if errors.Is(err, shared.ErrKeyNotFound) {
		return "", fmt.Errorf("%w: version %s of %s: %w", shared.ErrKeyNotFound, shared.Quote(v), t.key.alias, err)
	}
	if err != nil {
		return "", err
	}
	if tags[TagAlias] != t.key.alias {
		// An alias knhk never rotated has one untagged version: its target.
		cur, err := describe(ctx, t.cl, t.key.raw)
		if err != nil {
			return "", err
		}
		if awssdk.ToString(cur.KeyId) != v {
			return "", fmt.Errorf("%w: key %s is not a version of %s (its %s tag is %q)", shared.ErrKeyNotFound, shared.Quote(v), t.key.alias, TagAlias, tags[TagAlias])
		}
	}
	p.members.Store(mk, struct{}{})
	return v, nil
}

// link is one version of a key: its KMS key id, its tags and, when the
// walk was asked to describe the versions, its metadata.
type link struct {
	id   string
	md   *types.KeyMetadata
	tags map[string]string
}

// chain is the versions behind a key reference, oldest first. For a key
// named by key id it is that key alone (without tags).
type chain struct {
	alias  string // "alias/NAME"; "" for a key named by key id
	links  []link
	target int // index of the alias's target: the current (active) version
}

// head is the version the reference points at now, with its tags (an
// alias's) and metadata.
func (c chain) head() link { return c.links[c.target] }

// newest is the last version of the chain: the one a rotation links the
// new version to.
func (c chain) newest() link { return c.links[len(c.links)-1] }

// index is the position of version id in the chain, -1 when it is not in it.
func (c chain) index(id string) int {
	for i, l := range c.links {
		if l.id == id {
			return i
		}
	}
	return -1
}

// current describes the key t names and, for an alias, reads its target's
// tags: the first link of every walk, and all GetVersionStates needs to
// tell a key without states.
func (p *Provider) current(ctx context.Context, t target) (chain, error) {
	md, err := describe(ctx, t.cl, t.key.raw)
	if err != nil {
		return chain{}, err
	}
	l := link{id: awssdk.ToString(md.KeyId), md: md}
	if !t.key.isAlias() {
		return chain{links: []link{l}}, nil
	}
	if l.tags, err = keyTags(ctx, t.cl, l.id); err != nil {
		return chain{}, err
	}
	return chain{alias: t.key.alias, links: []link{l}}, nil
}

// walk extends a chain holding only its head to every version: back
// along knhk:previous-version (at most MaxVersions, silently: the oldest
// are left out) and forward along knhk:next-version. A forward link
// counts only if the key it names is tagged as a version of the same
// alias whose previous version is the key linking to it, so a link left
// by a rotation that lost a race is ignored. More than MaxVersions
// versions newer than the target is ErrFailedPrecondition (a rotation
// must see the newest version). A key that is gone ends the walk in its
// direction. With describeAll every version is described (KeyMetadata);
// otherwise only tags are read (version states).
func (p *Provider) walk(ctx context.Context, t target, c chain, describeAll bool) (chain, error) {
	if c.alias == "" {
		return c, nil
	}
	seen := map[string]bool{c.head().id: true}
	// fetch reads a version's tags and, when asked, metadata; ok is false
	// for a key that no longer exists.
	fetch := func(id string) (link, bool, error) {
		l := link{id: id}
		var err error
		if l.tags, err = keyTags(ctx, t.cl, id); err == nil && describeAll {
			l.md, err = describe(ctx, t.cl, id)
		}
		if errors.Is(err, shared.ErrKeyNotFound) {
			return link{}, false, nil
		}
		return l, err == nil, err
	}
	var older []link // newest first
	for last := c.head(); len(older)+1 < p.cfg.MaxVersions; {
		prev := last.tags[TagPrevious]
		if prev == "" || seen[prev] || last.tags[TagAlias] != c.alias {
			break
		}
		l, ok, err := fetch(prev)
		if err != nil {
			return chain{}, err
		}
		if !ok {
			break // deleted: the chain ends here
		}
		seen[prev] = true
		older = append(older, l)
		last = l
	}
	var newer []link
	for last := c.head(); last.tags[TagAlias] == c.alias; {
		next := last.tags[TagNext]
		if next == "" || seen[next] {
			break
		}
		l, ok, err := fetch(next)
		if err != nil {
			return chain{}, err
		}
		if !ok || l.tags[TagAlias] != c.alias || l.tags[TagPrevious] != last.id {
			break
		}
		if len(newer) == p.cfg.MaxVersions {
			return chain{}, fmt.Errorf("%w: %s has more than %d versions newer than its alias target %s; promote or retire pending versions (or raise MaxVersions)",
				shared.ErrFailedPrecondition, c.alias, p.cfg.MaxVersions, c.head().id)
		}
		seen[next] = true
		newer = append(newer, l)
		last = l
	}
	out := chain{alias: c.alias, links: make([]link, 0, len(older)+1+len(newer)), target: len(older)}
	for i := len(older) - 1; i >= 0; i-- {
		out.links = append(out.links, older[i])
	}
	out.links = append(out.links, c.head())
	out.links = append(out.links, newer...)
	return out, nil
}

// versions is the whole chain of the key t names, every version described.
func (p *Provider) versions(ctx context.Context, t target) (chain, error) {
	c, err := p.current(ctx, t)
	if err != nil {
		return chain{}, err
	}
	return p.walk(ctx, t, c, true)
}
