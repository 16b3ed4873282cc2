package azure

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/knhk/knhk/shared"
)

// createParams are Key Vault's create parameters for a knhk key type.
func createParams(kt shared.KeyType, hsm bool) (azkeys.CreateKeyParameters, error) {
	rsa, ec := azkeys.KeyTypeRSA, azkeys.KeyTypeEC
	if hsm {
		rsa, ec = azkeys.KeyTypeRSAHSM, azkeys.KeyTypeECHSM
	}
	cp := azkeys.CreateKeyParameters{KeyOps: []*azkeys.KeyOperation{to.Ptr(azkeys.KeyOperationSign), to.Ptr(azkeys.KeyOperationVerify)}}
	switch kt {
	case shared.RSA2048, shared.RSA3072, shared.RSA4096:
		bits, _ := strconv.Atoi(strings.TrimPrefix(string(kt), "rsa-"))
		cp.Kty, cp.KeySize = to.Ptr(rsa), to.Ptr(int32(bits))
	case shared.ECP256:
		cp.Kty, cp.Curve = to.Ptr(ec), to.Ptr(azkeys.CurveNameP256)
	case shared.ECP384:
		cp.Kty, cp.Curve = to.Ptr(ec), to.Ptr(azkeys.CurveNameP384)
	case shared.ECP521:
		cp.Kty, cp.Curve = to.Ptr(ec), to.Ptr(azkeys.CurveNameP521)
	case shared.Ed25519:
		return cp, fmt.Errorf("%w: Azure Key Vault has no Ed25519 keys (it offers %v)", shared.ErrUnsupportedAlgorithm, keyTypes)
	default:
		return cp, fmt.Errorf("%w: unknown key type %q", shared.ErrInvalidArgument, kt)
	}
	return cp, nil
}

// isManagedHSM reports whether a vault is a Managed HSM, whose keys are
// always HSM-backed.
func isManagedHSM(vault string) bool { return strings.Contains(vault, ".managedhsm.") }

// CreateKey creates a signing key (key ops sign and verify) named by the
// key id, HSM-backed when hsm=true or the vault is a Managed HSM. Key Vault
// would quietly add a version to an existing key, so an existing name is
// ErrAlreadyExists instead.
func (p *Provider) CreateKey(ctx context.Context, req shared.CreateKeyRequest) (shared.CreateKeyResponse, error) {
	t, err := p.resolve(ctx, req.Key)
	if err != nil {
		return shared.CreateKeyResponse{}, err
	}
	id, c := t.id, t.client
	if id.version != "" {
		return shared.CreateKeyResponse{}, fmt.Errorf("%w: azure: CreateKey takes a key id without a version, got %s/%s", shared.ErrInvalidArgument, id, id.version)
	}
	cp, err := createParams(req.Type, t.params.Bool(ParamHSM) || isManagedHSM(id.vault))
	if err != nil {
		return shared.CreateKeyResponse{}, err
	}
	if _, err := c.GetKey(ctx, id.name, "", nil); err == nil {
		return shared.CreateKeyResponse{}, fmt.Errorf("%w: azure: %s already exists; rotate it to get a new version", shared.ErrAlreadyExists, id)
	} else if merr := p.mapError("look up key", id.String(), err); !errors.Is(merr, shared.ErrKeyNotFound) {
		return shared.CreateKeyResponse{}, merr
	}
	resp, err := c.CreateKey(ctx, id.name, cp, nil)
	if err != nil {
		return shared.CreateKeyResponse{}, p.mapError("create key", id.String(), err)
	}
	version := versionOf(resp.Key.KID)
	p.cfg.Logger.Debug("created key", "key", id.String(), "version", version, "type", req.Type)
	return shared.CreateKeyResponse{KeyID: id.String(), Version: version}, nil
}

