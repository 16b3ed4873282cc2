package vault_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/host/promotiontest"
	"github.com/knhk/knhk/plugins/vault"
	"github.com/knhk/knhk/shared"
)

// statesPath is where the tests keep version states: dev mode mounts KV
// version 2 at secret/.
const statesPath = "secret/knhk/version-states"

// statesParams points requests at the test server, with version states.
func statesParams(extra ...string) map[string]string {
	return params(append([]string{"version_states", statesPath}, extra...)...)
}

// stater is the provider's version state side.
func stater(t *testing.T, p shared.Provider) shared.VersionStater {
	t.Helper()
	vs, ok := p.(shared.VersionStater)
	if !ok {
		t.Fatalf("%T is not a shared.VersionStater", p)
	}
	return vs
}

// stateMap is states as version -> state.
func stateMap(vs shared.VersionStates) map[string]shared.VersionState {
	out := map[string]shared.VersionState{}
	for _, e := range vs.Versions {
		out[e.Version] = e.State
	}
	return out
}

// wantStates fails the test unless the key's states are exactly want and
// pass the SDK's rules (exactly one active version).
func wantStates(t *testing.T, p shared.Provider, ref shared.KeyRef, want map[string]shared.VersionState) shared.VersionStates {
	t.Helper()
	got, err := stater(t, p).GetVersionStates(ctx(t), shared.GetVersionStatesRequest{Key: ref})
	if err != nil {
		t.Fatalf("GetVersionStates: %v", err)
	}
	if err := got.Check(); err != nil {
		t.Fatalf("states %v break the rules: %v", stateMap(got), err)
	}
	if !maps.Equal(stateMap(got), want) {
		t.Fatalf("states = %v; want %v", stateMap(got), want)
	}
	return got
}

// currentVersion is KeyMetadata's current version.
func currentVersion(t *testing.T, p shared.Provider, ref shared.KeyRef) string {
	t.Helper()
	md, err := p.KeyMetadata(ctx(t), shared.KeyMetadataRequest{Key: ref})
	if err != nil {
		t.Fatalf("KeyMetadata: %v", err)
	}
	return md.CurrentVersion
}

// signVerified signs a digest with a named version through the provider
// and checks the signature against that version's public key with the
// standard library.
func signVerified(t *testing.T, p shared.Provider, ref shared.KeyRef, version string) {
	t.Helper()
	d := sha256.Sum256([]byte("version " + version))
	resp, err := p.Sign(ctx(t), shared.SignRequest{Key: ref, Algorithm: shared.ES256, Digest: d[:], Version: version})
	if err != nil {
		t.Fatalf("Sign with version %s: %v", version, err)
	}
	if resp.Version != version {
		t.Fatalf("Sign with version %s signed with %s", version, resp.Version)
	}
	pub, _ := publicKey(t, p, ref, version)
	if err := shared.VerifyDigest(pub, shared.ES256, d[:], resp.Signature); err != nil {
		t.Fatalf("version %s signature against its public key: %v", version, err)
	}
}

