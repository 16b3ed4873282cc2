package sidecar

import (
	"context"
	"testing"

	"github.com/knhk/knhk/host/hosttest"
)

// testCore is a core over a host with the in-process fake provider, with
// cfg's defaults filled. Keys such as "fake:demo?seed=x" need no state
// file: the fake derives the key from its seed.
func testCore(t testing.TB, cfg Config) *core {
	t.Helper()
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return newCore(hosttest.New(t), cfg)
}

// uidCaller is the Caller the unix socket gives a process of uid and gid.
func uidCaller(uid, gid uint32) Caller {
	return callerOfPeer(peerCred{UID: uid, GID: gid, PID: 1})
}

// serve runs srv until the test ends (then checks that Serve returned no
// error) and returns once it listens.
func serve(t testing.TB, srv *Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case <-srv.Listening():
	case err := <-served:
		t.Fatalf("serve: %v", err)
	}
}
