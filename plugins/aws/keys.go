package aws

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/knhk/knhk/shared"
)

// createDescription is the description of keys the plugin creates.
const createDescription = "created by knhk"

// CreateKey creates a SIGN_VERIFY key of the requested type. With an alias
// (alias/NAME or alias ARN) as the key id it also creates the alias and
// returns it as the key id, so the key can rotate; with an empty key id it
// returns the new key's id. KMS picks key ids, so any other id is refused.
// With ReplicateTo it creates a multi-Region key and replicates it to
// those Regions (see createReplicated).
func (p *Provider) CreateKey(ctx context.Context, req shared.CreateKeyRequest) (shared.CreateKeyResponse, error) {
	spec, ok := keySpecs[req.Type]
	if !ok {
		return shared.CreateKeyResponse{}, fmt.Errorf("%w: AWS KMS keys here are one of %v, not %s", shared.ErrUnsupportedAlgorithm, keyTypes, req.Type)
	}
	t, err := p.resolve(ctx, req.Key)
	if err != nil {
		return shared.CreateKeyResponse{}, err
	}
	if req.Key.ID != "" && !t.key.isAlias() {
		return shared.CreateKeyResponse{}, fmt.Errorf("%w: AWS KMS picks key ids; to create a key under a name pass alias/NAME (or leave the key id empty)", shared.ErrInvalidArgument)
	}
	if t.key.isAlias() {
		if _, err := describe(ctx, t.cl, t.key.raw); err == nil {
			return shared.CreateKeyResponse{}, fmt.Errorf("%w: %s already names a key; rotate it instead", shared.ErrAlreadyExists, t.key.alias)
		} else if !errors.Is(err, shared.ErrKeyNotFound) {
			return shared.CreateKeyResponse{}, err
		}
	}
	if len(req.ReplicateTo) > 0 {
		return createReplicated(ctx, t, spec, req.Key, req.ReplicateTo)
	}
	if req.Key.ID == "" {
		md, err := createKey(ctx, t.cl, spec, false, nil)
		if err != nil {
			return shared.CreateKeyResponse{}, err
		}
		id := awssdk.ToString(md.KeyId)
		return shared.CreateKeyResponse{KeyID: id, Version: id}, nil
	}
	md, err := createKey(ctx, t.cl, spec, false, []types.Tag{{TagKey: awssdk.String(TagAlias), TagValue: awssdk.String(t.key.alias)}})
	if err != nil {
		return shared.CreateKeyResponse{}, err
	}
	id := awssdk.ToString(md.KeyId)
	if _, err := t.cl.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: awssdk.String(t.key.alias), TargetKeyId: awssdk.String(id)}); err != nil {
		return shared.CreateKeyResponse{}, abandon(ctx, t.cl, id, mapError("CreateAlias", t.key.alias, err))
	}
	return shared.CreateKeyResponse{KeyID: t.key.raw, Version: id}, nil
}

// createKey creates a SIGN_VERIFY key; a multi-region one (a primary
// without replicas) when multiRegion.
func createKey(ctx context.Context, cl *kms.Client, spec types.KeySpec, multiRegion bool, tags []types.Tag) (*types.KeyMetadata, error) {
	in := &kms.CreateKeyInput{
		KeySpec: spec, KeyUsage: types.KeyUsageTypeSignVerify,
		Description: awssdk.String(createDescription), Tags: tags,
	}
	if multiRegion {
		in.MultiRegion = awssdk.Bool(true)
	}
	out, err := cl.CreateKey(ctx, in)
	if err != nil {
		return nil, mapError("CreateKey", string(spec), err)
	}
	if out.KeyMetadata == nil || out.KeyMetadata.KeyId == nil {
		return nil, fmt.Errorf("%w: aws kms CreateKey returned no key metadata", shared.ErrUnavailable)
	}
	return out.KeyMetadata, nil
}

// abandon schedules the deletion of a key created for a step that then
// failed, and says so in the returned error.
func abandon(ctx context.Context, cl *kms.Client, id string, cause error) error {
	_, derr := cl.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: awssdk.String(id), PendingWindowInDays: awssdk.Int32(7)})
	if derr != nil {
		return fmt.Errorf("%w (the key %s created for it is left behind: scheduling its deletion failed too: %v)", cause, id, mapError("ScheduleKeyDeletion", id, derr))
	}
	return fmt.Errorf("%w (the key %s created for it is scheduled for deletion)", cause, id)
}

