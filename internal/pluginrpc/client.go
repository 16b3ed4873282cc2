package pluginrpc

import (
	"context"
	"fmt"
	"io"
	"maps"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

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
		Quotas:          quotas(r.GetQuotas()),
	}, nil
}

// quotas converts Describe's quota classes.
func quotas(qs []*kmsv1.QuotaClass) []shared.QuotaClass {
	if len(qs) == 0 {
		return nil
	}
	out := make([]shared.QuotaClass, len(qs))
	for i, q := range qs {
		var weights map[shared.KeyType]int
		if len(q.GetWeights()) > 0 {
			weights = make(map[shared.KeyType]int, len(q.GetWeights()))
			for kt, w := range q.GetWeights() {
				weights[shared.KeyType(kt)] = int(w)
			}
		}
		out[i] = shared.QuotaClass{Name: q.GetName(), Rate: q.GetRate(), Burst: int(q.GetBurst()), Weights: weights, Source: q.GetSource()}
		// Empty lists stay nil, as the plugin most likely wrote them.
		if len(q.GetOperations()) > 0 {
			out[i].Operations = typed[shared.Operation](q.GetOperations())
		}
		if len(q.GetKeyTypes()) > 0 {
			out[i].KeyTypes = typed[shared.KeyType](q.GetKeyTypes())
		}
		if len(q.GetScope()) > 0 {
			out[i].Scope = q.GetScope()
		}
	}
	return out
}

// CreateKey asks the plugin for a new key.
func (c *Client) CreateKey(ctx context.Context, req shared.CreateKeyRequest) (shared.CreateKeyResponse, error) {
	r, err := c.rpc.CreateKey(ctx, &kmsv1.CreateKeyRequest{Key: wireRef(req.Key), KeyType: string(req.Type), ReplicateTo: req.ReplicateTo})
	if err != nil {
		return shared.CreateKeyResponse{}, fromStatus(err)
	}
	resp := shared.CreateKeyResponse{KeyID: r.GetKeyId(), Version: r.GetVersion()}
	for _, rep := range r.GetReplicas() {
		resp.Replicas = append(resp.Replicas, shared.KeyRef{ID: rep.GetKeyId(), Params: rep.GetParams()})
	}
	return resp, nil
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

// SignBatch sends many sign requests in one call and hands each item's
// result to emit as the plugin streams it back. Items whose Deadline has
// already passed fail with context.DeadlineExceeded without being sent; a
// failure of the call itself fails every item still without a result.
// emit is called from this goroutine only.
func (c *Client) SignBatch(ctx context.Context, reqs []shared.SignRequest, emit func(int, shared.SignResult)) {
	done := make([]bool, len(reqs))
	err := c.SignStream(ctx, reqs, func(i int, r shared.SignResult) {
		done[i] = true
		emit(i, r)
	})
	if err != nil {
		for i := range done {
			if !done[i] {
				emit(i, shared.SignResult{Err: err})
			}
		}
	}
}

// SignStream is SignBatch for callers that must tell a failed call (a dead
// plugin, a broken connection, a malformed stream) from failed items: it
// returns the error of the call itself and emits nothing for the items
// still without a result, which the caller may send again.
func (c *Client) SignStream(ctx context.Context, reqs []shared.SignRequest, emit func(int, shared.SignResult)) error {
	wire, sent := batchRequest(reqs, emit)
	if len(sent) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx) // ends the stream when this returns early
	defer cancel()
	stream, err := c.rpc.SignBatch(ctx, wire)
	if err != nil {
		return fromStatus(err)
	}
	seen := make([]bool, len(sent))
	left := len(sent)
	for left > 0 {
		msg, err := stream.Recv()
		if err == io.EOF {
			return fmt.Errorf("%w: plugin ended SignBatch with %d of %d results missing", shared.ErrUnavailable, left, len(sent))
		}
		if err != nil {
			return fromStatus(err)
		}
		for _, r := range msg.GetResults() {
			j := int(r.GetIndex())
			if j >= len(sent) || seen[j] {
				return fmt.Errorf("%w: plugin sent a result for SignBatch item %d of %d, or sent it twice", shared.ErrUnavailable, j, len(sent))
			}
			seen[j] = true
			left--
			res := shared.SignResult{Response: shared.SignResponse{Signature: r.GetSignature(), Version: r.GetVersion()}}
			if e := r.GetError(); e != nil {
				res = shared.SignResult{Err: itemError(codes.Code(e.GetCode()), e.GetMessage(), e.GetReason())}
			}
			emit(sent[j], res)
		}
	}
	return nil
}

