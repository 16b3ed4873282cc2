package aws_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/plugins/aws/internal/localkms"
	"github.com/knhk/knhk/shared"
)

// replicaDouble is a test double of one KMS operation, ReplicateKey, in
// front of an emulator: local-kms does not implement ReplicateKey (it
// answers 501) nor multi-Region keys (it takes CreateKey's MultiRegion and
// ignores it). The double answers ReplicateKey itself as KMS documents it
// (ReplicaKeyMetadata with the primary's key id), recording each call and
// the Region its request was signed for, notes whether CreateKey asked for
// a multi-Region key, and passes every request but ReplicateKey on to the
// emulator unchanged.
type replicaDouble struct {
	URL string

	mu         sync.Mutex
	replicates []replicateCall
	multi      []bool // CreateKey's MultiRegion, per CreateKey
}

type replicateCall struct{ keyID, replicaRegion, signedFor string }

func newReplicaDouble(t *testing.T, srv *localkms.Server) *replicaDouble {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	d := &replicaDouble{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var in struct {
			KeyId, ReplicaRegion string
			MultiRegion          bool
		}
		_ = json.Unmarshal(body, &in)
		switch r.Header.Get("X-Amz-Target") {
		case "TrentService.ReplicateKey":
			// Authorization: AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/kms/aws4_request, ...
			var signedFor string
			if _, cred, ok := strings.Cut(r.Header.Get("Authorization"), "Credential="); ok {
				if parts := strings.Split(cred, "/"); len(parts) > 2 {
					signedFor = parts[2]
				}
			}
			d.mu.Lock()
			d.replicates = append(d.replicates, replicateCall{in.KeyId, in.ReplicaRegion, signedFor})
			d.mu.Unlock()
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			json.NewEncoder(w).Encode(map[string]any{"ReplicaKeyMetadata": map[string]any{
				"KeyId": in.KeyId, "Arn": "arn:aws:kms:" + in.ReplicaRegion + ":" + localkms.AccountID + ":key/" + in.KeyId,
				"MultiRegion": true, "KeyState": "Creating", "KeyUsage": "SIGN_VERIFY",
			}})
			return
		case "TrentService.CreateKey":
			d.mu.Lock()
			d.multi = append(d.multi, in.MultiRegion)
			d.mu.Unlock()
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	d.URL = ts.URL
	return d
}

func (d *replicaDouble) calls() ([]replicateCall, []bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.replicates), slices.Clone(d.multi)
}

// TestReplicateThroughHost creates a key with two replicas through the
// host and the built plugin (Host.CreateKeyWith), against the emulator
// with the ReplicateKey double: CreateKey asks for a multi-Region key,
// ReplicateKey is sent to the primary's Region (us-east-1) once per
// replica Region, in order, for the new key's id; the key comes back named
// by that id, not the alias (which exists in the primary's Region), and
// the replicas' references are that id with their Region and no endpoint.
// The key signs, and the signature verifies. Replicating to the key's own
// Region is refused before anything is made.
func TestReplicateThroughHost(t *testing.T) {
	srv := localkms.Start(t)
	d := newReplicaDouble(t, srv)
	h := newHost(t)
	ctx := ctxT(t)
	ref := "aws:alias/multi?region=us-east-1&endpoint=" + url.QueryEscape(d.URL)

	k, replicas, err := h.CreateKeyWith(ctx, ref, shared.ECP256, host.CreateOptions{ReplicateTo: []string{"eu-west-1", "ap-south-1"}})
	if err != nil {
		t.Fatal(err)
	}
	id := k.Ref().KeyID
	if id == "" || strings.HasPrefix(id, "alias/") {
		t.Fatalf("the created key is named %q; want the new key's id", id)
	}
	reps, multi := d.calls()
	if !slices.Equal(multi, []bool{true}) {
		t.Fatalf("CreateKey calls' MultiRegion: %v; want one, true", multi)
	}
	want := []replicateCall{{id, "eu-west-1", "us-east-1"}, {id, "ap-south-1", "us-east-1"}}
	if !slices.Equal(reps, want) {
		t.Fatalf("ReplicateKey calls %+v; want %+v", reps, want)
	}
	if len(replicas) != 2 {
		t.Fatalf("replicas %v; want 2", replicas)
	}
	for i, r := range replicas {
		wantParams := map[string]string{"region": want[i].replicaRegion}
		if r.Provider != "aws" || r.KeyID != id || !maps.Equal(r.Params, wantParams) {
			t.Errorf("replica %d: %s; want aws:%s?region=%s", i+1, r, id, want[i].replicaRegion)
		}
	}
	out, err := srv.Client().DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: awssdk.String("alias/multi")})
	if err != nil || awssdk.ToString(out.KeyMetadata.KeyId) != id {
		t.Fatalf("alias/multi in the primary's Region: %v, %v; want it to name %s", out, err, id)
	}
	pk, err := k.PublicKey(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("multi-Region release")
	sig, err := k.SignMessage(ctx, msg, host.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(msg)
	if err := shared.VerifyDigest(pk.Key, shared.ES256, digest[:], sig.Signature); err != nil {
		t.Fatalf("the new key's signature: %v", err)
	}

	_, _, err = h.CreateKeyWith(ctx, "aws:alias/own?region=us-east-1&endpoint="+url.QueryEscape(d.URL), shared.ECP256, host.CreateOptions{ReplicateTo: []string{"eu-west-1", "us-east-1"}})
	wantErr(t, "replicating to the key's own Region", err, shared.ErrInvalidArgument)
	if reps, multi := d.calls(); len(reps) != 2 || len(multi) != 1 {
		t.Fatalf("the refused request called KMS: %d ReplicateKey, %d CreateKey calls in all; want 2 and 1", len(reps), len(multi))
	}
}

// TestReplicateLocalKMS runs the replication against the emulator alone,
// as far as it goes: local-kms accepts CreateKey with MultiRegion but has
// no ReplicateKey, so the first replication fails; the error says so and
// that the new key is scheduled for deletion, and ListKeys (which leaves
// keys pending deletion out) finds no key.
func TestReplicateLocalKMS(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	_, err := e.p.CreateKey(ctx, shared.CreateKeyRequest{Key: e.ref(""), Type: shared.ECP256, ReplicateTo: []string{"eu-west-1"}})
	if err == nil || !strings.Contains(err.Error(), "ReplicateKey") || !strings.Contains(err.Error(), "scheduled for deletion") {
		t.Fatalf("CreateKey with ReplicateTo against local-kms: %v; want the ReplicateKey failure and the key scheduled for deletion", err)
	}
	if errors.Is(err, shared.ErrInvalidArgument) {
		t.Fatalf("the emulator's missing operation is reported as the caller's mistake: %v", err)
	}
	keys, err := e.p.ListKeys(ctx, shared.ListKeysRequest{Params: e.params})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Fatalf("ListKeys after the failed replication: %+v; want none (the key is pending deletion)", keys)
	}
	d, err := e.p.Describe(ctx)
	if err != nil || !d.Has(shared.CapReplicateKey) {
		t.Fatalf("Describe: %v, %v; want it to claim %s", d.Capabilities, err, shared.CapReplicateKey)
	}
}
