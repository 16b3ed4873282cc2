package shared

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/knhk/knhk/internal/workers"
)

// Limits of what Validate lets through.
const (
	MaxKeyIDLen   = 2048 // bytes of a key id
	MaxVersionLen = 256  // bytes of a version
	MaxReplicas   = 32   // regions in CreateKeyRequest.ReplicateTo
	MaxRegionLen  = 64   // bytes of one of them
)

// paramNameRE is what a parameter name looks like.
var paramNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Validate returns p wrapped so that every request is checked before p
// sees it, with the same errors for every provider. Serve applies it, and
// so do the conformance kit's in-process mode and host/hosttest; call it
// yourself when you call a provider in-process, e.g. from its own tests.
// Wrapping twice is harmless.
//
// What a provider may then rely on:
//   - key ids are non-empty (except in CreateKey, where empty lets the
//     service pick), at most MaxKeyIDLen bytes, and free of control
//     characters; parameter names are lower-case identifiers (the
//     provider's ParamSchema then checks which names it knows);
//   - versions are empty (current) or at most MaxVersionLen printable,
//     space-free characters;
//   - algorithms are known and claimed by the provider's Describe
//     (ErrUnsupportedAlgorithm otherwise); key types at CreateKey are
//     known (ErrInvalidArgument otherwise) and claimed
//     (ErrUnsupportedAlgorithm otherwise: the provider cannot make such a
//     key, whatever the request says);
//   - a sign or verify request carries exactly one input: a Digest of
//     exactly the algorithm's hash length, or a Message (non-nil, maybe
//     empty) only for EdDSA and for providers that claim CapSignMessage;
//     for other providers the SDK hashes a Message into a Digest first;
//   - a verify request carries a non-empty signature;
//   - CreateKey's ReplicateTo is empty unless the provider claims
//     CapReplicateKey (ErrUnimplemented otherwise), and holds at most
//     MaxReplicas distinct regions of at most MaxRegionLen printable,
//     space-free characters;
//   - RotateKey's Pending, GetVersionStates and SetVersionState reach
//     only a provider that claims CapVersionStates and is a
//     VersionStater (ErrUnimplemented otherwise); SetVersionState names
//     a version and a known state; the states a provider returns have
//     exactly one active version (VersionStates.Check).
//
// Whether the key's type suits the algorithm is for the provider to
// check (it knows the key): return CheckAlgorithm(keyType, alg).
//
// The wrapper is also a BatchSigner: it checks each item, then calls the
// provider's native SignBatch with the valid ones, or Sign for each in
// parallel when the provider has none. And Describe reports BuildVersion
// when the provider leaves Version empty.
func Validate(p Provider) Provider {
	if v, ok := p.(*validated); ok {
		return v
	}
	return &validated{p: p, workers: workers.New()}
}

type validated struct {
	p       Provider
	desc    atomic.Pointer[Description] // the first successful Describe
	workers *workers.Pool               // batch items of providers without a native batch
}

var (
	_ Provider      = (*validated)(nil)
	_ BatchSigner   = (*validated)(nil)
	_ VersionStater = (*validated)(nil)
)

func (v *validated) Describe(ctx context.Context) (Description, error) {
	if d := v.desc.Load(); d != nil {
		return *d, nil
	}
	d, err := v.p.Describe(ctx)
	if err != nil {
		return Description{}, err
	}
	if d.Version == "" {
		d.Version = BuildVersion()
	}
	if _, ok := v.p.(VersionStater); !ok && d.Has(CapVersionStates) {
		// A wrapper may copy another provider's claims without its
		// methods: claim only what is served.
		d.Capabilities = slices.DeleteFunc(slices.Clone(d.Capabilities), func(c Capability) bool { return c == CapVersionStates })
	}
	v.desc.Store(&d)
	return d, nil
}

