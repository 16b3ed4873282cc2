package providertest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/knhk/knhk/shared"
)

// softProvider is a small, correct provider with software keys, for testing
// the kit. Its bugs switch on deliberate faults, to prove the kit sees them.
type softProvider struct {
	mu       sync.Mutex
	keys     map[string]*softKey
	noCreate bool // claim no create_key, for the supplied-keys path
	bugs     bugs
}

// bugs are deliberate faults.
type bugs struct {
	badSignature     bool // flip a bit of every signature
	plainNotFound    bool // unknown key: an error wrapping no sentinel
	ignoreVersion    bool // sign with the current version whatever is asked
	ignoreContext    bool // sign even when the context is done
	noDigestCheck    bool // sign digests of any length
	noAlgorithmCheck bool // sign with algorithms the key cannot use
	verifyAll        bool // Verify says every signature is valid
	metadataType     bool // KeyMetadata reports the wrong key type
	rotateSameKey    bool // RotateKey adds a version with the same key
	protocolVersion  bool // Describe claims another protocol version
	shortBatch       bool // SignBatch drops the last result
	noVersion        bool // Sign responses name no version
	// hang, when set, blocks message signing until it is closed, whatever
	// the context says.
	hang chan struct{}
}

type softKey struct {
	kt       shared.KeyType
	versions []softVersion // oldest first
}

type softVersion struct {
	name    string
	priv    crypto.Signer
	created time.Time
}

var (
	_ shared.Provider    = (*softProvider)(nil)
	_ shared.BatchSigner = (*softProvider)(nil)
)

func newSoft() *softProvider { return &softProvider{keys: map[string]*softKey{}} }

func (p *softProvider) Describe(ctx context.Context) (shared.Description, error) {
	caps := []shared.Capability{shared.CapListKeys, shared.CapRotateKey, shared.CapVerify, shared.CapSignMessage, shared.CapSignBatch}
	if !p.noCreate {
		caps = append(caps, shared.CapCreateKey)
	}
	d := shared.Description{Name: "soft", Version: "test", Capabilities: caps,
		KeyTypes: shared.KeyTypes, Algorithms: shared.Algorithms}
	if p.bugs.protocolVersion {
		d.ProtocolVersion = shared.ProtocolVersion + 1
	}
	return d, nil
}

func generate(kt shared.KeyType) (crypto.Signer, error) {
	switch kt {
	case shared.RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case shared.RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case shared.RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	case shared.ECP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case shared.ECP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case shared.ECP521:
		return ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case shared.Ed25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("%w: unknown key type %q", shared.ErrInvalidArgument, kt)
}

// create makes a key; CreateKey and the supplied-keys test use it.
func (p *softProvider) create(id string, kt shared.KeyType) (string, error) {
	if id == "" {
		return "", fmt.Errorf("%w: key id is empty", shared.ErrInvalidArgument)
	}
	priv, err := generate(kt)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.keys[id]; ok {
		return "", fmt.Errorf("%w: %q", shared.ErrAlreadyExists, id)
	}
	p.keys[id] = &softKey{kt: kt, versions: []softVersion{{name: "1", priv: priv, created: time.Now()}}}
	return "1", nil
}

func (p *softProvider) CreateKey(ctx context.Context, req shared.CreateKeyRequest) (shared.CreateKeyResponse, error) {
	if p.noCreate {
		return shared.CreateKeyResponse{}, shared.ErrUnimplemented
	}
	if err := ctx.Err(); err != nil {
		return shared.CreateKeyResponse{}, err
	}
	v, err := p.create(req.Key.ID, req.Type)
	return shared.CreateKeyResponse{KeyID: req.Key.ID, Version: v}, err
}

func (p *softProvider) ListKeys(ctx context.Context, _ shared.ListKeysRequest) ([]shared.KeySummary, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []shared.KeySummary
	for id, k := range p.keys {
		out = append(out, shared.KeySummary{KeyID: id, Type: k.kt, CurrentVersion: k.versions[len(k.versions)-1].name})
	}
	return out, nil
}

// lookup finds a key version; "" is the current one.
func (p *softProvider) lookup(id, version string) (shared.KeyType, softVersion, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k, ok := p.keys[id]
	if !ok {
		if p.bugs.plainNotFound {
			return "", softVersion{}, fmt.Errorf("no key %q", id)
		}
		return "", softVersion{}, fmt.Errorf("%w: no key %q", shared.ErrKeyNotFound, id)
	}
	if version == "" || p.bugs.ignoreVersion {
		return k.kt, k.versions[len(k.versions)-1], nil
	}
	for _, v := range k.versions {
		if v.name == version {
			return k.kt, v, nil
		}
	}
	return "", softVersion{}, fmt.Errorf("%w: key %q has no version %q", shared.ErrKeyNotFound, id, version)
}

func (p *softProvider) PublicKey(ctx context.Context, req shared.PublicKeyRequest) (shared.PublicKeyResponse, error) {
	if err := ctx.Err(); err != nil {
		return shared.PublicKeyResponse{}, err
	}
	kt, v, err := p.lookup(req.Key.ID, req.Version)
	if err != nil {
		return shared.PublicKeyResponse{}, err
	}
	der, err := x509.MarshalPKIXPublicKey(v.priv.Public())
	if err != nil {
		return shared.PublicKeyResponse{}, fmt.Errorf("%w: %v", shared.ErrUnavailable, err)
	}
	return shared.PublicKeyResponse{DER: der, Version: v.name, Type: kt}, nil
}

// checkInput checks a request's algorithm against the key and returns the
// digest to sign (nil for EdDSA, which signs the message).
func (p *softProvider) checkInput(kt shared.KeyType, alg shared.Algorithm, digest, message []byte) ([]byte, error) {
	if err := shared.CheckAlgorithm(kt, alg); err != nil && !p.bugs.noAlgorithmCheck {
		return nil, err
	}
	if alg == shared.EdDSA {
		if message == nil {
			return nil, fmt.Errorf("%w: EdDSA signs messages, not digests", shared.ErrInvalidArgument)
		}
		return nil, nil
	}
	if message != nil {
		return shared.Digest(alg, message)
	}
	if err := shared.CheckDigest(alg, digest); err != nil && !p.bugs.noDigestCheck {
		return nil, err
	}
	return digest, nil
}

func (p *softProvider) Sign(ctx context.Context, req shared.SignRequest) (shared.SignResponse, error) {
	if p.bugs.hang != nil && req.Message != nil {
		<-p.bugs.hang
	}
	if err := ctx.Err(); err != nil && !p.bugs.ignoreContext {
		return shared.SignResponse{}, err
	}
	kt, v, err := p.lookup(req.Key.ID, req.Version)
	if err != nil {
		return shared.SignResponse{}, err
	}
	digest, err := p.checkInput(kt, req.Algorithm, req.Digest, req.Message)
	if err != nil {
		return shared.SignResponse{}, err
	}
	var opts crypto.SignerOpts = req.Algorithm.Hash()
	switch {
	case req.Algorithm == shared.EdDSA:
		digest, opts = req.Message, crypto.Hash(0)
	case req.Algorithm.IsPSS():
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: req.Algorithm.Hash()}
	}
	sig, err := v.priv.Sign(rand.Reader, digest, opts)
	if err != nil {
		return shared.SignResponse{}, fmt.Errorf("%w: %v", shared.ErrInvalidArgument, err)
	}
	if p.bugs.badSignature {
		sig[len(sig)/2] ^= 0x10
	}
	resp := shared.SignResponse{Signature: sig, Version: v.name}
	if p.bugs.noVersion {
		resp.Version = ""
	}
	return resp, nil
}

