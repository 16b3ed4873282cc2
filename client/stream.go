package client

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/internal/apierr"
	sidecarv1 "github.com/knhk/knhk/sidecar/proto/knhk/sidecar/v1"
)

// Bounds on the sign stream.
const (
	// maxBatchItems and maxBatchBytes bound one SignStreamRequest, well
	// under the daemon's default request limit (4 MiB): a message it
	// refused would end the stream for every caller on it.
	maxBatchItems = 256
	maxBatchBytes = 1 << 20
	// maxStreamItem: a larger digest or message goes in a unary Sign call
	// of its own, so it fails alone if the daemon finds it too large.
	maxStreamItem = 64 << 10
)

// mux carries a Client's signatures over one SignStream: each call gets
// an id and a result channel, a sender goroutine sends every item queued
// at the moment in one request (so nothing waits when idle and calls
// batch under load), and a receiver goroutine hands each result to its
// caller. A stream that fails fails its callers; the next call opens a
// new one.
type mux struct {
	api    sidecarv1.SignerClient
	wrap   func(error) error // the Client's error mapping
	nextID atomic.Uint64

	mu     sync.Mutex // guards cur and closed; held while a stream opens
	cur    *signStream
	closed bool
	wg     sync.WaitGroup // every stream's sender and receiver
}

// result is one signature's outcome.
type result struct {
	sig host.Signature
	err error
}

// signStream is one open SignStream and the calls waiting on it.
type signStream struct {
	m      *mux
	st     sidecarv1.Signer_SignStreamClient
	cancel context.CancelFunc // ends the stream
	wake   chan struct{}      // capacity 1: items were queued
	done   chan struct{}      // closed when the stream has failed

	mu      sync.Mutex
	waiters map[uint64]chan result // by item id; each channel has room for one result
	queue   []*sidecarv1.SignItem  // not sent yet
	err     error                  // why the stream failed; nothing more is queued
}

// errStreamEnded is the error of calls still waiting when the daemon ends
// the stream without an error: it does that when it shuts down.
var errStreamEnded = apierr.FromParts(codes.Unavailable, "the sidecar ended the sign stream before answering (it is shutting down)", "DRAINING")

// sign sends one request over the stream and waits for its result or
// for ctx to end; then its id is forgotten and a late result dropped.
func (m *mux) sign(ctx context.Context, req *sidecarv1.SignRequest) (host.Signature, error) {
	// A stream that failed between being handed out and taking the item
	// never sent it: try once more on a fresh one.
	var err error
	for range 2 {
		var s *signStream
		if s, err = m.stream(ctx); err != nil {
			return host.Signature{}, err
		}
		id := m.nextID.Add(1)
		ch := make(chan result, 1)
		if err = s.enqueue(id, req, ch); err != nil {
			continue
		}
		select {
		case r := <-ch:
			return r.sig, r.err
		case <-ctx.Done():
			s.forget(id)
			return host.Signature{}, ctx.Err()
		}
	}
	return host.Signature{}, err
}

// stream returns the open stream, opening one when there is none. The
// stream outlives the call that opens it, so it has a context of its own;
// ctx ending while it opens ends the opening.
func (m *mux) stream(ctx context.Context) (*signStream, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if m.cur != nil {
		return m.cur, nil
	}
	sctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel)
	st, err := m.api.SignStream(sctx)
	if !stop() {
		cancel()
		return nil, ctx.Err()
	}
	if err != nil {
		cancel()
		return nil, m.wrap(err)
	}
	s := &signStream{
		m: m, st: st, cancel: cancel,
		wake: make(chan struct{}, 1), done: make(chan struct{}),
		waiters: map[uint64]chan result{},
	}
	m.cur = s
	m.wg.Add(2)
	go s.send()
	go s.recv()
	return s, nil
}

// drop forgets s as the open stream.
func (m *mux) drop(s *signStream) {
	m.mu.Lock()
	if m.cur == s {
		m.cur = nil
	}
	m.mu.Unlock()
}

