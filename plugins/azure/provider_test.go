package azure_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/hashicorp/go-hclog"

	"github.com/knhk/knhk/plugins/azure"
	"github.com/knhk/knhk/plugins/azure/internal/kvtest"
	"github.com/knhk/knhk/shared"
)

// countingCred hands out a fixed token and counts how often it is asked,
// remembering the scope and tenant the SDK took from the challenge.
type countingCred struct {
	token string
	n     atomic.Int32

	mu     sync.Mutex
	scopes []string
	tenant string
}

func (c *countingCred) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.n.Add(1)
	c.mu.Lock()
	c.scopes, c.tenant = o.Scopes, o.TenantID
	c.mu.Unlock()
	return azcore.AccessToken{Token: c.token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// env is a test vault and a provider pointed at it. p is the provider as
// the plugin serves it, behind the SDK's request checks; raw is the
// provider itself.
type env struct {
	srv    *kvtest.Server
	cred   *countingCred
	raw    *azure.Provider
	p      shared.Provider
	params map[string]string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv, err := kvtest.New("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	cred := &countingCred{token: srv.Token}
	raw := azure.New(azure.Config{Credential: cred})
	return &env{srv: srv, cred: cred, raw: raw, p: shared.Validate(raw), params: map[string]string{"ca_file": srv.CAFile}}
}

func (e *env) ref(name string) shared.KeyRef {
	return shared.KeyRef{ID: e.srv.KeyID(name), Params: e.params}
}

func (e *env) create(t *testing.T, name string, kt shared.KeyType) shared.CreateKeyResponse {
	t.Helper()
	resp, err := e.p.CreateKey(context.Background(), shared.CreateKeyRequest{Key: e.ref(name), Type: kt})
	if err != nil {
		t.Fatalf("CreateKey(%s, %s): %v", name, kt, err)
	}
	return resp
}

// azkeysClient is a plain azkeys client on the test vault, for setting up
// states the provider does not create (disabled keys, encryption keys).
func (e *env) azkeysClient(t *testing.T) *azkeys.Client {
	t.Helper()
	tr, err := caClient(e.srv.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := azkeys.NewClient(e.srv.URL, &countingCred{token: e.srv.Token}, &azkeys.ClientOptions{
		ClientOptions: azcore.ClientOptions{Transport: tr}, DisableChallengeResourceVerification: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDescribe(t *testing.T) {
	d, err := azure.New(azure.Config{}).Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "azure" || len(d.KeyTypes) != 6 || len(d.Algorithms) != 9 {
		t.Errorf("Describe = %+v, want azure with 6 key types and 9 algorithms", d)
	}
	if slices.Contains(d.KeyTypes, shared.Ed25519) || slices.Contains(d.Algorithms, shared.EdDSA) {
		t.Error("Describe claims Ed25519, which Key Vault does not offer")
	}
	for _, c := range []shared.Capability{shared.CapCreateKey, shared.CapListKeys, shared.CapRotateKey, shared.CapVerify} {
		if !d.Has(c) {
			t.Errorf("Describe lacks %s", c)
		}
	}
}

// TestSignVerify signs with every key type and algorithm, checks each
// signature with the standard library against the public key, and has Key
// Vault verify it and reject a tampered one.
func TestSignVerify(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, kt := range []shared.KeyType{shared.RSA2048, shared.RSA3072, shared.RSA4096, shared.ECP256, shared.ECP384, shared.ECP521} {
		name := "sv-" + strings.ReplaceAll(string(kt), "-", "")
		created := e.create(t, name, kt)
		if created.KeyID != e.srv.KeyID(name) || len(created.Version) != 32 {
			t.Fatalf("CreateKey = %+v, want id %s and a 32-digit version", created, e.srv.KeyID(name))
		}
		pk, err := e.p.PublicKey(ctx, shared.PublicKeyRequest{Key: e.ref(name)})
		if err != nil {
			t.Fatal(err)
		}
		pub, gotType, err := shared.ParsePublicKey(pk.DER)
		if err != nil || gotType != kt || pk.Type != kt || pk.Version != created.Version {
			t.Fatalf("PublicKey(%s) = %s/%s %s, %v; want %s %s", name, pk.Type, gotType, pk.Version, err, kt, created.Version)
		}
		for _, alg := range kt.Algorithms() {
			digest, _ := shared.Digest(alg, []byte("knhk "+string(alg)))
			sig, err := e.p.Sign(ctx, shared.SignRequest{Key: e.ref(name), Algorithm: alg, Digest: digest})
			if err != nil {
				t.Fatalf("Sign(%s, %s): %v", name, alg, err)
			}
			if sig.Version != created.Version {
				t.Errorf("Sign(%s, %s) version = %s, want %s", name, alg, sig.Version, created.Version)
			}
			if err := shared.VerifyDigest(pub, alg, digest, sig.Signature); err != nil {
				t.Errorf("Sign(%s, %s): standard library rejects the signature: %v", name, alg, err)
			}
			if alg.IsPSS() {
				// Key Vault's salt is the hash length; check that exactly.
				if err := rsaVerifyPSSEqualsHash(pub, alg.Hash(), digest, sig.Signature); err != nil {
					t.Errorf("Sign(%s, %s): salt is not the hash length: %v", name, alg, err)
				}
			}
			v, err := e.p.Verify(ctx, shared.VerifyRequest{Key: e.ref(name), Algorithm: alg, Digest: digest, Signature: sig.Signature})
			if err != nil || !v.Valid || v.Version != created.Version {
				t.Errorf("Verify(%s, %s) = %+v, %v; want valid for %s", name, alg, v, err, created.Version)
			}
			bad := slices.Clone(sig.Signature)
			bad[len(bad)/2] ^= 0x40
			v, err = e.p.Verify(ctx, shared.VerifyRequest{Key: e.ref(name), Algorithm: alg, Digest: digest, Signature: bad})
			if err != nil || v.Valid {
				t.Errorf("Verify(%s, %s) of a tampered signature = %+v, %v; want invalid", name, alg, v, err)
			}
		}
	}
	// A whole message is hashed by the provider.
	msg := []byte("a whole message")
	sig, err := e.p.Sign(ctx, shared.SignRequest{Key: e.ref("sv-ecp256"), Algorithm: shared.ES256, Message: msg})
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := e.p.PublicKey(ctx, shared.PublicKeyRequest{Key: e.ref("sv-ecp256")})
	pub, _, _ := shared.ParsePublicKey(pk.DER)
	if err := shared.VerifyMessage(pub, shared.ES256, msg, sig.Signature); err != nil {
		t.Errorf("message signature does not verify: %v", err)
	}
}

// TestRotate rotates natively and checks versions, metadata and that the
// old version keeps verifying.
func TestRotate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	v1 := e.create(t, "rot", shared.ECP384).Version
	digest, _ := shared.Digest(shared.ES384, []byte("before"))
	old, err := e.p.Sign(ctx, shared.SignRequest{Key: e.ref("rot"), Algorithm: shared.ES384, Digest: digest})
	if err != nil {
		t.Fatal(err)
	}
	rot, err := e.p.RotateKey(ctx, shared.RotateKeyRequest{Key: e.ref("rot")})
	if err != nil {
		t.Fatal(err)
	}
	if rot.Version == "" || rot.Version == v1 {
		t.Fatalf("RotateKey version = %q, want a new one (old %s)", rot.Version, v1)
	}
	sig, err := e.p.Sign(ctx, shared.SignRequest{Key: e.ref("rot"), Algorithm: shared.ES384, Digest: digest})
	if err != nil || sig.Version != rot.Version {
		t.Fatalf("Sign after rotation = %s, %v; want version %s", sig.Version, err, rot.Version)
	}
	pk2, _ := e.p.PublicKey(ctx, shared.PublicKeyRequest{Key: e.ref("rot")})
	pub2, _, _ := shared.ParsePublicKey(pk2.DER)
	if pk2.Version != rot.Version || shared.VerifyDigest(pub2, shared.ES384, digest, sig.Signature) != nil {
		t.Errorf("new signature does not verify against the new public key (%s)", pk2.Version)
	}
	if shared.VerifyDigest(pub2, shared.ES384, digest, old.Signature) == nil {
		t.Error("old signature verifies against the new key: rotation made no new key")
	}
	v, err := e.p.Verify(ctx, shared.VerifyRequest{Key: e.ref("rot"), Version: v1, Algorithm: shared.ES384, Digest: digest, Signature: old.Signature})
	if err != nil || !v.Valid || v.Version != v1 {
		t.Errorf("Verify with the old version = %+v, %v; want valid", v, err)
	}
	pinned := shared.KeyRef{ID: e.srv.KeyID("rot") + "/" + v1, Params: e.params}
	pk1, err := e.p.PublicKey(ctx, shared.PublicKeyRequest{Key: pinned})
	if err != nil || pk1.Version != v1 {
		t.Errorf("PublicKey of a pinned id = %s, %v; want %s", pk1.Version, err, v1)
	}
	if _, err := e.p.RotateKey(ctx, shared.RotateKeyRequest{Key: pinned}); !errors.Is(err, shared.ErrInvalidArgument) {
		t.Errorf("RotateKey of a pinned version = %v, want ErrInvalidArgument", err)
	}
	md, err := e.p.KeyMetadata(ctx, shared.KeyMetadataRequest{Key: e.ref("rot")})
	if err != nil {
		t.Fatal(err)
	}
	if md.CurrentVersion != rot.Version || md.Type != shared.ECP384 || len(md.Versions) != 2 ||
		md.Versions[0].Version != v1 || md.Versions[1].Version != rot.Version || !md.Versions[0].Enabled || md.Versions[0].Created.IsZero() {
		t.Errorf("KeyMetadata = %+v, want versions [%s %s], current %s", md, v1, rot.Version, rot.Version)
	}
	for _, a := range []string{"enabled", "created", "updated", "recovery_level", "kty", "key_ops"} {
		if md.Attributes[a] == "" {
			t.Errorf("KeyMetadata attributes lack %s: %v", a, md.Attributes)
		}
	}
	if md.Attributes["recovery_level"] != "Recoverable+Purgeable" || md.Attributes["enabled"] != "true" {
		t.Errorf("KeyMetadata attributes = %v", md.Attributes)
	}
}

// TestChallengeFlow checks the Key Vault authentication dance as the SDK
// does it: the first request goes out without token or body, the server
// answers 401 with the challenge, the token is fetched once (for the
// challenge's scope and tenant) and the request is sent again with its body.
func TestChallengeFlow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "chal", shared.ECP256)
	reqs := e.srv.Requests()
	if len(reqs) < 3 {
		t.Fatalf("server saw %d requests, want at least 3: %+v", len(reqs), reqs)
	}
	first, second := reqs[0], reqs[1]
	if first.Authorized || first.Status != http.StatusUnauthorized {
		t.Errorf("first request = %+v, want unauthenticated and answered 401", first)
	}
	if !second.Authorized || second.Path != first.Path || second.Method != first.Method {
		t.Errorf("second request = %+v, want the first one again with a token", second)
	}
	// CreateKey looks the name up first (a GET without body), then creates
	// (a POST whose body must arrive on the authorised request).
	create := reqs[len(reqs)-1]
	if create.Method != http.MethodPost || !strings.HasSuffix(create.Path, "/create") || !create.Authorized || create.BodyLen == 0 || create.Status != http.StatusOK {
		t.Errorf("create request = %+v, want an authorised POST with its body", create)
	}

	// A fresh provider whose first request has a body: the SDK strips it
	// for the unauthenticated probe and sends it with the token.
	e2 := &env{srv: e.srv, cred: &countingCred{token: e.srv.Token}, params: e.params}
	e2.p = shared.Validate(azure.New(azure.Config{Credential: e2.cred}))
	e.srv.ResetRequests()
	digest, _ := shared.Digest(shared.ES256, []byte("x"))
	if _, err := e2.p.Sign(ctx, shared.SignRequest{Key: e2.ref("chal"), Algorithm: shared.ES256, Digest: digest}); err != nil {
		t.Fatal(err)
	}
	reqs = e.srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("sign made %d requests, want 2: %+v", len(reqs), reqs)
	}
	if reqs[0].Authorized || reqs[0].BodyLen != 0 || reqs[0].Status != http.StatusUnauthorized {
		t.Errorf("first sign request = %+v, want unauthenticated, without body, 401", reqs[0])
	}
	if !reqs[1].Authorized || reqs[1].BodyLen == 0 || reqs[1].Status != http.StatusOK || !strings.HasSuffix(reqs[1].Path, "/sign") {
		t.Errorf("second sign request = %+v, want authorised with the body", reqs[1])
	}
	for i := 0; i < 5; i++ {
		if _, err := e2.p.Sign(ctx, shared.SignRequest{Key: e2.ref("chal"), Algorithm: shared.ES256, Digest: digest}); err != nil {
			t.Fatal(err)
		}
	}
	if n := e2.cred.n.Load(); n != 1 {
		t.Errorf("token fetched %d times for 6 signatures, want once", n)
	}
	if e2.cred.tenant != kvtest.Tenant || !slices.Equal(e2.cred.scopes, []string{"https://vault.azure.net/.default"}) {
		t.Errorf("token asked for tenant %q scopes %v, want the challenge's %s and https://vault.azure.net/.default", e2.cred.tenant, e2.cred.scopes, kvtest.Tenant)
	}
	if n := len(e.srv.Requests()); n != 7 {
		t.Errorf("6 signatures made %d requests, want 7 (one challenge)", n)
	}
}

// TestErrors maps the test vault's answers to knhk's typed errors.
func TestErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "err", shared.ECP256)
	e.create(t, "err-rsa", shared.RSA2048)
	e.create(t, "err-exp", shared.ECP256)
	digest, _ := shared.Digest(shared.ES256, []byte("x"))
	sign := func(p shared.Provider, ref shared.KeyRef) error {
		_, err := p.Sign(ctx, shared.SignRequest{Key: ref, Algorithm: shared.ES256, Digest: digest})
		return err
	}
	wrong := shared.Validate(azure.New(azure.Config{Credential: &countingCred{token: "not-the-token"}}))
	kv := e.azkeysClient(t)

	tests := []struct {
		name  string
		setup func()
		run   func() error
		want  error
		says  []string
	}{
		{name: "404", run: func() error { return sign(e.p, e.ref("missing")) }, want: shared.ErrKeyNotFound, says: []string{"KeyNotFound"}},
		{name: "401", run: func() error { return sign(wrong, e.ref("err")) }, want: shared.ErrPermissionDenied, says: []string{"401", "Unauthorized", "access policies or Azure RBAC"}},
		{name: "403", setup: func() { e.srv.Deny("sign", true) }, run: func() error { defer e.srv.Deny("sign", false); return sign(e.p, e.ref("err")) },
			want: shared.ErrPermissionDenied, says: []string{"403", "Forbidden/ForbiddenByPolicy", "access policies or Azure RBAC"}},
		{name: "429", setup: func() { e.srv.FailNext(4, http.StatusTooManyRequests, "Throttled") }, run: func() error { return sign(e.p, e.ref("err")) },
			want: shared.ErrUnavailable, says: []string{"429", "Throttled", "retries"}},
		{name: "503", setup: func() { e.srv.FailNext(4, http.StatusServiceUnavailable, "ServiceUnavailable") }, run: func() error { return sign(e.p, e.ref("err")) },
			want: shared.ErrUnavailable, says: []string{"503"}},
		{name: "disabled", setup: func() {
			if _, err := kv.UpdateKey(ctx, "err", "", azkeys.UpdateKeyParameters{KeyAttributes: &azkeys.KeyAttributes{Enabled: to.Ptr(false)}}, nil); err != nil {
				t.Fatal(err)
			}
		}, run: func() error { return sign(e.p, e.ref("err")) }, want: shared.ErrFailedPrecondition, says: []string{"KeyDisabled", "disabled"}},
		{name: "expired", setup: func() {
			if _, err := kv.UpdateKey(ctx, "err-exp", "", azkeys.UpdateKeyParameters{KeyAttributes: &azkeys.KeyAttributes{Expires: to.Ptr(time.Now().Add(-time.Hour))}}, nil); err != nil {
				t.Fatal(err)
			}
		}, run: func() error { return sign(e.p, e.ref("err-exp")) }, want: shared.ErrFailedPrecondition, says: []string{"KeyExpired"}},
		{name: "EdDSA", run: func() error {
			_, err := e.p.Sign(ctx, shared.SignRequest{Key: e.ref("err"), Algorithm: shared.EdDSA, Message: []byte("x")})
			return err
		}, want: shared.ErrUnsupportedAlgorithm, says: []string{"EdDSA"}},
		{name: "ed25519 key", run: func() error {
			// The provider's own answer, for callers without the SDK.
			_, err := e.raw.CreateKey(ctx, shared.CreateKeyRequest{Key: e.ref("ed"), Type: shared.Ed25519})
			return err
		}, want: shared.ErrUnsupportedAlgorithm, says: []string{"Ed25519"}},
		{name: "ed25519 key served", run: func() error {
			// The SDK refuses a key type Describe does not claim first.
			_, err := e.p.CreateKey(ctx, shared.CreateKeyRequest{Key: e.ref("ed"), Type: shared.Ed25519})
			return err
		}, want: shared.ErrUnsupportedAlgorithm, says: []string{"ed25519"}},
		{name: "wrong algorithm for key", run: func() error {
			_, err := e.p.Sign(ctx, shared.SignRequest{Key: e.ref("err-rsa"), Algorithm: shared.ES256, Digest: digest})
			return err
		}, want: shared.ErrUnsupportedAlgorithm, says: []string{"rsa-2048"}},
		{name: "unknown param", run: func() error {
			_, err := e.p.PublicKey(ctx, shared.PublicKeyRequest{Key: shared.KeyRef{ID: e.srv.KeyID("err"), Params: map[string]string{"region": "x"}}})
			return err
		}, want: shared.ErrInvalidArgument, says: []string{"region"}},
		{name: "bad key id", run: func() error {
			_, err := e.p.PublicKey(ctx, shared.PublicKeyRequest{Key: shared.KeyRef{ID: "arn:aws:kms:x"}})
			return err
		}, want: shared.ErrInvalidArgument, says: []string{"/keys/<name>"}},
		{name: "missing ca_file", run: func() error {
			_, err := e.p.PublicKey(ctx, shared.PublicKeyRequest{Key: shared.KeyRef{ID: e.srv.KeyID("err"), Params: map[string]string{"ca_file": "/nonexistent.pem"}}})
			return err
		}, want: shared.ErrInvalidArgument, says: []string{"ca_file"}},
		{name: "untrusted server", run: func() error {
			_, err := e.p.PublicKey(ctx, shared.PublicKeyRequest{Key: shared.KeyRef{ID: e.srv.KeyID("err")}})
			return err
		}, want: shared.ErrUnavailable, says: []string{"certificate"}},
		{name: "exists", run: func() error {
			_, err := e.p.CreateKey(ctx, shared.CreateKeyRequest{Key: e.ref("err-rsa"), Type: shared.RSA2048})
			return err
		}, want: shared.ErrAlreadyExists, says: []string{"already exists"}},
		{name: "list without vault_url", run: func() error {
			_, err := e.p.ListKeys(ctx, shared.ListKeysRequest{Params: e.params})
			return err
		}, want: shared.ErrInvalidArgument, says: []string{"vault_url"}},
		{name: "vault_url mismatch", run: func() error {
			_, err := e.p.PublicKey(ctx, shared.PublicKeyRequest{Key: shared.KeyRef{ID: e.srv.KeyID("err"), Params: map[string]string{"vault_url": "https://other.vault.azure.net"}}})
			return err
		}, want: shared.ErrInvalidArgument, says: []string{"does not match"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			err := tt.run()
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if strings.Contains(err.Error(), e.srv.Token) || strings.Contains(err.Error(), "not-the-token") {
				t.Errorf("error %q carries a token", err)
			}
		})
	}
}