func (p *softProvider) SignBatch(ctx context.Context, reqs []shared.SignRequest, emit func(int, shared.SignResult)) {
	for i, req := range reqs {
		if p.bugs.shortBatch && i == len(reqs)-1 {
			return
		}
		resp, err := p.Sign(ctx, req)
		emit(i, shared.SignResult{Response: resp, Err: err})
	}
}

func (p *softProvider) Verify(ctx context.Context, req shared.VerifyRequest) (shared.VerifyResponse, error) {
	if err := ctx.Err(); err != nil {
		return shared.VerifyResponse{}, err
	}
	kt, v, err := p.lookup(req.Key.ID, req.Version)
	if err != nil {
		return shared.VerifyResponse{}, err
	}
	if _, err := p.checkInput(kt, req.Algorithm, req.Digest, req.Message); err != nil {
		return shared.VerifyResponse{}, err
	}
	if req.Message != nil {
		err = shared.VerifyMessage(v.priv.Public(), req.Algorithm, req.Message, req.Signature)
	} else {
		err = shared.VerifyDigest(v.priv.Public(), req.Algorithm, req.Digest, req.Signature)
	}
	if err != nil && !errors.Is(err, shared.ErrBadSignature) {
		return shared.VerifyResponse{}, err
	}
	return shared.VerifyResponse{Valid: err == nil || p.bugs.verifyAll, Version: v.name}, nil
}

func (p *softProvider) RotateKey(ctx context.Context, req shared.RotateKeyRequest) (shared.RotateKeyResponse, error) {
	if err := ctx.Err(); err != nil {
		return shared.RotateKeyResponse{}, err
	}
	kt, cur, err := p.lookup(req.Key.ID, "")
	if err != nil {
		return shared.RotateKeyResponse{}, err
	}
	priv := cur.priv
	if !p.bugs.rotateSameKey {
		if priv, err = generate(kt); err != nil {
			return shared.RotateKeyResponse{}, err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.keys[req.Key.ID]
	v := softVersion{name: strconv.Itoa(len(k.versions) + 1), priv: priv, created: time.Now()}
	k.versions = append(k.versions, v)
	return shared.RotateKeyResponse{Version: v.name}, nil
}

func (p *softProvider) KeyMetadata(ctx context.Context, req shared.KeyMetadataRequest) (shared.KeyMetadata, error) {
	if err := ctx.Err(); err != nil {
		return shared.KeyMetadata{}, err
	}
	if _, _, err := p.lookup(req.Key.ID, ""); err != nil {
		return shared.KeyMetadata{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.keys[req.Key.ID]
	md := shared.KeyMetadata{KeyID: req.Key.ID, Type: k.kt, Algorithms: k.kt.Algorithms(),
		CurrentVersion: k.versions[len(k.versions)-1].name}
	if p.bugs.metadataType {
		md.Type = shared.RSA2048
		if k.kt == shared.RSA2048 {
			md.Type = shared.ECP256
		}
	}
	for _, v := range k.versions {
		md.Versions = append(md.Versions, shared.KeyVersion{Version: v.name, Created: v.created, Enabled: true})
	}
	return md, nil
}
