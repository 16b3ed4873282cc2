package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/knhk/knhk/shared"
)

// CreateKey creates a non-exportable Transit key of the requested type.
// An existing key of that name is ErrAlreadyExists.
func (p *Provider) CreateKey(ctx context.Context, req shared.CreateKeyRequest) (shared.CreateKeyResponse, error) {
	ttype := transitTypes[req.Type] // the SDK lets only the key types Describe claims through
	t, err := p.resolve(ctx, req.Key)
	if err != nil {
		return shared.CreateKeyResponse{}, err
	}
	k, c := t.key, t.c
	// Transit's create is an upsert that answers an existing key like a new
	// one, so look first. Two racing creates of one name both succeed.
	switch _, err := c.readKey(ctx, k); {
	case err == nil, errors.Is(err, shared.ErrFailedPrecondition):
		return shared.CreateKeyResponse{}, alreadyExists(k)
	case !errors.Is(err, shared.ErrKeyNotFound):
		return shared.CreateKeyResponse{}, err
	}
	path := keyPath(k)
	secret, err := c.write(ctx, path, map[string]any{
		"type": ttype, "exportable": false, "allow_plaintext_backup": false,
	})
	if err != nil {
		return shared.CreateKeyResponse{}, c.mapError("create key "+k.String(), path, err)
	}
	version := 1
	if secret != nil {
		for _, w := range secret.Warnings {
			if strings.Contains(w, "already existed") {
				return shared.CreateKeyResponse{}, alreadyExists(k)
			}
		}
		var tk transitKey
		if decode(secret.Data, &tk) == nil {
			if tk.Type != "" && tk.Type != ttype {
				return shared.CreateKeyResponse{}, fmt.Errorf("vault: key %s already exists as %s; pick another name: %w", k, tk.Type, shared.ErrAlreadyExists)
			}
			if tk.LatestVersion > 0 {
				version = tk.LatestVersion
			}
		}
	}
	c.rememberType(k, req.Type)
	return shared.CreateKeyResponse{KeyID: k.String(), Version: strconv.Itoa(version)}, nil
}

func alreadyExists(k keyID) error {
	return fmt.Errorf("vault: key %s already exists; rotate it or pick another name: %w", k, shared.ErrAlreadyExists)
}

// ListKeys lists the signing keys of a Transit mount (parameter "mount",
// default "transit"). Keys Transit holds that knhk cannot sign with (AES,
// HMAC...) are left out. With version_states configured, a key with
// states has its active version as current.
func (p *Provider) ListKeys(ctx context.Context, req shared.ListKeysRequest) ([]shared.KeySummary, error) {
	prm, err := parseParams(req.Params)
	if err != nil {
		return nil, err
	}
	mount, err := parseMount(prm.String(ParamMount))
	if err != nil {
		return nil, err
	}
	c, err := p.client(ctx, prm)
	if err != nil {
		return nil, err
	}
	path := mount + "/keys"
	secret, err := c.list(ctx, path)
	if err != nil {
		return nil, c.mapError("list keys", path, err)
	}
	var list struct {
		Keys []string `json:"keys"`
	}
	if secret != nil {
		if err := decode(secret.Data, &list); err != nil {
			return nil, fmt.Errorf("%w: vault: Transit key list: %v", shared.ErrUnavailable, err)
		}
	}
	states, _ := parseStatesPath(prm.String(ParamVersionStates)) // checked by parseParams
	out := make([]shared.KeySummary, 0, len(list.Keys))
	for _, name := range list.Keys {
		k := keyID{mount: mount, name: name}
		active, err := p.activeVersion(ctx, target{key: k, c: c, states: states})
		if err != nil {
			return nil, err
		}
		info, err := c.readKey(ctx, k)
		if errors.Is(err, shared.ErrFailedPrecondition) || errors.Is(err, shared.ErrKeyNotFound) {
			continue // not a signing key, or deleted since the list
		}
		if err != nil {
			return nil, err
		}
		current := info.LatestVersion
		if active > 0 {
			current = active
		}
		out = append(out, shared.KeySummary{KeyID: k.String(), Type: info.keyType, CurrentVersion: strconv.Itoa(current)})
	}
	return out, nil
}

// RotateKey rotates a Transit key natively and returns the new version.
// With version_states configured it also keeps the key's version states
// (states.go): Pending makes the new version pending (giving the key
// states if it had none), and a key with states rotated without Pending
// has its new version active at once. Pending without version_states is
// ErrFailedPrecondition.
func (p *Provider) RotateKey(ctx context.Context, req shared.RotateKeyRequest) (shared.RotateKeyResponse, error) {
	t, err := p.resolve(ctx, req.Key)
	if err != nil {
		return shared.RotateKeyResponse{}, err
	}
	s, err := p.stateStore(ctx, t)
	switch {
	case err != nil:
		return shared.RotateKeyResponse{}, err
	case s != nil:
		return p.rotateWithStates(ctx, t, s, req.Pending)
	case req.Pending:
		return shared.RotateKeyResponse{}, errNoStatesPath(t.key)
	}
	return p.rotateTransit(ctx, t)
}

