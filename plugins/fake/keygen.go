package fake

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"

	"github.com/knhk/knhk/shared"
)

// seedSalt separates the fake's key derivation from any other use of a seed.
const seedSalt = "knhk-fake-seed-v1"

// generate makes the private key for one version of a key: random when
// seed is "", else derived from seed, key type, name and version. It gives
// up when ctx ends (an RSA-4096 key can take seconds).
func generate(ctx context.Context, kt shared.KeyType, seed, name, version string) (crypto.Signer, error) {
	type result struct {
		k   crypto.Signer
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		if seed != "" {
			var src io.Reader
			if src, r.err = seededReader(seed, kt, name, version); r.err == nil {
				r.k, r.err = deriveKey(kt, src)
			}
		} else {
			r.k, r.err = randomKey(kt)
		}
		ch <- r
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("fake: generating a %s key: %w", kt, r.err)
		}
		return r.k, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// rsaBits is the modulus size of each RSA key type.
var rsaBits = map[shared.KeyType]int{shared.RSA2048: 2048, shared.RSA3072: 3072, shared.RSA4096: 4096}

// curves is the curve of each EC key type.
var curves = map[shared.KeyType]elliptic.Curve{shared.ECP256: elliptic.P256(), shared.ECP384: elliptic.P384(), shared.ECP521: elliptic.P521()}

// randomKey generates a key from the system's secure random source.
func randomKey(kt shared.KeyType) (crypto.Signer, error) {
	if bits := rsaBits[kt]; bits > 0 {
		return rsa.GenerateKey(rand.Reader, bits)
	}
	if c := curves[kt]; c != nil {
		return ecdsa.GenerateKey(c, rand.Reader)
	}
	if kt == shared.Ed25519 {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("%w: unknown key type %q", shared.ErrInvalidArgument, kt)
}

// seededReader is a deterministic byte stream for one key version:
// ChaCha8 keyed by HKDF-SHA256 of the seed, bound to type, name and version.
func seededReader(seed string, kt shared.KeyType, name, version string) (io.Reader, error) {
	info := string(kt) + "\x00" + name + "\x00" + version
	k, err := hkdf.Key(sha256.New, []byte(seed), []byte(seedSalt), info, 32)
	if err != nil {
		return nil, err
	}
	return mrand.NewChaCha8([32]byte(k)), nil
}

// deriveKey builds a key from a deterministic stream. The standard
// library's generators ignore their reader since Go 1.26, so the key is
// built from the stream here.
func deriveKey(kt shared.KeyType, r io.Reader) (crypto.Signer, error) {
	if bits := rsaBits[kt]; bits > 0 {
		return deriveRSA(r, bits)
	}
	if c := curves[kt]; c != nil {
		return deriveECDSA(r, c)
	}
	if kt == shared.Ed25519 {
		seed := make([]byte, ed25519.SeedSize)
		if _, err := io.ReadFull(r, seed); err != nil {
			return nil, err
		}
		return ed25519.NewKeyFromSeed(seed), nil
	}
	return nil, fmt.Errorf("%w: unknown key type %q", shared.ErrInvalidArgument, kt)
}

// deriveECDSA draws scalars from r until one is a valid private key.
func deriveECDSA(r io.Reader, c elliptic.Curve) (*ecdsa.PrivateKey, error) {
	bits := c.Params().BitSize
	buf := make([]byte, (bits+7)/8)
	for range 1000 {
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		if extra := len(buf)*8 - bits; extra > 0 {
			buf[0] &= 0xff >> extra // P-521: keep 521 bits
		}
		if k, err := ecdsa.ParseRawPrivateKey(c, buf); err == nil {
			return k, nil
		}
	}
	return nil, errors.New("no valid scalar found") // probability ~2^-32000
}

// rsaE is the public exponent of every fake RSA key.
const rsaE = 65537

// deriveRSA builds a two-prime RSA key with primes drawn from r.
func deriveRSA(r io.Reader, bits int) (*rsa.PrivateKey, error) {
	e := big.NewInt(rsaE)
	one := big.NewInt(1)
	for range 100 {
		p, err := derivePrime(r, bits/2)
		if err != nil {
			return nil, err
		}
		q, err := derivePrime(r, bits-bits/2)
		if err != nil {
			return nil, err
		}
		if p.Cmp(q) == 0 {
			continue
		}
		n := new(big.Int).Mul(p, q)
		if n.BitLen() != bits {
			continue
		}
		p1 := new(big.Int).Sub(p, one)
		q1 := new(big.Int).Sub(q, one)
		gcd := new(big.Int).GCD(nil, nil, p1, q1)
		lambda := new(big.Int).Div(new(big.Int).Mul(p1, q1), gcd)
		d := new(big.Int).ModInverse(e, lambda)
		if d == nil {
			continue // e divides p-1 or q-1
		}
		k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: rsaE}, D: d, Primes: []*big.Int{p, q}}
		k.Precompute()
		if err := k.Validate(); err != nil {
			return nil, err
		}
		return k, nil
	}
	return nil, errors.New("no RSA key found")
}

// smallPrimes are the odd primes below 1<<13, for sieving candidates.
var smallPrimes = func() []uint64 {
	const limit = 1 << 13
	composite := make([]bool, limit)
	var out []uint64
	for i := 3; i < limit; i += 2 {
		if composite[i] {
			continue
		}
		out = append(out, uint64(i))
		for j := i * i; j < limit; j += 2 * i {
			composite[j] = true
		}
	}
	return out
}()

// derivePrime finds a prime of exactly bits bits (top two bits set, so a
// product of two is never short) by drawing a start from r and searching
// upwards past small-prime multiples, as crypto/rand.Prime once did.
func derivePrime(r io.Reader, bits int) (*big.Int, error) {
	buf := make([]byte, (bits+7)/8)
	top := uint(bits - (len(buf)-1)*8) // bits used in buf[0], 1..8
	mods := make([]uint64, len(smallPrimes))
	m := new(big.Int)
	for {
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		buf[0] &= byte(1<<top - 1)
		if top >= 2 {
			buf[0] |= 3 << (top - 2)
		} else {
			buf[0] |= 1
			buf[1] |= 0x80
		}
		buf[len(buf)-1] |= 1
		base := new(big.Int).SetBytes(buf)
		for i, sp := range smallPrimes {
			mods[i] = m.Mod(base, m.SetUint64(sp)).Uint64()
		}
	search:
		for delta := uint64(0); delta < 1<<20; delta += 2 {
			for i, sp := range smallPrimes {
				if (mods[i]+delta)%sp == 0 {
					continue search
				}
			}
			cand := new(big.Int).Add(base, new(big.Int).SetUint64(delta))
			if cand.BitLen() != bits {
				break
			}
			if cand.ProbablyPrime(20) {
				return cand, nil
			}
		}
	}
}
