package azure

import (
	"context"
	"errors"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/knhk/knhk/shared"
)

// Sign signs a digest with a key version (current when none is given).
// Key Vault signs digests only; the SDK hashes a message before Sign sees
// it, since the provider does not claim CapSignMessage. ECDSA signatures
// are returned as ASN.1 DER.
func (p *Provider) Sign(ctx context.Context, req shared.SignRequest) (shared.SignResponse, error) {
	t, err := p.resolve(ctx, req.Key)
	if err != nil {
		return shared.SignResponse{}, err
	}
	id, c := t.id, t.client
	version, err := id.pick(req.Version)
	if err != nil {
		return shared.SignResponse{}, err
	}
	resp, err := c.Sign(ctx, id.name, version, azkeys.SignParameters{
		Algorithm: to.Ptr(azkeys.SignatureAlgorithm(req.Algorithm)), Value: req.Digest}, nil)
	if err != nil {
		return shared.SignResponse{}, p.algorithmError(ctx, c, id, version, req.Algorithm, p.mapError("sign with", describe(id, version), err))
	}
	sig := resp.Result
	if size := ecSize(req.Algorithm); size > 0 {
		if sig, err = rawToDER(sig, size); err != nil {
			return shared.SignResponse{}, fmt.Errorf("azure: sign with %s: %w", describe(id, version), err)
		}
	}
	used := versionOf(resp.KID)
	p.cfg.Logger.Debug("signed", "key", id.String(), "version", used, "algorithm", req.Algorithm)
	return shared.SignResponse{Signature: sig, Version: used}, nil
}

// algorithmError explains a rejected request: when the key cannot sign
// with alg at all, that is the error (ErrUnsupportedAlgorithm) rather than
// Key Vault's bad request.
func (p *Provider) algorithmError(ctx context.Context, c *azkeys.Client, id keyID, version string, alg shared.Algorithm, err error) error {
	if !errors.Is(err, shared.ErrInvalidArgument) {
		return err
	}
	if _, _, kt, gerr := p.getKey(ctx, c, id, version); gerr == nil {
		if aerr := shared.CheckAlgorithm(kt, alg); aerr != nil {
			return fmt.Errorf("azure: key %s: %w", id, aerr)
		}
	}
	return err
}

// Verify asks Key Vault to check a signature. A signature that is not even
// well-formed is simply not valid.
func (p *Provider) Verify(ctx context.Context, req shared.VerifyRequest) (shared.VerifyResponse, error) {
	t, err := p.resolve(ctx, req.Key)
	if err != nil {
		return shared.VerifyResponse{}, err
	}
	id, c := t.id, t.client
	version, err := id.pick(req.Version)
	if err != nil {
		return shared.VerifyResponse{}, err
	}
	// Key Vault's verify result names no version, so resolve it first; the
	// key's type also tells whether the algorithm fits.
	kb, _, kt, err := p.getKey(ctx, c, id, version)
	if err != nil {
		return shared.VerifyResponse{}, err
	}
	if err := shared.CheckAlgorithm(kt, req.Algorithm); err != nil {
		return shared.VerifyResponse{}, fmt.Errorf("azure: key %s: %w", id, err)
	}
	version = versionOf(kb.Key.KID)
	sig := req.Signature
	if size := ecSize(req.Algorithm); size > 0 {
		raw, ok := derToRaw(sig, size)
		if !ok {
			return shared.VerifyResponse{Valid: false, Version: version}, nil
		}
		sig = raw
	}
	resp, err := c.Verify(ctx, id.name, version, azkeys.VerifyParameters{
		Algorithm: to.Ptr(azkeys.SignatureAlgorithm(req.Algorithm)), Digest: req.Digest, Signature: sig}, nil)
	if err != nil {
		return shared.VerifyResponse{}, p.mapError("verify with", describe(id, version), err)
	}
	valid := resp.Value != nil && *resp.Value
	p.cfg.Logger.Debug("verified", "key", id.String(), "version", version, "algorithm", req.Algorithm, "valid", valid)
	return shared.VerifyResponse{Valid: valid, Version: version}, nil
}