// keySearch is how many of a batch's distinct keys a new item is compared
// with before it gets an entry of its own: items for one key mostly come
// together, and a long search would cost more than a repeated key.
const keySearch = 8

// batchRequest makes the wire request for the items that have not expired
// (emitting an error for those that have) and returns it with the indexes
// of the items sent. Items naming the same key, algorithm and version
// share one entry of the request's keys.
func batchRequest(reqs []shared.SignRequest, emit func(int, shared.SignResult)) (*kmsv1.SignBatchRequest, []int) {
	wire := &kmsv1.SignBatchRequest{Items: make([]*kmsv1.SignBatchItem, 0, len(reqs))}
	items := make([]kmsv1.SignBatchItem, len(reqs)) // one allocation for all
	sent := make([]int, 0, len(reqs))
	var keys []*shared.SignRequest // the request each entry of wire.Keys was made from
	now := time.Now()
	for i := range reqs {
		req := &reqs[i]
		it := &items[len(sent)]
		if !req.Deadline.IsZero() {
			left := req.Deadline.Sub(now)
			if left <= 0 {
				emit(i, shared.SignResult{Err: fmt.Errorf("batch item expired before it was sent: %w", context.DeadlineExceeded)})
				continue
			}
			it.TimeoutUs = max(1, uint64(left/time.Microsecond))
		}
		k := len(keys) - 1
		for ; k >= 0 && k >= len(keys)-keySearch; k-- {
			if o := keys[k]; o.Key.ID == req.Key.ID && o.Algorithm == req.Algorithm && o.Version == req.Version && maps.Equal(o.Key.Params, req.Key.Params) {
				break
			}
		}
		if k < 0 || k < len(keys)-keySearch {
			k = len(keys)
			keys = append(keys, req)
			wire.Keys = append(wire.Keys, &kmsv1.SignBatchKey{Key: wireRef(req.Key), Algorithm: string(req.Algorithm), Version: req.Version})
		}
		it.Key = uint32(k)
		if req.Message != nil {
			it.Input, it.Message = req.Message, true
		} else {
			it.Input = req.Digest
		}
		wire.Items = append(wire.Items, it)
		sent = append(sent, i)
	}
	return wire, sent
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
	r, err := c.rpc.RotateKey(ctx, &kmsv1.RotateKeyRequest{Key: wireRef(req.Key), Pending: req.Pending})
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

// GetVersionStates asks the plugin for a key's version states.
func (c *Client) GetVersionStates(ctx context.Context, req shared.GetVersionStatesRequest) (shared.VersionStates, error) {
	r, err := c.rpc.GetVersionStates(ctx, &kmsv1.GetVersionStatesRequest{Key: wireRef(req.Key)})
	if err != nil {
		return shared.VersionStates{}, fromStatus(err)
	}
	return versionStates(r), nil
}

// SetVersionState asks the plugin to move a key version to a state.
func (c *Client) SetVersionState(ctx context.Context, req shared.SetVersionStateRequest) (shared.VersionStates, error) {
	r, err := c.rpc.SetVersionState(ctx, &kmsv1.SetVersionStateRequest{Key: wireRef(req.Key), Version: req.Version, State: string(req.State)})
	if err != nil {
		return shared.VersionStates{}, fromStatus(err)
	}
	return versionStates(r), nil
}

func versionStates(r *kmsv1.VersionStatesResponse) shared.VersionStates {
	var out shared.VersionStates
	for _, e := range r.GetVersions() {
		v := shared.VersionStateEntry{Version: e.GetVersion(), State: shared.VersionState(e.GetState())}
		if e.GetSince() != nil {
			v.Since = e.GetSince().AsTime()
		}
		out.Versions = append(out.Versions, v)
	}
	return out
}