// TestVersionStatesPendingRotate walks a key through the states at the
// provider: a first pending rotation gives it states (current active,
// older retiring, new pending); the pending version signs at the provider
// level (the host refuses it); promotion, no-op repeats, refused moves,
// retirement, and a rotation without pending on a key with states.
func TestVersionStatesPendingRotate(t *testing.T) {
	p := newProvider(t)
	vs := stater(t, p)
	ref := shared.KeyRef{ID: "transit/" + keyName("states"), Params: statesParams()}
	create(t, p, ref.ID, shared.ECP256, ref.Params)
	if got := wantStates(t, p, ref, map[string]shared.VersionState{}); got.Has() {
		t.Fatalf("a new key has states %v", got)
	}
	if r, err := p.RotateKey(ctx(t), shared.RotateKeyRequest{Key: ref}); err != nil || r.Version != "2" {
		t.Fatalf("RotateKey without pending, no states = %+v, %v; want 2", r, err)
	}
	wantStates(t, p, ref, map[string]shared.VersionState{})

	before := time.Now()
	r, err := p.RotateKey(ctx(t), shared.RotateKeyRequest{Key: ref, Pending: true})
	if err != nil || r.Version != "3" {
		t.Fatalf("RotateKey pending = %+v, %v; want 3", r, err)
	}
	states := wantStates(t, p, ref, map[string]shared.VersionState{"1": shared.VersionRetiring, "2": shared.VersionActive, "3": shared.VersionPending})
	pendingSince, _ := states.Entry("3")
	for _, e := range states.Versions {
		if e.Since.Before(before.Add(-time.Second)) || e.Since.After(time.Now().Add(time.Second)) {
			t.Errorf("version %s: since %v, not during the rotation (from %v)", e.Version, e.Since, before)
		}
	}
	if cur := currentVersion(t, p, ref); cur != "2" {
		t.Errorf("KeyMetadata current version = %s while 3 is pending; want the active 2", cur)
	}
	signVerified(t, p, ref, "3") // the provider signs with any named version; the host decides
	signVerified(t, p, ref, "2")

	// Promotion: one write makes 3 active and 2 retiring.
	time.Sleep(10 * time.Millisecond) // so that a new Since is later
	got, err := vs.SetVersionState(ctx(t), shared.SetVersionStateRequest{Key: ref, Version: "3", State: shared.VersionActive})
	if err != nil {
		t.Fatalf("promote 3: %v", err)
	}
	want := map[string]shared.VersionState{"1": shared.VersionRetiring, "2": shared.VersionRetiring, "3": shared.VersionActive}
	if !maps.Equal(stateMap(got), want) {
		t.Fatalf("promote 3 returned %v; want %v", stateMap(got), want)
	}
	promoted := wantStates(t, p, ref, want)
	e3, _ := promoted.Entry("3")
	if !e3.Since.After(pendingSince.Since) {
		t.Errorf("version 3 active since %v, not after it became pending (%v)", e3.Since, pendingSince.Since)
	}
	if cur := currentVersion(t, p, ref); cur != "3" {
		t.Errorf("KeyMetadata current version after promotion = %s; want 3", cur)
	}
	// A repeated promotion changes nothing, Since included.
	again, err := vs.SetVersionState(ctx(t), shared.SetVersionStateRequest{Key: ref, Version: "3", State: shared.VersionActive})
	if e, _ := again.Entry("3"); err != nil || !e.Since.Equal(e3.Since) {
		t.Errorf("promote 3 again = %+v, %v; want a no-op keeping since %v", e, err, e3.Since)
	}

	for _, c := range []struct {
		version string
		state   shared.VersionState
		want    error
	}{
		{"3", shared.VersionRetiring, shared.ErrFailedPrecondition}, // the active version: promote another
		{"3", shared.VersionRetired, shared.ErrFailedPrecondition},
		{"2", shared.VersionActive, shared.ErrFailedPrecondition}, // retiring never comes back
		{"9", shared.VersionRetired, shared.ErrKeyNotFound},
	} {
		_, err := vs.SetVersionState(ctx(t), shared.SetVersionStateRequest{Key: ref, Version: c.version, State: c.state})
		if !errors.Is(err, c.want) {
			t.Errorf("SetVersionState(%s, %s) = %v; want %v", c.version, c.state, err, c.want)
		}
	}
	if _, err := vs.SetVersionState(ctx(t), shared.SetVersionStateRequest{Key: ref, Version: "1", State: shared.VersionRetired}); err != nil {
		t.Fatalf("retire 1: %v", err)
	}

	// A key with states rotated without pending: the new version is
	// active at once, the old active one retiring.
	if r, err := p.RotateKey(ctx(t), shared.RotateKeyRequest{Key: ref}); err != nil || r.Version != "4" {
		t.Fatalf("RotateKey without pending, with states = %+v, %v; want 4", r, err)
	}
	wantStates(t, p, ref, map[string]shared.VersionState{"1": shared.VersionRetired, "2": shared.VersionRetiring, "3": shared.VersionRetiring, "4": shared.VersionActive})
	md, err := p.KeyMetadata(ctx(t), shared.KeyMetadataRequest{Key: ref})
	if err != nil || md.CurrentVersion != "4" || md.Attributes["version_states"] != statesPath {
		t.Errorf("KeyMetadata = current %q, version_states %q, %v; want 4, %s", md.CurrentVersion, md.Attributes["version_states"], err, statesPath)
	}
	// A pending version can be abandoned.
	if r, err := p.RotateKey(ctx(t), shared.RotateKeyRequest{Key: ref, Pending: true}); err != nil || r.Version != "5" {
		t.Fatalf("RotateKey pending again = %+v, %v; want 5", r, err)
	}
	if _, err := vs.SetVersionState(ctx(t), shared.SetVersionStateRequest{Key: ref, Version: "5", State: shared.VersionRetired}); err != nil {
		t.Fatalf("retire pending 5: %v", err)
	}
	wantStates(t, p, ref, map[string]shared.VersionState{"1": shared.VersionRetired, "2": shared.VersionRetiring, "3": shared.VersionRetiring, "4": shared.VersionActive, "5": shared.VersionRetired})
	keys, err := p.ListKeys(ctx(t), shared.ListKeysRequest{Params: statesParams()})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.KeyID == ref.ID && k.CurrentVersion != "4" {
			t.Errorf("ListKeys: %s current version %s; want the active 4", k.KeyID, k.CurrentVersion)
		}
	}
}

