package aws

import (
	"context"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/knhk/knhk/shared"
)

// MaxRawMessage is the largest message KMS signs itself (MessageType RAW);
// longer (and empty) messages are hashed in the plugin and sent as DIGEST.
const MaxRawMessage = 4096

// kmsInput picks what KMS is sent: a digest as DIGEST, a message of 1 to
// MaxRawMessage bytes as RAW, any other message hashed here and sent as
// DIGEST (KMS refuses empty and longer RAW messages).
func kmsInput(alg shared.Algorithm, digest, message []byte) ([]byte, types.MessageType, error) {
	switch {
	case message == nil:
		return digest, types.MessageTypeDigest, nil
	case len(message) >= 1 && len(message) <= MaxRawMessage:
		return message, types.MessageTypeRaw, nil
	}
	d, err := shared.Digest(alg, message)
	if err != nil {
		return nil, "", err
	}
	return d, types.MessageTypeDigest, nil
}

// keyFor returns what to send KMS as KeyId: the reference itself for the
// current version, the checked key id of a named version.
func (p *Provider) keyFor(ctx context.Context, t target, version string) (string, error) {
	if version == "" {
		return t.key.raw, nil
	}
	return p.versionTarget(ctx, t, version)
}

// signCall is what Sign and Verify send KMS.
type signCall struct {
	t   target
	id  string // KeyId: the reference, or the named version's key id
	alg types.SigningAlgorithmSpec
	in  []byte
	mt  types.MessageType
}

// prepare resolves a sign or verify request's key, version, algorithm and
// input into what KMS is sent.
func (p *Provider) prepare(ctx context.Context, ref shared.KeyRef, version string, alg shared.Algorithm, digest, message []byte) (signCall, error) {
	spec, err := kmsAlgorithm(alg)
	if err != nil {
		return signCall{}, err
	}
	in, mt, err := kmsInput(alg, digest, message)
	if err != nil {
		return signCall{}, err
	}
	t, err := p.resolve(ctx, ref)
	if err != nil {
		return signCall{}, err
	}
	id, err := p.keyFor(ctx, t, version)
	if err != nil {
		return signCall{}, err
	}
	return signCall{t: t, id: id, alg: spec, in: in, mt: mt}, nil
}

// Sign signs a digest or a message with the key (or the named version).
// ECDSA signatures come back from KMS as ASN.1 DER, RSA raw, as knhk wants.
func (p *Provider) Sign(ctx context.Context, req shared.SignRequest) (shared.SignResponse, error) {
	c, err := p.prepare(ctx, req.Key, req.Version, req.Algorithm, req.Digest, req.Message)
	if err != nil {
		return shared.SignResponse{}, err
	}
	out, err := c.t.cl.Sign(ctx, &kms.SignInput{KeyId: awssdk.String(c.id), Message: c.in, MessageType: c.mt, SigningAlgorithm: c.alg})
	if err != nil {
		return shared.SignResponse{}, mapError("Sign", c.id, err)
	}
	if len(out.Signature) == 0 {
		return shared.SignResponse{}, fmt.Errorf("%w: aws kms Sign %s returned no signature", shared.ErrUnavailable, c.id)
	}
	return shared.SignResponse{Signature: out.Signature, Version: idFromARN(awssdk.ToString(out.KeyId))}, nil
}

// Verify asks KMS to check a signature against the current version (or the
// named one). An invalid signature is Valid: false, not an error.
func (p *Provider) Verify(ctx context.Context, req shared.VerifyRequest) (shared.VerifyResponse, error) {
	c, err := p.prepare(ctx, req.Key, req.Version, req.Algorithm, req.Digest, req.Message)
	if err != nil {
		return shared.VerifyResponse{}, err
	}
	// Describe first: it pins the key (an alias may move between calls) and
	// its spec, so a wrong algorithm is refused the same way everywhere.
	md, err := describe(ctx, c.t.cl, c.id)
	if err != nil {
		return shared.VerifyResponse{}, err
	}
	kt, err := keyTypeOf(md.KeySpec)
	if err != nil {
		return shared.VerifyResponse{}, err
	}
	if err := shared.CheckAlgorithm(kt, req.Algorithm); err != nil {
		return shared.VerifyResponse{}, err
	}
	version := awssdk.ToString(md.KeyId)
	if isECDSA(req.Algorithm) && !isDERSignature(req.Signature) {
		return shared.VerifyResponse{Valid: false, Version: version}, nil
	}
	arn := awssdk.ToString(md.Arn)
	if arn == "" {
		arn = version
	}
	out, err := c.t.cl.Verify(ctx, &kms.VerifyInput{KeyId: awssdk.String(arn), Message: c.in, MessageType: c.mt, Signature: req.Signature, SigningAlgorithm: c.alg})
	if err != nil {
		var inv *types.KMSInvalidSignatureException
		if errors.As(err, &inv) || apiCode(err) == "KMSInvalidSignatureException" {
			return shared.VerifyResponse{Valid: false, Version: version}, nil
		}
		return shared.VerifyResponse{}, mapError("Verify", arn, err)
	}
	return shared.VerifyResponse{Valid: out.SignatureValid, Version: version}, nil
}

func isECDSA(a shared.Algorithm) bool {
	return a == shared.ES256 || a == shared.ES384 || a == shared.ES512
}

// isDERSignature reports whether sig is an ASN.1 DER ECDSA signature. KMS
// calls any other signature invalid, but its emulator answers with an
// error, so the plugin answers "invalid" itself.
func isDERSignature(sig []byte) bool {
	var rs struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(sig, &rs)
	return err == nil && len(rest) == 0 && rs.R != nil && rs.S != nil && rs.R.Sign() > 0 && rs.S.Sign() > 0
}

// PublicKey fetches a version's public key (DER SubjectPublicKeyInfo, as
// KMS returns it).
func (p *Provider) PublicKey(ctx context.Context, req shared.PublicKeyRequest) (shared.PublicKeyResponse, error) {
	t, err := p.resolve(ctx, req.Key)
	if err != nil {
		return shared.PublicKeyResponse{}, err
	}
	id, err := p.keyFor(ctx, t, req.Version)
	if err != nil {
		return shared.PublicKeyResponse{}, err
	}
	out, err := t.cl.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: awssdk.String(id)})
	if err != nil {
		return shared.PublicKeyResponse{}, mapError("GetPublicKey", id, err)
	}
	if out.KeyUsage != "" && out.KeyUsage != types.KeyUsageTypeSignVerify {
		return shared.PublicKeyResponse{}, fmt.Errorf("%w: %s has key usage %s; knhk needs SIGN_VERIFY keys", shared.ErrUnsupportedAlgorithm, id, out.KeyUsage)
	}
	spec := out.KeySpec
	if spec == "" {
		spec = types.KeySpec(out.CustomerMasterKeySpec)
	}
	kt, err := keyTypeOf(spec)
	if err != nil {
		return shared.PublicKeyResponse{}, err
	}
	if _, got, err := shared.ParsePublicKey(out.PublicKey); err != nil || got != kt {
		return shared.PublicKeyResponse{}, fmt.Errorf("%w: aws kms GetPublicKey %s returned a public key that is not a %s SubjectPublicKeyInfo", shared.ErrUnavailable, id, kt)
	}
	return shared.PublicKeyResponse{DER: out.PublicKey, Version: idFromARN(awssdk.ToString(out.KeyId)), Type: kt}, nil
}
