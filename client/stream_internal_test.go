package client

import (
	"testing"

	sidecarv1 "github.com/knhk/knhk/sidecar/proto/knhk/sidecar/v1"
)

// TestTake checks that one request takes every item queued, within the
// bounds, and that a forgotten item is not sent.
func TestTake(t *testing.T) {
	s := &signStream{wake: make(chan struct{}, 1), waiters: map[uint64]chan result{}}
	small := &sidecarv1.SignRequest{Key: "k", Digest: make([]byte, 32)}
	big := &sidecarv1.SignRequest{Key: "k", Message: make([]byte, maxBatchBytes/2)}
	for id := range uint64(300) {
		if err := s.enqueue(id, small, make(chan result, 1)); err != nil {
			t.Fatal(err)
		}
	}
	s.forget(0)
	for id := uint64(300); id < 303; id++ {
		if err := s.enqueue(id, big, make(chan result, 1)); err != nil {
			t.Fatal(err)
		}
	}
	var sizes []int
	seen := map[uint64]bool{}
	for b := s.take(); b != nil; b = s.take() {
		sizes = append(sizes, len(b))
		for _, it := range b {
			seen[it.GetId()] = true
		}
	}
	// 299 small items: 256, then 43 with the first large one, then one
	// large item a request.
	if len(sizes) != 4 || sizes[0] != maxBatchItems || sizes[1] != 44 || sizes[2] != 1 || sizes[3] != 1 {
		t.Errorf("request sizes %v", sizes)
	}
	if seen[0] || len(seen) != 302 {
		t.Errorf("sent %d items, the forgotten one: %v", len(seen), seen[0])
	}
	if len(s.waiters) != 302 {
		t.Errorf("%d waiters", len(s.waiters))
	}
}