func (v *validated) CreateKey(ctx context.Context, req CreateKeyRequest) (CreateKeyResponse, error) {
	if err := checkRef(req.Key, true); err != nil {
		return CreateKeyResponse{}, err
	}
	if _, err := ParseKeyType(string(req.Type)); err != nil {
		return CreateKeyResponse{}, err
	}
	d, err := v.Describe(ctx)
	if err != nil {
		return CreateKeyResponse{}, err
	}
	if !slices.Contains(d.KeyTypes, req.Type) {
		return CreateKeyResponse{}, fmt.Errorf("%w: the %s provider cannot create %s keys (it can create %v)", ErrUnsupportedAlgorithm, d.Name, req.Type, d.KeyTypes)
	}
	if err := checkReplicateTo(d, req.ReplicateTo); err != nil {
		return CreateKeyResponse{}, err
	}
	return v.p.CreateKey(ctx, req)
}

// checkReplicateTo checks CreateKey's replica regions against what the
// provider claims.
func checkReplicateTo(d Description, regions []string) error {
	if len(regions) == 0 {
		return nil
	}
	if !slices.Contains(d.Capabilities, CapReplicateKey) {
		return fmt.Errorf("%w: the %s provider cannot replicate a key to other regions (it does not claim %s): create the key in each region or vault and name them in a key group", ErrUnimplemented, d.Name, CapReplicateKey)
	}
	if len(regions) > MaxReplicas {
		return fmt.Errorf("%w: %d regions to replicate to; the limit is %d", ErrInvalidArgument, len(regions), MaxReplicas)
	}
	seen := make(map[string]bool, len(regions))
	for _, r := range regions {
		if r == "" || len(r) > MaxRegionLen || strings.IndexFunc(r, func(c rune) bool { return c <= ' ' || c == 0x7f }) >= 0 {
			return fmt.Errorf("%w: region %s to replicate to is empty, longer than %d bytes, or has spaces or control characters", ErrInvalidArgument, Quote(r), MaxRegionLen)
		}
		if seen[r] {
			return fmt.Errorf("%w: region %s to replicate to appears twice", ErrInvalidArgument, Quote(r))
		}
		seen[r] = true
	}
	return nil
}

func (v *validated) ListKeys(ctx context.Context, req ListKeysRequest) ([]KeySummary, error) {
	if err := checkParamNames(req.Params); err != nil {
		return nil, err
	}
	return v.p.ListKeys(ctx, req)
}

func (v *validated) PublicKey(ctx context.Context, req PublicKeyRequest) (PublicKeyResponse, error) {
	if err := checkRefVersion(req.Key, req.Version); err != nil {
		return PublicKeyResponse{}, err
	}
	return v.p.PublicKey(ctx, req)
}

func (v *validated) Sign(ctx context.Context, req SignRequest) (SignResponse, error) {
	req, err := v.checkSign(ctx, req)
	if err != nil {
		return SignResponse{}, err
	}
	return v.p.Sign(ctx, req)
}

func (v *validated) Verify(ctx context.Context, req VerifyRequest) (VerifyResponse, error) {
	if err := checkRefVersion(req.Key, req.Version); err != nil {
		return VerifyResponse{}, err
	}
	digest, message, err := v.checkInput(ctx, req.Algorithm, req.Digest, req.Message)
	if err != nil {
		return VerifyResponse{}, err
	}
	if len(req.Signature) == 0 {
		return VerifyResponse{}, fmt.Errorf("%w: the signature to verify is empty", ErrInvalidArgument)
	}
	req.Digest, req.Message = digest, message
	return v.p.Verify(ctx, req)
}

func (v *validated) RotateKey(ctx context.Context, req RotateKeyRequest) (RotateKeyResponse, error) {
	if err := checkRef(req.Key, false); err != nil {
		return RotateKeyResponse{}, err
	}
	if req.Pending {
		if _, err := v.versionStater(ctx); err != nil {
			return RotateKeyResponse{}, err
		}
	}
	return v.p.RotateKey(ctx, req)
}

// versionStater is the provider as a VersionStater, or ErrUnimplemented
// when it does not claim CapVersionStates or does not implement it.
func (v *validated) versionStater(ctx context.Context) (VersionStater, error) {
	d, err := v.Describe(ctx)
	if err != nil {
		return nil, err
	}
	vs, ok := v.p.(VersionStater)
	if !ok || !d.Has(CapVersionStates) {
		return nil, fmt.Errorf("%w: the %s provider keeps no version states (it does not claim %s): a new version is current at once", ErrUnimplemented, d.Name, CapVersionStates)
	}
	return vs, nil
}

