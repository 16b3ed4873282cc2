package sidecar

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"
	jwtv1 "k8s.io/externaljwt/apis/v1"
	jwtv1alpha1 "k8s.io/externaljwt/apis/v1alpha1"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/internal/apierr"
	"github.com/knhk/knhk/shared"
)

// Kubernetes' ExternalJWTSigner: kube-apiserver started with
// --service-account-signing-endpoint=<the sidecar's socket> signs
// service-account tokens with Config.JWT's key and fetches its public keys
// to verify them. Its identity needs the policy operations "sign" (Sign)
// and "public_key" (FetchKeys, which lists the key's versions to publish
// each one's public key); Metadata needs only an identified caller.
//
// For a key with version states (issue #17), Sign signs with the active
// version and FetchKeys publishes every enabled version that is pending,
// active or retiring (shared.VersionState.Published): kube-apiserver
// learns a pending key before it signs, and a retired one drops out.

// jwtVersionTTL is how long Sign reuses the key version it looked up:
// kube-apiserver signs a token per request for one, and looking the
// version up means a call to the provider. A rotation through this daemon
// ends it at once; one elsewhere within this time.
const jwtVersionTTL = time.Second

// errNoJWT: the config has no jwt block (a reload may have removed it).
var errNoJWT = fmt.Errorf("%w: no jwt signer configured", shared.ErrFailedPrecondition)

// jwtService is the ExternalJWTSigner over the core, whichever API version
// kube-apiserver speaks.
type jwtService struct {
	c   *core
	now func() time.Time

	// refresh lets one Sign at a time look the version up; the others
	// wait for its answer rather than all asking the provider.
	refresh chan struct{}

	mu        sync.Mutex
	signing   *jwtVersion // the version Sign uses; nil: look it up
	published jwtKeySetID // the key set FetchKeys last returned
}

// jwtVersion is the key version Sign signs with and the header naming it.
type jwtVersion struct {
	ref     string // the key's canonical reference (a reload may repoint the name)
	version string
	seen    string // the host's current version then: a change is a rotation through this daemon
	alg     shared.Algorithm
	ecSize  int // ECDSA: bytes of each of r and s; 0 for RSA
	kid     string
	header  string // encoded
	expires time.Time
}

// jwtKeySetID is a published key set and when the daemon first saw it.
type jwtKeySetID struct {
	fingerprint string // the key's reference and its kids, in order
	since       time.Time
}

// jwtKey is one published public key.
type jwtKey struct {
	kid string
	der []byte // PKIX SubjectPublicKeyInfo
}

// jwtKeySet is what FetchKeys answers.
type jwtKeySet struct {
	keys        []jwtKey
	since       time.Time
	refreshHint time.Duration
}

func newJWTService(c *core) *jwtService {
	return &jwtService{c: c, now: time.Now, refresh: make(chan struct{}, 1)}
}

// registerJWT serves the ExternalJWTSigner, v1 and v1alpha1, on gs.
func registerJWT(gs *grpc.Server, c *core) {
	s := newJWTService(c)
	jwtv1.RegisterExternalJWTSignerServer(gs, jwtServerV1{s: s})
	jwtv1alpha1.RegisterExternalJWTSignerServer(gs, jwtServerV1alpha1{s: s})
}

// admit identifies the caller of a call, op ("" for one on no key), and
// counts it against the caller's limit; call release when done. A call
// refused here is counted in knhk.sidecar.requests here; one admitted
// counts its own end.
func (s *jwtService) admit(ctx context.Context, op Op) (Caller, func(), error) {
	caller, err := callerFromContext(ctx)
	if err != nil {
		return Caller{}, nil, err
	}
	release, err := s.c.enter(caller)
	if err != nil {
		if op != "" {
			s.c.count(ctx, caller, op, err)
		}
		return Caller{}, nil, err
	}
	return caller, release, nil
}

