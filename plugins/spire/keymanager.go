package spire

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/hashicorp/go-hclog"
	keymanagerv1 "github.com/spiffe/spire-plugin-sdk/proto/spire/plugin/server/keymanager/v1"
	configv1 "github.com/spiffe/spire-plugin-sdk/proto/spire/service/common/config/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// WellKnownKeyIDs are the key ids SPIRE server's CA manager uses: two
// slots (A and B) for the X.509 CA and two for the JWT signer. GetPublicKeys
// always looks for them, so SPIRE finds its keys after a restart even with
// a provider that cannot list keys.
var WellKnownKeyIDs = []string{"x509-CA-A", "x509-CA-B", "JWT-Signer-A", "JWT-Signer-B"}

// NewHostFunc makes the knhk host the plugin runs its keys through, from
// the configuration plugin_data gives. The default is host.New.
type NewHostFunc func(ctx context.Context, cfg host.Config) (*host.Host, error)

// Plugin is the SPIRE server KeyManager backed by knhk. Serve it with
// pluginmain.Serve(keymanagerv1.KeyManagerPluginServer(p),
// configv1.ConfigServiceServer(p)). Configure must succeed before any
// key operation; until then they fail with FailedPrecondition. It is safe
// for concurrent use.
type Plugin struct {
	keymanagerv1.UnimplementedKeyManagerServer
	configv1.UnimplementedConfigServer

	newHost NewHostFunc

	logMu sync.Mutex
	log   hclog.Logger

	// mu guards cfg, h and seen (the map; seenMu its contents). Key
	// operations hold it for reading for their whole run, so Configure
	// (which holds it for writing to swap the host) closes the previous
	// host only once no call uses it.
	mu     sync.RWMutex
	cfg    *Config
	h      *host.Host
	seenMu sync.Mutex
	seen   map[string]bool // SPIRE key ids generated since Configure
}

// New returns an unconfigured Plugin whose knhk host is made with host.New.
func New() *Plugin { return NewWithHost(nil) }

// NewWithHost returns an unconfigured Plugin whose knhk host is made by
// newHost (nil: host.New); tests pass one that returns a host/hosttest
// host. The plugin closes the hosts it made when it is reconfigured or
// closed.
func NewWithHost(newHost NewHostFunc) *Plugin {
	if newHost == nil {
		newHost = host.New
	}
	return &Plugin{newHost: newHost, log: hclog.NewNullLogger()}
}

// SetLogger receives SPIRE's logger (pluginsdk.NeedsLogger); knhk's host
// and its provider plugins log through it.
func (p *Plugin) SetLogger(l hclog.Logger) {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	p.log = l
}

func (p *Plugin) logger() hclog.Logger {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	return p.log
}

// Configure reads plugin_data (see ParseConfig), checks that the provider
// plugins it names are there (without starting them), and replaces the
// running configuration and knhk host at once. A configuration that does
// not load changes nothing: InvalidArgument for plugin_data itself,
// FailedPrecondition for a plugin or lock file that cannot be used.
func (p *Plugin) Configure(ctx context.Context, req *configv1.ConfigureRequest) (*configv1.ConfigureResponse, error) {
	cfg, err := ParseConfig(req.GetHclConfiguration())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	hc := cfg.hostConfig()
	hc.Logger = p.logger()
	h, err := p.newHost(ctx, hc)
	if err != nil {
		return nil, toStatus(err, "starting the knhk host")
	}
	for _, name := range cfg.providers() {
		if _, err := h.Provider(ctx, name); err != nil {
			_ = h.Close()
			return nil, toStatus(err, fmt.Sprintf("knhk provider %s", shared.Quote(name)))
		}
	}
	p.mu.Lock()
	old := p.h
	p.cfg, p.h, p.seen = cfg, h, map[string]bool{}
	p.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	return &configv1.ConfigureResponse{}, nil
}

// Validate checks plugin_data as Configure would, without applying it.
func (p *Plugin) Validate(_ context.Context, req *configv1.ValidateRequest) (*configv1.ValidateResponse, error) {
	if _, err := ParseConfig(req.GetHclConfiguration()); err != nil {
		return &configv1.ValidateResponse{Valid: false, Notes: []string{err.Error()}}, nil
	}
	return &configv1.ValidateResponse{Valid: true}, nil
}

// Close stops the knhk host and its provider plugins. SPIRE calls it
// when it unloads the plugin.
func (p *Plugin) Close() error {
	p.mu.Lock()
	h := p.h
	p.h, p.cfg = nil, nil
	p.mu.Unlock()
	if h != nil {
		return h.Close()
	}
	return nil
}

