package keyfmt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/knhk/knhk/shared"
)

// JWK is a public JSON Web Key (RFC 7517). Only the members of the key's
// type are set; the others are omitted from its JSON.
type JWK struct {
	Kty string `json:"kty"`           // "RSA", "EC" or "OKP"
	Use string `json:"use,omitempty"` // always "sig": knhk keys sign
	Alg string `json:"alg,omitempty"` // the algorithm the key is meant for, when there is one
	Kid string `json:"kid,omitempty"` // RFC 7638 SHA-256 thumbprint
	Crv string `json:"crv,omitempty"` // "P-256", "P-384", "P-521" or "Ed25519"
	N   string `json:"n,omitempty"`   // RSA modulus
	E   string `json:"e,omitempty"`   // RSA public exponent
	X   string `json:"x,omitempty"`   // EC x coordinate, or the Ed25519 public key
	Y   string `json:"y,omitempty"`   // EC y coordinate
}

var b64 = base64.RawURLEncoding

// NewJWK builds the JWK of a public key. alg, when not empty, is recorded in
// the "alg" member; it must be one the key can sign with. When alg is empty,
// keys with exactly one algorithm (EC and Ed25519) get that one, and RSA keys,
// which sign with several, get none. "kid" is the key's RFC 7638 thumbprint,
// so the same key always has the same kid, whichever tool computes it.
func NewJWK(pub crypto.PublicKey, alg shared.Algorithm) (*JWK, error) {
	kt, err := shared.KeyTypeOf(pub)
	if err != nil {
		return nil, fmt.Errorf("encode JWK: %w", err)
	}
	if alg != "" {
		if err := shared.CheckAlgorithm(kt, alg); err != nil {
			return nil, fmt.Errorf("encode JWK: %w", err)
		}
	} else if algs := kt.Algorithms(); len(algs) == 1 {
		alg = algs[0]
	}
	j := &JWK{Use: "sig", Alg: string(alg)}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		j.Kty = "RSA"
		j.N = b64.EncodeToString(p.N.Bytes())
		j.E = b64.EncodeToString(big.NewInt(int64(p.E)).Bytes())
	case *ecdsa.PublicKey:
		j.Kty = "EC"
		j.Crv = p.Curve.Params().Name
		// RFC 7518 §6.2.1.2: coordinates are the full field size, zero-padded.
		size := (p.Curve.Params().BitSize + 7) / 8
		raw, err := p.Bytes() // uncompressed point: 0x04 || X || Y
		if err != nil {
			return nil, fmt.Errorf("encode JWK: %w", err)
		}
		j.X = b64.EncodeToString(raw[1 : 1+size])
		j.Y = b64.EncodeToString(raw[1+size:])
	case ed25519.PublicKey:
		j.Kty = "OKP"
		j.Crv = "Ed25519"
		j.X = b64.EncodeToString(p)
	}
	j.Kid = j.Thumbprint()
	return j, nil
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of the key, base64url
// without padding: the hash of the required members in lexicographic order.
func (j *JWK) Thumbprint() string {
	var canon string
	switch j.Kty {
	case "RSA":
		canon = fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, j.E, j.N)
	case "EC":
		canon = fmt.Sprintf(`{"crv":%q,"kty":"EC","x":%q,"y":%q}`, j.Crv, j.X, j.Y)
	case "OKP":
		canon = fmt.Sprintf(`{"crv":%q,"kty":"OKP","x":%q}`, j.Crv, j.X)
	}
	sum := sha256.Sum256([]byte(canon))
	return b64.EncodeToString(sum[:])
}

// MarshalIndent is the JWK as indented JSON with a trailing newline, as the
// CLI prints it.
func (j *JWK) MarshalIndent() ([]byte, error) {
	out, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// PublicKey parses the JWK back into a Go public key. It is the inverse of
// NewJWK and lets tests (and users) check that a JWK is the key they expect.
func (j *JWK) PublicKey() (crypto.PublicKey, error) {
	dec := func(name, s string) ([]byte, error) {
		b, err := b64.DecodeString(s)
		if err != nil || len(b) == 0 {
			return nil, fmt.Errorf("%w: JWK member %q is not base64url", shared.ErrInvalidArgument, name)
		}
		return b, nil
	}
	switch j.Kty {
	case "RSA":
		n, err := dec("n", j.N)
		if err != nil {
			return nil, err
		}
		e, err := dec("e", j.E)
		if err != nil {
			return nil, err
		}
		eInt := new(big.Int).SetBytes(e)
		if !eInt.IsInt64() || eInt.Int64() > 1<<31-1 {
			return nil, fmt.Errorf("%w: JWK exponent too large", shared.ErrInvalidArgument)
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(eInt.Int64())}, nil
	case "EC":
		x, err := dec("x", j.X)
		if err != nil {
			return nil, err
		}
		y, err := dec("y", j.Y)
		if err != nil {
			return nil, err
		}
		curves := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}
		curve, ok := curves[j.Crv]
		if !ok {
			return nil, fmt.Errorf("%w: JWK curve %q", shared.ErrInvalidArgument, j.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		if len(x) != size || len(y) != size {
			return nil, fmt.Errorf("%w: JWK coordinates must be %d bytes", shared.ErrInvalidArgument, size)
		}
		point := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return nil, fmt.Errorf("%w: JWK point: %v", shared.ErrInvalidArgument, err)
		}
		return pub, nil
	case "OKP":
		if j.Crv != "Ed25519" {
			return nil, fmt.Errorf("%w: JWK curve %q", shared.ErrInvalidArgument, j.Crv)
		}
		x, err := dec("x", j.X)
		if err != nil {
			return nil, err
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: Ed25519 JWK key must be %d bytes", shared.ErrInvalidArgument, ed25519.PublicKeySize)
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, fmt.Errorf("%w: JWK key type %q", shared.ErrInvalidArgument, j.Kty)
}