// sign returns the encoded header and signature of a token with claims
// (the encoded payload segment). Header and signature name the same key
// version, whatever rotates meanwhile.
func (s *jwtService) sign(ctx context.Context, claims string) (header, signature string, err error) {
	defer func() { err = apierr.ToStatus(err) }()
	caller, release, err := s.admit(ctx, OpSign)
	if err != nil {
		return "", "", err
	}
	defer release()
	ctx = host.WithPrincipal(ctx, caller.String())
	defer func() { s.c.count(ctx, caller, OpSign, err) }() // before the status conversion
	cfg := s.c.jwt()
	if cfg == nil {
		return "", "", errNoJWT
	}
	if err := jwtCheckClaims(claims); err != nil {
		return "", "", err
	}
	// The key handle is opened once, so the version looked up and the
	// signature are of the same key even if a reload repoints the name.
	k, err := s.c.open(ctx, caller, OpSign, cfg.Key)
	if err != nil {
		return "", "", err
	}
	v, err := s.version(ctx, cfg.Key, k)
	if err != nil {
		return "", "", err
	}
	sig, err := k.SignMessage(ctx, []byte(v.header+"."+claims), host.SignOptions{Algorithm: v.alg, Version: v.version})
	if err != nil {
		s.forget(v) // the version may be gone: look it up again next time
		return "", "", err
	}
	if v.version != "" && sig.Version != "" && sig.Version != v.version {
		s.forget(v)
		return "", "", fmt.Errorf("key %s signed with version %s when asked for %s", shared.Quote(cfg.Key), shared.Quote(sig.Version), shared.Quote(v.version))
	}
	raw := sig.Signature
	if v.ecSize > 0 {
		if raw, err = joseECDSA(raw, v.ecSize); err != nil {
			return "", "", err
		}
	}
	return v.header, jwtB64.EncodeToString(raw), nil
}

// version is the key version Sign uses: the cached one while it is fresh
// and no rotation through this daemon has been seen, else the current
// version, which must be enabled (published by FetchKeys).
func (s *jwtService) version(ctx context.Context, name string, k *host.Key) (*jwtVersion, error) {
	ref := k.Ref().String()
	// The host caches the current public key and drops it when it rotates
	// the key, so this is cheap and sees this daemon's rotations.
	cur, err := k.PublicKey(ctx, "")
	if err != nil {
		return nil, err
	}
	fresh := func() *jwtVersion {
		s.mu.Lock()
		defer s.mu.Unlock()
		if v := s.signing; v != nil && v.ref == ref && v.seen == cur.Version && s.now().Before(v.expires) {
			return v
		}
		return nil
	}
	if v := fresh(); v != nil {
		return v, nil
	}
	select {
	case s.refresh <- struct{}{}:
		defer func() { <-s.refresh }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if v := fresh(); v != nil {
		return v, nil // looked up while this call waited
	}
	versions, current, err := jwtKeyVersions(ctx, k)
	if err != nil {
		return nil, err
	}
	if !jwtPublishes(versions, current) {
		return nil, fmt.Errorf("%w: the current version %s of key %s is not enabled, so it is not published to kube-apiserver", shared.ErrFailedPrecondition, shared.Quote(current), shared.Quote(name))
	}
	pk := cur
	if pk.Version != current {
		if pk, err = k.PublicKey(ctx, current); err != nil {
			return nil, err
		}
	}
	v, err := newJWTVersion(ref, pk)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", shared.Quote(name), err)
	}
	v.version = current
	v.seen = cur.Version
	v.expires = s.now().Add(jwtVersionTTL)
	s.mu.Lock()
	s.signing = v
	s.mu.Unlock()
	return v, nil
}

// forget drops v as the version Sign uses.
func (s *jwtService) forget(v *jwtVersion) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.signing == v {
		s.signing = nil
	}
}

// newJWTVersion is the algorithm, kid and header of a public key version.
func newJWTVersion(ref string, pk host.PublicKey) (*jwtVersion, error) {
	alg, ecSize, err := jwtAlgorithm(pk.Key)
	if err != nil {
		return nil, err
	}
	kid, err := jwtKid(pk.Key, alg)
	if err != nil {
		return nil, err
	}
	header, err := jwtHeader(alg, kid)
	if err != nil {
		return nil, err
	}
	return &jwtVersion{ref: ref, version: pk.Version, alg: alg, ecSize: ecSize, kid: kid, header: header}, nil
}

// jwtVersions are the versions of md that FetchKeys considers: all of
// them, or for a provider without versions the key itself.
func jwtVersions(md shared.KeyMetadata) []shared.KeyVersion {
	if len(md.Versions) == 0 {
		return []shared.KeyVersion{{Version: md.CurrentVersion, Enabled: true}}
	}
	return md.Versions
}

