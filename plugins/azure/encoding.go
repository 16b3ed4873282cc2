package azure

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"math/big"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/knhk/knhk/shared"
)

// curves maps Key Vault curve names to Go curves and key types.
var curves = map[azkeys.CurveName]struct {
	curve elliptic.Curve
	kt    shared.KeyType
}{
	azkeys.CurveNameP256: {elliptic.P256(), shared.ECP256},
	azkeys.CurveNameP384: {elliptic.P384(), shared.ECP384},
	azkeys.CurveNameP521: {elliptic.P521(), shared.ECP521},
}

// jwkToDER converts a Key Vault JSON web key to DER SubjectPublicKeyInfo
// and names its key type.
func jwkToDER(k *azkeys.JSONWebKey) ([]byte, shared.KeyType, error) {
	if k == nil || k.Kty == nil {
		return nil, "", fmt.Errorf("%w: Key Vault returned a key without a type", shared.ErrUnavailable)
	}
	var pub any
	switch *k.Kty {
	case azkeys.KeyTypeRSA, azkeys.KeyTypeRSAHSM:
		if len(k.N) == 0 || len(k.E) == 0 || len(k.E) > 4 {
			return nil, "", fmt.Errorf("%w: Key Vault returned an RSA key without a valid modulus or exponent", shared.ErrUnavailable)
		}
		e := new(big.Int).SetBytes(k.E)
		pub = &rsa.PublicKey{N: new(big.Int).SetBytes(k.N), E: int(e.Int64())}
	case azkeys.KeyTypeEC, azkeys.KeyTypeECHSM:
		if k.Crv == nil {
			return nil, "", fmt.Errorf("%w: Key Vault returned an EC key without a curve", shared.ErrUnavailable)
		}
		c, ok := curves[*k.Crv]
		if !ok {
			return nil, "", fmt.Errorf("%w: EC curve %s is not supported (P-256, P-384, P-521 are)", shared.ErrUnsupportedAlgorithm, *k.Crv)
		}
		size := (c.curve.Params().BitSize + 7) / 8
		if len(k.X) > size || len(k.Y) > size {
			return nil, "", fmt.Errorf("%w: Key Vault returned an EC point that does not fit %s", shared.ErrUnavailable, *k.Crv)
		}
		point := make([]byte, 1+2*size)
		point[0] = 4 // uncompressed
		copy(point[1+size-len(k.X):1+size], k.X)
		copy(point[1+2*size-len(k.Y):], k.Y)
		p, err := ecdsa.ParseUncompressedPublicKey(c.curve, point)
		if err != nil {
			return nil, "", fmt.Errorf("%w: Key Vault returned an invalid EC point: %v", shared.ErrUnavailable, err)
		}
		pub = p
	default:
		return nil, "", fmt.Errorf("%w: key type %s cannot sign with knhk (RSA and EC keys can)", shared.ErrUnsupportedAlgorithm, *k.Kty)
	}
	kt, err := shared.KeyTypeOf(pub)
	if err != nil {
		return nil, "", err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, "", fmt.Errorf("%w: cannot encode the public key: %v", shared.ErrUnavailable, err)
	}
	return der, kt, nil
}

// ecSize is the byte length of one of r and s for an ECDSA algorithm.
func ecSize(alg shared.Algorithm) int {
	switch alg {
	case shared.ES256:
		return 32
	case shared.ES384:
		return 48
	case shared.ES512:
		return 66
	}
	return 0
}

type ecdsaSig struct{ R, S *big.Int }

// rawToDER turns Key Vault's r||s into ASN.1 DER.
func rawToDER(raw []byte, size int) ([]byte, error) {
	if len(raw) != 2*size {
		return nil, fmt.Errorf("%w: Key Vault returned a %d-byte ECDSA signature, want %d", shared.ErrUnavailable, len(raw), 2*size)
	}
	return asn1.Marshal(ecdsaSig{new(big.Int).SetBytes(raw[:size]), new(big.Int).SetBytes(raw[size:])})
}

// derToRaw turns an ASN.1 DER ECDSA signature into r||s; ok is false when
// sig is not one.
func derToRaw(sig []byte, size int) (raw []byte, ok bool) {
	var s ecdsaSig
	rest, err := asn1.Unmarshal(sig, &s)
	if err != nil || len(rest) != 0 || s.R == nil || s.S == nil || s.R.Sign() <= 0 || s.S.Sign() <= 0 ||
		s.R.BitLen() > 8*size || s.S.BitLen() > 8*size {
		return nil, false
	}
	raw = make([]byte, 2*size)
	s.R.FillBytes(raw[:size])
	s.S.FillBytes(raw[size:])
	return raw, true
}
