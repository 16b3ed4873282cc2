package vault_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/knhk/knhk/shared"
)

// TestSignBatch signs a batch mixing keys, algorithms, digests, messages
// and bad items through Transit's batch_input; every good item verifies
// with the standard library and every bad one carries its own error.
func TestSignBatch(t *testing.T) {
	p := newProvider(t)
	ec, rsa := keyName("batch-ec"), keyName("batch-rsa")
	create(t, p, ec, shared.ECP256, params())
	create(t, p, rsa, shared.RSA2048, params())
	ecRef, rsaRef := shared.KeyRef{ID: ec, Params: params()}, shared.KeyRef{ID: rsa, Params: params()}
	ecPub, _ := publicKey(t, p, ecRef, "")
	rsaPub, _ := publicKey(t, p, rsaRef, "")

	type item struct {
		req  shared.SignRequest
		pub  any
		msg  []byte
		want error
	}
	var items []item
	add := func(ref shared.KeyRef, pub any, alg shared.Algorithm, asMessage bool, n int) {
		for i := range n {
			msg := []byte(fmt.Sprintf("batch %s %s %d", ref.ID, alg, i))
			req := shared.SignRequest{Key: ref, Algorithm: alg, Message: msg}
			if !asMessage {
				req.Message = nil
				req.Digest, _ = shared.Digest(alg, msg)
			}
			items = append(items, item{req: req, pub: pub, msg: msg})
		}
	}
	add(ecRef, ecPub, shared.ES256, false, 5)
	add(rsaRef, rsaPub, shared.PS384, false, 3)
	add(rsaRef, rsaPub, shared.RS256, true, 2)
	add(ecRef, ecPub, shared.ES256, true, 1)
	missing := shared.KeyRef{ID: keyName("batch-missing"), Params: params()}
	bad := []item{
		{req: shared.SignRequest{Key: missing, Algorithm: shared.ES256, Digest: make([]byte, 32)}, want: shared.ErrKeyNotFound},
		{req: shared.SignRequest{Key: ecRef, Algorithm: shared.ES256, Digest: make([]byte, 31)}, want: shared.ErrInvalidArgument},
		{req: shared.SignRequest{Key: ecRef, Algorithm: shared.RS256, Digest: make([]byte, 32)}, want: shared.ErrUnsupportedAlgorithm},
		{req: shared.SignRequest{Key: ecRef, Algorithm: shared.ES256, Digest: make([]byte, 32), Version: "9"}, want: shared.ErrKeyNotFound},
		{req: shared.SignRequest{Key: ecRef, Algorithm: shared.ES256, Digest: make([]byte, 32), Deadline: time.Now().Add(-time.Second)}, want: context.DeadlineExceeded},
	}
	items = append(bad[:2:2], append(items, bad[2:]...)...)
	reqs := make([]shared.SignRequest, len(items))
	for i, it := range items {
		reqs[i] = it.req
	}
	// Vault's own audit log counts the sign calls that reach it.
	audit := filepath.Join(t.TempDir(), "audit.log")
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().EnableAuditWithOptions("knhk-batch", &api.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": audit}}); err != nil {
		t.Fatal(err)
	}
	results := make([]shared.SignResult, len(reqs))
	var mu sync.Mutex
	got := make([]int, len(reqs))
	p.(shared.BatchSigner).SignBatch(ctx(t), reqs, func(i int, r shared.SignResult) {
		mu.Lock()
		defer mu.Unlock()
		results[i] = r
		got[i]++
	})
	if err := c.Sys().DisableAudit("knhk-batch"); err != nil {
		t.Fatal(err)
	}
	for i, n := range got {
		if n != 1 {
			t.Fatalf("item %d got %d results", i, n)
		}
	}
	for i, it := range items {
		r := results[i]
		if it.want != nil {
			if !errors.Is(r.Err, it.want) {
				t.Errorf("item %d: %v, want %v", i, r.Err, it.want)
			}
			continue
		}
		if r.Err != nil {
			t.Errorf("item %d (%s %s): %v", i, it.req.Key.ID, it.req.Algorithm, r.Err)
			continue
		}
		if r.Response.Version != "1" {
			t.Errorf("item %d: version %q", i, r.Response.Version)
		}
		if err := shared.VerifyMessage(it.pub, it.req.Algorithm, it.msg, r.Response.Signature); err != nil {
			t.Errorf("item %d (%s %s): %v", i, it.req.Key.ID, it.req.Algorithm, err)
		}
	}
	// Five ES256 digests, one ES256 message and the version-9 item: three
	// calls for the EC key; PS384 digests and RS256 messages: two for RSA.
	for key, want := range map[string]int{ec: 3, rsa: 2} {
		if got := signCalls(t, audit, "transit/sign/"+key); got != want {
			t.Errorf("%d Transit sign calls for %s, want %d", got, key, want)
		}
	}
}

// signCalls counts the requests to path in a Vault file audit log.
func signCalls(t *testing.T, audit, path string) int {
	t.Helper()
	f, err := os.Open(audit)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var e struct {
			Type    string `json:"type"`
			Request struct {
				Path string `json:"path"`
			} `json:"request"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Type == "request" && e.Request.Path == path {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}