// jwtKeyVersions are the versions of the key FetchKeys considers, Enabled
// when it publishes them, and the version Sign signs with. For a single
// key they come from Key.Versions: a version with a state is published
// while enabled and pending, active or retiring, and the current one is
// the active one; a key without states is as its metadata says. A key
// group (and a provider without versions) is as its metadata says.
func jwtKeyVersions(ctx context.Context, k *host.Key) (versions []shared.KeyVersion, current string, err error) {
	if k.Group() == "" {
		infos, err := k.Versions(ctx)
		if err != nil {
			return nil, "", err
		}
		for _, v := range infos {
			published := v.Enabled && (v.State == "" || v.State.Published())
			versions = append(versions, shared.KeyVersion{Version: v.Version, Created: v.Created, Enabled: published})
			if v.Current {
				current = v.Version
			}
		}
		if len(versions) > 0 {
			return versions, current, nil
		}
	}
	md, err := k.Metadata(ctx)
	if err != nil {
		return nil, "", err
	}
	return jwtVersions(md), md.CurrentVersion, nil
}

// jwtPublishes reports whether version is among versions and enabled, so
// FetchKeys publishes it.
func jwtPublishes(versions []shared.KeyVersion, version string) bool {
	for _, v := range versions {
		if v.Version == version {
			return v.Enabled
		}
	}
	return false
}

// fetchKeys returns the public key of every enabled version of the key:
// a rotated-away version stays published while it is enabled, so the
// tokens it signed keep verifying; a disabled or destroyed one drops out.
// With version states, a pending version is published in advance and a
// retired one drops out (jwtKeyVersions).
func (s *jwtService) fetchKeys(ctx context.Context) (set jwtKeySet, err error) {
	defer func() { err = apierr.ToStatus(err) }()
	caller, release, err := s.admit(ctx, OpPublicKey)
	if err != nil {
		return jwtKeySet{}, err
	}
	defer release()
	ctx = host.WithPrincipal(ctx, caller.String())
	defer func() { s.c.count(ctx, caller, OpPublicKey, err) }() // before the status conversion
	cfg := s.c.jwt()
	if cfg == nil {
		return jwtKeySet{}, errNoJWT
	}
	k, err := s.c.open(ctx, caller, OpPublicKey, cfg.Key)
	if err != nil {
		return jwtKeySet{}, err
	}
	versions, current, err := jwtKeyVersions(ctx, k)
	if err != nil {
		return jwtKeySet{}, err
	}
	ref := k.Ref().String()
	kids := []string{}
	var skipped error
	for _, ver := range versions {
		if !ver.Enabled {
			continue
		}
		pk, err := k.PublicKey(ctx, ver.Version)
		if err != nil {
			return jwtKeySet{}, err
		}
		v, err := newJWTVersion(ref, pk)
		if err != nil {
			// kube-apiserver could not verify it; Sign refuses it too.
			s.c.log().Debug("jwt: version not published", "key", shared.Quote(cfg.Key), "version", shared.Quote(ver.Version), "error", err)
			skipped = err
			continue
		}
		set.keys = append(set.keys, jwtKey{kid: v.kid, der: pk.DER})
		kids = append(kids, v.kid)
	}
	switch {
	case len(set.keys) == 0 && skipped != nil:
		return jwtKeySet{}, fmt.Errorf("key %s: %w", shared.Quote(cfg.Key), skipped)
	case len(set.keys) == 0:
		// kube-apiserver refuses an empty key set.
		return jwtKeySet{}, fmt.Errorf("%w: key %s has no enabled version to publish", shared.ErrFailedPrecondition, shared.Quote(cfg.Key))
	}
	fingerprint := ref + "\x00" + strings.Join(kids, "\x00")
	s.mu.Lock()
	if s.published.fingerprint != fingerprint {
		s.published = jwtKeySetID{fingerprint: fingerprint, since: s.now()}
	}
	set.since = s.published.since
	// A rotation or a retired version seen here ends the version Sign
	// uses, so Sign never names a kid this answer left out.
	if v := s.signing; v != nil && (v.ref != ref || v.version != current || !slices.Contains(kids, v.kid)) {
		s.signing = nil
	}
	s.mu.Unlock()
	set.refreshHint = cfg.RefreshHint
	return set, nil
}

