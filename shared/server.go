package shared

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	kmsv1 "github.com/knhk/knhk/shared/proto/knhk/kms/v1"
)

// server adapts a Provider to the generated gRPC service. It checks what can
// be checked without the key (algorithm names, digest lengths, one input) so
// every provider gets the same clear errors.
type server struct {
	kmsv1.UnimplementedKeyProviderServer
	p       Provider
	workers workers // run the items of a batch without a native batch
}

// workers runs functions on goroutines that outlive one batch: a
// goroutine's stack, grown by its first signature, is reused instead of
// grown (copied) again for every item. Any number run at once (providers
// that wait on the network need as many as there are items); one left
// idle for workerIdle exits.
type workers struct {
	idle chan func() // unbuffered: a send succeeds only if one is waiting
}

const workerIdle = 10 * time.Second

func (w *workers) do(f func()) {
	select {
	case w.idle <- f:
	default:
		go w.loop(f)
	}
}

func (w *workers) loop(f func()) {
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		f()
		t.Reset(workerIdle)
		select {
		case f = <-w.idle:
		case <-t.C:
			return
		}
	}
}

func newServer(p Provider) *server { return &server{p: p, workers: workers{idle: make(chan func())}} }

func keyRef(k *kmsv1.KeyRef) (KeyRef, error) {
	if k.GetKeyId() == "" {
		return KeyRef{}, fmt.Errorf("%w: key id is empty", ErrInvalidArgument)
	}
	return KeyRef{ID: k.GetKeyId(), Params: k.GetParams()}, nil
}

