package vault

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/knhk/knhk/shared"
)

// transitKey is what Transit's GET MOUNT/keys/NAME returns (the fields knhk
// uses).
type transitKey struct {
	Type                 string          `json:"type"`
	LatestVersion        int             `json:"latest_version"`
	MinAvailableVersion  int             `json:"min_available_version"`
	MinDecryptionVersion int             `json:"min_decryption_version"`
	MinEncryptionVersion int             `json:"min_encryption_version"`
	Exportable           bool            `json:"exportable"`
	DeletionAllowed      bool            `json:"deletion_allowed"`
	SupportsSigning      bool            `json:"supports_signing"`
	Keys                 json.RawMessage `json:"keys"`
}

// transitKeyVersion is one entry of an asymmetric key's "keys" map.
type transitKeyVersion struct {
	PublicKey    string    `json:"public_key"`
	CreationTime time.Time `json:"creation_time"`
}

// keyInfo is a Transit signing key as knhk sees it.
type keyInfo struct {
	transitKey
	keyType  shared.KeyType
	versions map[int]transitKeyVersion
}

func keyPath(k keyID) string { return k.mount + "/keys/" + k.name }

// readKey reads a signing key; ErrKeyNotFound when it does not exist and
// ErrFailedPrecondition when it is not a signing key knhk knows.
func (c *conn) readKey(ctx context.Context, k keyID) (keyInfo, error) {
	path := keyPath(k)
	secret, err := c.read(ctx, path)
	if err != nil {
		return keyInfo{}, c.apiError("read key "+k.String(), path, err)
	}
	if secret == nil || secret.Data == nil {
		return keyInfo{}, fmt.Errorf("vault: key %s does not exist at %s: %w", k.name, c.addr+"/v1/"+path, shared.ErrKeyNotFound)
	}
	var info keyInfo
	if err := decode(secret.Data, &info.transitKey); err != nil {
		return keyInfo{}, fmt.Errorf("%w: Transit key %s: %v", shared.ErrUnavailable, k, err)
	}
	kt, ok := knhkType(info.Type)
	if !ok {
		return keyInfo{}, fmt.Errorf("%w: Transit key %s is of type %q, not a signing key knhk supports (%v)", shared.ErrFailedPrecondition, k, info.Type, shared.KeyTypes)
	}
	info.keyType = kt
	byName := map[string]transitKeyVersion{}
	if err := json.Unmarshal(info.Keys, &byName); err != nil {
		return keyInfo{}, fmt.Errorf("%w: Transit key %s versions: %v", shared.ErrUnavailable, k, err)
	}
	info.versions = make(map[int]transitKeyVersion, len(byName))
	for name, v := range byName {
		n, err := strconv.Atoi(name)
		if err != nil {
			return keyInfo{}, fmt.Errorf("%w: Transit key %s has a version named %q", shared.ErrUnavailable, k, name)
		}
		info.versions[n] = v
	}
	c.rememberType(k, kt)
	return info, nil
}

// decode turns a response's Data map into a struct.
func decode(data map[string]any, out any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// publicKeyDER turns Transit's public key text into DER SubjectPublicKeyInfo:
// PEM for RSA and ECDSA, base64 of the raw 32 bytes for Ed25519. It checks
// the key is of the expected type.
func publicKeyDER(kt shared.KeyType, text string) ([]byte, error) {
	var der []byte
	if kt == shared.Ed25519 {
		raw, err := base64.StdEncoding.DecodeString(text)
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: Transit returned an Ed25519 public key that is not base64 of 32 bytes", shared.ErrUnavailable)
		}
		der, err = x509.MarshalPKIXPublicKey(ed25519.PublicKey(raw))
		if err != nil {
			return nil, fmt.Errorf("%w: encoding Ed25519 public key: %v", shared.ErrUnavailable, err)
		}
	} else {
		block, _ := pem.Decode([]byte(text))
		if block == nil {
			return nil, fmt.Errorf("%w: Transit returned a %s public key that is not PEM", shared.ErrUnavailable, kt)
		}
		der = block.Bytes
		if block.Type == "RSA PUBLIC KEY" { // PKCS#1, in case Transit ever sends it
			pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: Transit returned a bad RSA public key: %v", shared.ErrUnavailable, err)
			}
			if der, err = x509.MarshalPKIXPublicKey(pub); err != nil {
				return nil, fmt.Errorf("%w: encoding RSA public key: %v", shared.ErrUnavailable, err)
			}
		}
	}
	_, got, err := shared.ParsePublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: Transit returned an unreadable public key: %v", shared.ErrUnavailable, err)
	}
	if got != kt {
		return nil, fmt.Errorf("%w: Transit key of type %s returned a %s public key", shared.ErrUnavailable, kt, got)
	}
	return der, nil
}

// versionList returns a key's versions, oldest first.
func (k keyInfo) versionList() []int {
	out := make([]int, 0, len(k.versions))
	for v := range k.versions {
		out = append(out, v)
	}
	sort.Ints(out)
	return out
}

// version picks a version (0 = latest) and checks it exists.
func (k keyInfo) version(id keyID, v int) (int, transitKeyVersion, error) {
	if v == 0 {
		v = k.LatestVersion
	}
	kv, ok := k.versions[v]
	if !ok {
		return 0, transitKeyVersion{}, fmt.Errorf("vault: key %s has no version %d (it has %v): %w",
			id, v, k.versionList(), shared.ErrKeyNotFound)
	}
	return v, kv, nil
}
