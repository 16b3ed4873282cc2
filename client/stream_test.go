package client_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/knhk/knhk/client"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/sidecar"
)

// slowRef is a reference to key id that the fake signs with after an
// hour, unless the call's context ends first.
func slowRef(id string) string { return "fake:" + id + "?seed=s&fault_latency=1h&fault_ops=sign" }

// TestCancelOneCaller: a caller whose context ends stops waiting at once,
// while the others on the same stream proceed.
func TestCancelOneCaller(t *testing.T) {
	ctx := context.Background()
	d := startDaemon(t, sidecar.Config{})
	c := dial(t, d.target)
	must(c.CreateKey(ctx, "fake:slow?seed=s", shared.ECP256))(t)
	fast := must(c.CreateKey(ctx, "fake:fast?seed=s", shared.ECP256))(t)
	slow := must(c.Key(ctx, slowRef("slow")))(t)
	pub := must(fast.PublicKey(ctx, ""))(t).Key.(*ecdsa.PublicKey)
	digest := sha256.Sum256([]byte("x"))

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	slowErr := make(chan error, 1)
	go func() {
		_, err := slow.SignDigest(sctx, digest[:], host.SignOptions{})
		slowErr <- err
	}()
	for range 20 {
		sig := must(fast.SignDigest(ctx, digest[:], host.SignOptions{}))(t)
		if !ecdsa.VerifyASN1(pub, digest[:], sig.Signature) {
			t.Fatal("a signature does not verify")
		}
	}
	select {
	case err := <-slowErr:
		t.Fatalf("the slow signature returned before its caller gave up: %v", err)
	default:
	}
	cancel()
	wantIs(t, "canceled caller", <-slowErr, context.Canceled)
	sig := must(fast.SignDigest(ctx, digest[:], host.SignOptions{}))(t)
	if !ecdsa.VerifyASN1(pub, digest[:], sig.Signature) {
		t.Fatal("a signature after the cancellation does not verify")
	}
}

// TestDaemonGone: with no daemon, or after it stopped, calls fail with
// an UnreachableError (shared.ErrUnavailable) naming the target, and do
// not hang; a daemon started again on the socket is used again.
func TestDaemonGone(t *testing.T) {
	ctx := context.Background()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			path := socketPath(t)
			c := dial(t, "unix://"+path, m.opts...)
			k := must(c.Key(ctx, "fake:k?seed=s"))(t)
			digest := sha256.Sum256([]byte("x"))
			_, err := k.SignDigest(ctx, digest[:], host.SignOptions{})
			var ue *client.UnreachableError
			if !errors.As(err, &ue) || ue.Target != "unix://"+path || !strings.Contains(err.Error(), path) {
				t.Errorf("no daemon: %v, want an UnreachableError naming the socket", err)
			}
			wantIs(t, "no daemon", err, shared.ErrUnavailable)

			d := startDaemon(t, sidecar.Config{Socket: sidecar.SocketConfig{Path: path}})
			sign := func() error {
				_, err := k.SignDigest(ctx, digest[:], host.SignOptions{})
				return err
			}
			// The connection failed a moment ago: gRPC waits a little
			// before it tries again, and calls fail until it does.
			untilNot(t, shared.ErrUnavailable, func() error {
				_, err := c.CreateKey(ctx, "fake:k?seed=s", shared.ECP256)
				return err
			})
			if err := sign(); err != nil {
				t.Fatalf("sign with the daemon up: %v", err)
			}
			d.stop()
			wantIs(t, "daemon stopped", sign(), shared.ErrUnavailable)
			wantIs(t, "daemon stopped, again", sign(), shared.ErrUnavailable)

			d = startDaemon(t, sidecar.Config{Socket: sidecar.SocketConfig{Path: path}})
			must(d.host.CreateKey(ctx, "fake:k?seed=s", shared.ECP256))(t)
			untilNot(t, shared.ErrUnavailable, sign)
		})
	}
}

// untilNot calls f until it returns an error that is not target, and
// fails the test unless that is nil.
func untilNot(t *testing.T, target error, f func() error) {
	t.Helper()
	for {
		err := f()
		if !errors.Is(err, target) {
			if err != nil {
				t.Fatal(err)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDrainFailsWaiters: a signature in flight when the daemon shuts down
// gets an error once the drain times out; it does not hang.
func TestDrainFailsWaiters(t *testing.T) {
	ctx := context.Background()
	d := startDaemon(t, sidecar.Config{DrainTimeout: 50 * time.Millisecond, Policies: []sidecar.Policy{allowAll()}, AllowReferences: true})
	c := dial(t, d.target)
	must(c.CreateKey(ctx, "fake:slow?seed=s", shared.ECP256))(t)
	slow := must(c.Key(ctx, slowRef("slow")))(t)
	digest := sha256.Sum256([]byte("x"))
	slowErr := make(chan error, 1)
	go func() {
		_, err := slow.SignDigest(ctx, digest[:], host.SignOptions{})
		slowErr <- err
	}()
	// Make sure the stream is up and the slow item sent before the drain.
	must(must(c.Key(ctx, "fake:slow?seed=s"))(t).SignDigest(ctx, digest[:], host.SignOptions{}))(t)
	d.stop()
	wantIs(t, "signature in flight at shutdown", <-slowErr, shared.ErrUnavailable)
}

// clientGoroutines counts the goroutines running the client's stream.
func clientGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Count(buf[:n], []byte("knhk/client.(*signStream)"))
		}
		buf = make([]byte, 2*len(buf))
	}
}

// TestCloseEndsEverything: Close fails the calls waiting, ends the
// stream's goroutines before it returns, and later calls fail with
// ErrClosed.
func TestCloseEndsEverything(t *testing.T) {
	ctx := context.Background()
	d := startDaemon(t, sidecar.Config{})
	c, err := client.Dial(ctx, d.target)
	if err != nil {
		t.Fatal(err)
	}
	k := must(c.CreateKey(ctx, "fake:k?seed=s", shared.ECP256))(t)
	digest := sha256.Sum256([]byte("x"))
	must(k.SignDigest(ctx, digest[:], host.SignOptions{}))(t)
	if n := clientGoroutines(); n == 0 {
		t.Fatal("no stream goroutines after a signature over the stream")
	}
	slow := must(c.Key(ctx, slowRef("k")))(t)
	slowErr := make(chan error, 1)
	go func() {
		_, err := slow.SignDigest(ctx, digest[:], host.SignOptions{})
		slowErr <- err
	}()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if n := clientGoroutines(); n != 0 {
		t.Errorf("%d stream goroutines left after Close", n)
	}
	wantIs(t, "call waiting at Close", <-slowErr, client.ErrClosed, host.ErrClosed)
	_, err = k.SignDigest(ctx, digest[:], host.SignOptions{})
	wantIs(t, "sign after Close", err, client.ErrClosed)
	_, err = k.Metadata(ctx)
	wantIs(t, "metadata after Close", err, client.ErrClosed)
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
