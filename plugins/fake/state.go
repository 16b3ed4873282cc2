package fake

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/knhk/knhk/shared"
)

// stateFormat marks a state file; a file with any other format is refused.
const stateFormat = "knhk-fake-state/v1"

// Key origins, recorded per key and shown in its metadata attributes.
const (
	originRandom = "random"
	originSeed   = "seed"
)

// state is every key of one store. In a file it is JSON:
//
//	{"format": "knhk-fake-state/v1",
//	 "keys": {"demo": {"type": "ec-p256", "origin": "random",
//	   "versions": [{"version": "1", "created": "...", "pkcs8": "<base64 DER>"}]}}}
//
// A key with version states (see shared.VersionStater) has a "state" in
// every version, exactly one of them "active"; a key without has none.
type state struct {
	Format string               `json:"format"`
	Keys   map[string]*keyEntry `json:"keys"`
}

// keyEntry is one key and its versions, oldest first; the last is current.
type keyEntry struct {
	Type     shared.KeyType `json:"type"`
	Origin   string         `json:"origin"`
	Versions []*keyVersion  `json:"versions"`
}

// keyVersion is one version of a key. Version i (from 1) is Versions[i-1].
type keyVersion struct {
	Version string    `json:"version"`
	Created time.Time `json:"created"`
	PKCS8   []byte    `json:"pkcs8"`
	// State is the version's state when its key has version states.
	State shared.VersionState `json:"state,omitempty"`
	// StateSince is when the version entered State.
	StateSince time.Time `json:"state_since,omitzero"`
	signer     crypto.Signer
}

// setState moves the version to st, noting when; a version already in st
// keeps its time.
func (v *keyVersion) setState(st shared.VersionState) {
	if v.State != st {
		v.State, v.StateSince = st, time.Now().UTC()
	}
}

func newState() *state { return &state{Format: stateFormat, Keys: map[string]*keyEntry{}} }

// current is the key's current version: the active one when the key has
// version states, else the last.
func (k *keyEntry) current() *keyVersion {
	if k.hasStates() {
		for _, v := range k.Versions {
			if v.State == shared.VersionActive {
				return v
			}
		}
	}
	return k.Versions[len(k.Versions)-1]
}

// hasStates reports whether the key has version states.
func (k *keyEntry) hasStates() bool { return k.Versions[0].State != "" }

// states are the key's version states, none without.
func (k *keyEntry) states() shared.VersionStates {
	var out shared.VersionStates
	if !k.hasStates() {
		return out
	}
	for _, v := range k.Versions {
		out.Versions = append(out.Versions, shared.VersionStateEntry{Version: v.Version, State: v.State, Since: v.StateSince})
	}
	return out
}

// startStates gives a key without version states its first: the current
// version active, older ones retiring.
func (k *keyEntry) startStates() {
	if k.hasStates() {
		return
	}
	for i, v := range k.Versions {
		v.setState(shared.VersionRetiring)
		if i == len(k.Versions)-1 {
			v.setState(shared.VersionActive)
		}
	}
}

// newVersion wraps a freshly generated private key as the next version.
func newVersion(n int, k crypto.Signer) (*keyVersion, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("fake: encoding a private key: %w", err)
	}
	return &keyVersion{Version: strconv.Itoa(n), Created: time.Now().UTC(), PKCS8: der, signer: k}, nil
}

// find looks up a key and a version of it ("" = current).
func (s *state) find(id, version string) (*keyEntry, *keyVersion, error) {
	k, ok := s.Keys[id]
	if !ok {
		return nil, nil, fmt.Errorf("%w: fake: no key named %q; create it first (CreateKey)", shared.ErrKeyNotFound, id)
	}
	if version == "" {
		return k, k.current(), nil
	}
	n, err := strconv.Atoi(version)
	if err != nil || n < 1 || n > len(k.Versions) || strconv.Itoa(n) != version {
		return nil, nil, fmt.Errorf("%w: fake: key %q has no version %q (it has versions 1 to %d)", shared.ErrKeyNotFound, id, version, len(k.Versions))
	}
	return k, k.Versions[n-1], nil
}

// signerCache maps the SHA-256 of a PKCS#8 DER to its parsed key, so a
// state file re-read after every change does not re-parse (and, for RSA,
// re-validate) every key.
type signerCache struct{ m sync.Map }

func (c *signerCache) parse(der []byte) (crypto.Signer, error) {
	h := sha256.Sum256(der)
	if k, ok := c.m.Load(h); ok {
		return k.(crypto.Signer), nil
	}
	raw, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	k, ok := raw.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T cannot sign", raw)
	}
	c.m.Store(h, k)
	return k, nil
}

// check validates a state read from a file and attaches parsed keys. Any
// problem is reported without key material.
func (s *state) check(cache *signerCache) error {
	if s.Format != stateFormat {
		return fmt.Errorf("format is %q, want %q", s.Format, stateFormat)
	}
	if s.Keys == nil {
		s.Keys = map[string]*keyEntry{}
	}
	for id, k := range s.Keys {
		if err := checkKeyName(id); err != nil {
			return fmt.Errorf("key %q: bad name", id)
		}
		if k == nil || len(k.Versions) == 0 {
			return fmt.Errorf("key %q has no versions", id)
		}
		if _, err := shared.ParseKeyType(string(k.Type)); err != nil {
			return fmt.Errorf("key %q has unknown type %q", id, k.Type)
		}
		for i, v := range k.Versions {
			if v == nil || v.Version != strconv.Itoa(i+1) {
				return fmt.Errorf("key %q: version %d is missing or misnumbered", id, i+1)
			}
			signer, err := cache.parse(v.PKCS8)
			if err != nil {
				return fmt.Errorf("key %q version %s: private key does not parse", id, v.Version)
			}
			if kt, err := shared.KeyTypeOf(signer.Public()); err != nil || kt != k.Type {
				return fmt.Errorf("key %q version %s: private key is not a %s key", id, v.Version, k.Type)
			}
			v.signer = signer
			if (v.State != "") != (k.Versions[0].State != "") {
				return fmt.Errorf("key %q: some versions have a state and some have none", id)
			}
		}
		if err := k.states().Check(); err != nil {
			return fmt.Errorf("key %q: %v", id, err)
		}
	}
	return nil
}