// ListKeys lists the signing keys (RSA and EC keys with the sign
// operation) of the vault named by the vault_url parameter.
func (p *Provider) ListKeys(ctx context.Context, req shared.ListKeysRequest) ([]shared.KeySummary, error) {
	t, err := p.resolve(ctx, shared.KeyRef{Params: req.Params})
	if err != nil {
		return nil, err
	}
	vault, c := t.id.vault, t.client
	var out []shared.KeySummary
	pager := c.NewListKeyPropertiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, p.mapError("list keys in", vault, err)
		}
		for _, item := range page.Value {
			if item == nil || item.KID == nil {
				continue
			}
			id := keyID{vault: vault, name: item.KID.Name()}
			// The list names keys only; their type and current version
			// need a get each.
			kb, _, kt, err := p.getKey(ctx, c, id, "")
			if errors.Is(err, shared.ErrUnsupportedAlgorithm) {
				continue // not an RSA or EC key
			}
			if err != nil {
				return nil, err
			}
			if !hasOp(kb.Key.KeyOps, azkeys.KeyOperationSign) {
				continue
			}
			// A key with version states: its active version, as in
			// KeyMetadata (a versions list only for such keys).
			active, err := p.activeVersion(ctx, c, id, kb.Tags)
			if err != nil {
				return nil, err
			}
			current := versionOf(kb.Key.KID)
			if active != "" {
				current = active
			}
			out = append(out, shared.KeySummary{KeyID: id.String(), Type: kt, CurrentVersion: current})
		}
	}
	return out, nil
}

func hasOp(ops []*azkeys.KeyOperation, op azkeys.KeyOperation) bool {
	for _, o := range ops {
		if o != nil && *o == op {
			return true
		}
	}
	return false
}

// PublicKey returns a key version's public key as DER SubjectPublicKeyInfo.
func (p *Provider) PublicKey(ctx context.Context, req shared.PublicKeyRequest) (shared.PublicKeyResponse, error) {
	t, err := p.resolve(ctx, req.Key)
	if err != nil {
		return shared.PublicKeyResponse{}, err
	}
	id, c := t.id, t.client
	version, err := id.pick(req.Version)
	if err != nil {
		return shared.PublicKeyResponse{}, err
	}
	kb, der, kt, err := p.getKey(ctx, c, id, version)
	if err != nil {
		return shared.PublicKeyResponse{}, err
	}
	return shared.PublicKeyResponse{DER: der, Version: versionOf(kb.Key.KID), Type: kt}, nil
}

// RotateKey makes a new version with Key Vault's native rotation. Old
// versions stay enabled and keep verifying. With Pending the new version
// is pending (see states.go; a key without version states gets them);
// without, a key with states has its new version active and the old
// active one retiring.
func (p *Provider) RotateKey(ctx context.Context, req shared.RotateKeyRequest) (shared.RotateKeyResponse, error) {
	t, err := p.resolve(ctx, req.Key)
	if err != nil {
		return shared.RotateKeyResponse{}, err
	}
	id, c := t.id, t.client
	if id.version != "" {
		return shared.RotateKeyResponse{}, fmt.Errorf("%w: azure: rotation acts on a key, not a version: use %s", shared.ErrInvalidArgument, id)
	}
	if req.Pending {
		version, err := p.rotatePending(ctx, c, id)
		if err != nil {
			return shared.RotateKeyResponse{}, err
		}
		p.cfg.Logger.Debug("rotated key", "key", id.String(), "version", version, "pending", true)
		return shared.RotateKeyResponse{Version: version}, nil
	}
	resp, err := c.RotateKey(ctx, id.name, nil)
	if err != nil {
		return shared.RotateKeyResponse{}, p.mapError("rotate key", id.String(), err)
	}
	version := versionOf(resp.Key.KID)
	if err := p.activateRotated(ctx, c, id, version, resp.Tags); err != nil {
		return shared.RotateKeyResponse{}, err
	}
	p.cfg.Logger.Debug("rotated key", "key", id.String(), "version", version)
	return shared.RotateKeyResponse{Version: version}, nil
}

