package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// seed makes the fake derive the same keys in every plugin process and in
// the state file, so every row signs with the same key material.
const seed = "knhk-bench"

// The signed input: one digest for ES256, one message for EdDSA.
var (
	message = []byte("knhk benchmark message: what does the plugin boundary cost?")
	digest  = sha256.Sum256(message)
)

// keyIDs by algorithm.
var keyIDs = map[shared.Algorithm]string{shared.ES256: "bench-ec", shared.EdDSA: "bench-ed"}

var keyTypes = map[shared.Algorithm]shared.KeyType{shared.ES256: shared.ECP256, shared.EdDSA: shared.Ed25519}

// material is the benchmark's keys: in a state file (for the CLI and the
// cold start, which start fresh processes) and parsed here (for the
// in-process limit). Plugin processes derive the same keys in memory.
type material struct {
	state string
	ec    *ecdsa.PrivateKey
	ed    ed25519.PrivateKey
}

// memRef names a key kept in the plugin's memory; fileRef one in the
// state file. Both derive from the same seed, so they are the same key.
func memRef(alg shared.Algorithm) string { return "fake:" + keyIDs[alg] + "?seed=" + seed }

func (m *material) fileRef(alg shared.Algorithm) string {
	return memRef(alg) + "&state=" + m.state
}

// newMaterial creates the keys in a state file through h and reads them
// back.
func newMaterial(ctx context.Context, h *host.Host, dir string) (*material, error) {
	m := &material{state: filepath.Join(dir, "keys.json")}
	for _, alg := range []shared.Algorithm{shared.ES256, shared.EdDSA} {
		if _, err := h.CreateKey(ctx, m.fileRef(alg), keyTypes[alg]); err != nil {
			return nil, fmt.Errorf("creating the %s key: %w", alg, err)
		}
	}
	// The fake's state file format: keys.<id>.versions[].pkcs8.
	var st struct {
		Keys map[string]struct {
			Versions []struct {
				PKCS8 []byte `json:"pkcs8"`
			} `json:"versions"`
		} `json:"keys"`
	}
	b, err := os.ReadFile(m.state)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("reading the fake's state file: %w", err)
	}
	parse := func(alg shared.Algorithm) (crypto.Signer, error) {
		k := st.Keys[keyIDs[alg]]
		if len(k.Versions) != 1 {
			return nil, fmt.Errorf("state file: key %s has %d versions", keyIDs[alg], len(k.Versions))
		}
		priv, err := x509.ParsePKCS8PrivateKey(k.Versions[0].PKCS8)
		if err != nil {
			return nil, err
		}
		return priv.(crypto.Signer), nil
	}
	ec, err := parse(shared.ES256)
	if err != nil {
		return nil, err
	}
	ed, err := parse(shared.EdDSA)
	if err != nil {
		return nil, err
	}
	m.ec, m.ed = ec.(*ecdsa.PrivateKey), ed.(ed25519.PrivateKey)
	return m, nil
}

// public is the in-process key's public half.
func (m *material) public(alg shared.Algorithm) crypto.PublicKey {
	if alg == shared.EdDSA {
		return m.ed.Public()
	}
	return m.ec.Public()
}

// signers makes a host's signers for the in-memory keys (creating them in
// its plugin process) and checks they are the same keys as the
// material's.
func (m *material) signers(ctx context.Context, h *host.Host) (map[shared.Algorithm]crypto.Signer, error) {
	out := map[shared.Algorithm]crypto.Signer{}
	for _, alg := range []shared.Algorithm{shared.ES256, shared.EdDSA} {
		if _, err := h.CreateKey(ctx, memRef(alg), keyTypes[alg]); err != nil {
			return nil, fmt.Errorf("creating the in-memory %s key: %w", alg, err)
		}
		s, err := h.Signer(ctx, memRef(alg))
		if err != nil {
			return nil, err
		}
		if !s.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(m.public(alg)) {
			return nil, fmt.Errorf("the plugin's %s key is not the benchmark's key material", alg)
		}
		out[alg] = s
	}
	return out, nil
}

// signOnce signs the benchmark input with s the way a caller would.
func signOnce(s crypto.Signer, alg shared.Algorithm) ([]byte, error) {
	if alg == shared.EdDSA {
		return s.Sign(nil, message, crypto.Hash(0))
	}
	return s.Sign(nil, digest[:], crypto.SHA256)
}

// check verifies a signature over the benchmark input.
func check(pub crypto.PublicKey, alg shared.Algorithm, sig []byte) error {
	if alg == shared.EdDSA {
		return shared.VerifyMessage(pub, alg, message, sig)
	}
	return shared.VerifyDigest(pub, alg, digest[:], sig)
}
