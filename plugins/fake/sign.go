package fake

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/knhk/knhk/shared"
)

// PublicKey returns a version's public key as DER SubjectPublicKeyInfo.
func (p *Provider) PublicKey(ctx context.Context, req shared.PublicKeyRequest) (shared.PublicKeyResponse, error) {
	t, err := p.resolve(ctx, OpPublicKey, req.Key)
	if err != nil {
		return shared.PublicKeyResponse{}, err
	}
	f, err := t.lookup(req.Version)
	if err != nil {
		return shared.PublicKeyResponse{}, err
	}
	der, err := x509.MarshalPKIXPublicKey(f.v.signer.Public())
	if err != nil {
		return shared.PublicKeyResponse{}, fmt.Errorf("fake: encoding the public key of %q: %w", t.id, err)
	}
	return shared.PublicKeyResponse{DER: der, Version: f.v.Version, Type: f.typ}, nil
}

// Sign signs a digest, or a whole message (hashed here for RSA and ECDSA),
// with the current or the named version.
func (p *Provider) Sign(ctx context.Context, req shared.SignRequest) (shared.SignResponse, error) {
	t, err := p.resolve(ctx, OpSign, req.Key)
	if err != nil {
		return shared.SignResponse{}, err
	}
	f, err := t.lookup(req.Version)
	if err != nil {
		return shared.SignResponse{}, err
	}
	digest, message, err := input(f.typ, req.Algorithm, req.Digest, req.Message)
	if err != nil {
		return shared.SignResponse{}, err
	}
	sig, err := sign(f.v.signer, req.Algorithm, digest, message, t.seed != "")
	if err != nil {
		return shared.SignResponse{}, fmt.Errorf("fake: signing with %q version %s: %w", t.id, f.v.Version, err)
	}
	if t.corrupt {
		sig = corrupt(sig)
	}
	return shared.SignResponse{Signature: sig, Version: f.v.Version}, nil
}

// Verify checks a signature against the current or the named version.
func (p *Provider) Verify(ctx context.Context, req shared.VerifyRequest) (shared.VerifyResponse, error) {
	t, err := p.resolve(ctx, OpVerify, req.Key)
	if err != nil {
		return shared.VerifyResponse{}, err
	}
	f, err := t.lookup(req.Version)
	if err != nil {
		return shared.VerifyResponse{}, err
	}
	digest, message, err := input(f.typ, req.Algorithm, req.Digest, req.Message)
	if err != nil {
		return shared.VerifyResponse{}, err
	}
	ok, err := verify(f.v.signer.Public(), req.Algorithm, digest, message, req.Signature)
	if err != nil {
		return shared.VerifyResponse{}, err
	}
	return shared.VerifyResponse{Valid: ok, Version: f.v.Version}, nil
}

// input checks the algorithm against the key's type and returns what to
// sign: the digest as sent, or the message and, except for EdDSA, its
// digest. The SDK has checked the rest: the fake claims CapSignMessage, so
// it receives RSA and ECDSA messages and hashes them here.
func input(kt shared.KeyType, alg shared.Algorithm, digest, message []byte) (dig, msg []byte, err error) {
	if err := shared.CheckAlgorithm(kt, alg); err != nil {
		return nil, nil, err
	}
	if digest != nil || alg == shared.EdDSA {
		return digest, message, nil
	}
	dig, err = shared.Digest(alg, message)
	return dig, message, err
}

// sign makes one signature. With deterministic set, ECDSA uses RFC 6979
// nonces (RSA PKCS#1 v1.5 and Ed25519 are deterministic anyway).
func sign(k crypto.Signer, alg shared.Algorithm, digest, message []byte, deterministic bool) ([]byte, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		if alg.IsPSS() {
			return rsa.SignPSS(rand.Reader, k, alg.Hash(), digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.SignPKCS1v15(rand.Reader, k, alg.Hash(), digest)
	case *ecdsa.PrivateKey:
		if deterministic {
			return k.Sign(nil, digest, alg.Hash())
		}
		return ecdsa.SignASN1(rand.Reader, k, digest)
	case ed25519.PrivateKey:
		return ed25519.Sign(k, message), nil
	}
	return nil, fmt.Errorf("%w: fake: stored key of type %T cannot sign", shared.ErrFailedPrecondition, k)
}

// verify checks a signature with the standard library against the public
// key. A signature that does not verify is (false, nil).
func verify(pub crypto.PublicKey, alg shared.Algorithm, digest, message, sig []byte) (bool, error) {
	var err error
	if alg == shared.EdDSA {
		err = shared.VerifyMessage(pub, alg, message, sig)
	} else {
		err = shared.VerifyDigest(pub, alg, digest, sig)
	}
	if errors.Is(err, shared.ErrBadSignature) {
		return false, nil
	}
	return err == nil, err
}

// corrupt flips one bit of a signature, in place.
func corrupt(sig []byte) []byte {
	if len(sig) > 0 {
		sig[len(sig)/2] ^= 0x01
	}
	return sig
}

var _ shared.BatchSigner = (*Provider)(nil)

// SignBatch signs a batch natively and emits each result as soon as it is
// made. The fake's signing is pure CPU, so the items run on one goroutine
// per core, each taking the next item, rather than on one goroutine per
// item as the SDK's fallback does for providers that wait on a network:
// that saves a wake-up and a stack growth per item. Items carrying fault
// parameters get a goroutine each, so an injected latency or hang holds up
// only its own item, as it would in separate calls. The SDK has checked
// every item; each goes through Sign (same parameters, faults and counts)
// within its own deadline.
func (p *Provider) SignBatch(ctx context.Context, reqs []shared.SignRequest, emit func(int, shared.SignResult)) {
	var (
		wg    sync.WaitGroup
		plain = make([]int, 0, len(reqs))
	)
	for i, r := range reqs {
		if !hasFaults(r.Key.Params) {
			plain = append(plain, i)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			emit(i, shared.SignItem(ctx, p, r))
		}()
	}
	var next atomic.Int64
	work := func() {
		for {
			j := int(next.Add(1)) - 1
			if j >= len(plain) {
				return
			}
			i := plain[j]
			emit(i, shared.SignItem(ctx, p, reqs[i]))
		}
	}
	for range min(runtime.GOMAXPROCS(0), len(plain)) - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
}

// hasFaults reports whether a request's parameters inject faults.
func hasFaults(params map[string]string) bool {
	for k := range params {
		if strings.HasPrefix(k, "fault_") {
			return true
		}
	}
	return false
}