// TestListKeys lists a vault across several pages and leaves out keys
// that cannot sign.
func TestListKeys(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	kv := e.azkeysClient(t)
	want := map[string]shared.KeyType{}
	for i := 0; i < 27; i++ { // more than one page of 25
		name := fmt.Sprintf("list-%02d", i)
		want[e.srv.KeyID(name)] = shared.ECP256
		e.create(t, name, shared.ECP256)
	}
	e.create(t, "list-rsa", shared.RSA2048)
	want[e.srv.KeyID("list-rsa")] = shared.RSA2048
	if _, err := kv.CreateKey(ctx, "encrypt-only", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA),
		KeyOps: []*azkeys.KeyOperation{to.Ptr(azkeys.KeyOperationEncrypt)}}, nil); err != nil {
		t.Fatal(err)
	}
	params := map[string]string{"ca_file": e.srv.CAFile, "vault_url": e.srv.URL}
	keys, err := e.p.ListKeys(ctx, shared.ListKeysRequest{Params: params})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(want) {
		t.Fatalf("ListKeys returned %d keys, want %d", len(keys), len(want))
	}
	for _, k := range keys {
		if want[k.KeyID] != k.Type || len(k.CurrentVersion) != 32 {
			t.Errorf("ListKeys entry %+v, want type %s and a version", k, want[k.KeyID])
		}
	}
}