// GetVersionStates checks the request and the provider's answer (see
// VersionStates.Check).
func (v *validated) GetVersionStates(ctx context.Context, req GetVersionStatesRequest) (VersionStates, error) {
	if err := checkRef(req.Key, false); err != nil {
		return VersionStates{}, err
	}
	vs, err := v.versionStater(ctx)
	if err != nil {
		return VersionStates{}, err
	}
	states, err := vs.GetVersionStates(ctx, req)
	if err != nil {
		return VersionStates{}, err
	}
	return states, states.Check()
}

// SetVersionState checks the request and the provider's answer.
func (v *validated) SetVersionState(ctx context.Context, req SetVersionStateRequest) (VersionStates, error) {
	if err := checkRefVersion(req.Key, req.Version); err != nil {
		return VersionStates{}, err
	}
	if req.Version == "" {
		return VersionStates{}, fmt.Errorf("%w: name the version whose state to set", ErrInvalidArgument)
	}
	if _, err := ParseVersionState(string(req.State)); err != nil {
		return VersionStates{}, err
	}
	vs, err := v.versionStater(ctx)
	if err != nil {
		return VersionStates{}, err
	}
	states, err := vs.SetVersionState(ctx, req)
	if err != nil {
		return VersionStates{}, err
	}
	return states, states.Check()
}

func (v *validated) KeyMetadata(ctx context.Context, req KeyMetadataRequest) (KeyMetadata, error) {
	if err := checkRef(req.Key, false); err != nil {
		return KeyMetadata{}, err
	}
	return v.p.KeyMetadata(ctx, req)
}

// SignBatch checks every item, then signs the valid ones natively or, for
// a provider without a native batch, with one Sign each in parallel, each
// within its own deadline. Every item gets exactly one result through
// emit, as soon as it is ready (an invalid one at once); SignBatch returns
// once all have.
func (v *validated) SignBatch(ctx context.Context, reqs []SignRequest, emit func(int, SignResult)) {
	valid := make([]int, 0, len(reqs))
	checked := make([]SignRequest, 0, len(reqs))
	var last *SignRequest // the last item that passed
	for i := range reqs {
		req, err := v.checkBatchItem(ctx, reqs[i], last)
		if err != nil {
			emit(i, SignResult{Err: err})
			continue
		}
		valid = append(valid, i)
		checked = append(checked, req)
		last = &reqs[i]
	}
	if len(checked) == 0 {
		return
	}
	bs, ok := v.p.(BatchSigner)
	if !ok {
		var wg sync.WaitGroup
		wg.Add(len(valid))
		for j, i := range valid {
			v.workers.Go(func() {
				defer wg.Done()
				emit(i, SignItem(ctx, v.p, checked[j]))
			})
		}
		wg.Wait()
		return
	}
	// Hold a native batch to its contract: one result per item, none
	// after it returns.
	emitted := make([]atomic.Bool, len(checked))
	bs.SignBatch(ctx, checked, func(j int, r SignResult) {
		if j >= 0 && j < len(emitted) && emitted[j].CompareAndSwap(false, true) {
			emit(valid[j], r)
		}
	})
	for j := range emitted {
		if emitted[j].CompareAndSwap(false, true) {
			emit(valid[j], SignResult{Err: fmt.Errorf("%w: the provider's SignBatch returned without a result for item %d", ErrUnavailable, valid[j])})
		}
	}
}

// checkBatchItem is checkSign for one batch item. The items of a batch
// mostly name one key, algorithm and version; when req names the same ones
// as last, the previous item that passed, with the same parameter map,
// only its input is left to check.
func (v *validated) checkBatchItem(ctx context.Context, req SignRequest, last *SignRequest) (SignRequest, error) {
	if last == nil || req.Key.ID != last.Key.ID || req.Algorithm != last.Algorithm || req.Version != last.Version ||
		!sameMap(req.Key.Params, last.Key.Params) {
		return v.checkSign(ctx, req)
	}
	d, err := v.Describe(ctx)
	if err != nil {
		return SignRequest{}, err
	}
	req.Digest, req.Message, err = inputOf(d, req.Algorithm, req.Digest, req.Message)
	return req, err
}

