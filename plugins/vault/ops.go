package vault

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/knhk/knhk/shared"
)

// CreateKey creates a non-exportable Transit key of the requested type.
// An existing key of that name is ErrAlreadyExists.
func (p *Provider) CreateKey(ctx context.Context, req shared.CreateKeyRequest) (shared.CreateKeyResponse, error) {
	k, err := parseKeyID(req.Key.ID)
	if err != nil {
		return shared.CreateKeyResponse{}, err
	}
	ttype, ok := transitTypes[req.Type]
	if !ok {
		return shared.CreateKeyResponse{}, fmt.Errorf("%w: unknown key type %q (want one of %v)", shared.ErrInvalidArgument, req.Type, shared.KeyTypes)
	}
	c, err := p.conn(ctx, req.Key.Params)
	if err != nil {
		return shared.CreateKeyResponse{}, err
	}
	// Transit's create is an upsert that answers an existing key like a new
	// one, so look first. Two racing creates of one name both succeed.
	switch _, err := c.readKey(ctx, k); {
	case err == nil, errors.Is(err, shared.ErrFailedPrecondition):
		return shared.CreateKeyResponse{}, fmt.Errorf("vault: key %s already exists: %w", k, shared.ErrAlreadyExists)
	case !errors.Is(err, shared.ErrKeyNotFound):
		return shared.CreateKeyResponse{}, err
	}
	path := keyPath(k)
	secret, err := c.write(ctx, path, map[string]any{
		"type": ttype, "exportable": false, "allow_plaintext_backup": false,
	})
	if err != nil {
		return shared.CreateKeyResponse{}, c.apiError("create key "+k.String(), path, err)
	}
	if secret != nil {
		for _, w := range secret.Warnings {
			if strings.Contains(w, "already existed") {
				return shared.CreateKeyResponse{}, fmt.Errorf("vault: key %s already exists: %w", k, shared.ErrAlreadyExists)
			}
		}
	}
	version := 1
	if secret != nil {
		var tk transitKey
		if decode(secret.Data, &tk) == nil {
			if tk.Type != "" && tk.Type != ttype {
				return shared.CreateKeyResponse{}, fmt.Errorf("vault: key %s already exists as %s: %w", k, tk.Type, shared.ErrAlreadyExists)
			}
			if tk.LatestVersion > 0 {
				version = tk.LatestVersion
			}
		}
	}
	c.rememberType(k, req.Type)
	return shared.CreateKeyResponse{KeyID: k.String(), Version: strconv.Itoa(version)}, nil
}

// ListKeys lists the signing keys of a Transit mount (parameter "mount",
// default "transit"). Keys Transit holds that knhk cannot sign with (AES,
// HMAC...) are left out.
func (p *Provider) ListKeys(ctx context.Context, req shared.ListKeysRequest) ([]shared.KeySummary, error) {
	params, mount := splitMount(req.Params)
	if _, err := parseKeyID(mount + "/x"); err != nil {
		return nil, fmt.Errorf("%w: mount %q is not a valid Vault path", shared.ErrInvalidArgument, mount)
	}
	c, err := p.conn(ctx, params)
	if err != nil {
		return nil, err
	}
	path := mount + "/keys"
	secret, err := c.list(ctx, path)
	if err != nil {
		return nil, c.apiError("list keys", path, err)
	}
	var list struct {
		Keys []string `json:"keys"`
	}
	if secret != nil {
		if err := decode(secret.Data, &list); err != nil {
			return nil, fmt.Errorf("%w: Transit key list: %v", shared.ErrUnavailable, err)
		}
	}
	out := make([]shared.KeySummary, 0, len(list.Keys))
	for _, name := range list.Keys {
		k := keyID{mount: mount, name: name}
		info, err := c.readKey(ctx, k)
		if errors.Is(err, shared.ErrFailedPrecondition) || errors.Is(err, shared.ErrKeyNotFound) {
			continue // not a signing key, or deleted since the list
		}
		if err != nil {
			return nil, err
		}
		out = append(out, shared.KeySummary{KeyID: k.String(), Type: info.keyType, CurrentVersion: strconv.Itoa(info.LatestVersion)})
	}
	return out, nil
}

