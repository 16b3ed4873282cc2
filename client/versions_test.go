package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/knhk/knhk/audit/audittest"
	"github.com/knhk/knhk/client"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/sidecar"
)

// wantGates checks a promotion refused for gate, whose detail says want:
// a *host.GatesError (errors.As) that is shared.ErrFailedPrecondition,
// whose message is the daemon's.
func wantGates(t *testing.T, err error, version, gate, want string) {
	t.Helper()
	var ge *host.GatesError
	if !errors.As(err, &ge) || !errors.Is(err, shared.ErrFailedPrecondition) {
		t.Fatalf("promote: %v; want a *host.GatesError that is ErrFailedPrecondition", err)
	}
	if ge.Key != "fake:release" || ge.Version != version || !strings.Contains(err.Error(), "promotion of fake:release") || !strings.Contains(err.Error(), want) {
		t.Fatalf("gates error %q for %s version %s", err, ge.Key, ge.Version)
	}
	for _, u := range ge.Unmet {
		if u.Gate == gate && !u.Met && strings.Contains(u.Detail, want) {
			return
		}
	}
	t.Fatalf("unmet gates %+v lack %s saying %q", ge.Unmet, gate, want)
}

// states are the key's versions by version, through the daemon.
func states(t *testing.T, k *client.Key) map[string]host.VersionInfo {
	t.Helper()
	vs := must(k.Versions(context.Background()))(t)
	out := map[string]host.VersionInfo{}
	for _, v := range vs {
		out[v.Version] = v
	}
	return out
}

// signChecked signs with the key's active version and checks the
// signature with the standard library against the version's public key.
func signChecked(t *testing.T, k *client.Key) string {
	t.Helper()
	ctx := context.Background()
	digest := sha256.Sum256([]byte("signed through the client"))
	sig := must(k.SignDigest(ctx, digest[:], host.SignOptions{}))(t)
	pk := must(k.PublicKey(ctx, sig.Version))(t)
	if !ecdsa.VerifyASN1(pk.Key.(*ecdsa.PublicKey), digest[:], sig.Signature) {
		t.Fatalf("the signature of version %s does not verify with the standard library", sig.Version)
	}
	return sig.Version
}