// TestVersionStatesUnrecordedVersionIsPending: a Transit version the
// states do not name (a rotation that crashed before recording it, or
// one made outside knhk) reads as pending since Transit made it, so it
// cannot sign through the host until promoted; promoting records it.
func TestVersionStatesUnrecordedVersionIsPending(t *testing.T) {
	p := newProvider(t)
	name := keyName("unrecorded")
	ref := shared.KeyRef{ID: "transit/" + name, Params: statesParams()}
	create(t, p, ref.ID, shared.ECP256, ref.Params)
	if _, err := p.RotateKey(ctx(t), shared.RotateKeyRequest{Key: ref, Pending: true}); err != nil {
		t.Fatal(err)
	}
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("transit/keys/"+name+"/rotate", nil); err != nil {
		t.Fatal(err)
	}
	states := wantStates(t, p, ref, map[string]shared.VersionState{"1": shared.VersionActive, "2": shared.VersionPending, "3": shared.VersionPending})
	if e, _ := states.Entry("3"); e.Since.IsZero() {
		t.Errorf("unrecorded version 3 has no since (want Transit's creation time)")
	}
	if cur := currentVersion(t, p, ref); cur != "1" {
		t.Errorf("current version = %s; want the active 1", cur)
	}
	if _, err := stater(t, p).SetVersionState(ctx(t), shared.SetVersionStateRequest{Key: ref, Version: "3", State: shared.VersionActive}); err != nil {
		t.Fatalf("promote the unrecorded version: %v", err)
	}
	wantStates(t, p, ref, map[string]shared.VersionState{"1": shared.VersionRetiring, "2": shared.VersionPending, "3": shared.VersionActive})
}

