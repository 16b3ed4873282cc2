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
		p, err := ecPoint(c.curve, k.X, k.Y)
		if err != nil {
			return nil, "", fmt.Errorf("%w: Key Vault returned %s", shared.ErrUnavailable, err)
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

// ecPoint makes a public key of JWK coordinates. Key Vault returns keys
// as they were imported, so a coordinate may carry leading zero bytes
// (33-byte P-256 coordinates are common) or lack them: each is read as a
// big-endian integer, which must be below the field's prime, and the point
// must be on the curve.
func ecPoint(curve elliptic.Curve, x, y []byte) (*ecdsa.PublicKey, error) {
	cp := curve.Params()
	size := (cp.BitSize + 7) / 8
	point := make([]byte, 1+2*size)
	point[0] = 4 // uncompressed
	for i, c := range [][]byte{x, y} {
		name := []string{"x", "y"}[i]
		if len(c) == 0 {
			return nil, fmt.Errorf("an EC key without its %s coordinate", name)
		}
		n := new(big.Int).SetBytes(c)
		if n.Cmp(cp.P) >= 0 {
			return nil, fmt.Errorf("an EC %s coordinate (%d bytes) that does not fit %s (it is not below the field prime)", name, len(c), cp.Name)
		}
		n.FillBytes(point[1+i*size : 1+(i+1)*size])
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, fmt.Errorf("EC coordinates that are not a point on %s", cp.Name)
	}
	return pub, nil
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
