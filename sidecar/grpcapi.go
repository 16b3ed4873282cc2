package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/internal/apierr"
	"github.com/knhk/knhk/internal/keyfmt"
	"github.com/knhk/knhk/shared"
	sidecarv1 "github.com/knhk/knhk/sidecar/proto/knhk/sidecar/v1"
)

// pbOps are the API's operations with the native API's messages in and
// out, for a caller already identified and admitted. The gRPC API serves
// them as they are; the HTTP/JSON API decodes its JSON into the same
// requests and encodes the same responses, so both transports convert
// alike.
type pbOps struct{ c *core }

// admitted runs one call of caller's, op, under the per-caller limit and
// the drain: every unary call of every transport goes through it. A call
// refused here is counted here; the core counts the others.
func admitted[T any](ctx context.Context, c *core, caller Caller, op Op, run func() (T, error)) (T, error) {
	release, err := c.enter(caller)
	if err != nil {
		c.count(ctx, caller, op, err)
		var zero T
		return zero, err
	}
	defer release()
	return run()
}

// parseAlgorithm checks an algorithm name; empty is the key type's
// default.
func parseAlgorithm(s string) (shared.Algorithm, error) {
	if s == "" {
		return "", nil
	}
	return shared.ParseAlgorithm(s)
}

// signInput turns a request's fields into the core's input. proto3 bytes
// cannot tell an absent field from an empty one, so an empty digest is
// absent and the message is signed then, even when it is empty too.
func signInput(digest, message []byte, alg, version string) (SignInput, error) {
	a, err := parseAlgorithm(alg)
	if err != nil {
		return SignInput{}, err
	}
	in := SignInput{Algorithm: a, Version: version}
	switch {
	case len(digest) > 0 && len(message) > 0:
		// Both: the core refuses it with the one message for this.
		in.Digest, in.Message = digest, message
	case len(digest) > 0:
		in.Digest = digest
	default:
		in.Message = message
		if in.Message == nil {
			in.Message = []byte{}
		}
	}
	return in, nil
}

