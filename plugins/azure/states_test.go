package azure_test

import (
	"context"
	"errors"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/hashicorp/go-hclog"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/host/promotiontest"
	"github.com/knhk/knhk/plugins/azure"
	"github.com/knhk/knhk/plugins/azure/internal/kvtest"
	"github.com/knhk/knhk/shared"
)

// states reads a key's version states through the provider and checks
// them (exactly one active version).
func (e *env) states(t *testing.T, name string) shared.VersionStates {
	t.Helper()
	vs, err := e.p.(shared.VersionStater).GetVersionStates(context.Background(), shared.GetVersionStatesRequest{Key: e.ref(name)})
	if err != nil {
		t.Fatalf("GetVersionStates(%s): %v", name, err)
	}
	if err := vs.Check(); err != nil {
		t.Fatalf("GetVersionStates(%s) = %+v: %v", name, vs, err)
	}
	return vs
}

// setState moves a version through the provider.
func (e *env) setState(name, version string, st shared.VersionState) (shared.VersionStates, error) {
	return e.p.(shared.VersionStater).SetVersionState(context.Background(), shared.SetVersionStateRequest{Key: e.ref(name), Version: version, State: st})
}

// wantStates checks every version's state, in order (oldest first).
func wantStates(t *testing.T, vs shared.VersionStates, want ...any) {
	t.Helper()
	if len(vs.Versions) != len(want)/2 {
		t.Fatalf("states = %+v, want %v", vs.Versions, want)
	}
	for i, e := range vs.Versions {
		if e.Version != want[2*i].(string) || e.State != want[2*i+1].(shared.VersionState) {
			t.Fatalf("states = %+v, want %v", vs.Versions, want)
		}
		if e.Since.IsZero() {
			t.Errorf("version %s has no since time", e.Version)
		}
	}
}

// tagState sets a version's state tags directly in the vault, as a
// plugin stopped halfway (or another tool) would leave them.
func tagState(t *testing.T, kv *azkeys.Client, name, version string, st shared.VersionState, since time.Time) {
	t.Helper()
	tags := map[string]*string{
		azure.TagVersionState:      to.Ptr(string(st)),
		azure.TagVersionStateSince: to.Ptr(since.UTC().Format(time.RFC3339Nano)),
		azure.TagVersionStateOf:    to.Ptr(version),
	}
	if _, err := kv.UpdateKey(context.Background(), name, version, azkeys.UpdateKeyParameters{Tags: tags}, nil); err != nil {
		t.Fatal(err)
	}
}

