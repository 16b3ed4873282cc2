package aws

import (
	"context"
	"fmt"
	"maps"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/knhk/knhk/shared"
)

// createReplicated creates a multi-Region key (CreateKey with MultiRegion)
// in the target's Region and replicates it to each of regions
// (ReplicateKey, sent to the primary's Region), for CreateKey with
// ReplicateTo. With an alias as the key id, the alias is created in the
// primary's Region once the replicas exist, as a name to find the key by.
//
// The key and its replicas share one key id (mrk-...) and key material;
// the response names the key by that id, not by the alias: an alias
// belongs to one Region, and rotating it would move the primary's name to
// a new key its replicas do not hold. A replica's reference is the
// request's with the replica's Region, without the endpoint parameter,
// which names one Region's endpoint.
//
// A failure before the first replica schedules the new key's deletion;
// after it, nothing is undone (a multi-Region key cannot be deleted
// before its replicas, and a key replicated to some Regions is still a
// key): the error names what was made.
func createReplicated(ctx context.Context, t target, spec types.KeySpec, ref shared.KeyRef, regions []string) (shared.CreateKeyResponse, error) {
	primary := t.cl.Options().Region
	for _, r := range regions {
		if r == primary {
			return shared.CreateKeyResponse{}, fmt.Errorf("%w: %s is the key's own Region (the primary's); replicate it to other Regions", shared.ErrInvalidArgument, shared.Quote(r))
		}
	}
	var tags []types.Tag
	if t.key.isAlias() {
		tags = []types.Tag{{TagKey: awssdk.String(TagAlias), TagValue: awssdk.String(t.key.alias)}}
	}
	md, err := createKey(ctx, t.cl, spec, true, tags)
	if err != nil {
		return shared.CreateKeyResponse{}, err
	}
	id := awssdk.ToString(md.KeyId)
	resp := shared.CreateKeyResponse{KeyID: id, Version: id}
	for i, r := range regions {
		rid, err := replicateKey(ctx, t.cl, id, r)
		if err != nil && i == 0 {
			return shared.CreateKeyResponse{}, abandon(ctx, t.cl, id, err)
		}
		if err != nil {
			return shared.CreateKeyResponse{}, fmt.Errorf("%w (the multi-Region key %s was created in %s and replicated to %v but not to %v: replicate it with ReplicateKey, or delete its replicas and then it)", err, id, primary, regions[:i], regions[i:])
		}
		params := maps.Clone(ref.Params)
		if params == nil {
			params = map[string]string{}
		}
		delete(params, ParamEndpoint)
		params[ParamRegion] = r
		resp.Replicas = append(resp.Replicas, shared.KeyRef{ID: rid, Params: params})
	}
	if t.key.isAlias() {
		if _, err := t.cl.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: awssdk.String(t.key.alias), TargetKeyId: awssdk.String(id)}); err != nil {
			return shared.CreateKeyResponse{}, fmt.Errorf("%w (the multi-Region key %s and its replicas in %v were made; name them by that id)", mapError("CreateAlias", t.key.alias, err), id, regions)
		}
	}
	return resp, nil
}

// replicateKey replicates the multi-Region key id to region and returns
// the replica's key id (the same id, in that Region).
func replicateKey(ctx context.Context, cl *kms.Client, id, region string) (string, error) {
	out, err := cl.ReplicateKey(ctx, &kms.ReplicateKeyInput{
		KeyId: awssdk.String(id), ReplicaRegion: awssdk.String(region),
		Description: awssdk.String(createDescription),
	})
	if err != nil {
		return "", mapError("ReplicateKey", id, err)
	}
	if out.ReplicaKeyMetadata != nil && out.ReplicaKeyMetadata.KeyId != nil {
		return idFromARN(awssdk.ToString(out.ReplicaKeyMetadata.KeyId)), nil
	}
	return id, nil
}
