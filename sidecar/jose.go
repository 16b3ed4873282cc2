package sidecar

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/knhk/knhk/internal/keyfmt"
	"github.com/knhk/knhk/shared"
)

// The JOSE side of the ExternalJWTSigner: which algorithm a key signs
// service-account tokens with, the header kube-apiserver accepts, and
// ECDSA signatures in the form JWS carries (RFC 7518 section 3.4).

// jwtB64 is base64url without padding, the encoding of every JWS segment.
var jwtB64 = base64.RawURLEncoding

// errJWTKeyType: kube-apiserver verifies service-account tokens signed
// with these algorithms only.
var errJWTKeyType = fmt.Errorf("%w: kube-apiserver accepts only RS256, ES256, ES384 and ES512 (an RSA or ECDSA P-256/P-384/P-521 key)", shared.ErrFailedPrecondition)

// jwtAlgorithm is the JWS algorithm kube-apiserver accepts for pub, and
// for ECDSA the byte size of each of r and s in a JWS signature (0 for
// RSA).
func jwtAlgorithm(pub crypto.PublicKey) (shared.Algorithm, int, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return shared.RS256, 0, nil
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		switch k.Curve {
		case elliptic.P256():
			return shared.ES256, size, nil
		case elliptic.P384():
			return shared.ES384, size, nil
		case elliptic.P521():
			return shared.ES512, size, nil
		}
	}
	kt, err := shared.KeyTypeOf(pub)
	if err != nil {
		return "", 0, fmt.Errorf("%w; the key's type is not one knhk knows", errJWTKeyType)
	}
	return "", 0, fmt.Errorf("%w; the key is %s", errJWTKeyType, kt)
}

// jwtKid is the key id a version's tokens name: the RFC 7638 thumbprint
// of its public key, which any verifier can recompute from the JWK.
func jwtKid(pub crypto.PublicKey, alg shared.Algorithm) (string, error) {
	jwk, err := keyfmt.NewJWK(pub, alg)
	if err != nil {
		return "", err
	}
	return jwk.Thumbprint(), nil
}

// jwtHeader is the encoded JWS header of a service-account token:
// exactly alg, kid and typ "JWT", since kube-apiserver refuses any other
// member.
func jwtHeader(alg shared.Algorithm, kid string) (string, error) {
	h, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{string(alg), kid, "JWT"})
	if err != nil {
		return "", err
	}
	return jwtB64.EncodeToString(h), nil
}

// errJWTClaims: the claims are not what kube-apiserver sends.
var errJWTClaims = fmt.Errorf("%w: claims must be a JSON object encoded as base64url without padding", shared.ErrInvalidArgument)

// jwtCheckClaims refuses claims that are not a JWS payload segment
// holding a JSON object (RFC 7519 section 7.2): the signer signs the
// segment as given, so it checks what it vouches for.
func jwtCheckClaims(claims string) error {
	payload, err := jwtB64.Strict().DecodeString(claims)
	if err != nil {
		return errJWTClaims
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(payload, &obj); err != nil || obj == nil {
		return errJWTClaims
	}
	return nil
}

// errECDSASignature: the provider's ECDSA signature is not the ASN.1 DER
// the contract promises. The host verified it after signing, so this is
// a bug, not a bad key.
var errECDSASignature = errors.New("the provider's ECDSA signature is not a DER SEQUENCE of two positive integers that fit the curve")

// joseECDSA turns an ASN.1 DER ECDSA signature into JWS form: r and s
// big-endian, each left-padded to size bytes.
func joseECDSA(der []byte, size int) ([]byte, error) {
	var sig struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &sig)
	if err != nil || len(rest) != 0 {
		return nil, errECDSASignature
	}
	if sig.R.Sign() <= 0 || sig.S.Sign() <= 0 || sig.R.BitLen() > 8*size || sig.S.BitLen() > 8*size {
		return nil, errECDSASignature
	}
	out := make([]byte, 2*size)
	sig.R.FillBytes(out[:size])
	sig.S.FillBytes(out[size:])
	return out, nil
}