// ListKeys lists the SIGN_VERIFY keys of the types knhk knows in the
// region the parameters name, each with its aliases. Keys pending deletion
// are left out.
func (p *Provider) ListKeys(ctx context.Context, req shared.ListKeysRequest) ([]shared.KeySummary, error) {
	t, err := p.resolve(ctx, shared.KeyRef{Params: req.Params})
	if err != nil {
		return nil, err
	}
	cl := t.cl
	aliases := map[string][]string{} // key id -> alias names
	ap := kms.NewListAliasesPaginator(cl, &kms.ListAliasesInput{})
	for ap.HasMorePages() {
		page, err := ap.NextPage(ctx)
		if err != nil {
			return nil, mapError("ListAliases", "", err)
		}
		for _, a := range page.Aliases {
			if a.TargetKeyId != nil {
				aliases[*a.TargetKeyId] = append(aliases[*a.TargetKeyId], awssdk.ToString(a.AliasName))
			}
		}
	}
	var ids []string
	kp := kms.NewListKeysPaginator(cl, &kms.ListKeysInput{})
	for kp.HasMorePages() {
		page, err := kp.NextPage(ctx)
		if err != nil {
			return nil, mapError("ListKeys", "", err)
		}
		for _, k := range page.Keys {
			ids = append(ids, awssdk.ToString(k.KeyId))
		}
	}
	// ListKeys says nothing about a key; describe them a few at a time.
	mds := make([]*types.KeyMetadata, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			mds[i], errs[i] = describe(ctx, cl, id)
		}()
	}
	wg.Wait()
	var out []shared.KeySummary
	for i, md := range mds {
		if errs[i] != nil {
			if errors.Is(errs[i], shared.ErrKeyNotFound) {
				continue // deleted since it was listed
			}
			return nil, errs[i]
		}
		kt, err := keyTypeOf(md.KeySpec)
		if err != nil || md.KeyUsage != types.KeyUsageTypeSignVerify || md.KeyState == types.KeyStatePendingDeletion {
			continue
		}
		id := awssdk.ToString(md.KeyId)
		out = append(out, shared.KeySummary{KeyID: id, Type: kt, CurrentVersion: id, Aliases: aliases[id]})
	}
	return out, nil
}

// RotateKey rotates an alias: it creates a key with the same spec and
// usage, tags it as the next version, and moves the alias to it. The old
// key stays enabled, so signatures it made keep verifying. A key named by
// id or key ARN cannot rotate: AWS KMS does not rotate asymmetric keys in
// place, and without an alias there is nothing to move.
//
// With Pending, or for an alias with version states (states.go), the new
// version is made pending first, linked after the newest version (see
// addVersion); with Pending the alias stays where it is, without it the
// new version is promoted at once (the alias moves to it, the version
// active before is retiring). The first pending rotation gives the alias
// its states before it makes anything: its target active, older versions
// retiring. A crash between these steps leaves a key with states and no
// new version, or a pending version not yet promoted: both read as
// consistent states, with exactly one active version.
func (p *Provider) RotateKey(ctx context.Context, req shared.RotateKeyRequest) (shared.RotateKeyResponse, error) {
	t, err := p.resolve(ctx, req.Key)
	if err != nil {
		return shared.RotateKeyResponse{}, err
	}
	if !t.key.isAlias() {
		// Say "not found" for a key that does not exist; explain the refusal
		// for one that does.
		if _, err := describe(ctx, t.cl, t.key.raw); err != nil {
			return shared.RotateKeyResponse{}, err
		}
		return shared.RotateKeyResponse{}, fmt.Errorf("%w: cannot rotate %s: AWS KMS cannot rotate asymmetric keys in place, so knhk rotates an alias by creating a new key and moving the alias to it; name the key by its alias (alias/NAME) to rotate it (only an alias has versions, and so version states)", shared.ErrInvalidArgument, t.key.raw)
	}
	c, err := p.current(ctx, t)
	if err != nil {
		return shared.RotateKeyResponse{}, err
	}
	cur := c.head().md
	if _, err := keyTypeOf(cur.KeySpec); err != nil {
		return shared.RotateKeyResponse{}, err
	}
	if cur.KeyUsage != types.KeyUsageTypeSignVerify {
		return shared.RotateKeyResponse{}, fmt.Errorf("%w: %s points at a %s key; knhk rotates SIGN_VERIFY keys", shared.ErrFailedPrecondition, t.key.alias, cur.KeyUsage)
	}
	curID := c.head().id
	switch tags := c.head().tags; {
	case tags[TagAlias] == "":
		// A key the alias pointed at before knhk managed it becomes version 1.
		if err := tagKey(ctx, t.cl, curID, TagAlias, t.key.alias); err != nil {
			return shared.RotateKeyResponse{}, err
		}
		tags[TagAlias] = t.key.alias
	case tags[TagAlias] != t.key.alias && req.Pending:
		return shared.RotateKeyResponse{}, fmt.Errorf("%w: %s points at key %s, a version of %s: point it at a key of its own before giving it version states",
			shared.ErrFailedPrecondition, t.key.alias, curID, tags[TagAlias])
	}
	if !req.Pending && !c.hasStates() {
		return p.rotateAlias(ctx, t, cur)
	}
	if c, err = p.walk(ctx, t, c, false); err != nil {
		return shared.RotateKeyResponse{}, err
	}
	now := time.Now()
	if !c.hasStates() {
		if err := p.startStates(ctx, t, c, now); err != nil {
			return shared.RotateKeyResponse{}, err
		}
	}
	newID, err := p.addVersion(ctx, t, c, cur, now)
	if err != nil {
		return shared.RotateKeyResponse{}, err
	}
	if req.Pending {
		p.cfg.Logger.Debug("rotated alias, new version pending", "alias", t.key.alias, "version", newID)
		return shared.RotateKeyResponse{Version: newID}, nil
	}
	c.links = append(c.links, link{id: newID, tags: map[string]string{TagAlias: t.key.alias, TagPrevious: c.newest().id, TagState: string(shared.VersionPending)}})
	if _, err := p.promote(ctx, t.cl, c, len(c.links)-1, now); err != nil {
		return shared.RotateKeyResponse{}, fmt.Errorf("%w (the new version %s was made and is pending: promote or retire it)", err, newID)
	}
	return shared.RotateKeyResponse{Version: newID}, nil
}

