package vault

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strconv"
	"strings"

	"github.com/knhk/knhk/shared"
)

// Sign signs a digest (prehashed) or a message with Transit. Without a
// version it signs with the latest, or the active version of a key with
// version states. The version used comes from the vault:vN: prefix of
// Transit's answer.
func (p *Provider) Sign(ctx context.Context, req shared.SignRequest) (shared.SignResponse, error) {
	version, err := parseVersion(req.Version)
	if err != nil {
		return shared.SignResponse{}, err
	}
	t, err := p.resolve(ctx, req.Key)
	if err != nil {
		return shared.SignResponse{}, err
	}
	if version == 0 {
		if version, err = p.activeVersion(ctx, t); err != nil {
			return shared.SignResponse{}, err
		}
	}
	k, c := t.key, t.c
	kt, err := c.keyType(ctx, k)
	if err != nil {
		return shared.SignResponse{}, err
	}
	in, prehashed := input(req.Digest, req.Message)
	body, err := signParams(kt, req.Algorithm, prehashed)
	if err != nil {
		return shared.SignResponse{}, err
	}
	body["input"] = base64.StdEncoding.EncodeToString(in)
	if version > 0 {
		body["key_version"] = version
	}
	path := k.mount + "/sign/" + k.name
	secret, err := c.write(ctx, path, body)
	if err != nil {
		return shared.SignResponse{}, c.mapError("sign with "+k.String(), path, err)
	}
	var out struct {
		Signature string `json:"signature"`
	}
	if secret == nil || decode(secret.Data, &out) != nil || out.Signature == "" {
		return shared.SignResponse{}, fmt.Errorf("%w: vault: Transit returned no signature for %s", shared.ErrUnavailable, k)
	}
	return signResponse(out.Signature)
}

// Verify checks a signature with Transit. Without a version it checks
// against the latest, or the active version of a key with version states.
// A signature Transit cannot even parse is invalid, not an error.
func (p *Provider) Verify(ctx context.Context, req shared.VerifyRequest) (shared.VerifyResponse, error) {
	version, err := parseVersion(req.Version)
	if err != nil {
		return shared.VerifyResponse{}, err
	}
	t, err := p.resolve(ctx, req.Key)
	if err != nil {
		return shared.VerifyResponse{}, err
	}
	if version == 0 {
		if version, err = p.activeVersion(ctx, t); err != nil {
			return shared.VerifyResponse{}, err
		}
	}
	k, c := t.key, t.c
	var kt shared.KeyType
	if version == 0 {
		info, err := c.readKey(ctx, k)
		if err != nil {
			return shared.VerifyResponse{}, err
		}
		kt, version = info.keyType, info.LatestVersion
	} else if kt, err = c.keyType(ctx, k); err != nil {
		return shared.VerifyResponse{}, err
	}
	in, prehashed := input(req.Digest, req.Message)
	body, err := signParams(kt, req.Algorithm, prehashed)
	if err != nil {
		return shared.VerifyResponse{}, err
	}
	if req.Algorithm.IsPSS() {
		body["salt_length"] = "auto" // accept any salt length, as shared.VerifyDigest does
	}
	body["input"] = base64.StdEncoding.EncodeToString(in)
	body["signature"] = fmt.Sprintf("vault:v%d:%s", version, base64.StdEncoding.EncodeToString(req.Signature))
	path := k.mount + "/verify/" + k.name
	secret, err := c.write(ctx, path, body)
	if err != nil {
		if malformedSignature(err) {
			return shared.VerifyResponse{Valid: false, Version: strconv.Itoa(version)}, nil
		}
		return shared.VerifyResponse{}, c.mapError("verify with "+k.String(), path, err)
	}
	var out struct {
		Valid bool `json:"valid"`
	}
	if secret == nil || decode(secret.Data, &out) != nil {
		return shared.VerifyResponse{}, fmt.Errorf("%w: vault: Transit returned no verification result for %s", shared.ErrUnavailable, k)
	}
	return shared.VerifyResponse{Valid: out.Valid, Version: strconv.Itoa(version)}, nil
}

// PublicKey returns a key version's public key as DER SubjectPublicKeyInfo.
// Without a version: the latest, or the active version of a key with
// version states.
func (p *Provider) PublicKey(ctx context.Context, req shared.PublicKeyRequest) (shared.PublicKeyResponse, error) {
	want, err := parseVersion(req.Version)
	if err != nil {
		return shared.PublicKeyResponse{}, err
	}
	t, err := p.resolve(ctx, req.Key)
	if err != nil {
		return shared.PublicKeyResponse{}, err
	}
	if want == 0 {
		if want, err = p.activeVersion(ctx, t); err != nil {
			return shared.PublicKeyResponse{}, err
		}
	}
	info, err := t.c.readKey(ctx, t.key)
	if err != nil {
		return shared.PublicKeyResponse{}, err
	}
	v, kv, err := info.version(t.key, want)
	if err != nil {
		return shared.PublicKeyResponse{}, err
	}
	der, err := publicKeyDER(info.keyType, kv.PublicKey)
	if err != nil {
		return shared.PublicKeyResponse{}, fmt.Errorf("vault: key %s version %d: %w", t.key, v, err)
	}
	return shared.PublicKeyResponse{DER: der, Version: strconv.Itoa(v), Type: info.keyType}, nil
}