// close fails the open stream with ErrClosed and waits for every stream's
// goroutines to end.
func (m *mux) close() {
	m.mu.Lock()
	m.closed = true
	s := m.cur
	m.mu.Unlock()
	if s != nil {
		s.fail(ErrClosed)
	}
	m.wg.Wait()
}

// enqueue registers ch for id's result and queues the item for the
// sender; it fails, having done neither, when the stream has failed.
func (s *signStream) enqueue(id uint64, req *sidecarv1.SignRequest, ch chan result) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.waiters[id] = ch
	s.queue = append(s.queue, &sidecarv1.SignItem{Id: id, Request: req})
	select {
	case s.wake <- struct{}{}:
	default: // the sender is already due to look
	}
	return nil
}

// forget drops id's waiter, and its item if it is not sent yet.
func (s *signStream) forget(id uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.waiters, id)
	s.queue = slices.DeleteFunc(s.queue, func(it *sidecarv1.SignItem) bool { return it.GetId() == id })
}

// take removes and returns the items to send in one request: all that are
// queued, up to maxBatchItems and maxBatchBytes (at least one).
func (s *signStream) take() []*sidecarv1.SignItem {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, size := 0, 0
	for n < len(s.queue) && n < maxBatchItems {
		sz := proto.Size(s.queue[n])
		if n > 0 && size+sz > maxBatchBytes {
			break
		}
		size += sz
		n++
	}
	if n == 0 {
		return nil
	}
	batch := slices.Clone(s.queue[:n])
	s.queue = slices.Clone(s.queue[n:])
	return batch
}

// send is the stream's only sender: woken when items are queued, it sends
// them until the queue is empty, then sleeps.
func (s *signStream) send() {
	defer s.m.wg.Done()
	for {
		select {
		case <-s.wake:
		case <-s.done:
			return
		}
		for batch := s.take(); batch != nil; batch = s.take() {
			if err := s.st.Send(&sidecarv1.SignStreamRequest{Items: batch}); err != nil {
				if !errors.Is(err, io.EOF) {
					s.fail(s.m.wrap(err))
				}
				// io.EOF: the daemon ended the stream, and recv gets
				// its status.
				return
			}
		}
	}
}

// recv hands each result to its caller until the stream ends, then fails
// the callers still waiting.
func (s *signStream) recv() {
	defer s.m.wg.Done()
	for {
		resp, err := s.st.Recv()
		if errors.Is(err, io.EOF) {
			s.fail(errStreamEnded)
			return
		}
		if err != nil {
			s.fail(s.m.wrap(err))
			return
		}
		for _, r := range resp.GetResults() {
			s.deliver(r)
		}
	}
}

// deliver gives one result to its waiter, if it still waits.
func (s *signStream) deliver(r *sidecarv1.SignResult) {
	s.mu.Lock()
	ch, ok := s.waiters[r.GetId()]
	delete(s.waiters, r.GetId())
	s.mu.Unlock()
	if !ok {
		return // its caller stopped waiting
	}
	switch {
	case r.GetError() != nil:
		e := r.GetError()
		ch <- result{err: apierr.FromParts(codes.Code(e.GetCode()), e.GetMessage(), e.GetReason())}
	case r.GetResponse() == nil:
		ch <- result{err: apierr.FromParts(codes.Internal, "the sidecar sent a result with neither a signature nor an error", "")}
	default:
		ch <- result{sig: signature(r.GetResponse())}
	}
}

// fail marks the stream failed with err (the first error wins), ends it,
// and gives err to every caller waiting on it. The next call opens a new
// stream.
func (s *signStream) fail(err error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	waiters := s.waiters
	s.waiters, s.queue = nil, nil
	close(s.done)
	s.mu.Unlock()
	s.cancel()
	s.m.drop(s)
	for _, ch := range waiters {
		ch <- result{err: err}
	}
}