// splitMount takes the ListKeys-only "mount" parameter out of params.
func splitMount(params map[string]string) (map[string]string, string) {
	mount, ok := params[ParamMount]
	if !ok {
		return params, defaultMount
	}
	rest := make(map[string]string, len(params))
	for k, v := range params {
		if k != ParamMount {
			rest[k] = v
		}
	}
	if mount == "" {
		mount = defaultMount
	}
	return rest, mount
}

// PublicKey returns a key version's public key as DER SubjectPublicKeyInfo.
func (p *Provider) PublicKey(ctx context.Context, req shared.PublicKeyRequest) (shared.PublicKeyResponse, error) {
	k, c, err := p.key(ctx, req.Key)
	if err != nil {
		return shared.PublicKeyResponse{}, err
	}
	want, err := parseVersion(req.Version)
	if err != nil {
		return shared.PublicKeyResponse{}, err
	}
	info, err := c.readKey(ctx, k)
	if err != nil {
		return shared.PublicKeyResponse{}, err
	}
	v, kv, err := info.version(k, want)
	if err != nil {
		return shared.PublicKeyResponse{}, err
	}
	der, err := publicKeyDER(info.keyType, kv.PublicKey)
	if err != nil {
		return shared.PublicKeyResponse{}, fmt.Errorf("vault: key %s version %d: %w", k, v, err)
	}
	return shared.PublicKeyResponse{DER: der, Version: strconv.Itoa(v), Type: info.keyType}, nil
}

// key parses a key reference and returns its logged-in client.
func (p *Provider) key(ctx context.Context, ref shared.KeyRef) (keyID, *conn, error) {
	k, err := parseKeyID(ref.ID)
	if err != nil {
		return keyID{}, nil, err
	}
	if m, ok := ref.Params[ParamMount]; ok && m != k.mount {
		return keyID{}, nil, fmt.Errorf("%w: parameter mount=%q contradicts key id %q (the mount is part of the key id)", shared.ErrInvalidArgument, m, ref.ID)
	}
	c, err := p.conn(ctx, ref.Params)
	if err != nil {
		return keyID{}, nil, err
	}
	return k, c, nil
}

// Sign signs a digest (prehashed) or a message with Transit. The version
// used comes from the vault:vN: prefix of Transit's answer.
func (p *Provider) Sign(ctx context.Context, req shared.SignRequest) (shared.SignResponse, error) {
	alg, prehashed, input, err := signInput(req.Algorithm, req.Digest, req.Message)
	if err != nil {
		return shared.SignResponse{}, err
	}
	version, err := parseVersion(req.Version)
	if err != nil {
		return shared.SignResponse{}, err
	}
	k, c, err := p.key(ctx, req.Key)
	if err != nil {
		return shared.SignResponse{}, err
	}
	kt, err := c.keyType(ctx, k)
	if err != nil {
		return shared.SignResponse{}, err
	}
	body, err := signParams(kt, alg, prehashed)
	if err != nil {
		return shared.SignResponse{}, err
	}
	body["input"] = base64.StdEncoding.EncodeToString(input)
	if version > 0 {
		body["key_version"] = version
	}
	path := k.mount + "/sign/" + k.name
	secret, err := c.write(ctx, path, body)
	if err != nil {
		return shared.SignResponse{}, c.apiError("sign with "+k.String(), path, err)
	}
	var out struct {
		Signature string `json:"signature"`
	}
	if secret == nil || decode(secret.Data, &out) != nil || out.Signature == "" {
		return shared.SignResponse{}, fmt.Errorf("%w: Transit returned no signature for %s", shared.ErrUnavailable, k)
	}
	used, b64, err := splitSignature(out.Signature)
	if err != nil {
		return shared.SignResponse{}, err
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return shared.SignResponse{}, fmt.Errorf("%w: Transit returned a signature that is not base64", shared.ErrUnavailable)
	}
	return shared.SignResponse{Signature: sig, Version: strconv.Itoa(used)}, nil
}

// signInput checks the algorithm and picks the input Transit signs: the
// digest (prehashed) or the message. A provider called in process gets no
// SDK checks, so it checks here too.
func signInput(alg shared.Algorithm, digest, message []byte) (shared.Algorithm, bool, []byte, error) {
	if _, err := shared.ParseAlgorithm(string(alg)); err != nil {
		return "", false, nil, err
	}
	switch {
	case digest != nil && message != nil:
		return "", false, nil, fmt.Errorf("%w: send a digest or a message, not both", shared.ErrInvalidArgument)
	case message != nil:
		return alg, false, message, nil
	case digest != nil:
		if err := shared.CheckDigest(alg, digest); err != nil {
			return "", false, nil, err
		}
		return alg, true, digest, nil
	}
	return "", false, nil, fmt.Errorf("%w: the request carries neither a digest nor a message", shared.ErrInvalidArgument)
}

