package host

import (
	"context"
	"sync"

	"github.com/knhk/knhk/shared"
)

// managedProvider is what Host.Provider returns: the plugin's Provider
// with every call going through the host.
type managedProvider struct {
	h *Host
	m *managed
}

var (
	_ shared.Provider    = (*managedProvider)(nil)
	_ shared.BatchSigner = (*managedProvider)(nil)
)

func (p *managedProvider) ref(k shared.KeyRef) Ref {
	return Ref{Provider: p.m.name, KeyID: k.ID, Params: k.Params}
}

// Describe asks the plugin what it is.
func (p *managedProvider) Describe(ctx context.Context) (shared.Description, error) {
	return p.m.describe(ctx)
}

// CreateKey creates a key; never retried.
func (p *managedProvider) CreateKey(ctx context.Context, req shared.CreateKeyRequest) (shared.CreateKeyResponse, error) {
	return p.m.createKey(ctx, p.ref(req.Key), req.Type, req.ReplicateTo)
}

// ListKeys lists keys.
func (p *managedProvider) ListKeys(ctx context.Context, req shared.ListKeysRequest) ([]shared.KeySummary, error) {
	return p.m.listKeys(ctx, req.Params)
}

// PublicKey goes through the host's public-key cache.
func (p *managedProvider) PublicKey(ctx context.Context, req shared.PublicKeyRequest) (shared.PublicKeyResponse, error) {
	pk, err := p.h.publicKey(ctx, p.m, p.ref(req.Key), req.Version, false)
	if err != nil {
		return shared.PublicKeyResponse{}, err
	}
	return shared.PublicKeyResponse{DER: pk.DER, Version: pk.Version, Type: pk.Type}, nil
}

// Sign takes the host's sign path, verify-after-sign and version states
// included (only the active version of a key with states signs).
func (p *managedProvider) Sign(ctx context.Context, req shared.SignRequest) (shared.SignResponse, error) {
	k := &Key{h: p.h, m: p.m, ref: p.ref(req.Key)}
	sig, err := k.sign(ctx, req)
	if err != nil {
		return shared.SignResponse{}, err
	}
	return shared.SignResponse{Signature: sig.Signature, Version: sig.Version}, nil
}

// SignBatch signs every item through the host's sign path at once, each
// within its own deadline, and emits each result as soon as it is ready:
// the host coalesces them into SignBatch calls (unless
// Config.DisableBatching) and verifies every signature.
func (p *managedProvider) SignBatch(ctx context.Context, reqs []shared.SignRequest, emit func(int, shared.SignResult)) {
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := ctx
			if !req.Deadline.IsZero() {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, req.Deadline)
				defer cancel()
			}
			resp, err := p.Sign(ctx, req)
			emit(i, shared.SignResult{Response: resp, Err: err})
		}()
	}
	wg.Wait()
}

// Verify asks the plugin to verify (provider-side).
func (p *managedProvider) Verify(ctx context.Context, req shared.VerifyRequest) (shared.VerifyResponse, error) {
	return p.m.verify(ctx, p.ref(req.Key), req)
}

// RotateKey rotates; never retried; drops the key's cached public keys.
func (p *managedProvider) RotateKey(ctx context.Context, req shared.RotateKeyRequest) (shared.RotateKeyResponse, error) {
	return p.m.rotateKey(ctx, p.ref(req.Key), req.Pending)
}

// GetVersionStates reads a key's version states afresh (and caches them).
func (p *managedProvider) GetVersionStates(ctx context.Context, req shared.GetVersionStatesRequest) (shared.VersionStates, error) {
	r := p.ref(req.Key)
	ok, err := p.m.claimsVersionStates(ctx)
	if err == nil && !ok {
		err = p.m.errNoVersionStates()
	}
	if err != nil {
		return shared.VersionStates{}, err
	}
	return p.m.h.versionStates(ctx, p.m, r, true)
}

// SetVersionState moves a version to a state; never retried. Active is a
// promotion, through the key's gates (with no approvals: a key whose
// gates ask for some is promoted with Key.Promote); anything else is
// recorded as retire.
func (p *managedProvider) SetVersionState(ctx context.Context, req shared.SetVersionStateRequest) (shared.VersionStates, error) {
	r := p.ref(req.Key)
	if req.State == shared.VersionActive {
		return p.m.promote(ctx, &Key{h: p.m.h, m: p.m, ref: r}, req.Version, nil)
	}
	return p.m.setVersionState(ctx, opRetire, r, req.Version, req.State, nil)
}

// KeyMetadata describes a key.
func (p *managedProvider) KeyMetadata(ctx context.Context, req shared.KeyMetadataRequest) (shared.KeyMetadata, error) {
	return p.m.keyMetadata(ctx, p.ref(req.Key))
}
