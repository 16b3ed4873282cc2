package fake

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/knhk/knhk/shared"
)

// origin is how a target makes new keys, as key metadata shows it.
func (t target) origin() string {
	if t.seed != "" {
		return originSeed
	}
	return originRandom
}

func alreadyExists(id string) error {
	return fmt.Errorf("%w: fake: a key named %q exists; rotate it or pick another name", shared.ErrAlreadyExists, id)
}

// found is what lookup copies out of a store: key versions never change
// once made, but a key's list of versions may grow.
type found struct {
	typ      shared.KeyType
	versions int
	v        *keyVersion
}

// lookup finds a version ("" = current) of the target's key.
func (t target) lookup(version string) (found, error) {
	var f found
	err := t.store.read(func(s *state) error {
		k, v, err := s.find(t.id, version)
		if err == nil {
			f = found{typ: k.Type, versions: len(k.Versions), v: v}
		}
		return err
	})
	return f, err
}

// CreateKey creates key req.Key.ID of type req.Type with version "1".
func (p *Provider) CreateKey(ctx context.Context, req shared.CreateKeyRequest) (shared.CreateKeyResponse, error) {
	t, err := p.resolve(ctx, OpCreateKey, req.Key)
	if err != nil {
		return shared.CreateKeyResponse{}, err
	}
	// Refuse early, before spending seconds on an RSA key.
	if err := t.store.read(func(s *state) error {
		if _, ok := s.Keys[t.id]; ok {
			return alreadyExists(t.id)
		}
		return nil
	}); err != nil {
		return shared.CreateKeyResponse{}, err
	}
	k, err := generate(ctx, req.Type, t.seed, t.id, "1")
	if err != nil {
		return shared.CreateKeyResponse{}, err
	}
	v, err := newVersion(1, k)
	if err != nil {
		return shared.CreateKeyResponse{}, err
	}
	err = t.store.update(func(s *state) error {
		if _, ok := s.Keys[t.id]; ok {
			return alreadyExists(t.id)
		}
		s.Keys[t.id] = &keyEntry{Type: req.Type, Origin: t.origin(), Versions: []*keyVersion{v}}
		return nil
	})
	if err != nil {
		return shared.CreateKeyResponse{}, err
	}
	p.log.Debug("created key", "key", t.id, "type", req.Type, "storage", t.store.kind())
	return shared.CreateKeyResponse{KeyID: t.id, Version: v.Version}, nil
}

// ListKeys lists the keys of the store the parameters name, by name.
func (p *Provider) ListKeys(ctx context.Context, req shared.ListKeysRequest) ([]shared.KeySummary, error) {
	t, err := p.resolve(ctx, OpListKeys, shared.KeyRef{Params: req.Params})
	if err != nil {
		return nil, err
	}
	var out []shared.KeySummary
	err = t.store.read(func(s *state) error {
		for id, k := range s.Keys {
			out = append(out, shared.KeySummary{KeyID: id, Type: k.Type, CurrentVersion: k.current().Version})
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].KeyID < out[j].KeyID })
	return out, err
}

// errRaced says another writer rotated the key between read and update.
var errRaced = errors.New("rotated concurrently")

// RotateKey adds a version and makes it current or, with Pending, pending
// (giving the key version states if it had none: the current version
// becomes active). A key with states rotated without Pending has its new
// version active at once and its active one retiring.
func (p *Provider) RotateKey(ctx context.Context, req shared.RotateKeyRequest) (shared.RotateKeyResponse, error) {
	t, err := p.resolve(ctx, OpRotateKey, req.Key)
	if err != nil {
		return shared.RotateKeyResponse{}, err
	}
	// Generate outside the store's lock, then add the version only if no
	// one else added one meanwhile (a seeded key depends on its number).
	for {
		f, err := t.lookup("")
		if err != nil {
			return shared.RotateKeyResponse{}, err
		}
		n := f.versions + 1
		key, err := generate(ctx, f.typ, t.seed, t.id, strconv.Itoa(n))
		if err != nil {
			return shared.RotateKeyResponse{}, err
		}
		v, err := newVersion(n, key)
		if err != nil {
			return shared.RotateKeyResponse{}, err
		}
		err = t.store.update(func(s *state) error {
			cur, _, err := s.find(t.id, "")
			if err != nil {
				return err
			}
			if len(cur.Versions) != n-1 {
				return errRaced
			}
			switch {
			case req.Pending:
				cur.startStates()
				v.setState(shared.VersionPending)
			case cur.hasStates():
				cur.current().setState(shared.VersionRetiring)
				v.setState(shared.VersionActive)
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
		p.log.Debug("rotated key", "key", t.id, "version", v.Version, "pending", req.Pending)
		return shared.RotateKeyResponse{Version: v.Version}, nil
	}
}

// KeyMetadata describes a key and all its versions.
func (p *Provider) KeyMetadata(ctx context.Context, req shared.KeyMetadataRequest) (shared.KeyMetadata, error) {
	t, err := p.resolve(ctx, OpKeyMetadata, req.Key)
	if err != nil {
		return shared.KeyMetadata{}, err
	}
	var md shared.KeyMetadata
	err = t.store.read(func(s *state) error {
		k, _, err := s.find(t.id, "")
		if err != nil {
			return err
		}
		md = shared.KeyMetadata{
			KeyID:          t.id,
			Type:           k.Type,
			Algorithms:     k.Type.Algorithms(),
			CurrentVersion: k.current().Version,
			Attributes:     map[string]string{"storage": t.store.kind(), "origin": k.Origin},
		}
		if t.state != "" {
			md.Attributes["state_file"] = t.state
		}
		for _, v := range k.Versions {
			md.Versions = append(md.Versions, shared.KeyVersion{Version: v.Version, Created: v.Created, Enabled: true})
		}
		return nil
	})
	return md, err
}

// GetVersionStates returns the key's version states from its store.
func (p *Provider) GetVersionStates(ctx context.Context, req shared.GetVersionStatesRequest) (shared.VersionStates, error) {
	t, err := p.resolve(ctx, OpVersionStates, req.Key)
	if err != nil {
		return shared.VersionStates{}, err
	}
	var out shared.VersionStates
	err = t.store.read(func(s *state) error {
		k, _, err := s.find(t.id, "")
		if err == nil {
			out = k.states()
		}
		return err
	})
	return out, err
}

// SetVersionState moves a version to a state in the key's store, under
// its lock: a promotion moves the active version to retiring in the same
// write, so every host sharing the store sees exactly one active version.
func (p *Provider) SetVersionState(ctx context.Context, req shared.SetVersionStateRequest) (shared.VersionStates, error) {
	t, err := p.resolve(ctx, OpVersionStates, req.Key)
	if err != nil {
		return shared.VersionStates{}, err
	}
	var out shared.VersionStates
	err = t.store.update(func(s *state) error {
		k, v, err := s.find(t.id, req.Version)
		if err != nil {
			return err
		}
		if !k.hasStates() {
			return fmt.Errorf("%w: fake: key %q has no version states; rotate it with pending first", shared.ErrFailedPrecondition, t.id)
		}
		if err := shared.CheckVersionTransition(v.Version, v.State, req.State); err != nil {
			return err
		}
		if req.State == shared.VersionActive && v.State != shared.VersionActive {
			k.current().setState(shared.VersionRetiring)
		}
		v.setState(req.State)
		out = k.states()
		return nil
	})
	if err != nil {
		return shared.VersionStates{}, err
	}
	p.log.Debug("set version state", "key", t.id, "version", req.Version, "state", req.State)
	return out, nil
}