// KeyMetadata describes a key: its type, current version, attributes and
// every version (from the versions API), oldest first. For a key with
// version states the current version is the active one; otherwise it is
// Key Vault's (the newest).
func (p *Provider) KeyMetadata(ctx context.Context, req shared.KeyMetadataRequest) (shared.KeyMetadata, error) {
	t, err := p.resolve(ctx, req.Key)
	if err != nil {
		return shared.KeyMetadata{}, err
	}
	id, c := t.id, t.client
	kb, _, kt, err := p.getKey(ctx, c, id, "")
	if err != nil {
		return shared.KeyMetadata{}, err
	}
	latest := versionOf(kb.Key.KID)
	vs, err := p.listVersions(ctx, c, id)
	if err != nil {
		return shared.KeyMetadata{}, err
	}
	current := latest
	if active := readStates(vs).Active(); active != "" {
		current = active
	}
	md := shared.KeyMetadata{
		KeyID: id.String(), Type: kt, Algorithms: kt.Algorithms(), CurrentVersion: current,
		Attributes: attributes(id, kb),
	}
	for _, v := range vs {
		md.Versions = append(md.Versions, shared.KeyVersion{Version: v.version, Enabled: v.enabled, Created: v.created})
	}
	// Oldest first. Creation times have one-second resolution, so among
	// equals Key Vault's current (newest) version goes last and the
	// service's order stays.
	sort.SliceStable(md.Versions, func(i, j int) bool {
		a, b := md.Versions[i], md.Versions[j]
		if !a.Created.Equal(b.Created) {
			return a.Created.Before(b.Created)
		}
		return a.Version != latest && b.Version == latest
	})
	return md, nil
}

// attributes flattens the current version's attributes.
func attributes(id keyID, kb azkeys.KeyBundle) map[string]string {
	m := map[string]string{"vault_url": id.vault, "name": id.name}
	if k := kb.Key; k != nil {
		if k.Kty != nil {
			m["kty"] = string(*k.Kty)
			m["hsm"] = strconv.FormatBool(strings.HasSuffix(string(*k.Kty), "-HSM"))
		}
		ops := make([]string, 0, len(k.KeyOps))
		for _, o := range k.KeyOps {
			if o != nil {
				ops = append(ops, string(*o))
			}
		}
		m["key_ops"] = strings.Join(ops, ",")
	}
	if a := kb.Attributes; a != nil {
		if a.Enabled != nil {
			m["enabled"] = strconv.FormatBool(*a.Enabled)
		}
		for k, t := range map[string]*time.Time{"created": a.Created, "updated": a.Updated, "expires": a.Expires, "not_before": a.NotBefore} {
			if t != nil {
				m[k] = t.UTC().Format(time.RFC3339)
			}
		}
		if a.RecoveryLevel != nil {
			m["recovery_level"] = *a.RecoveryLevel
		}
		if a.RecoverableDays != nil {
			m["recoverable_days"] = strconv.Itoa(int(*a.RecoverableDays))
		}
	}
	if kb.Managed != nil {
		m["managed"] = strconv.FormatBool(*kb.Managed)
	}
	return m
}

// getKey fetches a key version (current when version is empty) and
// converts its public key.
func (p *Provider) getKey(ctx context.Context, c *azkeys.Client, id keyID, version string) (azkeys.KeyBundle, []byte, shared.KeyType, error) {
	resp, err := c.GetKey(ctx, id.name, version, nil)
	if err != nil {
		return azkeys.KeyBundle{}, nil, "", p.mapError("get key", describe(id, version), err)
	}
	der, kt, err := jwkToDER(resp.Key)
	if err != nil {
		return azkeys.KeyBundle{}, nil, "", fmt.Errorf("azure: key %s: %w", describe(id, version), err)
	}
	return resp.KeyBundle, der, kt, nil
}

// describe names a key version in messages.
func describe(id keyID, version string) string {
	if version == "" {
		return id.String()
	}
	return id.String() + "/" + version
}

// versionOf is the version part of a kid.
func versionOf(kid *azkeys.ID) string {
	if kid == nil {
		return ""
	}
	return kid.Version()
}
