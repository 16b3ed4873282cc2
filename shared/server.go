package shared

import (
	"context"
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
	}, nil
}

func (s *server) CreateKey(ctx context.Context, r *kmsv1.CreateKeyRequest) (*kmsv1.CreateKeyResponse, error) {
	resp, err := s.p.CreateKey(ctx, CreateKeyRequest{Key: keyRef(r.GetKey()), Type: KeyType(r.GetKeyType())})
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
// the provider is a BatchSigner). Each item gets its own deadline.
func (s *server) SignBatch(ctx context.Context, r *kmsv1.SignBatchRequest) (*kmsv1.SignBatchResponse, error) {
	items := r.GetItems()
	reqs := make([]SignRequest, len(items))
	now := time.Now()
	for i, it := range items {
		reqs[i] = signRequest(it.GetRequest())
		if d := it.GetTimeout(); d != nil && d.AsDuration() > 0 {
			reqs[i].Deadline = now.Add(d.AsDuration())
		}
	}
	return &kmsv1.SignBatchResponse{Results: batchResults(s.p.SignBatch(ctx, reqs))}, nil
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
	digest, message := input(r.GetInput())
	req := VerifyRequest{Key: keyRef(r.GetKey()), Algorithm: Algorithm(r.GetAlgorithm()), Version: r.GetVersion(), Digest: digest, Message: message, Signature: r.GetSignature()}
	resp, err := s.p.Verify(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return &kmsv1.VerifyResponse{Valid: resp.Valid, Version: resp.Version}, nil
}

func (s *server) RotateKey(ctx context.Context, r *kmsv1.RotateKeyRequest) (*kmsv1.RotateKeyResponse, error) {
	resp, err := s.p.RotateKey(ctx, RotateKeyRequest{Key: keyRef(r.GetKey())})
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