// TestHSMParam creates HSM-backed keys when asked.
func TestHSMParam(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ref := shared.KeyRef{ID: e.srv.KeyID("hsm"), Params: map[string]string{"ca_file": e.srv.CAFile, "hsm": "true"}}
	if _, err := e.p.CreateKey(ctx, shared.CreateKeyRequest{Key: ref, Type: shared.RSA3072}); err != nil {
		t.Fatal(err)
	}
	md, err := e.p.KeyMetadata(ctx, shared.KeyMetadataRequest{Key: ref})
	if err != nil {
		t.Fatal(err)
	}
	if md.Attributes["kty"] != "RSA-HSM" || md.Attributes["hsm"] != "true" || md.Type != shared.RSA3072 {
		t.Errorf("HSM key metadata = %+v", md)
	}
	digest, _ := shared.Digest(shared.PS384, []byte("hsm"))
	sig, err := e.p.Sign(ctx, shared.SignRequest{Key: ref, Algorithm: shared.PS384, Digest: digest})
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := e.p.PublicKey(ctx, shared.PublicKeyRequest{Key: ref})
	pub, _, _ := shared.ParsePublicKey(pk.DER)
	if err := shared.VerifyDigest(pub, shared.PS384, digest, sig.Signature); err != nil {
		t.Error(err)
	}
}