// TestPromotion runs the promotion workflow through the client and a real
// daemon: a pending version is published but cannot sign; promotion is
// refused without approvals and with one (a *host.GatesError naming the
// approvals gate), accepted with one approval made through the daemon by
// a key it holds and one made with an approver's own key file; the
// promoted version signs; the old one is retired; a caller the policy
// does not allow to promote is denied.
func TestPromotion(t *testing.T) {
	ctx := context.Background()
	state := filepath.Join(t.TempDir(), "keys.json")
	ref, alice := "fake:release?state="+state, "fake:alice?state="+state
	bob := audittest.NewKey(t, "bob")
	h := hosttest.New(t, hosttest.WithConfig(host.Config{Promotion: map[string]host.Gates{
		ref: {Canary: true, Approvals: host.ApprovalGate{Required: 2, Approvers: []string{alice, bob.VerifierKey}}},
	}}))
	for r, kt := range map[string]shared.KeyType{ref: shared.ECP256, alice: shared.Ed25519} {
		must(h.CreateKey(ctx, r, kt))(t)
	}
	everything := []sidecar.Op{"*"}
	d := startDaemonOn(t, h, sidecar.Config{
		Keys: map[string]string{"release": ref, "alice": alice, "other": "fake:other?state=" + state},
		Policies: []sidecar.Policy{
			{Keys: []string{"release", "alice"}, Principals: []string{self()}, Operations: everything},
			{Keys: []string{"other"}, Principals: []string{self()}, Operations: []sidecar.Op{sidecar.OpVersions, sidecar.OpApprove, sidecar.OpRetire}},
		},
	})
	c := dial(t, d.target)
	k := must(c.Key(ctx, "release"))(t)

	v1 := signChecked(t, k)
	v2 := must(k.RotatePending(ctx))(t)
	st := states(t, k)
	pk2 := must(k.PublicKey(ctx, v2))(t) // published
	fp := sha256.Sum256(pk2.DER)
	if st[v1].State != shared.VersionActive || !st[v1].Current || st[v2].State != shared.VersionPending || st[v2].Current || st[v2].SPKISHA256 != hex.EncodeToString(fp[:]) || st[v2].Created.IsZero() {
		t.Fatalf("versions after a pending rotation: %+v", st)
	}
	_, err := k.SignDigest(ctx, make([]byte, 32), host.SignOptions{Version: v2})
	wantIs(t, "signing with the pending version", err, shared.ErrFailedPrecondition)
	if got := signChecked(t, k); got != v1 {
		t.Fatalf("signed with version %s while %s is pending", got, v2)
	}

	wantGates(t, k.Promote(ctx, v2), v2, host.GateApprovals, "0 of 2 approvers")
	byAlice := must(k.Approve(ctx, v2, "alice", time.Hour))(t)
	_, err = k.Approve(ctx, v2, "nobody", time.Hour)
	wantIs(t, "approval by a key the daemon does not know", err, shared.ErrKeyNotFound)
	bobsKey := must(hosttest.New(t).Key(ctx, ref))(t) // bob's own host, sharing the key
	byBob := must(bobsKey.Approve(ctx, v2, bob.Signer, time.Hour))(t)
	wantGates(t, k.Promote(ctx, v2, byAlice), v2, host.GateApprovals, "1 of 2 approvers: fake:alice")

	res := must(k.Gates(ctx, v2, byAlice, byBob))(t)
	if len(res) != 3 || res[0].Gate != host.GateState || !res[0].Met || res[1].Gate != host.GateCanary || !res[1].Deferred || res[2].Gate != host.GateApprovals || !res[2].Met || len(res[2].Approvers) != 2 {
		t.Fatalf("gates with two approvals: %+v", res)
	}
	if err := k.Promote(ctx, v2, byAlice, byBob); err != nil {
		t.Fatalf("promote with two approvals: %v", err)
	}
	if got := signChecked(t, k); got != v2 {
		t.Fatalf("signed with version %s after promoting %s", got, v2)
	}
	if err := k.Promote(ctx, v2); err != nil {
		t.Fatalf("promoting the active version again: %v; want a no-op", err)
	}

	wantIs(t, "retiring the active version", k.Retire(ctx, v2), shared.ErrFailedPrecondition)
	if err := k.Retire(ctx, v1); err != nil {
		t.Fatalf("retire %s: %v", v1, err)
	}
	if st = states(t, k); st[v1].State != shared.VersionRetired || st[v2].State != shared.VersionActive {
		t.Fatalf("versions after retiring %s: %+v", v1, st)
	}

	other := must(c.Key(ctx, "other"))(t)
	err = other.Promote(ctx, "2")
	wantIs(t, "promote not allowed by the policy", err, client.ErrPolicyDenied, shared.ErrPermissionDenied)
	if !strings.Contains(err.Error(), "promote") {
		t.Errorf("denial %q does not name the operation", err)
	}
	var ge *host.GatesError
	if errors.As(err, &ge) {
		t.Errorf("a policy denial is a GatesError: %v", err)
	}
}

// TestVersionsUnknownKey: the version calls on a key that does not exist
// fail with shared.ErrKeyNotFound across the wire.
func TestVersionsUnknownKey(t *testing.T) {
	d := startDaemon(t, sidecar.Config{})
	c := dial(t, d.target)
	k := must(c.Key(context.Background(), "fake:missing?state="+filepath.Join(t.TempDir(), "k.json")))(t)
	_, err := k.Versions(context.Background())
	wantIs(t, "versions of a missing key", err, shared.ErrKeyNotFound)
	_, err = k.RotatePending(context.Background())
	wantIs(t, "pending rotation of a missing key", err, shared.ErrKeyNotFound)
}