// state returns the running configuration and host with the read lock
// held; call the returned function when done.
func (p *Plugin) state() (*Config, *host.Host, func(), error) {
	p.mu.RLock()
	if p.h == nil {
		p.mu.RUnlock()
		return nil, nil, nil, status.Error(codes.FailedPrecondition, "the knhk KeyManager is not configured")
	}
	return p.cfg, p.h, p.mu.RUnlock, nil
}

// key resolves a SPIRE key id to a knhk key handle.
func key(ctx context.Context, cfg *Config, h *host.Host, id string) (*host.Key, error) {
	if err := CheckKeyID(id); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	ref, ok := cfg.keyRef(id)
	if !ok {
		return nil, status.Errorf(codes.NotFound, "SPIRE key %s: no knhk key for it: set key_ref or add a key block for this id", shared.Quote(id))
	}
	k, err := h.Key(ctx, ref)
	if err != nil {
		return nil, toStatus(err, fmt.Sprintf("SPIRE key %s", shared.Quote(id)))
	}
	return k, nil
}

// keyTypes maps SPIRE's key types to knhk's.
var keyTypes = map[keymanagerv1.KeyType]shared.KeyType{
	keymanagerv1.KeyType_EC_P256:  shared.ECP256,
	keymanagerv1.KeyType_EC_P384:  shared.ECP384,
	keymanagerv1.KeyType_RSA_2048: shared.RSA2048,
	keymanagerv1.KeyType_RSA_4096: shared.RSA4096,
}

// spireKeyType maps a knhk key type to SPIRE's; ok is false for the types
// SPIRE has no name for (rsa-3072, ec-p521, ed25519).
func spireKeyType(kt shared.KeyType) (keymanagerv1.KeyType, bool) {
	for s, k := range keyTypes {
		if k == kt {
			return s, true
		}
	}
	return keymanagerv1.KeyType_UNSPECIFIED_KEY_TYPE, false
}

// GenerateKey makes the knhk key behind SPIRE key id a new key of the
// requested type: it creates the key when the provider has none, and
// rotates it (a new current version, so a new public key and fingerprint)
// when it exists. An existing key of another type is FailedPrecondition:
// knhk cannot change a key's type, so point the id at another key.
func (p *Plugin) GenerateKey(ctx context.Context, req *keymanagerv1.GenerateKeyRequest) (*keymanagerv1.GenerateKeyResponse, error) {
	kt, ok := keyTypes[req.GetKeyType()]
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "key type %s is not supported: want EC_P256, EC_P384, RSA_2048 or RSA_4096", req.GetKeyType())
	}
	cfg, h, done, err := p.state()
	if err != nil {
		return nil, err
	}
	defer done()
	id := req.GetKeyId()
	k, err := key(ctx, cfg, h, id)
	if err != nil {
		return nil, err
	}
	name := describe(id, k)
	version := ""
	created, err := h.CreateKey(ctx, k.Ref().String(), kt)
	switch {
	case err == nil:
		k = created
		p.logger().Info("Created knhk key", "key_id", id, "knhk_key", k.Ref().Provider+":"+k.Ref().KeyID, "key_type", string(kt))
	case errors.Is(err, shared.ErrAlreadyExists):
		cur, err := k.PublicKey(ctx, "")
		if err != nil {
			return nil, toStatus(err, "reading "+name)
		}
		if cur.Type != kt {
			return nil, status.Errorf(codes.FailedPrecondition, "%s is an existing %s key and SPIRE asks for %s: knhk cannot change a key's type; map this SPIRE key id to another knhk key", name, cur.Type, kt)
		}
		if version, err = k.Rotate(ctx); err != nil {
			return nil, toStatus(err, "rotating "+name)
		}
		p.logger().Info("Rotated knhk key", "key_id", id, "knhk_key", k.Ref().Provider+":"+k.Ref().KeyID, "version", version)
	default:
		return nil, toStatus(err, "creating "+name)
	}
	pk, err := k.PublicKey(ctx, version)
	if err != nil {
		return nil, toStatus(err, "reading "+name)
	}
	out, err := publicKey(id, pk)
	if err != nil {
		return nil, err
	}
	p.seenMu.Lock()
	p.seen[id] = true
	p.seenMu.Unlock()
	return &keymanagerv1.GenerateKeyResponse{PublicKey: out}, nil
}

