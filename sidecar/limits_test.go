package sidecar_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/knhk/knhk/client"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/sidecar"
)

// TestRequestSizeLimit: a request over max_request_bytes is refused on its
// own as invalid, over the stream and over a unary call, while requests
// in flight beside it on the same stream sign.
func TestRequestSizeLimit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := hosttest.New(t)
	if _, err := h.CreateKey(ctx, "fake:k?seed=limits", shared.ECP256); err != nil {
		t.Fatal(err)
	}
	srv, err := sidecar.New(h, sidecar.Config{
		Socket:          sidecar.SocketConfig{Path: filepath.Join(t.TempDir(), "s.sock")},
		Keys:            map[string]string{"k": "fake:k?seed=limits"},
		MaxRequestBytes: 8 << 10,
		Policies:        []sidecar.Policy{{Keys: []string{"k"}, Principals: []string{fmt.Sprintf("unix:uid=%d", os.Getuid())}, Operations: []sidecar.Op{"*"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() { cancel(); <-served }()
	<-srv.Listening()

	for _, opts := range [][]client.Option{nil, {client.WithoutStream()}} {
		c, err := client.Dial(ctx, "unix://"+srv.SocketPath(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		k, _ := c.Key(ctx, "k")
		pk, err := k.PublicKey(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				msg := make([]byte, 100)
				if i%4 == 0 {
					msg = make([]byte, 10<<10) // over the limit
				}
				sig, err := k.SignMessage(ctx, msg, host.SignOptions{})
				if len(msg) > 8<<10 {
					if !errors.Is(err, shared.ErrInvalidArgument) {
						t.Errorf("a 10 KiB message: %v, want invalid argument", err)
					}
					return
				}
				sum := sha256.Sum256(msg)
				if err != nil || !ecdsa.VerifyASN1(pk.Key.(*ecdsa.PublicKey), sum[:], sig.Signature) {
					t.Errorf("a small message beside large ones: %v", err)
				}
			}()
		}
		wg.Wait()
		c.Close()
	}
}
