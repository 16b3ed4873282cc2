package sidecar

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	jwtv1 "k8s.io/externaljwt/apis/v1"

	"github.com/knhk/knhk/audit"
	"github.com/knhk/knhk/audit/audittest"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/internal/keyfmt"
	"github.com/knhk/knhk/plugins/fake"
	"github.com/knhk/knhk/shared"
	sidecarv1 "github.com/knhk/knhk/sidecar/proto/knhk/sidecar/v1"
)

// versionsFixture is a daemon serving key "release" (ECDSA P-256, in a
// fake state file, with promotion gates: the canary and two approvals of
// the approvers "fake:alice" (a key the daemon holds) and bob (a note
// key file)), approver keys "alice" and "carol", and the ExternalJWTSigner
// on "release".
type versionsFixture struct {
	state, ref string
	bob        *audit.Key
	log        *audittest.Log
	h          *host.Host
	srv        *Server
	cfg        Config
	api        sidecarv1.SignerClient
	jwt        jwtAPI
}

// versionsPolicy allows this process every operation on release, alice
// and carol except those in without (none: all), and "sign" on alice
// only among the approver keys.
func versionsPolicy(without ...Op) []Policy {
	var ops []Op
	for _, op := range Ops {
		if !slices.Contains(without, op) {
			ops = append(ops, op)
		}
	}
	return []Policy{
		{Keys: []string{"release"}, Principals: []string{grpcSelf()}, Operations: ops},
		{Keys: []string{"alice"}, Principals: []string{grpcSelf()}, Operations: []Op{OpSign, OpPublicKey}},
	}
}