// GetPublicKey returns the current public key of the knhk key behind a
// SPIRE key id: NotFound when the provider has no such key or no knhk key
// is mapped to the id.
func (p *Plugin) GetPublicKey(ctx context.Context, req *keymanagerv1.GetPublicKeyRequest) (*keymanagerv1.GetPublicKeyResponse, error) {
	cfg, h, done, err := p.state()
	if err != nil {
		return nil, err
	}
	defer done()
	pk, err := currentKey(ctx, cfg, h, req.GetKeyId())
	if err != nil {
		return nil, err
	}
	return &keymanagerv1.GetPublicKeyResponse{PublicKey: pk}, nil
}

func currentKey(ctx context.Context, cfg *Config, h *host.Host, id string) (*keymanagerv1.PublicKey, error) {
	k, err := key(ctx, cfg, h, id)
	if err != nil {
		return nil, err
	}
	pk, err := k.PublicKey(ctx, "")
	if err != nil {
		return nil, toStatus(err, "reading "+describe(id, k))
	}
	return publicKey(id, pk)
}

// GetPublicKeys returns the public keys of every SPIRE key id that has a
// knhk key: SPIRE's well-known ids (WellKnownKeyIDs), the ids of key
// blocks, the ids generated by this process, and, when the provider of
// key_ref can list keys, every listed key whose id the template could
// have made. Ids whose key does not exist are left out.
func (p *Plugin) GetPublicKeys(ctx context.Context, _ *keymanagerv1.GetPublicKeysRequest) (*keymanagerv1.GetPublicKeysResponse, error) {
	cfg, h, done, err := p.state()
	if err != nil {
		return nil, err
	}
	defer done()
	ids := map[string]bool{}
	for _, id := range WellKnownKeyIDs {
		ids[id] = true
	}
	for _, id := range cfg.configuredIDs() {
		ids[id] = true
	}
	p.seenMu.Lock()
	for id := range p.seen {
		ids[id] = true
	}
	p.seenMu.Unlock()
	if cfg.tmpl.raw != "" {
		listed, err := h.ListKeys(ctx, cfg.tmpl.provider, cfg.tmpl.params)
		switch {
		case err == nil:
			for _, s := range listed {
				for _, name := range append([]string{s.KeyID}, s.Aliases...) {
					if id, ok := cfg.tmpl.spireID(name); ok {
						ids[id] = true
					}
				}
			}
		case ctx.Err() != nil:
			return nil, toStatus(err, "listing knhk keys")
		default:
			// Not every provider lists keys (or lets this identity):
			// the well-known and known ids still cover SPIRE's CA.
			p.logger().Debug("Cannot list knhk keys; looking up known key ids only", "provider", cfg.tmpl.provider, "error", err)
		}
	}
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)
	resp := &keymanagerv1.GetPublicKeysResponse{}
	for _, id := range sorted {
		if _, ok := cfg.keyRef(id); !ok {
			continue
		}
		pk, err := currentKey(ctx, cfg, h, id)
		if status.Code(err) == codes.NotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		resp.PublicKeys = append(resp.PublicKeys, pk)
	}
	return resp, nil
}

// SignData signs a digest (SPIRE hashes the data first: Data is the
// digest the options name) with the current version of the knhk key
// behind a SPIRE key id, through the knhk host's crypto.Signer, so the
// host has checked the signature against the public key before it is
// returned. The fingerprint is that version's. SHA-256, SHA-384 and
// SHA-512 only; ECDSA keys sign their curve's hash (P-256 SHA-256, P-384
// SHA-384); PSS options only for RSA keys, salt length equal to the hash
// length (or -1, 0). Anything else is InvalidArgument.
func (p *Plugin) SignData(ctx context.Context, req *keymanagerv1.SignDataRequest) (*keymanagerv1.SignDataResponse, error) {
	var opts crypto.SignerOpts
	pss := false
	switch o := req.GetSignerOpts().(type) {
	case *keymanagerv1.SignDataRequest_HashAlgorithm:
		hash, err := hashOf(o.HashAlgorithm)
		if err != nil {
			return nil, err
		}
		opts = hash
	case *keymanagerv1.SignDataRequest_PssOptions:
		if o.PssOptions == nil {
			return nil, status.Error(codes.InvalidArgument, "PSS options are empty")
		}
		hash, err := hashOf(o.PssOptions.GetHashAlgorithm())
		if err != nil {
			return nil, err
		}
		opts, pss = &rsa.PSSOptions{SaltLength: int(o.PssOptions.GetSaltLength()), Hash: hash}, true
	default:
		return nil, status.Error(codes.InvalidArgument, "signer options are required: a hash algorithm or PSS options")
	}
	cfg, h, done, err := p.state()
	if err != nil {
		return nil, err
	}
	defer done()
	id := req.GetKeyId()
	k, err := key(ctx, cfg, h, id)
	if err != nil {
		return nil, err
	}
	name := describe(id, k)
	signer, err := k.Signer(ctx)
	if err != nil {
		return nil, toStatus(err, "reading "+name)
	}
	if pss && !isRSA(signer.KeyType()) {
		return nil, status.Errorf(codes.InvalidArgument, "PSS options are only valid for RSA keys; %s is %s", name, signer.KeyType())
	}
	sig, err := signer.Sign(nil, req.GetData(), opts)
	if err != nil {
		return nil, toStatus(err, "signing with "+name)
	}
	fp, err := fingerprint(signer.Public())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "%s: %v", name, err)
	}
	return &keymanagerv1.SignDataResponse{Signature: sig, KeyFingerprint: fp}, nil
}

