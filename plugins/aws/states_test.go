package aws_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/host/promotiontest"
	"github.com/knhk/knhk/plugins/aws"
	"github.com/knhk/knhk/plugins/aws/internal/localkms"
	"github.com/knhk/knhk/shared"
)

// vs is the in-process provider as a VersionStater (shared.Validate
// serves both operations for a provider that claims the capability).
func (e *env) vs(t *testing.T) shared.VersionStater {
	t.Helper()
	vs, ok := e.p.(shared.VersionStater)
	if !ok {
		t.Fatal("the validated provider is not a VersionStater")
	}
	return vs
}

// states reads a key's version states through the provider.
func (e *env) states(t *testing.T, id string) shared.VersionStates {
	t.Helper()
	s, err := e.vs(t).GetVersionStates(ctxT(t), shared.GetVersionStatesRequest{Key: e.ref(id)})
	if err != nil {
		t.Fatalf("GetVersionStates(%s): %v", id, err)
	}
	return s
}

// setState moves a version through the provider.
func (e *env) setState(t *testing.T, id, version string, st shared.VersionState) (shared.VersionStates, error) {
	t.Helper()
	return e.vs(t).SetVersionState(ctxT(t), shared.SetVersionStateRequest{Key: e.ref(id), Version: version, State: st})
}

// rotate rotates a key through the provider and returns the new version.
func (e *env) rotate(t *testing.T, id string, pending bool) string {
	t.Helper()
	r, err := e.p.RotateKey(ctxT(t), shared.RotateKeyRequest{Key: e.ref(id), Pending: pending})
	if err != nil {
		t.Fatalf("RotateKey(%s, pending %v): %v", id, pending, err)
	}
	return r.Version
}

// aliasTarget reads the key an alias points at straight from the emulator.
func (e *env) aliasTarget(t *testing.T, alias string) string {
	t.Helper()
	out, err := e.srv.Client().DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: awssdk.String(alias)})
	if err != nil {
		t.Fatal(err)
	}
	return awssdk.ToString(out.KeyMetadata.KeyId)
}