// input is what Transit signs or verifies: the digest (prehashed) when
// the request carries one, else the message. The SDK has checked that
// exactly one is there.
func input(digest, message []byte) (in []byte, prehashed bool) {
	if digest != nil {
		return digest, true
	}
	return message, false
}

// signParams are the Transit sign/verify body fields for an algorithm,
// besides input and key_version. prehashed says the input is a digest.
func signParams(kt shared.KeyType, alg shared.Algorithm, prehashed bool) (map[string]any, error) {
	if err := shared.CheckAlgorithm(kt, alg); err != nil {
		return nil, err
	}
	body := map[string]any{}
	switch kt {
	case shared.Ed25519:
		return body, nil // EdDSA signs the whole message; Transit's defaults fit
	case shared.ECP256, shared.ECP384, shared.ECP521:
		body["marshaling_algorithm"] = "asn1"
	default: // RSA
		if alg.IsPSS() {
			body["signature_algorithm"] = "pss"
			body["salt_length"] = "hash" // PS* means salt = hash length (RFC 7518)
		} else {
			body["signature_algorithm"] = "pkcs1v15"
		}
	}
	body["hash_algorithm"] = hashNames[alg]
	body["prehashed"] = prehashed
	return body, nil
}

// signResponse turns Transit's "vault:vN:BASE64" into the signature and
// the version that made it.
func signResponse(s string) (shared.SignResponse, error) {
	used, b64, err := splitSignature(s)
	if err != nil {
		return shared.SignResponse{}, err
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return shared.SignResponse{}, fmt.Errorf("%w: vault: Transit returned a signature that is not base64", shared.ErrUnavailable)
	}
	return shared.SignResponse{Signature: sig, Version: strconv.Itoa(used)}, nil
}

// splitSignature takes Transit's "vault:vN:BASE64" apart into the version
// and the base64 part.
func splitSignature(sig string) (version int, b64 string, err error) {
	parts := strings.SplitN(sig, ":", 3)
	if len(parts) != 3 || parts[0] != "vault" {
		return 0, "", fmt.Errorf("%w: vault: Transit returned a signature without the vault:vN: prefix", shared.ErrUnavailable)
	}
	version, err = parseVersion(parts[1])
	if err != nil || !strings.HasPrefix(parts[1], "v") {
		return 0, "", fmt.Errorf("%w: vault: Transit returned a signature with a bad version prefix %s", shared.ErrUnavailable, shared.Quote(parts[1]))
	}
	return version, parts[2], nil
}

// publicKeyDER turns Transit's public key text into DER SubjectPublicKeyInfo:
// PEM for RSA and ECDSA, base64 of the raw 32 bytes for Ed25519. It checks
// the key is of the expected type.
func publicKeyDER(kt shared.KeyType, text string) ([]byte, error) {
	var der []byte
	if kt == shared.Ed25519 {
		raw, err := base64.StdEncoding.DecodeString(text)
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: Transit returned an Ed25519 public key that is not base64 of 32 bytes", shared.ErrUnavailable)
		}
		der, err = x509.MarshalPKIXPublicKey(ed25519.PublicKey(raw))
		if err != nil {
			return nil, fmt.Errorf("%w: encoding Ed25519 public key: %v", shared.ErrUnavailable, err)
		}
	} else {
		block, _ := pem.Decode([]byte(text))
		if block == nil {
			return nil, fmt.Errorf("%w: Transit returned a %s public key that is not PEM", shared.ErrUnavailable, kt)
		}
		der = block.Bytes
		if block.Type == "RSA PUBLIC KEY" { // PKCS#1, in case Transit ever sends it
			pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: Transit returned a bad RSA public key: %v", shared.ErrUnavailable, err)
			}
			if der, err = x509.MarshalPKIXPublicKey(pub); err != nil {
				return nil, fmt.Errorf("%w: encoding RSA public key: %v", shared.ErrUnavailable, err)
			}
		}
	}
	_, got, err := shared.ParsePublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: Transit returned an unreadable public key: %v", shared.ErrUnavailable, err)
	}
	if got != kt {
		return nil, fmt.Errorf("%w: Transit key of type %s returned a %s public key", shared.ErrUnavailable, kt, got)
	}
	return der, nil
}
