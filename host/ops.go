package host

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/knhk/knhk/internal/pluginrpc"
	"github.com/knhk/knhk/shared"
)

// The one path from every entry point (Host, Key, Signer and the provider
// Host.Provider returns) to each plugin operation, so that they all get
// the same retries, the same upkeep of the public-key cache and the same
// telemetry (a span per operation, its duration). Signing and public keys
// have theirs in Host.sign and Host.publicKey, local verification in
// Key.verify.

// describe asks the plugin what it is.
func (m *managed) describe(ctx context.Context) (shared.Description, error) {
	return call(ctx, m, "describe", true, func(ctx context.Context, c *pluginrpc.Client) (shared.Description, error) {
		return c.Describe(ctx)
	})
}

// createKey creates a key of type kt named by r, replicated to the
// regions in replicateTo; never retried. It drops the cached public keys
// of the id asked for and of the id the provider returned, even on error:
// the key may have been made.
func (m *managed) createKey(ctx context.Context, r Ref, kt shared.KeyType, replicateTo []string) (resp shared.CreateKeyResponse, err error) {
	ctx, run := m.begin(ctx, opCreateKey, r)
	defer func() {
		run.keyID(resp.KeyID)
		run.version(resp.Version)
		err = run.end(ctx, err)
	}()
	if _, err := shared.ParseKeyType(string(kt)); err != nil {
		return shared.CreateKeyResponse{}, err
	}
	if err := run.ready(); err != nil {
		return shared.CreateKeyResponse{}, err
	}
	if len(replicateTo) > 0 {
		// A plugin older than ReplicateTo would drop the field and make a
		// key without replicas: ask it first.
		d, err := m.describe(ctx)
		if err != nil {
			return shared.CreateKeyResponse{}, err
		}
		if !slices.Contains(d.Capabilities, shared.CapReplicateKey) {
			return shared.CreateKeyResponse{}, fmt.Errorf("%w: the %s provider cannot replicate a key to other regions (it does not claim %s): create the key in each region or vault and name them in a key group", shared.ErrUnimplemented, m.name, shared.CapReplicateKey)
		}
	}
	resp, err = limited(ctx, m, quotaReq{op: shared.OpCreateKey, ref: r, kt: kt}, "create key", false, func(ctx context.Context, c *pluginrpc.Client) (shared.CreateKeyResponse, error) {
		return c.CreateKey(ctx, shared.CreateKeyRequest{Key: r.keyRef(), Type: kt, ReplicateTo: replicateTo})
	})
	m.h.cache.invalidate(r)
	if resp.KeyID != "" && resp.KeyID != r.KeyID {
		made := r
		made.KeyID = resp.KeyID
		m.h.cache.invalidate(made)
	}
	return resp, err
}

// listKeys lists the provider's keys where params say.
func (m *managed) listKeys(ctx context.Context, params map[string]string) ([]shared.KeySummary, error) {
	ctx, run := m.begin(ctx, opListKeys, Ref{Provider: m.name, Params: params})
	keys, err := limited(ctx, m, quotaReq{op: shared.OpListKeys, ref: Ref{Provider: m.name, Params: params}}, "list keys", true, func(ctx context.Context, c *pluginrpc.Client) ([]shared.KeySummary, error) {
		return c.ListKeys(ctx, shared.ListKeysRequest{Params: params})
	})
	if err = run.end(ctx, err); err != nil {
		return nil, err
	}
	return keys, nil
}

// verify asks the plugin to verify a signature (provider-side).
func (m *managed) verify(ctx context.Context, r Ref, req shared.VerifyRequest) (shared.VerifyResponse, error) {
	ctx, run := m.begin(ctx, opVerify, r)
	run.algorithm(req.Algorithm)
	run.input(req.Digest, req.Message)
	run.signature(req.Signature)
	req.Key = r.keyRef()
	resp, err := limited(ctx, m, quotaReq{op: shared.OpVerify, ref: r, version: req.Version, alg: req.Algorithm}, "verify", true, func(ctx context.Context, c *pluginrpc.Client) (shared.VerifyResponse, error) {
		return c.Verify(ctx, req)
	})
	run.version(cmp.Or(resp.Version, req.Version))
	if err == nil && !resp.Valid {
		run.invalid()
	}
	if err = run.end(ctx, err); err != nil {
		return shared.VerifyResponse{}, err
	}
	return resp, nil
}

// rotateKey rotates the key, making the new version pending if asked;
// never retried. It drops the key's cached public keys and version
// states, even on error: the rotation may have happened.
func (m *managed) rotateKey(ctx context.Context, r Ref, pending bool) (shared.RotateKeyResponse, error) {
	ctx, run := m.begin(ctx, opRotate, r)
	if err := run.ready(); err != nil {
		return shared.RotateKeyResponse{}, run.end(ctx, err)
	}
	if pending {
		// A plugin older than Pending would drop the field and make the
		// new version current at once: ask it first.
		run.versionState(shared.VersionPending)
		ok, err := m.claimsVersionStates(ctx)
		if err == nil && !ok {
			err = m.errNoVersionStates()
		}
		if err != nil {
			return shared.RotateKeyResponse{}, run.end(ctx, err)
		}
	}
	resp, err := limited(ctx, m, quotaReq{op: shared.OpRotate, ref: r}, "rotate key", false, func(ctx context.Context, c *pluginrpc.Client) (shared.RotateKeyResponse, error) {
		return c.RotateKey(ctx, shared.RotateKeyRequest{Key: r.keyRef(), Pending: pending})
	})
	m.h.cache.invalidate(r)
	m.h.states.invalidate(r)
	run.version(resp.Version)
	if err = run.end(ctx, err); err != nil {
		return shared.RotateKeyResponse{}, err
	}
	return resp, nil
}

// keyMetadata describes the key.
func (m *managed) keyMetadata(ctx context.Context, r Ref) (shared.KeyMetadata, error) {
	ctx, run := m.begin(ctx, opMetadata, r)
	md, err := limited(ctx, m, quotaReq{op: shared.OpMetadata, ref: r}, "get key metadata", true, func(ctx context.Context, c *pluginrpc.Client) (shared.KeyMetadata, error) {
		return c.KeyMetadata(ctx, shared.KeyMetadataRequest{Key: r.keyRef()})
	})
	run.version(md.CurrentVersion)
	if err = run.end(ctx, err); err != nil {
		return shared.KeyMetadata{}, err
	}
	return md, nil
}
