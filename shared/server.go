package shared

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	kmsv1 "github.com/knhk/knhk/shared/proto/knhk/kms/v1"
)

// server adapts a Provider, wrapped by Validate, to the generated gRPC
// service: it only converts between wire and Go types.
type server struct {
	kmsv1.UnimplementedKeyProviderServer
	p *validated
}

func newServer(p Provider) *server { return &server{p: Validate(p).(*validated)} }

func keyRef(k *kmsv1.KeyRef) KeyRef { return KeyRef{ID: k.GetKeyId(), Params: k.GetParams()} }

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
		Quotas:          wireQuotas(d.Quotas),
	}, nil
}

// wireQuotas converts quota classes for Describe's answer.
func wireQuotas(qs []QuotaClass) []*kmsv1.QuotaClass {
	out := make([]*kmsv1.QuotaClass, len(qs))
	for i, q := range qs {
		var weights map[string]int32
		if len(q.Weights) > 0 {
			weights = make(map[string]int32, len(q.Weights))
			for kt, w := range q.Weights {
				weights[string(kt)] = int32(w)
			}
		}
		out[i] = &kmsv1.QuotaClass{
			Name: q.Name, Operations: strs(q.Operations), KeyTypes: strs(q.KeyTypes), Scope: q.Scope,
			Rate: q.Rate, Burst: int32(q.Burst), Weights: weights, Source: q.Source,
		}
	}
	return out
}

func (s *server) CreateKey(ctx context.Context, r *kmsv1.CreateKeyRequest) (*kmsv1.CreateKeyResponse, error) {
	resp, err := s.p.CreateKey(ctx, CreateKeyRequest{Key: keyRef(r.GetKey()), Type: KeyType(r.GetKeyType()), ReplicateTo: r.GetReplicateTo()})
	if err != nil {
		return nil, toStatus(err)
	}
	out := &kmsv1.CreateKeyResponse{KeyId: resp.KeyID, Version: resp.Version}
	for _, rep := range resp.Replicas {
		out.Replicas = append(out.Replicas, &kmsv1.KeyRef{KeyId: rep.ID, Params: rep.Params})
	}
	return out, nil
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
	resp, err := s.p.PublicKey(ctx, PublicKeyRequest{Key: keyRef(r.GetKey()), Version: r.GetVersion()})
	if err != nil {
		return nil, toStatus(err)
	}
	return &kmsv1.GetPublicKeyResponse{PublicKeyDer: resp.DER, Version: resp.Version, KeyType: string(resp.Type)}, nil
}

// input returns a wire request's digest or message; an empty message
// stays distinct from no message.
func input(in any) (digest, message []byte) {
	switch in := in.(type) {
	case *kmsv1.SignRequest_Digest:
		return in.Digest, nil
	case *kmsv1.VerifyRequest_Digest:
		return in.Digest, nil
	case *kmsv1.SignRequest_Message:
		return nil, nonNil(in.Message)
	case *kmsv1.VerifyRequest_Message:
		return nil, nonNil(in.Message)
	}
	return nil, nil
}

func signRequest(r *kmsv1.SignRequest) SignRequest {
	digest, message := input(r.GetInput())
	return SignRequest{Key: keyRef(r.GetKey()), Algorithm: Algorithm(r.GetAlgorithm()), Version: r.GetVersion(), Digest: digest, Message: message}
}

func (s *server) Sign(ctx context.Context, r *kmsv1.SignRequest) (*kmsv1.SignResponse, error) {
	resp, err := s.p.Sign(ctx, signRequest(r))
	if err != nil {
		return nil, toStatus(err)
	}
	return &kmsv1.SignResponse{Signature: resp.Signature, Version: resp.Version}, nil
}

// SignBatch serves a batch through the validating wrapper (natively when
// the provider is a BatchSigner), each item within its own deadline, and
// streams every result back as soon as it is ready.
func (s *server) SignBatch(r *kmsv1.SignBatchRequest, stream kmsv1.KeyProvider_SignBatchServer) error {
	reqs, err := batchRequests(r)
	if err != nil {
		return toStatus(err)
	}
	out := &resultStream{stream: stream, pool: make([]kmsv1.SignBatchResult, len(reqs))}
	out.idle.L = &out.mu
	defer out.close() // also when the provider panics: no send may outlive the handler
	s.p.SignBatch(stream.Context(), reqs, out.emit)
	return out.close()
}

// maxTimeout bounds an item's timeout on the wire, so that adding it to
// the clock cannot overflow.
const maxTimeout = 100 * 365 * 24 * time.Hour

