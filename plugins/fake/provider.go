package fake

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/knhk/knhk/shared"
)

// Name is the plugin's name in Describe; Version is its version.
const (
	Name    = "fake"
	Version = "0.1.0"
)

// Provider is the fake key provider: software keys, in memory or in a state
// file, with fault injection. Its zero value is not usable; call New.
type Provider struct {
	log    hclog.Logger
	faults *faults
	mem    *memStore
	cache  signerCache

	mu    sync.Mutex
	files map[string]*fileStore // by absolute path
}

var _ shared.Provider = (*Provider)(nil)

// New returns a fake provider. It needs no configuration: every request's
// parameters say where its keys live and which faults to inject. Keys kept
// in memory belong to this Provider value.
func New() *Provider {
	log := hclog.New(&hclog.LoggerOptions{Name: Name, Level: hclog.Info, Output: os.Stderr, JSONFormat: true})
	return &Provider{log: log, faults: newFaults(log), mem: newMemStore(), files: map[string]*fileStore{}}
}

// Describe claims every key type, every algorithm and every optional
// operation, a native batch sign included.
func (p *Provider) Describe(context.Context) (shared.Description, error) {
	return shared.Description{
		Name:    Name,
		Version: Version,
		Capabilities: []shared.Capability{
			shared.CapCreateKey, shared.CapListKeys, shared.CapRotateKey, shared.CapVerify, shared.CapSignMessage,
			shared.CapSignBatch,
		},
		KeyTypes:   append([]shared.KeyType(nil), shared.KeyTypes...),
		Algorithms: append([]shared.Algorithm(nil), shared.Algorithms...),
	}, nil
}

// call is what every operation starts with: the checked parameters, the
// store they name, and whether faults ask for a corrupted signature.
type call struct {
	params  params
	store   store
	corrupt bool
}

// begin checks a request's parameters and key id (when id is non-nil),
// runs the injected faults for op, and picks the store.
func (p *Provider) begin(ctx context.Context, op string, raw map[string]string, id *string) (call, error) {
	if err := ctx.Err(); err != nil {
		return call{}, err
	}
	pr, err := parseParams(raw)
	if err != nil {
		return call{}, err
	}
	if id != nil {
		if err := checkKeyName(*id); err != nil {
			return call{}, err
		}
	}
	corrupt, err := p.faults.before(ctx, pr.fault, op)
	if err != nil {
		return call{}, err
	}
	if err := ctx.Err(); err != nil {
		return call{}, err
	}
	return call{params: pr, store: p.storeFor(pr), corrupt: corrupt}, nil
}