func startVersionsDaemon(t *testing.T) *versionsFixture {
	t.Helper()
	ctx := context.Background()
	state := filepath.Join(t.TempDir(), "keys.json")
	f := &versionsFixture{state: state, ref: "fake:release?state=" + state, bob: audittest.NewKey(t, "bob"), log: audittest.Open(t, audit.Options{})}
	alice, carol := "fake:alice?state="+state, "fake:carol?state="+state
	f.h = hosttest.New(t, hosttest.WithConfig(host.Config{
		Audit: f.log.Log,
		Promotion: map[string]host.Gates{f.ref: {
			Canary:    true,
			Approvals: host.ApprovalGate{Required: 2, Approvers: []string{alice, f.bob.VerifierKey}},
		}},
	}))
	for ref, kt := range map[string]shared.KeyType{f.ref: shared.ECP256, alice: shared.Ed25519, carol: shared.Ed25519} {
		if _, err := f.h.CreateKey(ctx, ref, kt); err != nil {
			t.Fatal(err)
		}
	}
	f.cfg = Config{
		Socket:   SocketConfig{Path: filepath.Join(shortDir(t), "s.sock")},
		Keys:     map[string]string{"release": f.ref, "alice": alice, "carol": carol},
		Policies: versionsPolicy(OpPromote),
		JWT:      &JWTConfig{Key: "release"},
	}
	srv, err := New(f.h, f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	serve(t, srv)
	conn, err := grpc.NewClient("unix://"+srv.SocketPath(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	f.api = sidecarv1.NewSignerClient(conn)
	v1 := jwtv1.NewExternalJWTSignerClient(conn)
	f.jwt = jwtAPI{
		name: "v1",
		sign: func(ctx context.Context, claims string) (*jwtv1.SignJWTResponse, error) {
			return v1.Sign(ctx, &jwtv1.SignJWTRequest{Claims: claims})
		},
		fetch: func(ctx context.Context) (*jwtv1.FetchKeysResponse, error) {
			return v1.FetchKeys(ctx, &jwtv1.FetchKeysRequest{})
		},
	}
	return f
}

// publicKey is a version's DER public key, through the daemon.
func (f *versionsFixture) publicKey(t *testing.T, key, version string) []byte {
	t.Helper()
	pk, err := f.api.PublicKey(t.Context(), &sidecarv1.PublicKeyRequest{Key: key, Version: version})
	if err != nil {
		t.Fatalf("public key %s version %q: %v", key, version, err)
	}
	return pk.GetDer()
}

// kidOf is the kid the ExternalJWTSigner gives a DER public key.
func kidOf(t *testing.T, der []byte) string {
	t.Helper()
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := keyfmt.NewJWK(pub, "")
	if err != nil {
		t.Fatal(err)
	}
	return jwk.Thumbprint()
}

// signChecked signs a digest with release (version "" for the active one)
// and checks the signature with the standard library against the
// version's public key.
func (f *versionsFixture) signChecked(t *testing.T, version string) *sidecarv1.SignResponse {
	t.Helper()
	digest := sha256.Sum256([]byte("signed through the daemon"))
	sig, err := f.api.Sign(t.Context(), &sidecarv1.SignRequest{Key: "release", Digest: digest[:], Version: version})
	if err != nil {
		t.Fatalf("sign with version %q: %v", version, err)
	}
	pub, err := x509.ParsePKIXPublicKey(f.publicKey(t, "release", sig.GetVersion()))
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], sig.GetSignature()) {
		t.Fatalf("the signature of version %s does not verify with the standard library", sig.GetVersion())
	}
	return sig
}

// states are the key's versions' states and fingerprints, through the
// daemon.
func (f *versionsFixture) states(t *testing.T) map[string]*sidecarv1.VersionInfo {
	t.Helper()
	resp, err := f.api.Versions(t.Context(), &sidecarv1.VersionsRequest{Key: "release"})
	if err != nil {
		t.Fatalf("versions: %v", err)
	}
	out := map[string]*sidecarv1.VersionInfo{}
	for _, v := range resp.GetVersions() {
		out[v.GetVersion()] = v
	}
	return out
}

// wantUnmet checks a promotion refused for gate, whose detail says want:
// FAILED_PRECONDITION, the message naming the gate, and the GatesNotMet
// detail listing it.
func wantUnmet(t *testing.T, err error, version, gate, want string) {
	t.Helper()
	grpcWantErr(t, err, codes.FailedPrecondition, "FAILED_PRECONDITION")
	st, _ := status.FromError(err)
	if !strings.Contains(st.Message(), gate) || !strings.Contains(st.Message(), want) {
		t.Fatalf("message %q does not name gate %s (%s)", st.Message(), gate, want)
	}
	for _, d := range st.Details() {
		if g, ok := d.(*sidecarv1.GatesNotMet); ok {
			if g.GetKey() != "fake:release" || g.GetVersion() != version {
				t.Fatalf("GatesNotMet of %s version %s", g.GetKey(), g.GetVersion())
			}
			for _, u := range g.GetUnmet() {
				if u.GetGate() == gate && !u.GetMet() && strings.Contains(u.GetDetail(), want) {
					return
				}
			}
			t.Fatalf("GatesNotMet %v lacks gate %s saying %q", g.GetUnmet(), gate, want)
		}
	}
	t.Fatalf("no GatesNotMet detail in %v", st.Details())
}

// checkNoteSignature checks the Ed25519 signature of a signed note (the
// text, a blank line, "— NAME BASE64(keyhash||sig)") with the standard
// library against pub, and returns the text.
func checkNoteSignature(t *testing.T, signed []byte, name string, pub ed25519.PublicKey) string {
	t.Helper()
	i := bytes.Index(signed, []byte("\n\n"))
	if i < 0 {
		t.Fatalf("not a signed note: %q", signed)
	}
	text, sigs := signed[:i+1], strings.Split(strings.TrimSuffix(string(signed[i+2:]), "\n"), "\n")
	if len(sigs) != 1 {
		t.Fatalf("%d signature lines, want 1", len(sigs))
	}
	rest, ok := strings.CutPrefix(sigs[0], "— "+name+" ")
	if !ok {
		t.Fatalf("signature line %q is not by %s", sigs[0], name)
	}
	raw, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(raw) != 4+ed25519.SignatureSize {
		t.Fatalf("signature line %q: %v", sigs[0], err)
	}
	if !ed25519.Verify(pub, text, raw[4:]) {
		t.Fatal("the approval's signature does not verify with the standard library")
	}
	return string(text)
}

// TestVersionsThroughDaemon runs the promotion workflow through a real
// daemon: a pending version is published by the ExternalJWTSigner but
// cannot sign; promotion is denied to a caller the policy does not allow
// it (audited), refused without approvals (the unmet gate named, as
// data too), accepted with an approval made through the daemon and one
// made with an approver's own key file; the promoted version signs,
// tokens name it; the old one is retired and drops out of FetchKeys.
func TestVersionsThroughDaemon(t *testing.T) {
	ctx := context.Background()
	f := startVersionsDaemon(t)

	// Before: one version, no states; the JWT signer publishes it.
	v1 := f.signChecked(t, "").GetVersion()
	kid1 := kidOf(t, f.publicKey(t, "release", v1))
	if got := jwtFetch(t, f.jwt); !slices.Equal(got.kids, []string{kid1}) {
		t.Fatalf("FetchKeys before rotation: %v, want [%s]", got.kids, kid1)
	}

	// Pending: published, cannot sign.
	rot, err := f.api.Rotate(ctx, &sidecarv1.RotateRequest{Key: "release", Pending: true})
	if err != nil {
		t.Fatalf("rotate pending: %v", err)
	}
	v2 := rot.GetVersion()
	der2 := f.publicKey(t, "release", v2)
	kid2 := kidOf(t, der2)
	st := f.states(t)
	fp := sha256.Sum256(der2)
	if st[v1].GetState() != "active" || !st[v1].GetCurrent() || st[v2].GetState() != "pending" || st[v2].GetCurrent() || st[v2].GetSpkiSha256() != hex.EncodeToString(fp[:]) {
		t.Fatalf("versions after pending rotation: %v", st)
	}
	_, err = f.api.Sign(ctx, &sidecarv1.SignRequest{Key: "release", Digest: make([]byte, 32), Version: v2})
	grpcWantErr(t, err, codes.FailedPrecondition, "FAILED_PRECONDITION")
	if got := f.signChecked(t, "").GetVersion(); got != v1 {
		t.Fatalf("signed with version %s while %s is pending, want %s", got, v2, v1)
	}
	fetched := jwtFetch(t, f.jwt)
	if !slices.Equal(fetched.kids, []string{kid1, kid2}) {
		t.Fatalf("FetchKeys with a pending version: %v, want [%s %s]", fetched.kids, kid1, kid2)
	}
	tok := jwtSign(t, f.jwt)
	if tok.kid != kid1 {
		t.Fatalf("token names kid %s while version %s is pending; want the active %s", tok.kid, v2, kid1)
	}
	jwtVerify(t, tok, fetched)

	// Policy: this caller may not promote yet; the denial is audited.
	_, err = f.api.Promote(ctx, &sidecarv1.PromoteRequest{Key: "release", Version: v2})
	grpcWantErr(t, err, codes.PermissionDenied, "POLICY_DENIED")
	if !strings.Contains(status.Convert(err).Message(), "promote") {
		t.Fatalf("denial %v does not name the operation", err)
	}
	denied := false
	for _, r := range audittest.Records(t, f.log.Path) {
		denied = denied || (r.Operation == "promote" && r.Outcome == audit.OutcomeDenied && r.Principal == grpcSelf() && r.Key == "fake:release")
	}
	if !denied {
		t.Fatal("the promote denial is not in the audit log")
	}
	f.cfg.Policies = versionsPolicy()
	if err := f.srv.Reload(f.cfg); err != nil {
		t.Fatal(err)
	}

	// Gates unmet: refused, as FAILED_PRECONDITION with the gates as data.
	_, err = f.api.Promote(ctx, &sidecarv1.PromoteRequest{Key: "release", Version: v2})
	wantUnmet(t, err, v2, host.GateApprovals, "0 of 2 approvers")

	// Approvals: alice through the daemon (a key it holds), bob with his
	// own key file and a host of his own sharing the key.
	_, err = f.api.Approve(ctx, &sidecarv1.ApproveRequest{Key: "release", Version: v2, Approver: "carol"})
	grpcWantErr(t, err, codes.PermissionDenied, "POLICY_DENIED") // no "sign" on carol
	_, err = f.api.Approve(ctx, &sidecarv1.ApproveRequest{Key: "release", Version: v1, Approver: "alice"})
	grpcWantErr(t, err, codes.FailedPrecondition, "FAILED_PRECONDITION") // v1 is not pending
	ap, err := f.api.Approve(ctx, &sidecarv1.ApproveRequest{Key: "release", Version: v2, Approver: "alice", Ttl: durationpb.New(time.Hour)})
	if err != nil {
		t.Fatalf("approve through the daemon: %v", err)
	}
	byAlice := ap.GetApproval()
	alicePub, err := x509.ParsePKIXPublicKey(f.publicKey(t, "alice", ""))
	if err != nil {
		t.Fatal(err)
	}
	text := checkNoteSignature(t, byAlice, "fake:alice", alicePub.(ed25519.PublicKey))
	a, err := host.ParseApproval(text)
	if err != nil || a.Key != "fake:release" || a.Version != v2 || a.SPKISHA256 != hex.EncodeToString(fp[:]) || time.Until(a.Expires) > time.Hour || time.Until(a.Expires) < 50*time.Minute {
		t.Fatalf("approval %+v (%v)", a, err)
	}
	bobsKey, err := hosttest.New(t).Key(ctx, f.ref)
	if err != nil {
		t.Fatal(err)
	}
	byBob, err := bobsKey.Approve(ctx, v2, f.bob.Signer, time.Hour)
	if err != nil {
		t.Fatalf("bob's approval: %v", err)
	}

	_, err = f.api.Promote(ctx, &sidecarv1.PromoteRequest{Key: "release", Version: v2, Approvals: [][]byte{byAlice}})
	wantUnmet(t, err, v2, host.GateApprovals, "1 of 2 approvers: fake:alice")
	gates, err := f.api.Gates(ctx, &sidecarv1.GatesRequest{Key: "release", Version: v2, Approvals: [][]byte{byAlice, byBob}})
	if err != nil {
		t.Fatalf("gates: %v", err)
	}
	seen := map[string]bool{}
	for _, g := range gates.GetResults() {
		seen[g.GetGate()] = true
		if g.GetGate() == host.GateCanary && (!g.GetDeferred() || g.GetMet()) || g.GetGate() != host.GateCanary && !g.GetMet() {
			t.Fatalf("gate %v before promotion with two approvals", g)
		}
	}
	if !seen[host.GateState] || !seen[host.GateCanary] || !seen[host.GateApprovals] {
		t.Fatalf("gates %v", gates.GetResults())
	}
	if _, err := f.api.Promote(ctx, &sidecarv1.PromoteRequest{Key: "release", Version: v2, Approvals: [][]byte{byAlice, byBob}}); err != nil {
		t.Fatalf("promote with two approvals: %v", err)
	}

	// Promoted: it signs, tokens name it, the old version is retiring and
	// still published.
	if got := f.signChecked(t, "").GetVersion(); got != v2 {
		t.Fatalf("signed with version %s after promoting %s", got, v2)
	}
	st = f.states(t)
	if st[v1].GetState() != "retiring" || st[v2].GetState() != "active" || !st[v2].GetCurrent() {
		t.Fatalf("versions after promotion: %v", st)
	}
	fetched = jwtFetch(t, f.jwt)
	tok = jwtSign(t, f.jwt)
	if tok.kid != kid2 || !slices.Equal(fetched.kids, []string{kid1, kid2}) {
		t.Fatalf("after promotion: token kid %s, FetchKeys %v; want %s and both", tok.kid, fetched.kids, kid2)
	}
	jwtVerify(t, tok, fetched)

	// Retired: the active version cannot be; the old one drops out.
	_, err = f.api.Retire(ctx, &sidecarv1.RetireRequest{Key: "release", Version: v2})
	grpcWantErr(t, err, codes.FailedPrecondition, "FAILED_PRECONDITION")
	if _, err := f.api.Retire(ctx, &sidecarv1.RetireRequest{Key: "release", Version: v1}); err != nil {
		t.Fatalf("retire %s: %v", v1, err)
	}
	if got := f.states(t)[v1].GetState(); got != "retired" {
		t.Fatalf("version %s is %s after retiring it", v1, got)
	}
	if got := jwtFetch(t, f.jwt); !slices.Equal(got.kids, []string{kid2}) {
		t.Fatalf("FetchKeys after retiring %s: %v, want [%s]", v1, got.kids, kid2)
	}

	// The audit trail names the approvers of the promotion.
	promoted := false
	for _, r := range audittest.Records(t, f.log.Path) {
		if r.Operation == "promote" && r.Outcome == audit.OutcomeOK && r.KeyVersion == v2 {
			promoted = slices.Equal(r.Approvers, []string{"fake:alice", "bob"}) || slices.Equal(r.Approvers, []string{"bob", "fake:alice"})
		}
	}
	if !promoted {
		t.Fatal("no audit record of the promotion naming both approvers")
	}
}

// TestVersionsNoStates: the version calls on a provider key without
// states (a seeded fake key whose metadata has no states) answer as for
// any key: versions without a state, the current one signing.
func TestVersionsNoStates(t *testing.T) {
	c := testCore(t, Config{Keys: map[string]string{"k": "fake:k?seed=x"}, Policies: []Policy{grpcAllowAll()}})
	cl := grpcServe(t, c)
	grpcCreate(t, cl, "k", shared.ECP256)
	resp, err := cl.Versions(t.Context(), &sidecarv1.VersionsRequest{Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if vs := resp.GetVersions(); len(vs) != 1 || vs[0].GetState() != "" || !vs[0].GetCurrent() || vs[0].GetSpkiSha256() == "" {
		t.Fatalf("versions of a key without states: %v", vs)
	}
	_, err = cl.Promote(t.Context(), &sidecarv1.PromoteRequest{Key: "k", Version: "1"})
	if status.Code(err) == codes.OK {
		t.Fatal("promoting a version of a key without states succeeded")
	}
}

// TestHTTPVersions runs the version calls over HTTP/JSON: pending
// rotation, versions, gates, a promotion refused with the unmet gates in
// the error, approvals, promotion, retirement.
func TestHTTPVersions(t *testing.T) {
	ctx := context.Background()
	state := filepath.Join(t.TempDir(), "keys.json")
	ref, alice := "fake:release?state="+state, "fake:alice?state="+state
	h := hosttest.New(t, hosttest.WithConfig(host.Config{Promotion: map[string]host.Gates{
		ref: {Approvals: host.ApprovalGate{Required: 1, Approvers: []string{alice}}},
	}}))
	for r, kt := range map[string]shared.KeyType{ref: shared.ECP256, alice: shared.Ed25519} {
		if _, err := h.CreateKey(ctx, r, kt); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := Config{
		Keys: map[string]string{"release": ref, "alice": alice},
		Policies: []Policy{
			{Keys: []string{"release", "alice"}, Principals: []string{"spiffe://example.org/ns/test/*"}, Operations: []Op{"*"}},
			{Keys: []string{"release"}, Principals: []string{httpSubject}, Operations: []Op{OpVersions}},
		},
	}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	srv, cl, other := httpServe(t, newCore(h, cfg))
	u := func(op string) string { return httpKeyURL(srv, "release", op) }

	var rot httpRotateResponse
	code, body := httpDo(t, cl, http.MethodPost, u("rotate"), map[string]bool{"pending": true})
	httpWantOK(t, code, body, &rot)
	var vs httpVersions
	code, body = httpDo(t, other, http.MethodGet, u("versions"), nil)
	httpWantOK(t, code, body, &vs)
	if len(vs.Versions) != 2 || vs.Versions[0].State != "active" || !vs.Versions[0].Current || vs.Versions[1].Version != rot.Version || vs.Versions[1].State != "pending" || vs.Versions[1].SPKISHA256 == "" || vs.Versions[1].Created == "" {
		t.Fatalf("versions: %s", body)
	}

	// Refused: 412 with the unmet gates; denied to a caller without
	// "promote".
	vu := func(op string) string { return u("versions/" + rot.Version + "/" + op) }
	code, body = httpDo(t, other, http.MethodPost, vu("promote"), nil)
	httpWantError(t, code, body, http.StatusForbidden, "PERMISSION_DENIED", "POLICY_DENIED")
	code, body = httpDo(t, cl, http.MethodPost, vu("promote"), nil)
	var refused struct {
		Error struct {
			Code, Reason, Message string
			UnmetGates            []httpGate `json:"unmet_gates"`
		} `json:"error"`
	}
	httpDecode(t, body, &refused)
	if code != http.StatusPreconditionFailed || refused.Error.Code != "FAILED_PRECONDITION" || len(refused.Error.UnmetGates) != 1 ||
		refused.Error.UnmetGates[0].Gate != host.GateApprovals || !strings.Contains(refused.Error.UnmetGates[0].Detail, "0 of 1 approvers") {
		t.Fatalf("promote without approvals: %d %s", code, body)
	}

	var ap httpApproval
	code, body = httpDo(t, cl, http.MethodPost, vu("approve"), httpApproveRequest{Approver: "alice", TTL: "90m"})
	httpWantOK(t, code, body, &ap)
	if !bytes.Contains(ap.Approval, []byte("version "+rot.Version+"\n")) {
		t.Fatalf("approval %q", ap.Approval)
	}
	code, body = httpDo(t, cl, http.MethodPost, vu("approve"), httpApproveRequest{Approver: "alice", TTL: "soon"})
	httpWantError(t, code, body, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT")
	var gl httpGateList
	code, body = httpDo(t, cl, http.MethodPost, vu("gates"), httpApprovals{Approvals: [][]byte{ap.Approval}})
	httpWantOK(t, code, body, &gl)
	if len(gl.Gates) != 2 || !gl.Gates[0].Met || gl.Gates[1].Gate != host.GateApprovals || !gl.Gates[1].Met || !slices.Equal(gl.Gates[1].Approvers, []string{"fake:alice"}) {
		t.Fatalf("gates: %s", body)
	}
	code, body = httpDo(t, cl, http.MethodPost, vu("promote"), httpApprovals{Approvals: [][]byte{ap.Approval}})
	httpWantOK(t, code, body, &struct{}{})
	code, body = httpDo(t, cl, http.MethodPost, u("versions/"+vs.Versions[0].Version+"/retire"), nil)
	httpWantOK(t, code, body, &struct{}{})
	code, body = httpDo(t, cl, http.MethodGet, u("versions"), nil)
	httpWantOK(t, code, body, &vs)
	if vs.Versions[0].State != "retired" || vs.Versions[1].State != "active" || !vs.Versions[1].Current {
		t.Fatalf("versions after promotion and retirement: %s", body)
	}
}

// jwtLatest is the fake with a provider's view of "current" that is its
// latest version, pending or not (as a KMS whose newest version is its
// default): the daemon must sign tokens with the active version.
type jwtLatest struct{ *fake.Provider }

func (p jwtLatest) KeyMetadata(ctx context.Context, req shared.KeyMetadataRequest) (shared.KeyMetadata, error) {
	md, err := p.Provider.KeyMetadata(ctx, req)
	if n := len(md.Versions); err == nil && n > 0 {
		md.CurrentVersion = md.Versions[n-1].Version
	}
	return md, err
}

// TestJWTPendingVersion: with a pending version that the provider calls
// current, FetchKeys publishes it and Sign keeps signing with the active
// one; once promoted, tokens name it.
func TestJWTPendingVersion(t *testing.T) {
	ref := "fake:sa?state=" + filepath.Join(t.TempDir(), "keys.json")
	c := jwtCore(t, jwtConfig(ref, jwtPrincipal()), hosttest.WithProvider("fake", jwtLatest{fake.New(fake.Config{})}))
	jwtCreate(t, c, shared.ECP256)
	api := jwtServe(t, c)[0]
	before := jwtSign(t, api)
	k, err := c.h.Key(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := k.RotatePending(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	pk2, err := k.PublicKey(t.Context(), v2)
	if err != nil {
		t.Fatal(err)
	}
	kid2 := kidOf(t, pk2.DER)
	f := jwtFetch(t, api)
	if !slices.Equal(f.kids, []string{before.kid, kid2}) {
		t.Fatalf("FetchKeys with version %s pending: %v, want [%s %s]", v2, f.kids, before.kid, kid2)
	}
	tok := jwtSign(t, api)
	if tok.kid != before.kid {
		t.Fatalf("token names %s while %s is pending; want the active %s", tok.kid, kid2, before.kid)
	}
	jwtVerify(t, tok, f)
	if err := k.Promote(t.Context(), v2); err != nil {
		t.Fatal(err)
	}
	if tok = jwtSign(t, api); tok.kid != kid2 {
		t.Fatalf("token names %s after promoting %s; want %s", tok.kid, v2, kid2)
	}
	jwtVerify(t, tok, jwtFetch(t, api))
}
