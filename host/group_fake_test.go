package host

import (
	"context"
	"crypto"
	"crypto/sha512"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/knhk/knhk/shared"
)

// TestKeyGroupWithFakePlugin runs a group on the fake plugin binary, the
// replicas told apart by their state files: two hold the same key (same
// seed), a third another (other seed), and fault_* makes one fail or slow.
func TestKeyGroupWithFakePlugin(t *testing.T) {
	dir := t.TempDir()
	a := "fake:k?seed=s&state=" + filepath.Join(dir, "a.json")
	b := "fake:k?seed=s&state=" + filepath.Join(dir, "b.json")
	c := "fake:k?seed=other&state=" + filepath.Join(dir, "c.json")
	failing := a + "&fault_error=unavailable&fault_ops=sign"
	slow := a + "&fault_latency=3s&fault_ops=sign"
	h, logs := newHost(t, Config{KeyGroups: map[string]KeyGroup{
		"ordered": {Replicas: []string{failing, c, b}, ProbeInterval: -1},
		"hedged":  {Replicas: []string{slow, b}, Failover: FailoverHedged, HedgeDelay: 30 * time.Millisecond, ProbeInterval: -1},
	}})
	ctx := context.Background()
	for _, ref := range []string{a, b, c} {
		if _, err := h.CreateKey(ctx, ref, shared.ECP384); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"ordered", "hedged"} {
		signer, err := h.Signer(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 8 {
			digest := sha512.Sum384([]byte(fmt.Sprint(name, i)))
			sig, err := signer.Sign(nil, digest[:], crypto.SHA384)
			if err != nil {
				t.Fatalf("%s: signature %d: %v", name, i, err)
			}
			if err := shared.VerifyDigest(signer.Public(), shared.ES384, digest[:], sig); err != nil {
				t.Fatalf("%s: signature %d does not verify with the group's key: %v", name, i, err)
			}
		}
	}
	health, err := h.KeyHealth(ctx, "ordered")
	if err != nil {
		t.Fatal(err)
	}
	want := []ReplicaState{ReplicaDown, ReplicaQuarantined, ReplicaHealthy}
	for i, r := range health.Replicas {
		if r.State != want[i] {
			t.Errorf("replica %d (%s) is %s, want %s: %+v", i+1, r.Replica, r.State, want[i], r)
		}
	}
	if health.Replicas[1].Fingerprint == health.Fingerprint || health.Replicas[2].Fingerprint != health.Fingerprint {
		t.Errorf("fingerprints: group %s, replicas %+v", health.Fingerprint, health.Replicas)
	}
	if t.Failed() {
		t.Log(logs.String())
	}
}