// wantStates fails unless the states are exactly these versions in these
// states, oldest first, with exactly one active version.
func wantStates(t *testing.T, what string, got shared.VersionStates, want ...string) {
	t.Helper()
	var g []string
	for _, e := range got.Versions {
		g = append(g, e.Version+"="+string(e.State))
	}
	if strings.Join(g, " ") != strings.Join(want, " ") {
		t.Fatalf("%s: states\n  %v\nwant\n  %v", what, g, want)
	}
	if err := got.Check(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// is writes a version=state pair for wantStates.
func is(version string, st shared.VersionState) string { return version + "=" + string(st) }

// since is a version's Since, failing when it has none.
func since(t *testing.T, s shared.VersionStates, version string) time.Time {
	t.Helper()
	e, ok := s.Entry(version)
	if !ok || e.Since.IsZero() {
		t.Fatalf("version %s: entry %+v (found %v): want a Since", version, e, ok)
	}
	return e.Since
}

// TestVersionStatesProvider drives an alias's states through the
// provider: a key rotated the old way has none; the first pending
// rotation gives them (current active, older retiring, new pending)
// without moving the alias; a pending version signs when named (the
// provider does not police states: the host does); a second pending
// rotation links after the first; promotion moves the alias and the
// states; retiring is a tag; a rotation without pending of a key with
// states promotes at once; and the tags say what the README says.
func TestVersionStatesProvider(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	alias, v1 := e.create(t, "alias/states", shared.ECP256)
	v2 := e.rotate(t, alias, false)
	if s := e.states(t, alias); s.Has() {
		t.Fatalf("a key rotated without pending has states: %+v", s)
	}
	_, err := e.setState(t, alias, v2, shared.VersionActive)
	wantErr(t, "set a state of a key without states", err, shared.ErrFailedPrecondition)

	before := time.Now().Add(-time.Second)
	v3 := e.rotate(t, alias, true)
	if got := e.aliasTarget(t, alias); got != v2 {
		t.Fatalf("a pending rotation moved the alias to %s; want it on the active %s", got, v2)
	}
	s := e.states(t, alias)
	wantStates(t, "first pending rotation", s, is(v1, shared.VersionRetiring), is(v2, shared.VersionActive), is(v3, shared.VersionPending))
	for _, v := range []string{v1, v2, v3} {
		if got := since(t, s, v); got.Before(before) || got.After(time.Now()) {
			t.Fatalf("version %s since %v: want between %v and now", v, got, before)
		}
	}
	if tags := e.tags(t, v3); tags[aws.TagAlias] != alias || tags[aws.TagPrevious] != v2 || tags[aws.TagState] != "pending" || tags[aws.TagStateSince] == "" {
		t.Fatalf("pending version's tags %v", tags)
	}
	if tags := e.tags(t, v2); tags[aws.TagNext] != v3 || tags[aws.TagState] != "active" {
		t.Fatalf("active version's tags %v", tags)
	}
	md, err := e.p.KeyMetadata(ctx, shared.KeyMetadataRequest{Key: e.ref(alias)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range md.Versions {
		got = append(got, v.Version)
	}
	if want := []string{v1, v2, v3}; strings.Join(got, ",") != strings.Join(want, ",") || md.CurrentVersion != v2 {
		t.Fatalf("metadata versions %v (current %s), want %v with the active %s current", got, md.CurrentVersion, want, v2)
	}

	// The provider signs with the active version by default and with the
	// pending one when named.
	d := digestOf(t, shared.ES256, []byte("canary"))
	r, err := e.p.Sign(ctx, shared.SignRequest{Key: e.ref(alias), Algorithm: shared.ES256, Digest: d})
	if err != nil || r.Version != v2 {
		t.Fatalf("default signature: %+v %v; want version %s", r, err, v2)
	}
	r, err = e.p.Sign(ctx, shared.SignRequest{Key: e.ref(alias), Version: v3, Algorithm: shared.ES256, Digest: d})
	if err != nil || r.Version != v3 {
		t.Fatalf("signature with the pending version: %+v %v", r, err)
	}
	pub3, _ := e.publicKey(t, alias, v3)
	if err := shared.VerifyDigest(pub3, shared.ES256, d, r.Signature); err != nil {
		t.Fatalf("pending version's signature: %v", err)
	}

	v4 := e.rotate(t, alias, true)
	if tags := e.tags(t, v4); tags[aws.TagPrevious] != v3 {
		t.Fatalf("second pending version links back to %s, want the newest %s", tags[aws.TagPrevious], v3)
	}
	wantStates(t, "second pending rotation", e.states(t, alias),
		is(v1, shared.VersionRetiring), is(v2, shared.VersionActive), is(v3, shared.VersionPending), is(v4, shared.VersionPending))
	pendingSince := since(t, e.states(t, alias), v4)

	// Promote the newest: the alias moves, the old active retires.
	s, err = e.setState(t, alias, v4, shared.VersionActive)
	if err != nil {
		t.Fatal(err)
	}
	wantStates(t, "promotion", s,
		is(v1, shared.VersionRetiring), is(v2, shared.VersionRetiring), is(v3, shared.VersionPending), is(v4, shared.VersionActive))
	if got := since(t, s, v4); !got.After(pendingSince) {
		t.Fatalf("active since %v, not after pending since %v", got, pendingSince)
	}
	if got := e.aliasTarget(t, alias); got != v4 {
		t.Fatalf("alias on %s after promoting %s", got, v4)
	}
	wantStates(t, "promotion, read back", e.states(t, alias),
		is(v1, shared.VersionRetiring), is(v2, shared.VersionRetiring), is(v3, shared.VersionPending), is(v4, shared.VersionActive))
	if tags := e.tags(t, v2); tags[aws.TagState] != "retiring" {
		t.Fatalf("old active version's tags %v", tags)
	}
	r, err = e.p.Sign(ctx, shared.SignRequest{Key: e.ref(alias), Algorithm: shared.ES256, Digest: d})
	if err != nil || r.Version != v4 {
		t.Fatalf("default signature after promotion: %+v %v; want version %s", r, err, v4)
	}

	// Moves the rules refuse, and versions that are not the alias's.
	for _, c := range []struct {
		version string
		state   shared.VersionState
		want    error
	}{
		{v4, shared.VersionRetired, shared.ErrFailedPrecondition},
		{v4, shared.VersionRetiring, shared.ErrFailedPrecondition},
		{v2, shared.VersionActive, shared.ErrFailedPrecondition},
		{v3, shared.VersionRetiring, shared.ErrFailedPrecondition},
		{"4f0c6a8e-0000-4000-8000-000000000000", shared.VersionRetired, shared.ErrKeyNotFound},
	} {
		_, err := e.setState(t, alias, c.version, c.state)
		wantErr(t, "set "+c.version+" "+string(c.state), err, c.want)
	}

	// Retire an abandoned pending version and the old active one.
	if _, err := e.setState(t, alias, v3, shared.VersionRetired); err != nil {
		t.Fatal(err)
	}
	s, err = e.setState(t, alias, v2, shared.VersionRetired)
	if err != nil {
		t.Fatal(err)
	}
	wantStates(t, "retire", s,
		is(v1, shared.VersionRetiring), is(v2, shared.VersionRetired), is(v3, shared.VersionRetired), is(v4, shared.VersionActive))
	retiredSince := since(t, s, v2)
	s, err = e.setState(t, alias, v2, shared.VersionRetired)
	if err != nil || since(t, s, v2) != retiredSince {
		t.Fatalf("repeated retire: %v; since %v, want it kept at %v", err, s, retiredSince)
	}

	// A key with states rotated without pending: the new version is active
	// at once, the old active retiring.
	v5 := e.rotate(t, alias, false)
	wantStates(t, "rotation without pending", e.states(t, alias),
		is(v1, shared.VersionRetiring), is(v2, shared.VersionRetired), is(v3, shared.VersionRetired), is(v4, shared.VersionRetiring), is(v5, shared.VersionActive))
	if got := e.aliasTarget(t, alias); got != v5 {
		t.Fatalf("alias on %s after a rotation without pending to %s", got, v5)
	}
}

// TestVersionStatesKeyID: only an alias has states. A key named by key id
// has none (and GetVersionStates says so without an error: the host asks
// before every signature), and cannot get any.
func TestVersionStatesKeyID(t *testing.T) {
	e := newEnv(t)
	alias, v1 := e.create(t, "alias/by-id", shared.ECP256)
	e.rotate(t, alias, true)
	id, _ := e.create(t, "", shared.ECP256)
	for _, k := range []string{v1, id, "arn:aws:kms:eu-west-2:111122223333:key/" + id} {
		if s := e.states(t, k); s.Has() {
			t.Fatalf("key named by id %s has states %+v", k, s)
		}
		_, err := e.setState(t, k, k, shared.VersionRetired)
		wantErr(t, "set a state by key id", err, shared.ErrFailedPrecondition)
		if !strings.Contains(err.Error(), "alias") {
			t.Fatalf("refusal does not explain itself: %v", err)
		}
		_, err = e.p.RotateKey(ctxT(t), shared.RotateKeyRequest{Key: e.ref(k), Pending: true})
		wantErr(t, "pending rotation by key id", err, shared.ErrInvalidArgument)
	}
	// A never-rotated alias has none either.
	other, _ := e.create(t, "alias/by-id-2", shared.ECP256)
	if s := e.states(t, other); s.Has() {
		t.Fatalf("a new alias has states %+v", s)
	}
}

// TestVersionStatesCrash reads the states a change cut short leaves
// behind, made by hand with the calls the plugin makes, stopped between
// two of them. Every one reads as exactly one active version, and
// repeating the change finishes it.
func TestVersionStatesCrash(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	cl := e.srv.Client()
	alias, v1 := e.create(t, "alias/crash", shared.ECP256)

	// A pending rotation that lost a race (or stopped before its forward
	// link): a key tagged as a version, linked back, but not forward. It
	// is not a version.
	v2 := e.rotate(t, alias, true)
	out, err := cl.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify, Tags: []types.Tag{
		{TagKey: awssdk.String(aws.TagAlias), TagValue: awssdk.String(alias)},
		{TagKey: awssdk.String(aws.TagPrevious), TagValue: awssdk.String(v1)},
		{TagKey: awssdk.String(aws.TagState), TagValue: awssdk.String("pending")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	orphan := awssdk.ToString(out.KeyMetadata.KeyId)
	wantStates(t, "rotation cut before its link", e.states(t, alias), is(v1, shared.VersionActive), is(v2, shared.VersionPending))
	// A forward link to a key that does not link back is ignored too.
	if _, err := cl.TagResource(ctx, &kms.TagResourceInput{KeyId: awssdk.String(v2), Tags: []types.Tag{{TagKey: awssdk.String(aws.TagNext), TagValue: awssdk.String(orphan)}}}); err != nil {
		t.Fatal(err)
	}
	wantStates(t, "forward link not linked back", e.states(t, alias), is(v1, shared.VersionActive), is(v2, shared.VersionPending))
	md, err := e.p.KeyMetadata(ctx, shared.KeyMetadataRequest{Key: e.ref(alias)})
	if err != nil || len(md.Versions) != 2 || md.Versions[1].Version != v2 {
		t.Fatalf("metadata with an orphan key: %+v %v; want versions %s, %s", md.Versions, err, v1, v2)
	}
	_, err = e.setState(t, alias, orphan, shared.VersionActive)
	wantErr(t, "promote the orphan", err, shared.ErrKeyNotFound)

	// A promotion stopped right after the alias moved: the new version is
	// active (its tag still says pending), the old one, still tagged
	// active, reads as retiring.
	if _, err := cl.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: awssdk.String(alias), TargetKeyId: awssdk.String(v2)}); err != nil {
		t.Fatal(err)
	}
	s := e.states(t, alias)
	wantStates(t, "promotion cut after the alias moved", s, is(v1, shared.VersionRetiring), is(v2, shared.VersionActive))
	if en, _ := s.Entry(v2); !en.Since.IsZero() {
		t.Fatalf("lagging tags give a Since: %+v", en)
	}
	if e.tags(t, v1)[aws.TagState] != "active" || e.tags(t, v2)[aws.TagState] != "pending" {
		t.Fatal("test set-up: the tags should lag")
	}
	// Repeating the promotion is a no-op for the states and writes the tags.
	s, err = e.setState(t, alias, v2, shared.VersionActive)
	if err != nil {
		t.Fatal(err)
	}
	wantStates(t, "promotion repeated", s, is(v1, shared.VersionRetiring), is(v2, shared.VersionActive))
	since(t, s, v1)
	since(t, s, v2)
	if e.tags(t, v1)[aws.TagState] != "retiring" || e.tags(t, v2)[aws.TagState] != "active" {
		t.Fatalf("tags after the repeated promotion: %v %v", e.tags(t, v1), e.tags(t, v2))
	}

	// The alias moved back by someone else (a roll-back outside knhk): the
	// alias still decides, and there is one active version.
	if _, err := cl.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: awssdk.String(alias), TargetKeyId: awssdk.String(v1)}); err != nil {
		t.Fatal(err)
	}
	wantStates(t, "alias moved back outside knhk", e.states(t, alias), is(v1, shared.VersionActive), is(v2, shared.VersionRetiring))

	// A state tag that is no state is an error, not a guess.
	if _, err := cl.TagResource(ctx, &kms.TagResourceInput{KeyId: awssdk.String(v2), Tags: []types.Tag{{TagKey: awssdk.String(aws.TagState), TagValue: awssdk.String("Retired")}}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.vs(t).GetVersionStates(ctx, shared.GetVersionStatesRequest{Key: e.ref(alias)})
	wantErr(t, "bad state tag", err, shared.ErrFailedPrecondition)
}

// stateHost starts a knhk host with the built plugin and cfg.
func stateHost(t *testing.T, cfg host.Config) *host.Host {
	t.Helper()
	cfg.PluginDirs = append(cfg.PluginDirs, filepath.Dir(pluginBin))
	h, err := host.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// versionState is a version's state in Key.Versions.
func versionState(t *testing.T, k *host.Key, version string) shared.VersionState {
	t.Helper()
	vs, err := k.Versions(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Version == version {
			if v.SPKISHA256 == "" {
				t.Fatalf("version %s has no fingerprint: %+v", version, v)
			}
			return v.State
		}
	}
	t.Fatalf("version %s not in %+v", version, vs)
	return ""
}

// TestVersionStatesThroughHost: two hosts share an alias. A pending
// rotation through one cannot sign through either (the provider would:
// the host refuses), both sign with the active version; after the
// promotion through one, both sign with the new version and the old one's
// signatures still verify; after retiring it they do not.
func TestVersionStatesThroughHost(t *testing.T) {
	srv := localkms.Start(t)
	ctx := ctxT(t)
	h1 := stateHost(t, host.Config{})
	h2 := stateHost(t, host.Config{VersionStatesTTL: 200 * time.Millisecond})
	ref := keyRef(srv, "alias/host-states")
	k1, err := h1.CreateKey(ctx, ref, shared.ECP384)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := h2.Key(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("release")
	old, err := k2.SignMessage(ctx, msg, host.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v1 := old.Version

	p, err := k1.RotatePending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := versionState(t, k1, p); st != shared.VersionPending {
		t.Fatalf("rotated pending: %s is %s", p, st)
	}
	if st := versionState(t, k2, v1); st != shared.VersionActive {
		t.Fatalf("the other host sees %s as %s", v1, st)
	}
	for i, k := range []*host.Key{k1, k2} {
		_, err := k.SignMessage(ctx, msg, host.SignOptions{Version: p})
		wantErr(t, "host signs with the pending version", err, shared.ErrFailedPrecondition)
		s, err := k.SignMessage(ctx, msg, host.SignOptions{})
		if err != nil || s.Version != v1 {
			t.Fatalf("host %d default signature before promotion: %+v %v; want version %s", i+1, s, err, v1)
		}
	}
	// The host's provider view keeps the rule too (the plugin itself signs
	// with a pending version, for the canary: TestVersionStatesProvider).
	prov, err := h1.Provider(ctx, "aws")
	if err != nil {
		t.Fatal(err)
	}
	d := digestOf(t, shared.ES384, msg)
	_, err = prov.Sign(ctx, shared.SignRequest{Key: shared.KeyRef{ID: "alias/host-states", Params: map[string]string{"endpoint": srv.URL}}, Version: p, Algorithm: shared.ES384, Digest: d})
	wantErr(t, "the host's provider view signs with the pending version", err, shared.ErrFailedPrecondition)
	if _, err := k1.PublicKey(ctx, p); err != nil {
		t.Fatalf("the pending version is not published: %v", err)
	}

	if err := k1.Promote(ctx, p); err != nil {
		t.Fatal(err)
	}
	if st := versionState(t, k2, p); st != shared.VersionActive {
		t.Fatalf("the other host sees the promoted %s as %s", p, st)
	}
	if st := versionState(t, k2, v1); st != shared.VersionRetiring {
		t.Fatalf("the other host sees the old %s as %s", v1, st)
	}
	time.Sleep(300 * time.Millisecond) // h2's cached states expire
	for i, k := range []*host.Key{k1, k2} {
		s, err := k.SignMessage(ctx, msg, host.SignOptions{})
		if err != nil || s.Version != p {
			t.Fatalf("host %d default signature after promotion: %+v %v; want version %s", i+1, s, err, p)
		}
		if err := k.VerifyMessage(ctx, msg, old.Signature, host.SignOptions{Version: v1}); err != nil {
			t.Fatalf("host %d: retiring version's signature: %v", i+1, err)
		}
		_, err = k.SignMessage(ctx, msg, host.SignOptions{Version: v1})
		wantErr(t, "host signs with the retiring version", err, shared.ErrFailedPrecondition)
	}

	if err := k2.Retire(ctx, v1); err != nil {
		t.Fatal(err)
	}
	if st := versionState(t, k1, v1); st != shared.VersionRetired {
		t.Fatalf("retired %s reads %s", v1, st)
	}
	err = k1.VerifyMessage(ctx, msg, old.Signature, host.SignOptions{Version: v1})
	wantErr(t, "retired version's signature", err, shared.ErrBadSignature)
	err = k2.Promote(ctx, v1)
	wantErr(t, "promote a retired version", err, shared.ErrFailedPrecondition)
}

// TestPromotionWorkflow runs the shared promotion workflow
// (host/promotiontest: gates, approvals, two hosts, retire, soak, audit)
// on an alias in the emulator, through the built plugin.
func TestPromotionWorkflow(t *testing.T) {
	srv := localkms.Start(t)
	ref := keyRef(srv, "alias/promotion-kit")
	if _, err := stateHost(t, host.Config{}).CreateKey(ctxT(t), ref, shared.ECP256); err != nil {
		t.Fatal(err)
	}
	promotiontest.Run(t, stateHost, ref)
}
