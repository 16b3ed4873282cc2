package providertest

import (
	"errors"
	"fmt"

	"github.com/knhk/knhk/shared"
)

// checkSign signs with the current version and verifies the signature with
// the standard library against the public key.
func (k *kit) checkSign(r reporter, ky *key, a shared.Algorithm, message bool) {
	req := k.signRequest(ky, a, newInput(a, "sign"), message, "")
	resp, err := k.sign(req)
	if err != nil {
		r.Fatalf("Sign(%q, %s, %s): %v", ky.id, a, mode(req), err)
	}
	if resp.Version != ky.version {
		r.Errorf("Sign(%q, %s, %s) reports version %q, want the current %q", ky.id, a, mode(req), resp.Version, ky.version)
	}
	if err := verifyLocal(ky.pub, req, resp.Signature); err != nil {
		r.Errorf("Sign(%q, %s, %s): signature does not verify with the standard library against the public key: %v", ky.id, a, mode(req), err)
	}
}

// checkVerify checks provider-side Verify: it accepts a good signature and
// rejects a tampered one and one over other data, in every input mode the
// provider claims.
func (k *kit) checkVerify(r reporter, ky *key, a shared.Algorithm) {
	modes := []bool{a == shared.EdDSA}
	if a != shared.EdDSA && k.desc.Has(shared.CapSignMessage) {
		modes = append(modes, true)
	}
	for _, message := range modes {
		req := k.signRequest(ky, a, newInput(a, "verify"), message, "")
		m := mode(req)
		resp, err := k.sign(req)
		if err != nil {
			r.Fatalf("Sign(%q, %s, %s): %v", ky.id, a, m, err)
		}
		good := verifyRequest(req, resp.Signature)
		vr, err := k.verify(good)
		switch {
		case err != nil:
			r.Errorf("Verify(%q, %s, %s) of a good signature: %v", ky.id, a, m, err)
		case !vr.Valid:
			r.Errorf("Verify(%q, %s, %s) rejects a good signature", ky.id, a, m)
		case vr.Version != "" && vr.Version != ky.version:
			r.Errorf("Verify(%q, %s, %s) reports version %q, want %q", ky.id, a, m, vr.Version, ky.version)
		}

		tampered := verifyRequest(req, append([]byte(nil), resp.Signature...))
		tampered.Signature[len(tampered.Signature)-1] ^= 0x01
		if err := k.rejects(tampered); err != nil {
			r.Errorf("Verify(%q, %s, %s) of a tampered signature: %v", ky.id, a, m, err)
		}
		other := k.signRequest(ky, a, newInput(a, "other data"), message, "")
		if err := k.rejects(verifyRequest(other, resp.Signature)); err != nil {
			r.Errorf("Verify(%q, %s, %s) of a signature over other data: %v", ky.id, a, m, err)
		}
	}
}

// mode says whether a request signs a digest or a message, for messages.
func mode(req shared.SignRequest) string {
	if req.Message != nil {
		return "message"
	}
	return "digest"
}

func verifyRequest(req shared.SignRequest, sig []byte) shared.VerifyRequest {
	return shared.VerifyRequest{Key: req.Key, Algorithm: req.Algorithm, Version: req.Version,
		Digest: req.Digest, Message: req.Message, Signature: sig}
}

// rejects returns nil when Verify says the signature is invalid: Valid
// false, or ErrInvalidArgument for a signature the service finds malformed.
func (k *kit) rejects(req shared.VerifyRequest) error {
	vr, err := k.verify(req)
	switch {
	case err == nil && vr.Valid:
		return errors.New("accepted as valid")
	case err != nil && !errors.Is(err, shared.ErrInvalidArgument):
		return fmt.Errorf("want Valid=false (or an error wrapping shared.ErrInvalidArgument), got %w", err)
	}
	return nil
}
