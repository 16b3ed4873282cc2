package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/knhk/knhk/client"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/sidecar"
)

// examplePromotionDaemon starts a daemon whose key "release" (the fake's,
// in a state file, so it keeps version states) needs one approval, by the
// daemon's Ed25519 key "approver", before a pending version is promoted.
func examplePromotionDaemon() (target string, stop func()) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "knhk-example-")
	if err != nil {
		log.Fatal(err)
	}
	state := filepath.Join(dir, "keys.json")
	release, approver := "fake:release?state="+state, "fake:approver?state="+state
	h, stopHost, err := hosttest.Start(hosttest.WithConfig(host.Config{Promotion: map[string]host.Gates{
		release: {Canary: true, Approvals: host.ApprovalGate{Required: 1, Approvers: []string{approver}}},
	}}))
	if err != nil {
		log.Fatal(err)
	}
	for ref, kt := range map[string]shared.KeyType{release: shared.ECP256, approver: shared.Ed25519} {
		if _, err := h.CreateKey(ctx, ref, kt); err != nil {
			log.Fatal(err)
		}
	}
	self := fmt.Sprintf("unix:uid=%d", os.Getuid())
	return exampleServe(h, sidecar.Config{
		Socket: sidecar.SocketConfig{Path: filepath.Join(dir, "knhk.sock")},
		Keys:   map[string]string{"release": release, "approver": approver},
		Policies: []sidecar.Policy{
			{Keys: []string{"release"}, Principals: []string{self}, Operations: []sidecar.Op{
				sidecar.OpSign, sidecar.OpRotate, sidecar.OpVersions, sidecar.OpApprove, sidecar.OpPromote, sidecar.OpRetire,
			}},
			{Keys: []string{"approver"}, Principals: []string{self}, Operations: []sidecar.Op{sidecar.OpSign}},
		},
	}, func() {
		stopHost()
		os.RemoveAll(dir)
	})
}

// Rotate a key to a pending version (published, not signing), approve it
// and promote it: the daemon refuses the promotion until the approvals
// gate is met, then the new version signs and the old one is retiring
// until it is retired.
func ExampleKey_Promote() {
	target, stop := examplePromotionDaemon()
	defer stop()

	ctx := context.Background()
	c, err := client.Dial(ctx, target)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	key, err := c.Key(ctx, "release")
	if err != nil {
		log.Fatal(err)
	}

	pending, err := key.RotatePending(ctx)
	if err != nil {
		log.Fatal(err)
	}
	var gates *host.GatesError
	if err := key.Promote(ctx, pending); errors.As(err, &gates) {
		fmt.Println("refused:", gates.Unmet[0].Gate, "-", gates.Unmet[0].Detail)
	}
	approval, err := key.Approve(ctx, pending, "approver", time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	if err := key.Promote(ctx, pending, approval); err != nil {
		log.Fatal(err)
	}
	if err := key.Retire(ctx, "1"); err != nil {
		log.Fatal(err)
	}
	versions, err := key.Versions(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, v := range versions {
		fmt.Println("version", v.Version, v.State)
	}
	// Output:
	// refused: approvals - 0 of 1 approvers
	// version 1 retired
	// version 2 active
}