// sameMap reports whether a and b are one map (not merely equal ones).
func sameMap(a, b map[string]string) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// SignItem signs one batch item with p.Sign within the item's own
// Deadline; a panic in p fails the item, not the plugin. A native
// SignBatch that spreads items over goroutines calls it for each.
func SignItem(ctx context.Context, p Provider, req SignRequest) (res SignResult) {
	defer func() {
		if r := recover(); r != nil {
			res = SignResult{Err: fmt.Errorf("provider panicked in Sign (batch item): %v", r)}
		}
	}()
	if !req.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, req.Deadline)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return SignResult{Err: err}
	}
	resp, err := p.Sign(ctx, req)
	return SignResult{Response: resp, Err: err}
}

func (v *validated) checkSign(ctx context.Context, req SignRequest) (SignRequest, error) {
	if err := checkRefVersion(req.Key, req.Version); err != nil {
		return SignRequest{}, err
	}
	digest, message, err := v.checkInput(ctx, req.Algorithm, req.Digest, req.Message)
	if err != nil {
		return SignRequest{}, err
	}
	req.Digest, req.Message = digest, message
	return req, nil
}

// checkInput checks the algorithm and the one input, and hashes a message
// for a provider that signs only digests.
func (v *validated) checkInput(ctx context.Context, alg Algorithm, digest, message []byte) ([]byte, []byte, error) {
	if _, err := ParseAlgorithm(string(alg)); err != nil {
		return nil, nil, err
	}
	d, err := v.Describe(ctx)
	if err != nil {
		return nil, nil, err
	}
	if !slices.Contains(d.Algorithms, alg) {
		return nil, nil, fmt.Errorf("%w: the %s provider does not sign with %s (it does with %v)", ErrUnsupportedAlgorithm, d.Name, alg, d.Algorithms)
	}
	return inputOf(d, alg, digest, message)
}

// inputOf checks the one input of a request whose algorithm has passed
// and returns the digest or message to sign.
func inputOf(d Description, alg Algorithm, digest, message []byte) ([]byte, []byte, error) {
	switch {
	case digest != nil && message != nil:
		return nil, nil, fmt.Errorf("%w: send a digest or a message, not both", ErrInvalidArgument)
	case digest != nil:
		return digest, nil, CheckDigest(alg, digest)
	case message == nil:
		return nil, nil, fmt.Errorf("%w: the request carries neither a digest nor a message", ErrInvalidArgument)
	case alg == EdDSA || d.Has(CapSignMessage):
		return nil, message, nil
	}
	digest, err := Digest(alg, message)
	return digest, nil, err
}

func checkRefVersion(ref KeyRef, version string) error {
	if err := checkRef(ref, false); err != nil {
		return err
	}
	return checkVersion(version)
}

// checkRef checks a key id's size and characters and the parameter names.
func checkRef(ref KeyRef, emptyOK bool) error {
	switch {
	case ref.ID == "" && !emptyOK:
		return fmt.Errorf("%w: key id is empty", ErrInvalidArgument)
	case len(ref.ID) > MaxKeyIDLen:
		return fmt.Errorf("%w: key id %s is %d bytes; the limit is %d", ErrInvalidArgument, Quote(ref.ID), len(ref.ID), MaxKeyIDLen)
	case hasControl(ref.ID):
		return fmt.Errorf("%w: key id %s contains control characters", ErrInvalidArgument, Quote(ref.ID))
	}
	return checkParamNames(ref.Params)
}

func checkParamNames(params map[string]string) error {
	for name := range params {
		if !paramNameRE.MatchString(name) {
			return fmt.Errorf("%w: parameter name %s is not a lower-case name such as region or vault_url", ErrInvalidArgument, Quote(name))
		}
	}
	return nil
}

func checkVersion(version string) error {
	if version == "" {
		return nil
	}
	if len(version) > MaxVersionLen {
		return fmt.Errorf("%w: version %s is %d bytes; the limit is %d", ErrInvalidArgument, Quote(version), len(version), MaxVersionLen)
	}
	for _, r := range version {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("%w: version %s contains spaces or control characters", ErrInvalidArgument, Quote(version))
		}
	}
	return nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return true
		}
	}
	return false
}