// TestVersionStatesPendingRotate rotates with pending through the
// provider: the current version becomes active, the new one pending and
// still able to sign when named; then promotes and retires, checking the
// moves the provider refuses.
func TestVersionStatesPendingRotate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	d, err := e.p.Describe(ctx)
	if err != nil || !d.Has(shared.CapVersionStates) {
		t.Fatalf("Describe = %+v, %v; want the version_states capability", d.Capabilities, err)
	}
	v1 := e.create(t, "vs", shared.ECP256).Version
	if vs := e.states(t, "vs"); vs.Has() {
		t.Fatalf("a new key has states %+v, want none", vs)
	}
	if _, err := e.setState("vs", v1, shared.VersionActive); !errors.Is(err, shared.ErrFailedPrecondition) {
		t.Errorf("SetVersionState on a key without states = %v, want ErrFailedPrecondition", err)
	}
	// A plain rotation of a key without states: the new version is
	// Key Vault's current and no states appear.
	v2 := rotate(t, e, "vs", false)
	if vs := e.states(t, "vs"); vs.Has() {
		t.Fatalf("a plain rotation gave the key states %+v", vs)
	}

	before := time.Now().Add(-time.Second)
	v3 := rotate(t, e, "vs", true)
	vs := e.states(t, "vs")
	wantStates(t, vs, v1, shared.VersionRetiring, v2, shared.VersionActive, v3, shared.VersionPending)
	if p, _ := vs.Entry(v3); p.Since.Before(before) || p.Since.After(time.Now()) {
		t.Errorf("pending since %v, want about now", p.Since)
	}
	md, err := e.p.KeyMetadata(ctx, shared.KeyMetadataRequest{Key: e.ref("vs")})
	if err != nil || md.CurrentVersion != v2 || len(md.Versions) != 3 || md.Versions[2].Version != v3 {
		t.Fatalf("KeyMetadata = %+v, %v; want current %s (the active one) and 3 versions", md, err, v2)
	}
	keys, err := e.p.ListKeys(ctx, shared.ListKeysRequest{Params: map[string]string{"ca_file": e.srv.CAFile, "vault_url": e.srv.URL}})
	if err != nil || len(keys) != 1 || keys[0].CurrentVersion != v2 {
		t.Errorf("ListKeys = %+v, %v; want current %s", keys, err, v2)
	}

	// The provider signs with any version named, the pending one too.
	digest, _ := shared.Digest(shared.ES256, []byte("canary"))
	sig, err := e.p.Sign(ctx, shared.SignRequest{Key: e.ref("vs"), Version: v3, Algorithm: shared.ES256, Digest: digest})
	if err != nil || sig.Version != v3 {
		t.Fatalf("Sign with the pending version = %+v, %v", sig, err)
	}
	pk3 := publicKey(t, e, "vs", v3)
	if err := shared.VerifyDigest(pk3, shared.ES256, digest, sig.Signature); err != nil {
		t.Errorf("the pending version's signature does not verify: %v", err)
	}

	// Refused moves; the states do not change.
	for _, c := range []struct {
		version string
		state   shared.VersionState
		want    error
	}{
		{v2, shared.VersionRetiring, shared.ErrFailedPrecondition},
		{v2, shared.VersionRetired, shared.ErrFailedPrecondition},
		{v1, shared.VersionActive, shared.ErrFailedPrecondition},
		{v1, shared.VersionPending, shared.ErrFailedPrecondition},
		{"0123456789abcdef0123456789abcdef", shared.VersionActive, shared.ErrKeyNotFound},
	} {
		if _, err := e.setState("vs", c.version, c.state); !errors.Is(err, c.want) {
			t.Errorf("SetVersionState(%s, %s) = %v, want %v", c.version, c.state, err, c.want)
		}
	}
	pendingSince, _ := e.states(t, "vs").Entry(v3)

	// Promote: v3 active, v2 retiring.
	vs, err = e.setState("vs", v3, shared.VersionActive)
	if err != nil {
		t.Fatal(err)
	}
	wantStates(t, vs, v1, shared.VersionRetiring, v2, shared.VersionRetiring, v3, shared.VersionActive)
	if a, _ := vs.Entry(v3); !a.Since.After(pendingSince.Since) {
		t.Errorf("active since %v, not after pending since %v", a.Since, pendingSince.Since)
	}
	// Repeating it is a no-op that keeps the time.
	again, err := e.setState("vs", v3, shared.VersionActive)
	if a, b := vs.Versions[2], again.Versions[2]; err != nil || !a.Since.Equal(b.Since) {
		t.Errorf("promoting again = %+v, %v; want the same since %v", b, err, a.Since)
	}
	md, err = e.p.KeyMetadata(ctx, shared.KeyMetadataRequest{Key: e.ref("vs")})
	if err != nil || md.CurrentVersion != v3 {
		t.Errorf("KeyMetadata current = %q, %v; want %s", md.CurrentVersion, err, v3)
	}

	// Retire v1; a retired version stays retired.
	vs, err = e.setState("vs", v1, shared.VersionRetired)
	if err != nil {
		t.Fatal(err)
	}
	wantStates(t, vs, v1, shared.VersionRetired, v2, shared.VersionRetiring, v3, shared.VersionActive)
	if _, err := e.setState("vs", v1, shared.VersionRetiring); !errors.Is(err, shared.ErrFailedPrecondition) {
		t.Errorf("un-retiring = %v, want ErrFailedPrecondition", err)
	}

	// A plain rotation of a key with states: the new version is active
	// at once, the old active one retiring.
	v4 := rotate(t, e, "vs", false)
	wantStates(t, e.states(t, "vs"), v1, shared.VersionRetired, v2, shared.VersionRetiring, v3, shared.VersionRetiring, v4, shared.VersionActive)

	// A pending version may be abandoned.
	v5 := rotate(t, e, "vs", true)
	if _, err := e.setState("vs", v5, shared.VersionRetired); err != nil {
		t.Fatal(err)
	}
	wantStates(t, e.states(t, "vs"), v1, shared.VersionRetired, v2, shared.VersionRetiring, v3, shared.VersionRetiring, v4, shared.VersionActive, v5, shared.VersionRetired)
}