// TestTraceLogNoBodies runs the provider at trace level against a vault
// that reflects the bearer token in its error answers: the Azure SDK's
// request log reaches the provider's logger with the Authorization header
// redacted, no response body is logged, and the token is in no log line
// and no error.
func TestTraceLogNoBodies(t *testing.T) {
	srv, err := kvtest.New("")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	logs := &syncBuffer{}
	p := shared.Validate(azure.New(azure.Config{
		Credential: &countingCred{token: srv.Token},
		Logger:     hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace}),
	}))
	checkReflected(t, p, srv)
	checkTraceLog(t, logs.String(), srv.Token)
}

// checkReflected creates a key, has the vault reflect the token in its
// answers and checks what Sign and PublicKey return: the error quotes the
// answer, so the token did come back, but redacted.
func checkReflected(t *testing.T, p shared.Provider, srv *kvtest.Server) {
	t.Helper()
	ctx := context.Background()
	ref := shared.KeyRef{ID: srv.KeyID("reflect"), Params: map[string]string{"ca_file": srv.CAFile}}
	if _, err := p.CreateKey(ctx, shared.CreateKeyRequest{Key: ref, Type: shared.ECP256}); err != nil {
		t.Fatal(err)
	}
	srv.Reflect(true)
	defer srv.Reflect(false)
	digest, _ := shared.Digest(shared.ES256, []byte("x"))
	_, serr := p.Sign(ctx, shared.SignRequest{Key: ref, Algorithm: shared.ES256, Digest: digest})
	_, perr := p.PublicKey(ctx, shared.PublicKeyRequest{Key: ref})
	for _, err := range []error{serr, perr} {
		if !errors.Is(err, shared.ErrInvalidArgument) || !strings.Contains(err.Error(), kvtest.ReflectedMarker) || !strings.Contains(err.Error(), "[REDACTED]") {
			t.Errorf("error = %v, want ErrInvalidArgument quoting the reflected answer, redacted", err)
		}
		if strings.Contains(err.Error(), srv.Token) {
			t.Errorf("the token appears in error %q", err)
		}
	}
}

