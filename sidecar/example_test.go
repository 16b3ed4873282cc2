package sidecar_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/knhk/knhk/client"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/sidecar"
)

// Example runs the daemon `knhk-host serve` runs, in this process: the
// key "release" on a unix socket, signable by this user only, and signs
// through it with the Go client.
func Example() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	// A host with the in-process fake provider; a real daemon uses
	// host.New with its plugin directories.
	h, closeHost, err := hosttest.Start()
	if err != nil {
		log.Fatal(err)
	}
	defer closeHost()
	if _, err := h.CreateKey(ctx, "fake:release?seed=example", shared.ECP256); err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "knhk-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	srv, err := sidecar.New(h, sidecar.Config{
		Socket: sidecar.SocketConfig{Path: filepath.Join(dir, "knhk.sock")},
		Keys:   map[string]string{"release": "fake:release?seed=example"},
		Policies: []sidecar.Policy{{
			Keys:       []string{"release"},
			Principals: []string{fmt.Sprintf("unix:uid=%d", os.Getuid())},
			Operations: []sidecar.Op{sidecar.OpSign, sidecar.OpPublicKey},
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	select {
	case <-srv.Listening():
	case err := <-served:
		log.Fatal(err)
	}

	c, err := client.Dial(ctx, "unix://"+srv.SocketPath())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	k, err := c.Key(ctx, "release")
	if err != nil {
		log.Fatal(err)
	}
	digest := sha256.Sum256([]byte("hello"))
	sig, err := k.SignDigest(ctx, digest[:], host.SignOptions{})
	if err != nil {
		log.Fatal(err)
	}
	pk, err := k.PublicKey(ctx, "")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sig.Algorithm, ecdsa.VerifyASN1(pk.Key.(*ecdsa.PublicKey), digest[:], sig.Signature))
	if _, err := k.Rotate(ctx); err != nil {
		fmt.Println("rotate denied:", errors.Is(err, client.ErrPolicyDenied))
	}
	stop()
	if err := <-served; err != nil {
		log.Fatal(err)
	}
	// Output:
	// ES256 true
	// rotate denied: true
}