// batchRequests turns a wire batch into sign requests. The items naming
// one entry of r.Keys share its KeyRef, parameter map included.
func batchRequests(r *kmsv1.SignBatchRequest) ([]SignRequest, error) {
	keys := make([]SignRequest, len(r.GetKeys()))
	for i, k := range r.GetKeys() {
		keys[i] = SignRequest{Key: keyRef(k.GetKey()), Algorithm: Algorithm(k.GetAlgorithm()), Version: k.GetVersion()}
	}
	reqs := make([]SignRequest, len(r.GetItems()))
	now := time.Now()
	for i, it := range r.GetItems() {
		k := int(it.GetKey())
		if k >= len(keys) {
			return nil, fmt.Errorf("%w: batch item %d names key %d of %d", ErrInvalidArgument, i, k, len(keys))
		}
		reqs[i] = keys[k]
		if it.GetMessage() {
			reqs[i].Message = nonNil(it.GetInput())
		} else {
			reqs[i].Digest = it.GetInput()
		}
		if us := it.GetTimeoutUs(); us > 0 {
			reqs[i].Deadline = now.Add(time.Duration(min(us, uint64(maxTimeout/time.Microsecond))) * time.Microsecond)
		}
	}
	return reqs, nil
}

// resultStream sends a batch's results as they come. Whoever emits a
// result while no send is under way sends it, then what others emitted
// meanwhile, in one message: no goroutine is woken up to send, and
// results ready together travel together.
type resultStream struct {
	stream kmsv1.KeyProvider_SignBatchServer
	pool   []kmsv1.SignBatchResult // one per item, allocated at once

	mu      sync.Mutex // guards the fields below
	ready   []*kmsv1.SignBatchResult
	sending bool      // a goroutine is sending
	closed  bool      // the handler is returning: later results are dropped
	err     error     // the first failed send: later results are dropped
	idle    sync.Cond // signalled when a goroutine stops sending
}

// emit sends item i's result (emit is the BatchSigner's callback; the
// validating wrapper calls it at most once per item).
func (s *resultStream) emit(i int, r SignResult) {
	s.mu.Lock()
	if s.closed || s.err != nil || i < 0 || i >= len(s.pool) {
		s.mu.Unlock()
		return
	}
	res := &s.pool[i]
	res.Index = uint32(i)
	if r.Err != nil {
		code, reason := codeOf(r.Err)
		res.Error = &kmsv1.ItemError{Code: int32(code), Message: r.Err.Error(), Reason: reason}
	} else {
		res.Signature, res.Version = r.Response.Signature, r.Response.Version
	}
	s.ready = append(s.ready, res)
	if s.sending {
		s.mu.Unlock()
		return
	}
	s.sending = true
	for len(s.ready) > 0 && s.err == nil {
		msg := &kmsv1.SignBatchResponse{Results: s.ready}
		s.ready = nil
		s.mu.Unlock()
		err := s.stream.Send(msg)
		s.mu.Lock()
		s.err = err
	}
	s.sending = false
	s.idle.Broadcast()
	s.mu.Unlock()
}

// close stops taking results and waits for a send under way; it returns
// the error of the first failed send.
func (s *resultStream) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for s.sending {
		s.idle.Wait()
	}
	return s.err
}

func (s *server) Verify(ctx context.Context, r *kmsv1.VerifyRequest) (*kmsv1.VerifyResponse, error) {
	digest, message := input(r.GetInput())
	req := VerifyRequest{Key: keyRef(r.GetKey()), Algorithm: Algorithm(r.GetAlgorithm()), Version: r.GetVersion(), Digest: digest, Message: message, Signature: r.GetSignature()}
	resp, err := s.p.Verify(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return &kmsv1.VerifyResponse{Valid: resp.Valid, Version: resp.Version}, nil
}

func (s *server) RotateKey(ctx context.Context, r *kmsv1.RotateKeyRequest) (*kmsv1.RotateKeyResponse, error) {
	resp, err := s.p.RotateKey(ctx, RotateKeyRequest{Key: keyRef(r.GetKey()), Pending: r.GetPending()})
	if err != nil {
		return nil, toStatus(err)
	}
	return &kmsv1.RotateKeyResponse{Version: resp.Version}, nil
}

func (s *server) GetKeyMetadata(ctx context.Context, r *kmsv1.GetKeyMetadataRequest) (*kmsv1.GetKeyMetadataResponse, error) {
	md, err := s.p.KeyMetadata(ctx, KeyMetadataRequest{Key: keyRef(r.GetKey())})
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

func (s *server) GetVersionStates(ctx context.Context, r *kmsv1.GetVersionStatesRequest) (*kmsv1.VersionStatesResponse, error) {
	states, err := s.p.GetVersionStates(ctx, GetVersionStatesRequest{Key: keyRef(r.GetKey())})
	if err != nil {
		return nil, toStatus(err)
	}
	return wireStates(states), nil
}

func (s *server) SetVersionState(ctx context.Context, r *kmsv1.SetVersionStateRequest) (*kmsv1.VersionStatesResponse, error) {
	states, err := s.p.SetVersionState(ctx, SetVersionStateRequest{Key: keyRef(r.GetKey()), Version: r.GetVersion(), State: VersionState(r.GetState())})
	if err != nil {
		return nil, toStatus(err)
	}
	return wireStates(states), nil
}

func wireStates(states VersionStates) *kmsv1.VersionStatesResponse {
	out := &kmsv1.VersionStatesResponse{}
	for _, e := range states.Versions {
		w := &kmsv1.VersionStateEntry{Version: e.Version, State: string(e.State)}
		if !e.Since.IsZero() {
			w.Since = timestamppb.New(e.Since)
		}
		out.Versions = append(out.Versions, w)
	}
	return out
}