// rotateAlias rotates an alias without version states: a new key linked
// back to the target, and the alias moved to it.
func (p *Provider) rotateAlias(ctx context.Context, t target, cur *types.KeyMetadata) (shared.RotateKeyResponse, error) {
	curID := awssdk.ToString(cur.KeyId)
	md, err := createKey(ctx, t.cl, cur.KeySpec, awssdk.ToBool(cur.MultiRegion), []types.Tag{
		{TagKey: awssdk.String(TagAlias), TagValue: awssdk.String(t.key.alias)},
		{TagKey: awssdk.String(TagPrevious), TagValue: awssdk.String(curID)},
	})
	if err != nil {
		return shared.RotateKeyResponse{}, err
	}
	newID := awssdk.ToString(md.KeyId)
	if _, err := t.cl.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: awssdk.String(t.key.alias), TargetKeyId: awssdk.String(newID)}); err != nil {
		return shared.RotateKeyResponse{}, abandon(ctx, t.cl, newID, mapError("UpdateAlias", t.key.alias, err))
	}
	return shared.RotateKeyResponse{Version: newID}, nil
}

// startStates gives an alias without version states its first: its
// target active (written first: from then on the key has states), older
// versions retiring. A crash halfway leaves older versions untagged,
// which read as retiring anyway.
func (p *Provider) startStates(ctx context.Context, t target, c chain, now time.Time) error {
	if err := p.setState(ctx, t.cl, c, c.target, shared.VersionActive, now); err != nil {
		return err
	}
	for i := range c.links {
		if i != c.target && c.links[i].tags[TagState] == "" {
			if err := p.setState(ctx, t.cl, c, i, shared.VersionRetiring, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// addVersion makes a pending version after the chain's newest: a key of
// the target's spec, created already tagged pending and linked back
// (knhk:previous-version), then linked forward from the newest version
// (knhk:next-version), which makes it a version. If that link fails, or a
// concurrent rotation of the alias overwrote it, the new key is scheduled
// for deletion and the error says so. (Two rotations whose links do not
// overlap in time both succeed, and the first is left out of the chain:
// KMS tags have no compare-and-swap. The host never retries a rotation.)
func (p *Provider) addVersion(ctx context.Context, t target, c chain, cur *types.KeyMetadata, now time.Time) (string, error) {
	prev := c.newest().id
	md, err := createKey(ctx, t.cl, cur.KeySpec, awssdk.ToBool(cur.MultiRegion), []types.Tag{
		{TagKey: awssdk.String(TagAlias), TagValue: awssdk.String(t.key.alias)},
		{TagKey: awssdk.String(TagPrevious), TagValue: awssdk.String(prev)},
		{TagKey: awssdk.String(TagState), TagValue: awssdk.String(string(shared.VersionPending))},
		{TagKey: awssdk.String(TagStateSince), TagValue: awssdk.String(now.UTC().Format(time.RFC3339Nano))},
	})
	if err != nil {
		return "", err
	}
	newID := awssdk.ToString(md.KeyId)
	if err := tagKey(ctx, t.cl, prev, TagNext, newID); err != nil {
		return "", abandon(ctx, t.cl, newID, err)
	}
	tags, err := keyTags(ctx, t.cl, prev)
	if err != nil {
		// The link was written; only the race check is lost.
		p.cfg.Logger.Warn("could not read back a version link", "alias", t.key.alias, "version", prev, "error", err)
	} else if tags[TagNext] != newID {
		return "", abandon(ctx, t.cl, newID, fmt.Errorf("%w: %s was rotated concurrently (version %s now links to %s); retry", shared.ErrFailedPrecondition, t.key.alias, prev, shared.Quote(tags[TagNext])))
	}
	return newID, nil
}

// KeyMetadata describes a key (from DescribeKey) and its versions: for an
// alias every key in its rotation chain, oldest first, pending versions
// (newer than the alias's target) included. The current version is the
// alias's target: the active one for an alias with version states.
func (p *Provider) KeyMetadata(ctx context.Context, req shared.KeyMetadataRequest) (shared.KeyMetadata, error) {
	t, err := p.resolve(ctx, req.Key)
	if err != nil {
		return shared.KeyMetadata{}, err
	}
	c, err := p.versions(ctx, t)
	if err != nil {
		return shared.KeyMetadata{}, err
	}
	cur := c.head().md
	kt, err := keyTypeOf(cur.KeySpec)
	if err != nil {
		return shared.KeyMetadata{}, err
	}
	md := shared.KeyMetadata{
		KeyID:          awssdk.ToString(cur.KeyId),
		Type:           kt,
		Algorithms:     knhkAlgorithms(cur.SigningAlgorithms),
		CurrentVersion: awssdk.ToString(cur.KeyId),
		Attributes:     attributes(cur),
	}
	if t.key.isAlias() {
		md.KeyID = t.key.raw
		md.Attributes["alias"] = t.key.alias
	}
	for _, l := range c.links {
		v := l.md
		kv := shared.KeyVersion{Version: l.id, Enabled: v.Enabled && v.KeyState == types.KeyStateEnabled}
		if v.CreationDate != nil {
			kv.Created = *v.CreationDate
		}
		md.Versions = append(md.Versions, kv)
	}
	return md, nil
}

// attributes are the DescribeKey fields worth showing, as strings.
func attributes(md *types.KeyMetadata) map[string]string {
	a := map[string]string{
		"arn":          awssdk.ToString(md.Arn),
		"key_spec":     string(md.KeySpec),
		"key_usage":    string(md.KeyUsage),
		"key_state":    string(md.KeyState),
		"origin":       string(md.Origin),
		"key_manager":  string(md.KeyManager),
		"account_id":   awssdk.ToString(md.AWSAccountId),
		"description":  awssdk.ToString(md.Description),
		"multi_region": strconv.FormatBool(awssdk.ToBool(md.MultiRegion)),
	}
	if md.CreationDate != nil {
		a["created"] = md.CreationDate.UTC().Format("2006-01-02T15:04:05Z")
	}
	if mr := md.MultiRegionConfiguration; mr != nil {
		a["multi_region_key_type"] = string(mr.MultiRegionKeyType)
		if mr.PrimaryKey != nil {
			a["primary_region"] = awssdk.ToString(mr.PrimaryKey.Region)
		}
		var replicas []string
		for _, r := range mr.ReplicaKeys {
			replicas = append(replicas, awssdk.ToString(r.Region))
		}
		if len(replicas) > 0 {
			a["replica_regions"] = fmt.Sprint(replicas)
		}
	}
	for k, v := range a {
		if v == "" {
			delete(a, k)
		}
	}
	return a
}