// rotateTransit rotates the Transit key and returns its new latest
// version.
func (p *Provider) rotateTransit(ctx context.Context, t target) (shared.RotateKeyResponse, error) {
	k, c := t.key, t.c
	path := keyPath(k) + "/rotate"
	secret, err := c.write(ctx, path, nil)
	if err != nil {
		return shared.RotateKeyResponse{}, c.mapError("rotate key "+k.String(), path, err)
	}
	var tk transitKey
	if secret == nil || decode(secret.Data, &tk) != nil || tk.LatestVersion == 0 {
		// Older Transit answers 204: read the key for the new version.
		info, err := c.readKey(ctx, k)
		if err != nil {
			return shared.RotateKeyResponse{}, err
		}
		tk.LatestVersion = info.LatestVersion
	}
	return shared.RotateKeyResponse{Version: strconv.Itoa(tk.LatestVersion)}, nil
}

// KeyMetadata describes a Transit key and every version it still has.
// A version is enabled when Transit still verifies with it
// (min_decryption_version). The current version is the latest, or the
// active one for a key with version states.
func (p *Provider) KeyMetadata(ctx context.Context, req shared.KeyMetadataRequest) (shared.KeyMetadata, error) {
	t, err := p.resolve(ctx, req.Key)
	if err != nil {
		return shared.KeyMetadata{}, err
	}
	k := t.key
	active, err := p.activeVersion(ctx, t) // before the key: a version the states name is in Transit by then
	if err != nil {
		return shared.KeyMetadata{}, err
	}
	info, err := t.c.readKey(ctx, k)
	if err != nil {
		return shared.KeyMetadata{}, err
	}
	current := info.LatestVersion
	if active > 0 {
		current = active
	}
	md := shared.KeyMetadata{
		KeyID:          k.String(),
		Type:           info.keyType,
		Algorithms:     info.keyType.Algorithms(),
		CurrentVersion: strconv.Itoa(current),
		Attributes: map[string]string{
			"mount":                  k.mount,
			"transit_type":           info.Type,
			"latest_version":         strconv.Itoa(info.LatestVersion),
			"min_available_version":  strconv.Itoa(info.MinAvailableVersion),
			"min_decryption_version": strconv.Itoa(info.MinDecryptionVersion),
			"min_encryption_version": strconv.Itoa(info.MinEncryptionVersion),
			"supports_signing":       strconv.FormatBool(info.SupportsSigning),
			"exportable":             strconv.FormatBool(info.Exportable),
			"deletion_allowed":       strconv.FormatBool(info.DeletionAllowed),
		},
	}
	if t.states != "" {
		md.Attributes[ParamVersionStates] = t.states
	}
	for _, v := range info.versionList() {
		md.Versions = append(md.Versions, shared.KeyVersion{
			Version: strconv.Itoa(v),
			Created: info.versions[v].CreationTime,
			Enabled: v >= info.MinDecryptionVersion,
		})
	}
	return md, nil
}

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
func (c *client) readKey(ctx context.Context, k keyID) (keyInfo, error) {
	path := keyPath(k)
	secret, err := c.read(ctx, path)
	if err != nil {
		return keyInfo{}, c.mapError("read key "+k.String(), path, err)
	}
	if secret == nil || secret.Data == nil {
		return keyInfo{}, fmt.Errorf("vault: key %s does not exist at %s: %w", k.name, c.addr+"/v1/"+path, shared.ErrKeyNotFound)
	}
	var info keyInfo
	if err := decode(secret.Data, &info.transitKey); err != nil {
		return keyInfo{}, fmt.Errorf("%w: vault: Transit key %s: %v", shared.ErrUnavailable, k, err)
	}
	kt, ok := knhkType(info.Type)
	if !ok {
		return keyInfo{}, fmt.Errorf("%w: vault: Transit key %s is of type %q, not a signing key knhk supports (%v)", shared.ErrFailedPrecondition, k, info.Type, keyTypes)
	}
	info.keyType = kt
	byName := map[string]transitKeyVersion{}
	if err := json.Unmarshal(info.Keys, &byName); err != nil {
		return keyInfo{}, fmt.Errorf("%w: vault: Transit key %s versions: %v", shared.ErrUnavailable, k, err)
	}
	info.versions = make(map[int]transitKeyVersion, len(byName))
	for name, v := range byName {
		n, err := strconv.Atoi(name)
		if err != nil {
			return keyInfo{}, fmt.Errorf("%w: vault: Transit key %s has a version named %q", shared.ErrUnavailable, k, name)
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

// versionList returns a key's versions, oldest first.
func (k keyInfo) versionList() []int {
	out := make([]int, 0, len(k.versions))
	for v := range k.versions {
		out = append(out, v)
	}
	slices.Sort(out)
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
