package pluginrpc

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/knhk/knhk/shared"
	kmsv1 "github.com/knhk/knhk/shared/proto/knhk/kms/v1"
)

// Client is the host side of a plugin: a shared.Provider (and
// shared.BatchSigner) that forwards every call over gRPC and turns status
// codes back into the SDK's sentinel errors.
type Client struct {
	rpc kmsv1.KeyProviderClient
}

var (
	_ shared.Provider    = (*Client)(nil)
	_ shared.BatchSigner = (*Client)(nil)
)

// NewClient wraps a gRPC connection to a plugin.
func NewClient(conn grpc.ClientConnInterface) *Client {
	return &Client{rpc: kmsv1.NewKeyProviderClient(conn)}
}

func wireRef(k shared.KeyRef) *kmsv1.KeyRef { return &kmsv1.KeyRef{KeyId: k.ID, Params: k.Params} }

// Describe asks the plugin what it is.
func (c *Client) Describe(ctx context.Context) (shared.Description, error) {
	r, err := c.rpc.Describe(ctx, &kmsv1.DescribeRequest{})
	if err != nil {
		return shared.Description{}, fromStatus(err)
	}
	return shared.Description{
		Name:            r.GetPluginName(),
		Version:         r.GetPluginVersion(),
		ProtocolVersion: r.GetProtocolVersion(),
		Capabilities:    typed[shared.Capability](r.GetCapabilities()),
		KeyTypes:        typed[shared.KeyType](r.GetKeyTypes()),
		Algorithms:      typed[shared.Algorithm](r.GetAlgorithms()),
	}, nil
}

// CreateKey asks the plugin for a new key.
func (c *Client) CreateKey(ctx context.Context, req shared.CreateKeyRequest) (shared.CreateKeyResponse, error) {
	r, err := c.rpc.CreateKey(ctx, &kmsv1.CreateKeyRequest{Key: wireRef(req.Key), KeyType: string(req.Type)})
	if err != nil {
		return shared.CreateKeyResponse{}, fromStatus(err)
	}
	return shared.CreateKeyResponse{KeyID: r.GetKeyId(), Version: r.GetVersion()}, nil
}

// ListKeys lists the plugin's keys.
func (c *Client) ListKeys(ctx context.Context, req shared.ListKeysRequest) ([]shared.KeySummary, error) {
	r, err := c.rpc.ListKeys(ctx, &kmsv1.ListKeysRequest{Params: req.Params})
	if err != nil {
		return nil, fromStatus(err)
	}
	out := make([]shared.KeySummary, len(r.GetKeys()))
	for i, k := range r.GetKeys() {
		out[i] = shared.KeySummary{KeyID: k.GetKeyId(), Type: shared.KeyType(k.GetKeyType()), CurrentVersion: k.GetCurrentVersion(), Aliases: k.GetAliases()}
	}
	return out, nil
}

// PublicKey fetches a public key.
func (c *Client) PublicKey(ctx context.Context, req shared.PublicKeyRequest) (shared.PublicKeyResponse, error) {
	r, err := c.rpc.GetPublicKey(ctx, &kmsv1.GetPublicKeyRequest{Key: wireRef(req.Key), Version: req.Version})
	if err != nil {
		return shared.PublicKeyResponse{}, fromStatus(err)
	}
	return shared.PublicKeyResponse{DER: r.GetPublicKeyDer(), Version: r.GetVersion(), Type: shared.KeyType(r.GetKeyType())}, nil
}

func wireSign(req shared.SignRequest) *kmsv1.SignRequest {
	w := &kmsv1.SignRequest{Key: wireRef(req.Key), Algorithm: string(req.Algorithm), Version: req.Version}
	if req.Message != nil {
		w.Input = &kmsv1.SignRequest_Message{Message: req.Message}
	} else {
		w.Input = &kmsv1.SignRequest_Digest{Digest: req.Digest}
	}
	return w
}

// Sign asks the plugin for one signature.
func (c *Client) Sign(ctx context.Context, req shared.SignRequest) (shared.SignResponse, error) {
	r, err := c.rpc.Sign(ctx, wireSign(req))
	if err != nil {
		return shared.SignResponse{}, fromStatus(err)
	}
	return shared.SignResponse{Signature: r.GetSignature(), Version: r.GetVersion()}, nil
}

// SignBatch sends many sign requests in one call. Items whose Deadline has
// already passed fail with context.DeadlineExceeded without being sent; a
// failure of the call itself fails every item.
func (c *Client) SignBatch(ctx context.Context, reqs []shared.SignRequest) []shared.SignResult {
	results, sent, err := c.signBatch(ctx, reqs)
	if err != nil {
		for _, i := range sent {
			results[i].Err = err
		}
	}
	return results
}