// TestVersionStatesConcurrentPromotions: two providers (two clients, as
// two hosts have) promote and retire the same key's versions at once,
// while a third reads; check-and-set means every state any of them sees
// has exactly one active version and no change is lost.
func TestVersionStatesConcurrentPromotions(t *testing.T) {
	a, b, reader := newProvider(t), newProvider(t), newProvider(t)
	ref := shared.KeyRef{ID: "transit/" + keyName("race"), Params: statesParams()}
	create(t, a, ref.ID, shared.ECP256, ref.Params)
	const pending = 8
	for range pending {
		if _, err := a.RotateKey(ctx(t), shared.RotateKeyRequest{Key: ref, Pending: true}); err != nil {
			t.Fatal(err)
		}
	}
	var (
		wg      sync.WaitGroup
		done    = make(chan struct{})
		mu      sync.Mutex
		results = map[string][]string{} // version -> outcomes
	)
	record := func(v, outcome string) {
		mu.Lock()
		results[v] = append(results[v], outcome)
		mu.Unlock()
	}
	wg.Add(1)
	go func() { // a reader: every state it sees has exactly one active version
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			got, err := stater(t, reader).GetVersionStates(ctx(t), shared.GetVersionStatesRequest{Key: ref})
			if err == nil {
				err = got.Check()
			}
			if err != nil {
				t.Errorf("a reader during the races: %v (states %v)", err, stateMap(got))
				return
			}
		}
	}()
	var writers sync.WaitGroup
	for i, p := range []shared.Provider{a, b} {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for n := range pending {
				v := fmt.Sprint(n + 2)
				if i == 1 {
					v = fmt.Sprint(pending + 1 - n) // the other end first
				}
				got, err := stater(t, p).SetVersionState(ctx(t), shared.SetVersionStateRequest{Key: ref, Version: v, State: shared.VersionActive})
				switch {
				case err == nil:
					if cerr := got.Check(); cerr != nil || got.Active() != v {
						t.Errorf("promote %s returned %v (active %s): %v", v, stateMap(got), got.Active(), cerr)
					}
					record(v, "promoted")
				case errors.Is(err, shared.ErrFailedPrecondition): // already promoted past by the other
					record(v, "refused")
				default:
					t.Errorf("promote %s: %v", v, err)
				}
			}
		}()
	}
	writers.Wait()
	close(done)
	wg.Wait()
	final := wantStatesCheck(t, reader, ref)
	// Every version was promoted at least once, and a version is active
	// only if no later promotion succeeded after it: whatever the order,
	// the states end with one active version, every other retiring
	// (version 1 too), nothing pending.
	for v := 2; v <= pending+1; v++ {
		if out := results[fmt.Sprint(v)]; len(out) != 2 || !slices.Contains(out, "promoted") {
			t.Errorf("version %d: outcomes %v; want one from each provider, at least one promoted (the first finds it pending)", v, out)
		}
	}
	for _, e := range final.Versions {
		if e.Version != final.Active() && e.State != shared.VersionRetiring {
			t.Errorf("version %s is %s after every version was promoted; want retiring (final %v)", e.Version, e.State, stateMap(final))
		}
	}
	t.Logf("outcomes %v; final %v", results, stateMap(final))

	// Retiring and promoting at once: one retire per retiring version
	// from each side; a retry of a done change is a no-op, not an error.
	var retires sync.WaitGroup
	for _, p := range []shared.Provider{a, b} {
		retires.Add(1)
		go func() {
			defer retires.Done()
			for _, e := range final.Versions {
				if e.State != shared.VersionRetiring {
					continue
				}
				if _, err := stater(t, p).SetVersionState(ctx(t), shared.SetVersionStateRequest{Key: ref, Version: e.Version, State: shared.VersionRetired}); err != nil {
					t.Errorf("retire %s: %v", e.Version, err)
				}
			}
		}()
	}
	retires.Wait()
	after := wantStatesCheck(t, reader, ref)
	for _, e := range after.Versions {
		if e.Version != final.Active() && e.State != shared.VersionRetired {
			t.Errorf("version %s is %s after both retired it", e.Version, e.State)
		}
	}
}

// wantStatesCheck reads states that must exist and pass the rules.
func wantStatesCheck(t *testing.T, p shared.Provider, ref shared.KeyRef) shared.VersionStates {
	t.Helper()
	got, err := stater(t, p).GetVersionStates(ctx(t), shared.GetVersionStatesRequest{Key: ref})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Has() {
		t.Fatal("the key has no states")
	}
	if err := got.Check(); err != nil {
		t.Fatalf("states %v: %v", stateMap(got), err)
	}
	return got
}