func (o pbOps) sign(ctx context.Context, caller Caller, req *sidecarv1.SignRequest) (*sidecarv1.SignResponse, error) {
	in, err := signInput(req.GetDigest(), req.GetMessage(), req.GetAlgorithm(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	sig, err := o.c.Sign(ctx, caller, req.GetKey(), in)
	if err != nil {
		return nil, err
	}
	return &sidecarv1.SignResponse{Signature: sig.Signature, Algorithm: string(sig.Algorithm), Version: sig.Version}, nil
}

func (o pbOps) verify(ctx context.Context, caller Caller, req *sidecarv1.VerifyRequest) (*sidecarv1.VerifyResponse, error) {
	in, err := signInput(req.GetDigest(), req.GetMessage(), req.GetAlgorithm(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	err = o.c.Verify(ctx, caller, req.GetKey(), in, req.GetSignature())
	if errors.Is(err, shared.ErrBadSignature) {
		// A signature that does not verify is an answer, not a failure.
		return &sidecarv1.VerifyResponse{Valid: false}, nil
	}
	if err != nil {
		return nil, err
	}
	return &sidecarv1.VerifyResponse{Valid: true}, nil
}

func (o pbOps) publicKey(ctx context.Context, caller Caller, req *sidecarv1.PublicKeyRequest) (*sidecarv1.PublicKeyResponse, error) {
	pk, err := o.c.PublicKey(ctx, caller, req.GetKey(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	return publicKeyResponse(pk)
}

// publicKeyResponse is a public key in every form the API gives it: DER,
// PEM and a JWK whose "alg" is the key type's default algorithm.
func publicKeyResponse(pk host.PublicKey) (*sidecarv1.PublicKeyResponse, error) {
	pemBytes, err := keyfmt.PEM(pk.DER)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	jwk, err := keyfmt.NewJWK(pk.Key, pk.Type.DefaultAlgorithm())
	if err != nil {
		return nil, fmt.Errorf("public key as JWK: %w", err)
	}
	jwkJSON, err := json.Marshal(jwk)
	if err != nil {
		return nil, fmt.Errorf("public key as JWK: %w", err)
	}
	return &sidecarv1.PublicKeyResponse{
		Der: pk.DER, Pem: string(pemBytes), Jwk: string(jwkJSON),
		KeyType: string(pk.Type), Version: pk.Version,
	}, nil
}

func (o pbOps) metadata(ctx context.Context, caller Caller, req *sidecarv1.MetadataRequest) (*sidecarv1.MetadataResponse, error) {
	md, err := o.c.Metadata(ctx, caller, req.GetKey())
	if err != nil {
		return nil, err
	}
	resp := &sidecarv1.MetadataResponse{
		KeyId: md.KeyID, KeyType: string(md.Type), CurrentVersion: md.CurrentVersion,
		Attributes: md.Attributes,
	}
	for _, a := range md.Algorithms {
		resp.Algorithms = append(resp.Algorithms, string(a))
	}
	for _, v := range md.Versions {
		kv := &sidecarv1.KeyVersion{Version: v.Version, Enabled: v.Enabled}
		if !v.Created.IsZero() {
			kv.Created = timestamppb.New(v.Created)
		}
		resp.Versions = append(resp.Versions, kv)
	}
	return resp, nil
}

func (o pbOps) rotate(ctx context.Context, caller Caller, req *sidecarv1.RotateRequest) (*sidecarv1.RotateResponse, error) {
	v, err := o.c.Rotate(ctx, caller, req.GetKey(), req.GetPending())
	if err != nil {
		return nil, err
	}
	return &sidecarv1.RotateResponse{Version: v}, nil
}

func (o pbOps) create(ctx context.Context, caller Caller, req *sidecarv1.CreateKeyRequest) (*sidecarv1.CreateKeyResponse, error) {
	if req.GetKeyType() == "" {
		return nil, fmt.Errorf("%w: key_type is required (one of %v)", shared.ErrInvalidArgument, shared.KeyTypes)
	}
	kt, err := shared.ParseKeyType(req.GetKeyType())
	if err != nil {
		return nil, err
	}
	id, pk, err := o.c.Create(ctx, caller, req.GetKey(), kt)
	if err != nil {
		return nil, err
	}
	pub, err := publicKeyResponse(pk)
	if err != nil {
		return nil, err
	}
	return &sidecarv1.CreateKeyResponse{PublicKey: pub, KeyId: id}, nil
}

func (o pbOps) list(ctx context.Context, caller Caller, req *sidecarv1.ListKeysRequest) (*sidecarv1.ListKeysResponse, error) {
	keys, err := o.c.List(ctx, caller, req.GetProvider(), req.GetParams())
	if err != nil {
		return nil, err
	}
	resp := &sidecarv1.ListKeysResponse{}
	for _, k := range keys {
		resp.Keys = append(resp.Keys, &sidecarv1.KeySummary{
			KeyId: k.KeyID, KeyType: string(k.Type), CurrentVersion: k.CurrentVersion, Aliases: k.Aliases,
		})
	}
	return resp, nil
}

// grpcAPI serves service knhk.sidecar.v1.Signer over the core.
type grpcAPI struct {
	sidecarv1.UnimplementedSignerServer
	ops pbOps
}

// newGRPCAPI is the native gRPC API over c.
func newGRPCAPI(c *core) sidecarv1.SignerServer {
	return &grpcAPI{ops: pbOps{c: c}}
}

// grpcUnary runs one unary call, op: it identifies the caller, admits
// the call, runs it and turns its error into a status with the reason.
func grpcUnary[Req, Resp any](ctx context.Context, c *core, op Op, req Req, run func(context.Context, Caller, Req) (Resp, error)) (Resp, error) {
	caller, err := callerFromContext(ctx)
	if err != nil {
		var zero Resp
		return zero, apierr.ToStatus(err)
	}
	resp, err := admitted(ctx, c, caller, op, func() (Resp, error) { return run(ctx, caller, req) })
	return resp, toStatus(err)
}

// Sign implements sidecarv1.SignerServer.
func (g *grpcAPI) Sign(ctx context.Context, req *sidecarv1.SignRequest) (*sidecarv1.SignResponse, error) {
	return grpcUnary(ctx, g.ops.c, OpSign, req, g.ops.sign)
}

// Verify implements sidecarv1.SignerServer.
func (g *grpcAPI) Verify(ctx context.Context, req *sidecarv1.VerifyRequest) (*sidecarv1.VerifyResponse, error) {
	return grpcUnary(ctx, g.ops.c, OpVerify, req, g.ops.verify)
}

// PublicKey implements sidecarv1.SignerServer.
func (g *grpcAPI) PublicKey(ctx context.Context, req *sidecarv1.PublicKeyRequest) (*sidecarv1.PublicKeyResponse, error) {
	return grpcUnary(ctx, g.ops.c, OpPublicKey, req, g.ops.publicKey)
}

// Metadata implements sidecarv1.SignerServer.
func (g *grpcAPI) Metadata(ctx context.Context, req *sidecarv1.MetadataRequest) (*sidecarv1.MetadataResponse, error) {
	return grpcUnary(ctx, g.ops.c, OpMetadata, req, g.ops.metadata)
}

// Rotate implements sidecarv1.SignerServer.
func (g *grpcAPI) Rotate(ctx context.Context, req *sidecarv1.RotateRequest) (*sidecarv1.RotateResponse, error) {
	return grpcUnary(ctx, g.ops.c, OpRotate, req, g.ops.rotate)
}

// CreateKey implements sidecarv1.SignerServer.
func (g *grpcAPI) CreateKey(ctx context.Context, req *sidecarv1.CreateKeyRequest) (*sidecarv1.CreateKeyResponse, error) {
	return grpcUnary(ctx, g.ops.c, OpCreate, req, g.ops.create)
}

// ListKeys implements sidecarv1.SignerServer.
func (g *grpcAPI) ListKeys(ctx context.Context, req *sidecarv1.ListKeysRequest) (*sidecarv1.ListKeysResponse, error) {
	return grpcUnary(ctx, g.ops.c, OpList, req, g.ops.list)
}

// maxStreamResponseBytes bounds one SignStreamResponse, well under the 4
// MiB a gRPC client receives by default: more ready results go out in
// the messages that follow at once.
const maxStreamResponseBytes = 1 << 20

// SignStream implements sidecarv1.SignerServer. A receiving goroutine
// admits each item on its own (so the per-caller limit bounds the items in
// flight, and a refused item fails alone) and signs it on a worker of the
// daemon's pool (a goroutine whose stack a signature has grown already); this goroutine sends every result ready when it wakes in one
// message. The stream ends when the client has closed its side, or the
// daemon is draining, and no item is in flight.
func (g *grpcAPI) SignStream(stream sidecarv1.Signer_SignStreamServer) error {
	caller, err := callerFromContext(stream.Context())
	if err != nil {
		return apierr.ToStatus(err)
	}
	ctx, cancel := context.WithCancel(stream.Context())
	s := &streamSigner{
		ops: g.ops, caller: caller, ctx: ctx,
		inFlight: map[uint64]bool{}, wake: make(chan struct{}, 1),
	}
	defer func() {
		// No item starts after close; those running end with ctx.
		s.close()
		cancel()
		s.items.Wait()
	}()
	// Recv blocks until the client sends or the stream ends; the stream
	// ends (and Recv returns) when this handler returns, so the receiver
	// never outlives the stream.
	received := make(chan error, 1)
	go func() { received <- s.receive(stream) }()
	err = s.send(stream, received)
	return apierr.ToStatus(err)
}

// streamSigner is one SignStream call.
type streamSigner struct {
	ops    pbOps
	caller Caller
	ctx    context.Context // the stream's; canceled when the handler returns
	items  sync.WaitGroup  // item goroutines

	mu       sync.Mutex
	inFlight map[uint64]bool // ids of the items being signed
	ready    []*sidecarv1.SignResult
	closed   bool          // the handler is returning: start no item
	wake     chan struct{} // 1-buffered: a result is ready
}

// receive admits the items of every request message until the client
// closes its side (nil) or the stream fails.
func (s *streamSigner) receive(stream sidecarv1.Signer_SignStreamServer) error {
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if !s.admit(msg.GetItems()) {
			return nil
		}
	}
}

// admit starts every item or queues its error; false once the stream is
// closing.
func (s *streamSigner) admit(items []*sidecarv1.SignItem) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	for _, it := range items {
		if err := s.startLocked(it); err != nil {
			s.ready = append(s.ready, &sidecarv1.SignResult{Id: it.GetId(), Error: itemError(err)})
			s.notify()
		}
	}
	return true
}

// startLocked admits one item and signs it on a new goroutine.
func (s *streamSigner) startLocked(it *sidecarv1.SignItem) error {
	id := it.GetId()
	if it.GetRequest() == nil {
		return fmt.Errorf("%w: item %d has no request", shared.ErrInvalidArgument, id)
	}
	if s.inFlight[id] {
		return fmt.Errorf("%w: item id %d is already in flight on this stream", shared.ErrInvalidArgument, id)
	}
	release, err := s.ops.c.enter(s.caller)
	if err != nil {
		s.ops.c.count(s.ctx, s.caller, OpSign, err)
		return err
	}
	s.inFlight[id] = true
	s.items.Add(1)
	req := it.GetRequest()
	s.ops.c.workers.Go(func() { s.sign(id, req, release) })
	return nil
}

// sign signs one admitted item and queues its result.
func (s *streamSigner) sign(id uint64, req *sidecarv1.SignRequest, release func()) {
	defer s.items.Done()
	resp, err := s.ops.sign(s.ctx, s.caller, req)
	// Released before the client can see the result, so that it may send
	// another item at once without meeting its own limit.
	release()
	res := &sidecarv1.SignResult{Id: id, Response: resp}
	if err != nil {
		res = &sidecarv1.SignResult{Id: id, Error: itemError(err)}
	}
	s.mu.Lock()
	delete(s.inFlight, id)
	s.ready = append(s.ready, res)
	s.mu.Unlock()
	s.notify()
}

// itemError is a SignStream item's error: what its status would be.
func itemError(err error) *sidecarv1.Error {
	code, reason := apierr.Classify(err)
	return &sidecarv1.Error{Code: int32(code), Message: err.Error(), Reason: reason}
}

func (s *streamSigner) notify() {
	select {
	case s.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

func (s *streamSigner) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// next takes the results ready. When none is, none is in flight and
// done, it closes the stream to new items and reports finished.
func (s *streamSigner) next(done bool) (ready []*sidecarv1.SignResult, finished bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ready, s.ready = s.ready, nil
	if len(ready) == 0 && len(s.inFlight) == 0 && done {
		s.closed = true
		return nil, true
	}
	return ready, false
}

// send is the stream's one sender: it sends what is ready whenever
// something is, and returns when the stream is finished or fails.
func (s *streamSigner) send(stream sidecarv1.Signer_SignStreamServer, received <-chan error) error {
	drain := s.ops.c.draining()
	clientDone, draining := false, false
	for {
		ready, finished := s.next(clientDone || draining)
		if finished {
			return nil
		}
		if len(ready) > 0 {
			for len(ready) > 0 {
				var msg *sidecarv1.SignStreamResponse
				msg, ready = streamResponse(ready)
				if err := stream.Send(msg); err != nil {
					return err
				}
			}
			continue
		}
		select {
		case <-s.wake:
		case err := <-received:
			if err != nil {
				return err
			}
			received, clientDone = nil, true
		case <-drain:
			drain, draining = nil, true
		case <-s.ctx.Done():
			return s.ctx.Err()
		}
	}
}

// streamResponse puts the first results into one message of at most
// maxStreamResponseBytes (at least one result) and returns the rest.
func streamResponse(results []*sidecarv1.SignResult) (*sidecarv1.SignStreamResponse, []*sidecarv1.SignResult) {
	n, size := 0, 0
	for n < len(results) {
		// A repeated field's entry costs its size plus a tag and a length.
		size += proto.Size(results[n]) + 8
		if n > 0 && size > maxStreamResponseBytes {
			break
		}
		n++
	}
	return &sidecarv1.SignStreamResponse{Results: results[:n]}, results[n:]
}