// TestVersionStateTags checks what the provider keeps in Key Vault: three
// tags on every version, naming it, next to the key's own tags, which
// survive every state change.
func TestVersionStateTags(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	kv := e.azkeysClient(t)
	v1 := e.create(t, "tg", shared.RSA2048).Version
	if _, err := kv.UpdateKey(ctx, "tg", v1, azkeys.UpdateKeyParameters{Tags: map[string]*string{"team": to.Ptr("release")}}, nil); err != nil {
		t.Fatal(err)
	}
	v2 := rotate(t, e, "tg", true)
	if _, err := e.setState("tg", v2, shared.VersionActive); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{v1: "retiring", v2: "active"}
	for v, st := range want {
		kb, err := kv.GetKey(ctx, "tg", v, nil)
		if err != nil {
			t.Fatal(err)
		}
		tags := kb.Tags
		if val(tags[azure.TagVersionState]) != st || val(tags[azure.TagVersionStateOf]) != v || val(tags["team"]) != "release" {
			t.Errorf("version %s tags = %v, want state %s, of %s and team=release", v, strs(tags), st, v)
		}
		if _, err := time.Parse(time.RFC3339Nano, val(tags[azure.TagVersionStateSince])); err != nil {
			t.Errorf("version %s since tag: %v", v, err)
		}
	}
	// Key Vault allows 15 tags; a version with 13 of its own has no room.
	many := map[string]*string{}
	for i := 0; i < 13; i++ {
		many[string(rune('a'+i))] = to.Ptr("x")
	}
	if _, err := kv.UpdateKey(ctx, "tg", v1, azkeys.UpdateKeyParameters{Tags: many}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.setState("tg", v1, shared.VersionRetired); !errors.Is(err, shared.ErrFailedPrecondition) || !contains(err, "15") {
		t.Errorf("tagging a version with 13 tags = %v, want ErrFailedPrecondition naming the limit", err)
	}
}

// TestVersionStatesCrashSafe sets up, directly in the vault, what a
// plugin stopped between two writes leaves, and checks each still reads
// as exactly one active version, and that finishing the operation works.
func TestVersionStatesCrashSafe(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	kv := e.azkeysClient(t)
	v1 := e.create(t, "cs", shared.ECP256).Version
	v2 := rotate(t, e, "cs", false)

	// A first pending rotation stopped after tagging the older version
	// retiring: no active version, so no states yet.
	tagState(t, kv, "cs", v1, shared.VersionRetiring, time.Now())
	if vs := e.states(t, "cs"); vs.Has() {
		t.Fatalf("states after a stopped start = %+v, want none", vs)
	}
	// Stopped after tagging the current version active, before rotating:
	// states, no pending version yet.
	tagState(t, kv, "cs", v2, shared.VersionActive, time.Now())
	wantStates(t, e.states(t, "cs"), v1, shared.VersionRetiring, v2, shared.VersionActive)
	// Stopped after rotating, before tagging the new version: Key Vault
	// copied v2's tags to it; they name v2, so the new version is pending
	// (since its creation), not a second active one.
	rot, err := kv.RotateKey(ctx, "cs", nil)
	if err != nil {
		t.Fatal(err)
	}
	v3 := rot.Key.KID.Version()
	if val(rot.Tags[azure.TagVersionState]) != "active" {
		t.Fatalf("the test vault's rotation did not copy the tags: %v", strs(rot.Tags))
	}
	vs := e.states(t, "cs")
	wantStates(t, vs, v1, shared.VersionRetiring, v2, shared.VersionActive, v3, shared.VersionPending)
	if p, _ := vs.Entry(v3); !p.Since.Equal(rot.Attributes.Created.UTC()) {
		t.Errorf("untagged pending since %v, want its creation %v", p.Since, rot.Attributes.Created)
	}

	// A promotion stopped after its first write: v3 and v2 both tagged
	// active. The later since wins; v2 reads as retiring.
	promoted := time.Now()
	tagState(t, kv, "cs", v3, shared.VersionActive, promoted)
	vs = e.states(t, "cs")
	wantStates(t, vs, v1, shared.VersionRetiring, v2, shared.VersionRetiring, v3, shared.VersionActive)
	if r, _ := vs.Entry(v2); !r.Since.Equal(promoted.UTC()) {
		t.Errorf("half-promoted old version retiring since %v, want the promotion's %v", r.Since, promoted.UTC())
	}
	// Another host of the same vault reads the same.
	other := &env{srv: e.srv, params: e.params, p: shared.Validate(azure.New(azure.Config{Credential: &countingCred{token: e.srv.Token}}))}
	if got := other.states(t, "cs").Active(); got != v3 {
		t.Errorf("a second provider reads active %s, want %s", got, v3)
	}
	// The active version cannot be re-promoted over v3...
	if _, err := e.setState("cs", v2, shared.VersionActive); !errors.Is(err, shared.ErrFailedPrecondition) {
		t.Errorf("promoting the half-demoted version = %v, want ErrFailedPrecondition", err)
	}
	// ...and promoting v3 again finishes the job: v2's own tag says retiring.
	if _, err := e.setState("cs", v3, shared.VersionActive); err != nil {
		t.Fatal(err)
	}
	if kb, err := kv.GetKey(ctx, "cs", v2, nil); err != nil || val(kb.Tags[azure.TagVersionState]) != "retiring" {
		t.Errorf("v2's tag after finishing the promotion = %v, %v; want retiring", strs(kb.Tags), err)
	}
	wantStates(t, e.states(t, "cs"), v1, shared.VersionRetiring, v2, shared.VersionRetiring, v3, shared.VersionActive)

	// A clock behind: the active version's since is an hour ahead. The
	// next promotion still wins, even if it stops halfway.
	future := time.Now().Add(time.Hour)
	tagState(t, kv, "cs", v3, shared.VersionActive, future)
	v4 := rotate(t, e, "cs", true)
	vs, err = e.setState("cs", v4, shared.VersionActive)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := vs.Entry(v4); vs.Active() != v4 || !a.Since.After(future) {
		t.Errorf("after promoting against a clock ahead: active %s since %v, want %s after %v", vs.Active(), a.Since, v4, future)
	}
	tagState(t, kv, "cs", v3, shared.VersionActive, future) // as if the demotion never happened
	if got := e.states(t, "cs").Active(); got != v4 {
		t.Errorf("active = %s, want %s", got, v4)
	}

	// Tags that do not parse are no state: an unknown state, or a time
	// that is not RFC 3339, make the version pending (since creation).
	tagState(t, kv, "cs", v1, "bogus", time.Now())
	if st, _ := e.states(t, "cs").State(v1); st != shared.VersionPending {
		t.Errorf("a version with an unknown state tag reads %s, want pending", st)
	}
}

// TestVersionStatesThroughHost drives states through the host (the
// built plugin): pending cannot sign, the active version signs, promote,
// retire, and a second host agrees.
func TestVersionStatesThroughHost(t *testing.T) {
	srv := newVault(t)
	ctx := context.Background()
	ha := newStatesHost(t, srv, host.Config{})
	ref := "azure:" + srv.KeyID("hvs") + "?ca_file=" + url.QueryEscape(srv.CAFile)
	k, err := ha.CreateKey(ctx, ref, shared.ECP384)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := shared.Digest(shared.ES384, []byte("release"))
	opts := host.SignOptions{Algorithm: shared.ES384}
	first, err := k.SignDigest(ctx, digest, opts)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := k.RotatePending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.SignDigest(ctx, digest, host.SignOptions{Algorithm: shared.ES384, Version: v2}); !errors.Is(err, shared.ErrFailedPrecondition) {
		t.Errorf("host signing with the pending version = %v, want ErrFailedPrecondition", err)
	}
	sig, err := k.SignDigest(ctx, digest, opts)
	if err != nil || sig.Version != first.Version {
		t.Fatalf("host signing while %s is pending = %+v, %v; want the active %s", v2, sig, err, first.Version)
	}
	hostStates(t, k, first.Version, shared.VersionActive, v2, shared.VersionPending)

	if err := k.Promote(ctx, v2); err != nil {
		t.Fatal(err)
	}
	sig, err = k.SignDigest(ctx, digest, opts)
	if err != nil || sig.Version != v2 {
		t.Fatalf("host signing after promotion = %+v, %v; want %s", sig, err, v2)
	}
	pk, err := k.PublicKey(ctx, v2)
	if err != nil {
		t.Fatal(err)
	}
	if err := shared.VerifyDigest(pk.Key, shared.ES384, digest, sig.Signature); err != nil {
		t.Errorf("the promoted version's signature does not verify: %v", err)
	}
	if err := k.VerifyDigest(ctx, digest, first.Signature, host.SignOptions{Algorithm: shared.ES384, Version: first.Version}); err != nil {
		t.Errorf("an old signature while its version is retiring: %v", err)
	}

	// A second host, no state cache: same active version.
	hb := newStatesHost(t, srv, host.Config{VersionStatesTTL: -1})
	kb, err := hb.Key(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	sigB, err := kb.SignDigest(ctx, digest, opts)
	if err != nil || sigB.Version != v2 {
		t.Fatalf("second host signed with %+v, %v; want %s", sigB, err, v2)
	}
	hostStates(t, kb, first.Version, shared.VersionRetiring, v2, shared.VersionActive)

	if err := k.Retire(ctx, first.Version); err != nil {
		t.Fatal(err)
	}
	if err := kb.VerifyDigest(ctx, digest, first.Signature, host.SignOptions{Algorithm: shared.ES384, Version: first.Version}); !errors.Is(err, shared.ErrBadSignature) {
		t.Errorf("an old signature once retired (second host) = %v, want ErrBadSignature", err)
	}
}

// TestPromotionWorkflow runs the shared promotion workflow kit against
// the built plugin and the test vault.
func TestPromotionWorkflow(t *testing.T) {
	srv := newVault(t)
	ref := "azure:" + srv.KeyID("promo") + "?ca_file=" + url.QueryEscape(srv.CAFile)
	newHost := func(t *testing.T, cfg host.Config) *host.Host { return newStatesHost(t, srv, cfg) }
	if _, err := newHost(t, host.Config{}).CreateKey(context.Background(), ref, shared.RSA2048); err != nil {
		t.Fatal(err)
	}
	promotiontest.Run(t, newHost, ref)
}

// newStatesHost starts a host with cfg that runs the built plugin against
// srv.
func newStatesHost(t *testing.T, srv *kvtest.Server, cfg host.Config) *host.Host {
	t.Helper()
	t.Setenv("AZURE_AUTH_TOKEN", srv.Token)
	cfg.PluginDirs = append(cfg.PluginDirs, filepath.Dir(pluginBin))
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "knhk", Level: hclog.Warn})
	}
	h, err := host.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// hostStates checks the host's view of the versions' states.