func (s *server) Describe(ctx context.Context, _ *kmsv1.DescribeRequest) (*kmsv1.DescribeResponse, error) {
	d, err := s.p.Describe(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &kmsv1.DescribeResponse{
		PluginName:      d.Name,
		PluginVersion:   d.Version,
		ProtocolVersion: ProtocolVersion,
		Capabilities:    strs(d.Capabilities),
		KeyTypes:        strs(d.KeyTypes),
		Algorithms:      strs(d.Algorithms),
	}, nil
}

func (s *server) CreateKey(ctx context.Context, r *kmsv1.CreateKeyRequest) (*kmsv1.CreateKeyResponse, error) {
	kt, err := ParseKeyType(r.GetKeyType())
	if err != nil {
		return nil, toStatus(err)
	}
	resp, err := s.p.CreateKey(ctx, CreateKeyRequest{Key: KeyRef{ID: r.GetKey().GetKeyId(), Params: r.GetKey().GetParams()}, Type: kt})
	if err != nil {
		return nil, toStatus(err)
	}
	return &kmsv1.CreateKeyResponse{KeyId: resp.KeyID, Version: resp.Version}, nil
}

func (s *server) ListKeys(ctx context.Context, r *kmsv1.ListKeysRequest) (*kmsv1.ListKeysResponse, error) {
	keys, err := s.p.ListKeys(ctx, ListKeysRequest{Params: r.GetParams()})
	if err != nil {
		return nil, toStatus(err)
	}
	out := &kmsv1.ListKeysResponse{Keys: make([]*kmsv1.KeySummary, len(keys))}
	for i, k := range keys {
		out.Keys[i] = &kmsv1.KeySummary{KeyId: k.KeyID, KeyType: string(k.Type), CurrentVersion: k.CurrentVersion, Aliases: k.Aliases}
	}
	return out, nil
}

func (s *server) GetPublicKey(ctx context.Context, r *kmsv1.GetPublicKeyRequest) (*kmsv1.GetPublicKeyResponse, error) {
	ref, err := keyRef(r.GetKey())
	if err != nil {
		return nil, toStatus(err)
	}
	resp, err := s.p.PublicKey(ctx, PublicKeyRequest{Key: ref, Version: r.GetVersion()})
	if err != nil {
		return nil, toStatus(err)
	}
	return &kmsv1.GetPublicKeyResponse{PublicKeyDer: resp.DER, Version: resp.Version, KeyType: string(resp.Type)}, nil
}

// input checks a request's algorithm and its one input (a digest of the
// algorithm's hash length, or a message).
func input(algName string, in any) (alg Algorithm, digest, message []byte, err error) {
	alg, err = ParseAlgorithm(algName)
	if err != nil {
		return "", nil, nil, err
	}
	switch in := in.(type) {
	case *kmsv1.SignRequest_Digest:
		digest = in.Digest
	case *kmsv1.VerifyRequest_Digest:
		digest = in.Digest
	case *kmsv1.SignRequest_Message:
		return alg, nil, nonNil(in.Message), nil
	case *kmsv1.VerifyRequest_Message:
		return alg, nil, nonNil(in.Message), nil
	default:
		return "", nil, nil, fmt.Errorf("%w: request carries neither a digest nor a message", ErrInvalidArgument)
	}
	if err := CheckDigest(alg, digest); err != nil {
		return "", nil, nil, err
	}
	return alg, digest, nil, nil
}

// signRequest converts and checks a wire sign request.
func signRequest(r *kmsv1.SignRequest) (SignRequest, error) {
	ref, err := keyRef(r.GetKey())
	if err != nil {
		return SignRequest{}, err
	}
	alg, digest, message, err := input(r.GetAlgorithm(), r.GetInput())
	if err != nil {
		return SignRequest{}, err
	}
	return SignRequest{Key: ref, Algorithm: alg, Version: r.GetVersion(), Digest: digest, Message: message}, nil
}

func (s *server) Sign(ctx context.Context, r *kmsv1.SignRequest) (*kmsv1.SignResponse, error) {
	req, err := signRequest(r)
	if err != nil {
		return nil, toStatus(err)
	}
	resp, err := s.p.Sign(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return &kmsv1.SignResponse{Signature: resp.Signature, Version: resp.Version}, nil
}

// SignBatch serves a batch: natively when the provider is a BatchSigner,
// otherwise by calling Sign for every item in parallel. Each item gets its
// own deadline.
func (s *server) SignBatch(ctx context.Context, r *kmsv1.SignBatchRequest) (*kmsv1.SignBatchResponse, error) {
	items := r.GetItems()
	results := make([]SignResult, len(items))
	reqs := make([]SignRequest, len(items))
	valid := make([]int, 0, len(items)) // indexes of items that passed checks
	now := time.Now()
	for i, it := range items {
		req, err := signRequest(it.GetRequest())
		if err != nil {
			results[i].Err = err
			continue
		}
		if d := it.GetTimeout(); d != nil && d.AsDuration() > 0 {
			req.Deadline = now.Add(d.AsDuration())
		}
		reqs[i] = req
		valid = append(valid, i)
	}
	if bs, ok := s.p.(BatchSigner); ok {
		sub := make([]SignRequest, len(valid))
		for j, i := range valid {
			sub[j] = reqs[i]
		}
		out := bs.SignBatch(ctx, sub)
		for j, i := range valid {
			if j < len(out) {
				results[i] = out[j]
			} else {
				results[i].Err = fmt.Errorf("%w: provider returned %d batch results for %d items", ErrUnavailable, len(out), len(sub))
			}
		}
	} else {
		var wg sync.WaitGroup
		wg.Add(len(valid))
		for _, i := range valid {
			s.workers.do(func() {
				defer wg.Done()
				results[i] = signOne(ctx, s.p, reqs[i])
			})
		}
		wg.Wait()
	}
	return &kmsv1.SignBatchResponse{Results: batchResults(results)}, nil
}

// signOne signs one batch item within its own deadline. A provider that
// panics fails the item, not the plugin (the unary interceptor that
// recovers other calls' panics does not see this goroutine).
func signOne(ctx context.Context, p Provider, req SignRequest) (res SignResult) {
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

func batchResults(results []SignResult) []*kmsv1.SignBatchResult {
	out := make([]*kmsv1.SignBatchResult, len(results))
	for i, r := range results {
		if r.Err != nil {
			code, reason := codeOf(r.Err)
			out[i] = &kmsv1.SignBatchResult{Result: &kmsv1.SignBatchResult_Error{Error: &kmsv1.ItemError{
				Code: int32(code), Message: r.Err.Error(), Reason: reason}}}
			continue
		}
		out[i] = &kmsv1.SignBatchResult{Result: &kmsv1.SignBatchResult_Response{Response: &kmsv1.SignResponse{
			Signature: r.Response.Signature, Version: r.Response.Version}}}
	}
	return out
}

func (s *server) Verify(ctx context.Context, r *kmsv1.VerifyRequest) (*kmsv1.VerifyResponse, error) {
	ref, err := keyRef(r.GetKey())
	if err != nil {
		return nil, toStatus(err)
	}
	alg, digest, message, err := input(r.GetAlgorithm(), r.GetInput())
	if err != nil {
		return nil, toStatus(err)
	}
	req := VerifyRequest{Key: ref, Algorithm: alg, Version: r.GetVersion(), Digest: digest, Message: message, Signature: r.GetSignature()}
	resp, err := s.p.Verify(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return &kmsv1.VerifyResponse{Valid: resp.Valid, Version: resp.Version}, nil
}

func (s *server) RotateKey(ctx context.Context, r *kmsv1.RotateKeyRequest) (*kmsv1.RotateKeyResponse, error) {
	ref, err := keyRef(r.GetKey())
	if err != nil {
		return nil, toStatus(err)
	}
	resp, err := s.p.RotateKey(ctx, RotateKeyRequest{Key: ref})
	if err != nil {
		return nil, toStatus(err)
	}
	return &kmsv1.RotateKeyResponse{Version: resp.Version}, nil
}

func (s *server) GetKeyMetadata(ctx context.Context, r *kmsv1.GetKeyMetadataRequest) (*kmsv1.GetKeyMetadataResponse, error) {
	ref, err := keyRef(r.GetKey())
	if err != nil {
		return nil, toStatus(err)
	}
	md, err := s.p.KeyMetadata(ctx, KeyMetadataRequest{Key: ref})
	if err != nil {
		return nil, toStatus(err)
	}
	out := &kmsv1.GetKeyMetadataResponse{
		KeyId: md.KeyID, KeyType: string(md.Type), Algorithms: strs(md.Algorithms),
		CurrentVersion: md.CurrentVersion, Attributes: md.Attributes,
	}
	for _, v := range md.Versions {
		kv := &kmsv1.KeyVersion{Version: v.Version, Enabled: v.Enabled}
		if !v.Created.IsZero() {
			kv.CreatedAt = timestamppb.New(v.Created)
		}
		out.Versions = append(out.Versions, kv)
	}
	return out, nil
}

func strs[T ~string](in []T) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = string(v)
	}
	return out
}

// nonNil keeps an empty message distinct from "no message".
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