// hashOf maps SPIRE's hash algorithm (aligned with crypto.Hash) to the
// hashes knhk signs.
func hashOf(a keymanagerv1.HashAlgorithm) (crypto.Hash, error) {
	switch a {
	case keymanagerv1.HashAlgorithm_SHA256:
		return crypto.SHA256, nil
	case keymanagerv1.HashAlgorithm_SHA384:
		return crypto.SHA384, nil
	case keymanagerv1.HashAlgorithm_SHA512:
		return crypto.SHA512, nil
	}
	return 0, status.Errorf(codes.InvalidArgument, "hash algorithm %s is not supported: want SHA256, SHA384 or SHA512", a)
}

func isRSA(kt shared.KeyType) bool {
	return kt == shared.RSA2048 || kt == shared.RSA3072 || kt == shared.RSA4096
}

// publicKey turns a knhk public key into SPIRE's: the SubjectPublicKeyInfo
// as Go encodes it, and its fingerprint.
func publicKey(id string, pk host.PublicKey) (*keymanagerv1.PublicKey, error) {
	kt, ok := spireKeyType(pk.Type)
	if !ok {
		return nil, status.Errorf(codes.FailedPrecondition, "SPIRE key %s: the knhk key is %s, which SPIRE cannot use (EC P-256, P-384, RSA 2048 or 4096 only); map this SPIRE key id to another knhk key", shared.Quote(id), pk.Type)
	}
	der, err := x509.MarshalPKIXPublicKey(pk.Key)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "SPIRE key %s: encoding the public key: %v", shared.Quote(id), err)
	}
	return &keymanagerv1.PublicKey{Id: id, Type: kt, PkixData: der, Fingerprint: sha256Hex(der)}, nil
}

// fingerprint is the hex SHA-256 of a public key's SubjectPublicKeyInfo:
// the same key gives the same fingerprint in every process, and a rotated
// key (a new public key) a new one, as SPIRE requires.
func fingerprint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encoding the public key: %w", err)
	}
	return sha256Hex(der), nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// describe names a SPIRE key and its knhk key, without the reference's
// parameters (which may say where a service is or how to reach it).
func describe(id string, k *host.Key) string {
	r := k.Ref()
	return fmt.Sprintf("SPIRE key %s (knhk key %s)", shared.Quote(id), shared.Quote(r.Provider+":"+r.KeyID))
}

// toStatus turns a knhk error into a gRPC status SPIRE shows: the code
// says what kind of failure it is, the message what was being done and
// knhk's own message (which carries no parameter values or secrets).
func toStatus(err error, doing string) error {
	return status.Errorf(codeOf(err), "%s: %v", doing, err)
}

// codeOf picks the gRPC code for a knhk error.
func codeOf(err error) codes.Code {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, host.ErrVerifyAfterSign), errors.Is(err, shared.ErrBadSignature):
		return codes.Internal
	case errors.Is(err, shared.ErrKeyNotFound):
		return codes.NotFound
	case errors.Is(err, shared.ErrInvalidArgument), errors.Is(err, shared.ErrUnsupportedAlgorithm):
		return codes.InvalidArgument
	case errors.Is(err, shared.ErrPermissionDenied):
		return codes.PermissionDenied
	case errors.Is(err, shared.ErrAlreadyExists):
		return codes.AlreadyExists
	case errors.Is(err, shared.ErrUnimplemented):
		return codes.Unimplemented
	case errors.Is(err, host.ErrPluginNotFound), errors.Is(err, host.ErrPluginRefused),
		errors.Is(err, host.ErrLockFile), errors.Is(err, host.ErrHandshake),
		errors.Is(err, shared.ErrFailedPrecondition):
		return codes.FailedPrecondition
	case host.IsRetryable(err), errors.Is(err, host.ErrClosed):
		return codes.Unavailable
	}
	return codes.Internal
}