// TestVersionStatesNotConfigured: without version_states the capability
// is claimed, keys have no states, and a pending rotation or a state
// change is ErrFailedPrecondition naming what to set, before Transit
// rotates anything. A KV path with no KV v2 engine, a KV version 1
// engine or one the token may not use is ErrFailedPrecondition too, and
// a key without states under a good path cannot have a state set.
func TestVersionStatesNotConfigured(t *testing.T) {
	p := newProvider(t)
	vs := stater(t, p)
	d, err := p.Describe(ctx(t))
	if err != nil || !d.Has(shared.CapVersionStates) {
		t.Fatalf("Describe = %v, %v; want version_states claimed", d.Capabilities, err)
	}
	id := "transit/" + keyName("nostates")
	create(t, p, id, shared.ECP256, params())
	plain := shared.KeyRef{ID: id, Params: params()}
	if got, err := vs.GetVersionStates(ctx(t), shared.GetVersionStatesRequest{Key: plain}); err != nil || got.Has() {
		t.Fatalf("GetVersionStates without version_states = %v, %v; want none", got, err)
	}
	_, err = p.RotateKey(ctx(t), shared.RotateKeyRequest{Key: plain, Pending: true})
	wantConfigError(t, "RotateKey pending without version_states", err, "version_states", vault.EnvVersionStates)
	_, err = vs.SetVersionState(ctx(t), shared.SetVersionStateRequest{Key: plain, Version: "1", State: shared.VersionActive})
	wantConfigError(t, "SetVersionState without version_states", err, "version_states", vault.EnvVersionStates)
	if cur := currentVersion(t, p, plain); cur != "1" {
		t.Errorf("a refused pending rotation rotated the key: current version %s", cur)
	}

	// Paths that cannot hold states.
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	kv1 := keyName("kv1")
	if err := c.Sys().Mount(kv1, &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Policy("knhk-no-kv", signerPolicy+`path "secret/data/elsewhere/*" { capabilities = ["read", "create", "update"] }`); err != nil {
		t.Fatal(err)
	}
	tok, err := srv.Token(&api.TokenCreateRequest{Policies: []string{"knhk-no-kv"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		prm  map[string]string
		says string
	}{
		{"no engine", params("version_states", keyName("nowhere")+"/states"), "no secrets engine"},
		{"KV version 1", params("version_states", kv1+"/states"), "not KV version 2"},
		{"a token without access", params("version_states", statesPath, "token_file", writeFile(t, tok)), "must be allowed to read, create and update"},
	} {
		ref := shared.KeyRef{ID: id, Params: tc.prm}
		_, err := p.RotateKey(ctx(t), shared.RotateKeyRequest{Key: ref, Pending: true})
		wantConfigError(t, tc.name+": RotateKey pending", err, tc.says)
		_, err = vs.GetVersionStates(ctx(t), shared.GetVersionStatesRequest{Key: ref})
		wantConfigError(t, tc.name+": GetVersionStates", err, tc.says)
		if err != nil {
			assertNoSecrets(t, err.Error(), tok, srv.RootToken)
			t.Logf("%s: %v", tc.name, err)
		}
	}
	if cur := currentVersion(t, p, plain); cur != "1" {
		t.Errorf("a refused pending rotation rotated the key: current version %s", cur)
	}
	_, err = vs.SetVersionState(ctx(t), shared.SetVersionStateRequest{Key: shared.KeyRef{ID: id, Params: statesParams()}, Version: "1", State: shared.VersionActive})
	wantConfigError(t, "SetVersionState on a key without states", err, "rotate it with pending first")
	_, err = p.RotateKey(ctx(t), shared.RotateKeyRequest{Key: shared.KeyRef{ID: id, Params: params("version_states", "../states")}})
	if !errors.Is(err, shared.ErrInvalidArgument) {
		t.Errorf("version_states=../states: %v; want ErrInvalidArgument", err)
	}
}

// wantConfigError checks err is ErrFailedPrecondition saying all of says.
func wantConfigError(t *testing.T, what string, err error, says ...string) {
	t.Helper()
	if !errors.Is(err, shared.ErrFailedPrecondition) {
		t.Errorf("%s: %v; want ErrFailedPrecondition", what, err)
		return
	}
	for _, s := range says {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%s: %q does not say %q", what, err, s)
		}
	}
}

// newHostWith starts a host with cfg that finds the built
// knhk-plugin-vault.
func newHostWith(t *testing.T, cfg host.Config) *host.Host {
	t.Helper()
	cfg.PluginDirs = append(cfg.PluginDirs, filepath.Dir(pluginBin))
	h, err := host.New(ctx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// TestVersionStatesThroughHost: through the plugin binary and the host,
// a pending version is published but the host refuses to sign with it
// and signs with the active one; after promotion a second host signs
// with the new version; a retired version's signatures stop verifying.
func TestVersionStatesThroughHost(t *testing.T) {
	r := ref("transit/"+keyName("host-states"), "version_states", statesPath)
	h := newHostWith(t, host.Config{})
	k, err := h.CreateKey(ctx(t), r, shared.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("states through the host"))
	old, err := k.SignDigest(ctx(t), d[:], host.SignOptions{})
	if err != nil || old.Version != "1" {
		t.Fatalf("sign before states = %q, %v", old.Version, err)
	}
	v2, err := k.RotatePending(ctx(t))
	if err != nil || v2 != "2" {
		t.Fatalf("RotatePending = %q, %v; want 2", v2, err)
	}
	pk2, err := k.PublicKey(ctx(t), v2)
	if err != nil {
		t.Fatalf("public key of the pending version: %v", err)
	}
	if _, err := k.SignDigest(ctx(t), d[:], host.SignOptions{Version: v2}); !errors.Is(err, shared.ErrFailedPrecondition) {
		t.Fatalf("host sign with the pending version: %v; want ErrFailedPrecondition", err)
	}
	s, err := k.SignDigest(ctx(t), d[:], host.SignOptions{})
	if err != nil || s.Version != "1" {
		t.Fatalf("host sign while 2 is pending = version %q, %v; want the active 1", s.Version, err)
	}
	infos, err := k.Versions(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]shared.VersionState{}
	for _, i := range infos {
		got[i.Version] = i.State
		if i.SPKISHA256 == "" || i.Current != (i.Version == "1") {
			t.Errorf("version %+v: want a fingerprint, current only for 1", i)
		}
	}
	if !maps.Equal(got, map[string]shared.VersionState{"1": shared.VersionActive, "2": shared.VersionPending}) {
		t.Fatalf("Versions = %v", got)
	}

	if err := k.Promote(ctx(t), v2); err != nil {
		t.Fatalf("promote: %v", err)
	}
	// A second host, sharing the key through the same KV secret.
	h2 := newHostWith(t, host.Config{VersionStatesTTL: -1})
	k2, err := h2.Key(ctx(t), r)
	if err != nil {
		t.Fatal(err)
	}
	for i, key := range []*host.Key{k, k2} {
		s, err := key.SignDigest(ctx(t), d[:], host.SignOptions{})
		if err != nil || s.Version != v2 {
			t.Fatalf("host %d sign after promotion = version %q, %v; want %s", i+1, s.Version, err, v2)
		}
		if err := shared.VerifyDigest(pk2.Key, s.Algorithm, d[:], s.Signature); err != nil {
			t.Fatalf("host %d signature against version 2's public key: %v", i+1, err)
		}
	}
	if err := k2.VerifyDigest(ctx(t), d[:], old.Signature, host.SignOptions{Version: "1"}); err != nil {
		t.Fatalf("a version 1 signature while it is retiring: %v", err)
	}
	if err := k2.Retire(ctx(t), "1"); err != nil {
		t.Fatalf("retire 1: %v", err)
	}
	// The second host caches no states; the first may trust its cache
	// (VersionStatesTTL) a few seconds longer.
	if err := k2.VerifyDigest(ctx(t), d[:], old.Signature, host.SignOptions{Version: "1"}); !errors.Is(err, shared.ErrBadSignature) {
		t.Fatalf("a version 1 signature once retired: %v; want ErrBadSignature", err)
	}
}

// TestPromotionWorkflow runs the host's promotion workflow kit against
// the real Vault, with states in KV version 2.
func TestPromotionWorkflow(t *testing.T) {
	p := newProvider(t)
	id := "transit/" + keyName("promotion")
	create(t, p, id, shared.ECP256, params())
	promotiontest.Run(t, newHostWith, ref(id, "version_states", statesPath))
}

// TestVersionStatesMountGone: once the KV engine holding a key's states
// is disabled, the states are an error, not gone: Vault answers a path
// under a missing mount as a missing secret, which would otherwise make
// the pending version the latest that signs.
func TestVersionStatesMountGone(t *testing.T) {
	p := newProvider(t)
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	mount := keyName("kvgone")
	if err := c.Sys().Mount(mount, &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	id := "transit/" + keyName("gone")
	ref := shared.KeyRef{ID: id, Params: params("version_states", mount+"/states")}
	create(t, p, id, shared.ECP256, ref.Params)
	if _, err := p.RotateKey(ctx(t), shared.RotateKeyRequest{Key: ref, Pending: true}); err != nil {
		t.Fatal(err)
	}
	wantStates(t, p, ref, map[string]shared.VersionState{"1": shared.VersionActive, "2": shared.VersionPending})
	if err := c.Sys().Unmount(mount); err != nil {
		t.Fatal(err)
	}
	_, err = stater(t, p).GetVersionStates(ctx(t), shared.GetVersionStatesRequest{Key: ref})
	wantConfigError(t, "GetVersionStates once the engine is gone", err, "no secrets engine")
	if _, err := p.KeyMetadata(ctx(t), shared.KeyMetadataRequest{Key: ref}); !errors.Is(err, shared.ErrFailedPrecondition) {
		t.Errorf("KeyMetadata once the engine is gone: %v; want ErrFailedPrecondition", err)
	}
}

// TestVersionStatesDefaultVersion: without a version, Sign, SignBatch,
// Verify and PublicKey use the active version of a key with states, as
// KeyMetadata's current version says, never a pending one.
func TestVersionStatesDefaultVersion(t *testing.T) {
	p := newProvider(t)
	ref := shared.KeyRef{ID: "transit/" + keyName("default"), Params: statesParams()}
	create(t, p, ref.ID, shared.ECP256, ref.Params)
	if _, err := p.RotateKey(ctx(t), shared.RotateKeyRequest{Key: ref, Pending: true}); err != nil {
		t.Fatal(err)
	}
	check := func(want string) {
		t.Helper()
		d := sha256.Sum256([]byte("default version"))
		s, err := p.Sign(ctx(t), shared.SignRequest{Key: ref, Algorithm: shared.ES256, Digest: d[:]})
		if err != nil || s.Version != want {
			t.Fatalf("Sign without a version = version %q, %v; want %s", s.Version, err, want)
		}
		pk, err := p.PublicKey(ctx(t), shared.PublicKeyRequest{Key: ref})
		if err != nil || pk.Version != want {
			t.Fatalf("PublicKey without a version = version %q, %v; want %s", pk.Version, err, want)
		}
		v, err := p.Verify(ctx(t), shared.VerifyRequest{Key: ref, Algorithm: shared.ES256, Digest: d[:], Signature: s.Signature})
		if err != nil || !v.Valid || v.Version != want {
			t.Fatalf("Verify without a version = %+v, %v; want valid against %s", v, err, want)
		}
		var got shared.SignResult
		p.(shared.BatchSigner).SignBatch(ctx(t), []shared.SignRequest{{Key: ref, Algorithm: shared.ES256, Digest: d[:]}}, func(_ int, r shared.SignResult) { got = r })
		if got.Err != nil || got.Response.Version != want {
			t.Fatalf("SignBatch without a version = version %q, %v; want %s", got.Response.Version, got.Err, want)
		}
	}
	check("1")
	if _, err := stater(t, p).SetVersionState(ctx(t), shared.SetVersionStateRequest{Key: ref, Version: "2", State: shared.VersionActive}); err != nil {
		t.Fatal(err)
	}
	check("2")
}
