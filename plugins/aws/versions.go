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
// Two tags on each key record the chain (see README.md):
//
//	knhk:alias             the alias the key is a version of ("alias/release")
//	knhk:previous-version  the key id of the version before it (absent on the first)
//
// The current version is the alias's target; older versions are found by
// following knhk:previous-version back from it.
const (
	TagAlias    = "knhk:alias"
	TagPrevious = "knhk:previous-version"
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

// versionTarget returns what to send KMS to use version v of the key t
// names, after checking that v is a version of it.
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

// versions returns the keys behind t, oldest first: for an alias the chain
// of rotations ending at its current target, for a key just the key.
func (p *Provider) versions(ctx context.Context, t target) ([]*types.KeyMetadata, error) {
	cur, err := describe(ctx, t.cl, t.key.raw)
	if err != nil {
		return nil, err
	}
	chain := []*types.KeyMetadata{cur}
	if !t.key.isAlias() {
		return chain, nil
	}
	seen := map[string]bool{awssdk.ToString(cur.KeyId): true}
	for len(chain) < p.cfg.MaxVersions {
		last := chain[len(chain)-1]
		tags, err := keyTags(ctx, t.cl, awssdk.ToString(last.KeyId))
		if err != nil {
			return nil, err
		}
		prev := tags[TagPrevious]
		if prev == "" || seen[prev] || tags[TagAlias] != t.key.alias {
			break
		}
		md, err := describe(ctx, t.cl, prev)
		if errors.Is(err, shared.ErrKeyNotFound) {
			break // deleted: the chain ends here
		}
		if err != nil {
			return nil, err
		}
		seen[prev] = true
		chain = append(chain, md)
	}
	for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	return chain, nil
}
