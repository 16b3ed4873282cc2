package host

import (
	"cmp"
	"context"
	"fmt"

	"github.com/knhk/knhk/internal/pluginrpc"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/telemetry"
)

// sign is the one path every signature takes (Signer, Key and the managed
// Provider): the plugin call (through the batcher unless
// Config.DisableBatching), then verify-after-sign in the caller's
// goroutine, so verification runs in parallel across callers. All of it
// is the knhk.sign span, under which the plugin call runs (or to which
// the SignBatch call that carried it links).
func (h *Host) sign(ctx context.Context, m *managed, r Ref, req shared.SignRequest) (shared.SignResponse, error) {
	ctx, run := m.begin(ctx, opSign, r)
	run.algorithm(req.Algorithm)
	run.input(req.Digest, req.Message)
	resp, err := h.signVerified(ctx, m, r, req)
	run.version(cmp.Or(resp.Version, req.Version))
	run.signature(resp.Signature)
	if err = run.end(ctx, err); err != nil {
		return shared.SignResponse{}, err
	}
	return resp, nil
}

// signVerified is sign's work.
func (h *Host) signVerified(ctx context.Context, m *managed, r Ref, req shared.SignRequest) (shared.SignResponse, error) {
	req.Key = r.keyRef()
	var (
		resp shared.SignResponse
		err  error
	)
	if h.cfg.DisableBatching {
		resp, err = limited(ctx, m, signQuota(m, req), "sign", true, func(ctx context.Context, c *pluginrpc.Client) (shared.SignResponse, error) {
			return c.Sign(ctx, req)
		})
	} else {
		resp, err = m.batch.sign(ctx, req)
	}
	if err != nil {
		return resp, err
	}
	if req.Version != "" && resp.Version != "" && resp.Version != req.Version {
		m.countVerifyAfterSignFailure(ctx)
		h.log.Error("plugin signed with another key version than asked; discarded the signature",
			append([]any{"provider", m.name, "key", r.KeyID, "asked", req.Version, "signed", resp.Version}, telemetry.LogArgs(ctx)...)...)
		return shared.SignResponse{}, fmt.Errorf("%w: plugin %s signed key %q with version %q, not the version %q asked for; the signature was discarded: %w",
			ErrVerifyAfterSign, m.name, r.KeyID, resp.Version, req.Version, shared.ErrBadSignature)
	}
	if h.cfg.DisableVerifyAfterSign {
		return resp, nil
	}
	if err := h.verifyAfterSign(ctx, m, r, req, resp); err != nil {
		return shared.SignResponse{}, err
	}
	return resp, nil
}

// verifyAfterSign checks a fresh signature against the public key of the
// version that made it, refetching the key once on a mismatch (it may have
// rotated). A signature that still fails is logged and never returned.
func (h *Host) verifyAfterSign(ctx context.Context, m *managed, r Ref, req shared.SignRequest, resp shared.SignResponse) error {
	version := resp.Version
	if version == "" {
		version = req.Version
	}
	var verr error
	for _, refresh := range []bool{false, true} {
		pk, err := h.sharedPublicKey(ctx, m, r, version, refresh)
		if err != nil {
			return fmt.Errorf("checking the signature from plugin %s: %w", m.name, err)
		}
		if verr = checkSignature(pk, req.Algorithm, req.Digest, req.Message, resp.Signature); verr == nil {
			return nil
		}
	}
	m.countVerifyAfterSignFailure(ctx)
	h.log.Error("plugin returned a signature that does not verify; discarded it",
		append([]any{"provider", m.name, "key", r.KeyID, "version", version, "algorithm", req.Algorithm, "error", verr}, telemetry.LogArgs(ctx)...)...)
	return fmt.Errorf("%w: plugin %s, key %q version %q, %s; the signature was discarded: %w",
		ErrVerifyAfterSign, m.name, r.KeyID, version, req.Algorithm, shared.ErrBadSignature)
}

// checkSignature verifies with the standard library: over the message when
// one was sent, else over the digest.
func checkSignature(pk PublicKey, alg shared.Algorithm, digest, message, sig []byte) error {
	if message != nil {
		return shared.VerifyMessage(pk.Key, alg, message, sig)
	}
	return shared.VerifyDigest(pk.Key, alg, digest, sig)
}