// SignItems is SignBatch for callers that must tell a failed call (a dead
// plugin, a broken connection) from failed items: a failure of the call
// itself is returned as the error, with nil results, instead of being
// copied into every item.
func (c *Client) SignItems(ctx context.Context, reqs []shared.SignRequest) ([]shared.SignResult, error) {
	results, _, err := c.signBatch(ctx, reqs)
	if err != nil {
		return nil, err
	}
	return results, nil
}

// signBatch sends the items that have not expired and returns every
// item's result, the indexes sent, and the error of the call itself.
func (c *Client) signBatch(ctx context.Context, reqs []shared.SignRequest) ([]shared.SignResult, []int, error) {
	results := make([]shared.SignResult, len(reqs))
	wire := &kmsv1.SignBatchRequest{Items: make([]*kmsv1.SignBatchItem, 0, len(reqs))}
	sent := make([]int, 0, len(reqs))
	now := time.Now()
	for i, req := range reqs {
		item := &kmsv1.SignBatchItem{Request: wireSign(req)}
		if !req.Deadline.IsZero() {
			left := req.Deadline.Sub(now)
			if left <= 0 {
				results[i].Err = fmt.Errorf("batch item expired before it was sent: %w", context.DeadlineExceeded)
				continue
			}
			item.Timeout = durationpb.New(left)
		}
		wire.Items = append(wire.Items, item)
		sent = append(sent, i)
	}
	if len(sent) == 0 {
		return results, sent, nil
	}
	r, err := c.rpc.SignBatch(ctx, wire)
	if err != nil {
		return results, sent, fromStatus(err)
	}
	if len(r.GetResults()) != len(sent) {
		return results, sent, fmt.Errorf("%w: plugin returned %d batch results for %d items", shared.ErrUnavailable, len(r.GetResults()), len(sent))
	}
	for j, i := range sent {
		res := r.GetResults()[j]
		if e := res.GetError(); e != nil {
			results[i].Err = itemError(codes.Code(e.GetCode()), e.GetMessage(), e.GetReason())
			continue
		}
		results[i].Response = shared.SignResponse{Signature: res.GetResponse().GetSignature(), Version: res.GetResponse().GetVersion()}
	}
	return results, sent, nil
}

// Verify asks the plugin to check a signature.
func (c *Client) Verify(ctx context.Context, req shared.VerifyRequest) (shared.VerifyResponse, error) {
	w := &kmsv1.VerifyRequest{Key: wireRef(req.Key), Algorithm: string(req.Algorithm), Version: req.Version, Signature: req.Signature}
	if req.Message != nil {
		w.Input = &kmsv1.VerifyRequest_Message{Message: req.Message}
	} else {
		w.Input = &kmsv1.VerifyRequest_Digest{Digest: req.Digest}
	}
	r, err := c.rpc.Verify(ctx, w)
	if err != nil {
		return shared.VerifyResponse{}, fromStatus(err)
	}
	return shared.VerifyResponse{Valid: r.GetValid(), Version: r.GetVersion()}, nil
}

// RotateKey asks the plugin to rotate a key.
func (c *Client) RotateKey(ctx context.Context, req shared.RotateKeyRequest) (shared.RotateKeyResponse, error) {
	r, err := c.rpc.RotateKey(ctx, &kmsv1.RotateKeyRequest{Key: wireRef(req.Key)})
	if err != nil {
		return shared.RotateKeyResponse{}, fromStatus(err)
	}
	return shared.RotateKeyResponse{Version: r.GetVersion()}, nil
}

// KeyMetadata fetches a key's metadata.
func (c *Client) KeyMetadata(ctx context.Context, req shared.KeyMetadataRequest) (shared.KeyMetadata, error) {
	r, err := c.rpc.GetKeyMetadata(ctx, &kmsv1.GetKeyMetadataRequest{Key: wireRef(req.Key)})
	if err != nil {
		return shared.KeyMetadata{}, fromStatus(err)
	}
	md := shared.KeyMetadata{
		KeyID: r.GetKeyId(), Type: shared.KeyType(r.GetKeyType()), Algorithms: typed[shared.Algorithm](r.GetAlgorithms()),
		CurrentVersion: r.GetCurrentVersion(), Attributes: r.GetAttributes(),
	}
	for _, v := range r.GetVersions() {
		kv := shared.KeyVersion{Version: v.GetVersion(), Enabled: v.GetEnabled()}
		if v.GetCreatedAt() != nil {
			kv.Created = v.GetCreatedAt().AsTime()
		}
		md.Versions = append(md.Versions, kv)
	}
	return md, nil
}

func typed[T ~string](in []string) []T {
	out := make([]T, len(in))
	for i, v := range in {
		out[i] = T(v)
	}
	return out
}