// checkTraceLog checks a trace-level log: the Azure SDK's request lines
// (Authorization redacted) and the provider's are there; no response body
// and no token is.
func checkTraceLog(t *testing.T, out, token string) {
	t.Helper()
	if os.Getenv("SHOWLOG") != "" {
		t.Log(out)
	}
	if !strings.Contains(out, "Authorization: REDACTED") || !strings.Contains(out, "created key") {
		t.Errorf("the trace log lacks the SDK's request lines or the provider's:\n%.2000s", out)
	}
	if strings.Contains(out, kvtest.ReflectedMarker) {
		t.Errorf("a response body was logged:\n%.2000s", out)
	}
	if strings.Contains(out, token) {
		t.Error("the token appears in the trace log")
	}
}

// TestPaddedECKeys reads EC keys the way Key Vault returns imported ones,
// coordinates one byte longer than the field with a leading zero, through
// the real azkeys client: the public key is the same, and signatures
// verify against it.
func TestPaddedECKeys(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, kt := range []shared.KeyType{shared.ECP256, shared.ECP384, shared.ECP521} {
		name := "pad-" + strings.ReplaceAll(string(kt), "-", "")
		e.create(t, name, kt)
		plain, err := e.p.PublicKey(ctx, shared.PublicKeyRequest{Key: e.ref(name)})
		if err != nil {
			t.Fatal(err)
		}
		e.srv.PadECCoordinates(true)
		padded, err := e.p.PublicKey(ctx, shared.PublicKeyRequest{Key: e.ref(name)})
		if err != nil || !slices.Equal(padded.DER, plain.DER) || padded.Type != kt {
			t.Errorf("%s: PublicKey with padded coordinates = %s, %v; want the same %s key", kt, padded.Type, err, kt)
		}
		// The padding is really on the wire.
		kb, err := e.azkeysClient(t).GetKey(ctx, name, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		size := map[shared.KeyType]int{shared.ECP256: 33, shared.ECP384: 49, shared.ECP521: 67}[kt]
		if len(kb.Key.X) != size || len(kb.Key.Y) != size || kb.Key.X[0] != 0 {
			t.Errorf("%s: the vault sent %d- and %d-byte coordinates, want %d with a leading zero", kt, len(kb.Key.X), len(kb.Key.Y), size)
		}
		alg := kt.DefaultAlgorithm()
		digest, _ := shared.Digest(alg, []byte("padded"))
		sig, err := e.p.Sign(ctx, shared.SignRequest{Key: e.ref(name), Algorithm: alg, Digest: digest})
		if err != nil {
			t.Fatal(err)
		}
		pub, _, err := shared.ParsePublicKey(padded.DER)
		if err != nil {
			t.Fatal(err)
		}
		if err := shared.VerifyDigest(pub, alg, digest, sig.Signature); err != nil {
			t.Errorf("%s: signature does not verify against the key read from padded coordinates: %v", kt, err)
		}
		if v, err := e.p.Verify(ctx, shared.VerifyRequest{Key: e.ref(name), Algorithm: alg, Digest: digest, Signature: sig.Signature}); err != nil || !v.Valid {
			t.Errorf("%s: Verify with padded coordinates = %+v, %v; want valid", kt, v, err)
		}
		md, err := e.p.KeyMetadata(ctx, shared.KeyMetadataRequest{Key: e.ref(name)})
		if err != nil || md.Type != kt {
			t.Errorf("%s: KeyMetadata with padded coordinates = %s, %v", kt, md.Type, err)
		}
		e.srv.PadECCoordinates(false)
	}
}
