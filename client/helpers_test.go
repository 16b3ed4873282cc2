package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/knhk/knhk/client"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/sidecar"
)

// self is this test process's principal on the unix socket.
func self() string { return fmt.Sprintf("unix:uid=%d", os.Getuid()) }

// allowAll allows this process every operation on every key.
func allowAll() sidecar.Policy {
	return sidecar.Policy{Keys: []string{"*"}, Principals: []string{self()}, Operations: []sidecar.Op{"*"}}
}

// daemon is a real sidecar serving the in-process fake provider on a
// unix socket.
type daemon struct {
	target string // unix:///PATH
	host   *host.Host
	stop   func() // drains and waits for Serve to return; idempotent
}

// startDaemon runs a sidecar with cfg (on a new socket, references
// allowed and every operation allowed to this process unless cfg says
// otherwise) until the test ends or stop.
func startDaemon(t *testing.T, cfg sidecar.Config) *daemon {
	t.Helper()
	return startDaemonOn(t, hosttest.New(t), cfg)
}

// startDaemonOn is startDaemon over the host h.
func startDaemonOn(t *testing.T, h *host.Host, cfg sidecar.Config) *daemon {
	t.Helper()
	if cfg.Socket.Path == "" {
		cfg.Socket.Path = socketPath(t)
	}
	if cfg.Policies == nil {
		cfg.Policies = []sidecar.Policy{allowAll()}
		cfg.AllowReferences = true
	}
	srv, err := sidecar.New(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	t.Cleanup(stop)
	waitListening(t, srv, served)
	return &daemon{target: "unix://" + srv.SocketPath(), host: h, stop: stop}
}

// socketPath is a path for a socket in a new directory removed when the
// test ends. The directory is short: a unix socket path has a small
// length limit.
func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "knhk-client-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s.sock")
}

// waitListening waits until the daemon's socket is in place, which it
// is once the daemon listens (it is renamed there after listen), or fails
// the test if Serve returned instead.
func waitListening(t *testing.T, srv *sidecar.Server, served chan error) {
	t.Helper()
	select {
	case <-srv.Listening():
	case err := <-served:
		served <- err // for stop
		t.Fatalf("the daemon did not start: %v", err)
	}
}

// dial makes a Client for target, closed when the test ends.
func dial(t *testing.T, target string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.Dial(context.Background(), target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return c
}

// modes are the two ways a Client signs.
var modes = []struct {
	name string
	opts []client.Option
}{
	{"stream", nil},
	{"unary", []client.Option{client.WithoutStream()}},
}

// must(f())(t) is f's value, and fails the test if f failed.
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// wantIs fails the test unless err matches every target.
func wantIs(t *testing.T, what string, err error, targets ...error) {
	t.Helper()
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Errorf("%s: %v; want errors.Is %v", what, err, target)
		}
	}
}