// maxTokenLifetime is the longest token lifetime kube-apiserver may issue.
func (s *jwtService) maxTokenLifetime(ctx context.Context) (d time.Duration, err error) {
	defer func() { err = apierr.ToStatus(err) }()
	_, release, err := s.admit(ctx, "") // no key: not counted
	if err != nil {
		return 0, err
	}
	defer release()
	cfg := s.c.jwt()
	if cfg == nil {
		return 0, errNoJWT
	}
	return cfg.MaxTokenLifetime, nil
}

// jwtSeconds is d in whole seconds, at least 1 (kube-apiserver refuses a
// refresh hint of 0).
func jwtSeconds(d time.Duration) int64 {
	return max(int64(d/time.Second), 1)
}

// jwtServerV1 is the v1 API over jwtService.
type jwtServerV1 struct {
	jwtv1.UnimplementedExternalJWTSignerServer
	s *jwtService
}

// Sign signs a service-account token's claims.
func (a jwtServerV1) Sign(ctx context.Context, req *jwtv1.SignJWTRequest) (*jwtv1.SignJWTResponse, error) {
	header, sig, err := a.s.sign(ctx, req.GetClaims())
	if err != nil {
		return nil, err
	}
	return &jwtv1.SignJWTResponse{Header: header, Signature: sig}, nil
}

// FetchKeys returns the public keys that verify the tokens.
func (a jwtServerV1) FetchKeys(ctx context.Context, _ *jwtv1.FetchKeysRequest) (*jwtv1.FetchKeysResponse, error) {
	set, err := a.s.fetchKeys(ctx)
	if err != nil {
		return nil, err
	}
	resp := &jwtv1.FetchKeysResponse{DataTimestamp: timestamppb.New(set.since), RefreshHintSeconds: jwtSeconds(set.refreshHint)}
	for _, k := range set.keys {
		resp.Keys = append(resp.Keys, &jwtv1.Key{KeyId: k.kid, Key: k.der})
	}
	return resp, nil
}

// Metadata returns the longest token lifetime.
func (a jwtServerV1) Metadata(ctx context.Context, _ *jwtv1.MetadataRequest) (*jwtv1.MetadataResponse, error) {
	d, err := a.s.maxTokenLifetime(ctx)
	if err != nil {
		return nil, err
	}
	return &jwtv1.MetadataResponse{MaxTokenExpirationSeconds: jwtSeconds(d)}, nil
}

// jwtServerV1alpha1 is the v1alpha1 API (kube-apiserver 1.32) over
// jwtService.
type jwtServerV1alpha1 struct {
	jwtv1alpha1.UnimplementedExternalJWTSignerServer
	s *jwtService
}

// Sign signs a service-account token's claims.
func (a jwtServerV1alpha1) Sign(ctx context.Context, req *jwtv1alpha1.SignJWTRequest) (*jwtv1alpha1.SignJWTResponse, error) {
	header, sig, err := a.s.sign(ctx, req.GetClaims())
	if err != nil {
		return nil, err
	}
	return &jwtv1alpha1.SignJWTResponse{Header: header, Signature: sig}, nil
}

// FetchKeys returns the public keys that verify the tokens.
func (a jwtServerV1alpha1) FetchKeys(ctx context.Context, _ *jwtv1alpha1.FetchKeysRequest) (*jwtv1alpha1.FetchKeysResponse, error) {
	set, err := a.s.fetchKeys(ctx)
	if err != nil {
		return nil, err
	}
	resp := &jwtv1alpha1.FetchKeysResponse{DataTimestamp: timestamppb.New(set.since), RefreshHintSeconds: jwtSeconds(set.refreshHint)}
	for _, k := range set.keys {
		resp.Keys = append(resp.Keys, &jwtv1alpha1.Key{KeyId: k.kid, Key: k.der})
	}
	return resp, nil
}

// Metadata returns the longest token lifetime.
func (a jwtServerV1alpha1) Metadata(ctx context.Context, _ *jwtv1alpha1.MetadataRequest) (*jwtv1alpha1.MetadataResponse, error) {
	d, err := a.s.maxTokenLifetime(ctx)
	if err != nil {
		return nil, err
	}
	return &jwtv1alpha1.MetadataResponse{MaxTokenExpirationSeconds: jwtSeconds(d)}, nil
}