func (p *Provider) storeFor(pr params) store {
	if pr.state == "" {
		return p.mem
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	f, ok := p.files[pr.state]
	if !ok {
		f = &fileStore{path: pr.state, cache: &p.cache}
		p.files[pr.state] = f
	}
	return f
}

func origin(pr params) string {
	if pr.seeded {
		return originSeed
	}
	return originRandom
}

func alreadyExists(id string) error {
	return fmt.Errorf("%w: fake: a key named %q exists; rotate it or pick another name", shared.ErrAlreadyExists, id)
}

// CreateKey creates key req.Key.ID of type req.Type with version "1".
func (p *Provider) CreateKey(ctx context.Context, req shared.CreateKeyRequest) (shared.CreateKeyResponse, error) {
	id := req.Key.ID
	c, err := p.begin(ctx, OpCreateKey, req.Key.Params, &id)
	if err != nil {
		return shared.CreateKeyResponse{}, err
	}
	kt, err := shared.ParseKeyType(string(req.Type))
	if err != nil {
		return shared.CreateKeyResponse{}, err
	}
	// Refuse early, before spending seconds on an RSA key.
	if err := c.store.read(func(s *state) error {
		if _, ok := s.Keys[id]; ok {
			return alreadyExists(id)
		}
		return nil
	}); err != nil {
		return shared.CreateKeyResponse{}, err
	}
	k, err := generate(ctx, kt, c.params, id, "1")
	if err != nil {
		return shared.CreateKeyResponse{}, err
	}
	v, err := newVersion(1, k)
	if err != nil {
		return shared.CreateKeyResponse{}, err
	}
	err = c.store.update(func(s *state) error {
		if _, ok := s.Keys[id]; ok {
			return alreadyExists(id)
		}
		s.Keys[id] = &keyEntry{Type: kt, Origin: origin(c.params), Versions: []*keyVersion{v}}
		return nil
	})
	if err != nil {
		return shared.CreateKeyResponse{}, err
	}
	p.log.Debug("created key", "key", id, "type", kt, "storage", c.store.kind())
	return shared.CreateKeyResponse{KeyID: id, Version: v.Version}, nil
}

// ListKeys lists the keys of the store the parameters name, by name.
func (p *Provider) ListKeys(ctx context.Context, req shared.ListKeysRequest) ([]shared.KeySummary, error) {
	c, err := p.begin(ctx, OpListKeys, req.Params, nil)
	if err != nil {
		return nil, err
	}
	var out []shared.KeySummary
	err = c.store.read(func(s *state) error {
		for id, k := range s.Keys {
			out = append(out, shared.KeySummary{KeyID: id, Type: k.Type, CurrentVersion: k.current().Version})
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].KeyID < out[j].KeyID })
	return out, err
}

// found is what lookup copies out of a store: key versions never change
// once made, but a key's list of versions may grow.
type found struct {
	typ      shared.KeyType
	versions int
	v        *keyVersion
}

// lookup finds a key version in the call's store.
func (c call) lookup(id, version string) (found, error) {
	var f found
	err := c.store.read(func(s *state) error {
		k, v, err := s.find(id, version)
		if err == nil {
			f = found{typ: k.Type, versions: len(k.Versions), v: v}
		}
		return err
	})
	return f, err
}

// PublicKey returns a version's public key as DER SubjectPublicKeyInfo.
func (p *Provider) PublicKey(ctx context.Context, req shared.PublicKeyRequest) (shared.PublicKeyResponse, error) {
	c, err := p.begin(ctx, OpPublicKey, req.Key.Params, &req.Key.ID)
	if err != nil {
		return shared.PublicKeyResponse{}, err
	}
	f, err := c.lookup(req.Key.ID, req.Version)
	if err != nil {
		return shared.PublicKeyResponse{}, err
	}
	v := f.v
	der, err := x509.MarshalPKIXPublicKey(v.signer.Public())
	if err != nil {
		return shared.PublicKeyResponse{}, fmt.Errorf("fake: encoding the public key of %q: %w", req.Key.ID, err)
	}
	return shared.PublicKeyResponse{DER: der, Version: v.Version, Type: f.typ}, nil
}

// Sign signs a digest, or a whole message (hashed here for RSA and ECDSA),
// with the current or the named version.
func (p *Provider) Sign(ctx context.Context, req shared.SignRequest) (shared.SignResponse, error) {
	c, err := p.begin(ctx, OpSign, req.Key.Params, &req.Key.ID)
	if err != nil {
		return shared.SignResponse{}, err
	}
	f, err := c.lookup(req.Key.ID, req.Version)
	if err != nil {
		return shared.SignResponse{}, err
	}
	v := f.v
	digest, message, err := input(f.typ, req.Algorithm, req.Digest, req.Message)
	if err != nil {
		return shared.SignResponse{}, err
	}
	sig, err := sign(v.signer, req.Algorithm, digest, message, c.params.seeded)
	if err != nil {
		return shared.SignResponse{}, fmt.Errorf("fake: signing with %q version %s: %w", req.Key.ID, v.Version, err)
	}
	if c.corrupt {
		sig = corrupt(sig)
	}
	return shared.SignResponse{Signature: sig, Version: v.Version}, nil
}

// Verify checks a signature against the current or the named version.
func (p *Provider) Verify(ctx context.Context, req shared.VerifyRequest) (shared.VerifyResponse, error) {
	c, err := p.begin(ctx, OpVerify, req.Key.Params, &req.Key.ID)
	if err != nil {
		return shared.VerifyResponse{}, err
	}
	f, err := c.lookup(req.Key.ID, req.Version)
	if err != nil {
		return shared.VerifyResponse{}, err
	}
	v := f.v
	digest, message, err := input(f.typ, req.Algorithm, req.Digest, req.Message)
	if err != nil {
		return shared.VerifyResponse{}, err
	}
	ok, err := verify(v.signer.Public(), req.Algorithm, digest, message, req.Signature)
	if err != nil {
		return shared.VerifyResponse{}, err
	}
	return shared.VerifyResponse{Valid: ok, Version: v.Version}, nil
}

// errRaced says another writer rotated the key between read and update.
var errRaced = errors.New("rotated concurrently")

// RotateKey adds a version and makes it current.
func (p *Provider) RotateKey(ctx context.Context, req shared.RotateKeyRequest) (shared.RotateKeyResponse, error) {
	id := req.Key.ID
	c, err := p.begin(ctx, OpRotateKey, req.Key.Params, &id)
	if err != nil {
		return shared.RotateKeyResponse{}, err
	}
	// Generate outside the store's lock, then add the version only if no
	// one else added one meanwhile (a seeded key depends on its number).
	for {
		f, err := c.lookup(id, "")
		if err != nil {
			return shared.RotateKeyResponse{}, err
		}
		n := f.versions + 1
		key, err := generate(ctx, f.typ, c.params, id, fmt.Sprint(n))
		if err != nil {
			return shared.RotateKeyResponse{}, err
		}
		v, err := newVersion(n, key)
		if err != nil {
			return shared.RotateKeyResponse{}, err
		}
		err = c.store.update(func(s *state) error {
			cur, _, err := s.find(id, "")
			if err != nil {
				return err
			}
			if len(cur.Versions) != n-1 {
				return errRaced
			}
			cur.Versions = append(cur.Versions, v)
			return nil
		})
		if errors.Is(err, errRaced) {
			continue
		}
		if err != nil {
			return shared.RotateKeyResponse{}, err
		}
		p.log.Debug("rotated key", "key", id, "version", v.Version)
		return shared.RotateKeyResponse{Version: v.Version}, nil
	}
}

// KeyMetadata describes a key and all its versions.
func (p *Provider) KeyMetadata(ctx context.Context, req shared.KeyMetadataRequest) (shared.KeyMetadata, error) {
	c, err := p.begin(ctx, OpKeyMetadata, req.Key.Params, &req.Key.ID)
	if err != nil {
		return shared.KeyMetadata{}, err
	}
	var md shared.KeyMetadata
	err = c.store.read(func(s *state) error {
		k, _, err := s.find(req.Key.ID, "")
		if err != nil {
			return err
		}
		md = shared.KeyMetadata{
			KeyID:          req.Key.ID,
			Type:           k.Type,
			Algorithms:     k.Type.Algorithms(),
			CurrentVersion: k.current().Version,
			Attributes:     map[string]string{"storage": c.store.kind(), "origin": k.Origin},
		}
		if c.params.state != "" {
			md.Attributes["state_file"] = c.params.state
		}
		for _, v := range k.Versions {
			md.Versions = append(md.Versions, shared.KeyVersion{Version: v.Version, Created: v.Created, Enabled: true})
		}
		return nil
	})
	return md, err
}