// Verify checks a signature with Transit. Without a version it checks
// against the latest. A signature Transit cannot even parse is invalid, not
// an error.
func (p *Provider) Verify(ctx context.Context, req shared.VerifyRequest) (shared.VerifyResponse, error) {
	alg, prehashed, input, err := signInput(req.Algorithm, req.Digest, req.Message)
	if err != nil {
		return shared.VerifyResponse{}, err
	}
	version, err := parseVersion(req.Version)
	if err != nil {
		return shared.VerifyResponse{}, err
	}
	k, c, err := p.key(ctx, req.Key)
	if err != nil {
		return shared.VerifyResponse{}, err
	}
	var kt shared.KeyType
	if version == 0 {
		info, err := c.readKey(ctx, k)
		if err != nil {
			return shared.VerifyResponse{}, err
		}
		kt, version = info.keyType, info.LatestVersion
	} else if kt, err = c.keyType(ctx, k); err != nil {
		return shared.VerifyResponse{}, err
	}
	body, err := signParams(kt, alg, prehashed)
	if err != nil {
		return shared.VerifyResponse{}, err
	}
	if alg.IsPSS() {
		body["salt_length"] = "auto" // accept any salt length, as shared.VerifyDigest does
	}
	body["input"] = base64.StdEncoding.EncodeToString(input)
	body["signature"] = fmt.Sprintf("vault:v%d:%s", version, base64.StdEncoding.EncodeToString(req.Signature))
	path := k.mount + "/verify/" + k.name
	secret, err := c.write(ctx, path, body)
	if err != nil {
		if malformedSignature(err) {
			return shared.VerifyResponse{Valid: false, Version: strconv.Itoa(version)}, nil
		}
		return shared.VerifyResponse{}, c.apiError("verify with "+k.String(), path, err)
	}
	var out struct {
		Valid bool `json:"valid"`
	}
	if secret == nil || decode(secret.Data, &out) != nil {
		return shared.VerifyResponse{}, fmt.Errorf("%w: Transit returned no verification result for %s", shared.ErrUnavailable, k)
	}
	return shared.VerifyResponse{Valid: out.Valid, Version: strconv.Itoa(version)}, nil
}

// malformedSignature recognises Transit's 400 for a signature it cannot
// parse (bad ASN.1, trailing data).
func malformedSignature(err error) bool {
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 400 {
		return false
	}
	d := strings.ToLower(strings.Join(re.Errors, " "))
	return strings.Contains(d, "supplied signature") || strings.Contains(d, "invalid base64 signature")
}

// RotateKey rotates a Transit key natively and returns the new version.
func (p *Provider) RotateKey(ctx context.Context, req shared.RotateKeyRequest) (shared.RotateKeyResponse, error) {
	k, c, err := p.key(ctx, req.Key)
	if err != nil {
		return shared.RotateKeyResponse{}, err
	}
	path := keyPath(k) + "/rotate"
	secret, err := c.write(ctx, path, nil)
	if err != nil {
		return shared.RotateKeyResponse{}, c.apiError("rotate key "+k.String(), path, err)
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
// (min_decryption_version).
func (p *Provider) KeyMetadata(ctx context.Context, req shared.KeyMetadataRequest) (shared.KeyMetadata, error) {
	k, c, err := p.key(ctx, req.Key)
	if err != nil {
		return shared.KeyMetadata{}, err
	}
	info, err := c.readKey(ctx, k)
	if err != nil {
		return shared.KeyMetadata{}, err
	}
	md := shared.KeyMetadata{
		KeyID:          k.String(),
		Type:           info.keyType,
		Algorithms:     info.keyType.Algorithms(),
		CurrentVersion: strconv.Itoa(info.LatestVersion),
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
	for _, v := range info.versionList() {
		md.Versions = append(md.Versions, shared.KeyVersion{
			Version: strconv.Itoa(v),
			Created: info.versions[v].CreationTime,
			Enabled: v >= info.MinDecryptionVersion,
		})
	}
	return md, nil
}