func hostStates(t *testing.T, k *host.Key, want ...any) {
	t.Helper()
	vs, err := k.Versions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != len(want)/2 {
		t.Fatalf("versions = %+v, want %v", vs, want)
	}
	for i, v := range vs {
		if v.Version != want[2*i].(string) || v.State != want[2*i+1].(shared.VersionState) || v.Current != (v.State == shared.VersionActive) {
			t.Fatalf("versions = %+v, want %v (current = active)", vs, want)
		}
	}
}

// rotate rotates a key through the provider, with or without pending.
func rotate(t *testing.T, e *env, name string, pending bool) string {
	t.Helper()
	r, err := e.p.RotateKey(context.Background(), shared.RotateKeyRequest{Key: e.ref(name), Pending: pending})
	if err != nil {
		t.Fatalf("RotateKey(%s, pending=%v): %v", name, pending, err)
	}
	return r.Version
}

// publicKey is a version's public key, through the provider.
func publicKey(t *testing.T, e *env, name, version string) any {
	t.Helper()
	pk, err := e.p.PublicKey(context.Background(), shared.PublicKeyRequest{Key: e.ref(name), Version: version})
	if err != nil || pk.Version != version {
		t.Fatalf("PublicKey(%s, %s) = %s, %v", name, version, pk.Version, err)
	}
	pub, _, err := shared.ParsePublicKey(pk.DER)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func val(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func strs(m map[string]*string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = val(v)
	}
	return out
}
