package azure_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/hashicorp/go-hclog"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/plugins/azure/internal/kvtest"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/shared/providertest"
)

// hostEnv is a test vault and a knhk host that runs the built
// knhk-plugin-azure against it with AZURE_AUTH_TOKEN set to token.
type hostEnv struct {
	srv  *kvtest.Server
	h    *host.Host
	logs *syncBuffer
}

func newHostEnv(t *testing.T, srv *kvtest.Server, token string) *hostEnv {
	t.Helper()
	t.Setenv("AZURE_AUTH_TOKEN", token)
	t.Setenv("KNHK_LOG_LEVEL", "trace")
	logs := &syncBuffer{}
	h, err := host.New(context.Background(), host.Config{
		PluginDirs: []string{filepath.Dir(pluginBin)},
		Logger:     hclog.New(&hclog.LoggerOptions{Name: "knhk", Output: logs, Level: hclog.Trace}),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return &hostEnv{srv: srv, h: h, logs: logs}
}

func newVault(t *testing.T) *kvtest.Server {
	t.Helper()
	srv, err := kvtest.New("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// ref is a host key reference to a key in the test vault.
func (e *hostEnv) ref(name string) string {
	return "azure:" + e.srv.KeyID(name) + "?ca_file=" + url.QueryEscape(e.srv.CAFile)
}

// TestConformanceThroughHost runs the conformance kit against the built
// plugin, through the host, for all six key types and nine algorithms.
func TestConformanceThroughHost(t *testing.T) {
	srv := newVault(t)
	e := newHostEnv(t, srv, srv.Token)
	p, err := e.h.Provider(context.Background(), "azure")
	if err != nil {
		t.Fatal(err)
	}
	d, err := p.Describe(context.Background())
	if err != nil || len(d.KeyTypes) != 6 || len(d.Algorithms) != 9 {
		t.Fatalf("Describe through the host = %+v, %v; want 6 key types and 9 algorithms", d, err)
	}
	providertest.Run(t, providertest.Config{
		Provider:     p,
		Params:       map[string]string{"ca_file": srv.CAFile, "vault_url": srv.URL},
		KeyID:        func(kt shared.KeyType) string { return srv.KeyID("kit-" + string(kt)) },
		MissingKeyID: srv.KeyID("kit-missing"),
	})
}

// TestRotationThroughHost creates, signs, rotates and signs again through
// the host's Key and Signer, checking versions and that old signatures
// keep verifying.
func TestRotationThroughHost(t *testing.T) {
	srv := newVault(t)
	e := newHostEnv(t, srv, srv.Token)
	ctx := context.Background()
	k, err := e.h.CreateKey(ctx, e.ref("hrot"), shared.RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := shared.Digest(shared.PS256, []byte("release 1"))
	old, err := k.SignDigest(ctx, digest, host.SignOptions{Algorithm: shared.PS256})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := k.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v2 == "" || v2 == old.Version {
		t.Fatalf("Rotate = %q, want a version other than %q", v2, old.Version)
	}
	pk, err := k.PublicKey(ctx, "")
	if err != nil || pk.Version != v2 {
		t.Fatalf("current public key after rotation = %q, %v; want %s", pk.Version, err, v2)
	}
	sig, err := k.SignDigest(ctx, digest, host.SignOptions{Algorithm: shared.PS256})
	if err != nil || sig.Version != v2 {
		t.Fatalf("SignDigest after rotation = %q, %v; want version %s", sig.Version, err, v2)
	}
	if err := shared.VerifyDigest(pk.Key, shared.PS256, digest, sig.Signature); err != nil {
		t.Errorf("new signature does not verify against the new key: %v", err)
	}
	if err := k.VerifyDigest(ctx, digest, old.Signature, host.SignOptions{Algorithm: shared.PS256, Version: old.Version}); err != nil {
		t.Errorf("old signature does not verify with the old version: %v", err)
	}
	if err := k.VerifyDigest(ctx, digest, old.Signature, host.SignOptions{Algorithm: shared.PS256}); err == nil {
		t.Error("old signature verifies against the new version: rotation made no new key")
	}
	pinned, err := k.SignDigest(ctx, digest, host.SignOptions{Algorithm: shared.PS256, Version: old.Version})
	if err != nil || pinned.Version != old.Version {
		t.Errorf("signing with the old version named = %q, %v; want %s", pinned.Version, err, old.Version)
	}
	md, err := k.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if md.CurrentVersion != v2 || len(md.Versions) != 2 || md.Versions[0].Version != old.Version || md.Versions[1].Version != v2 {
		t.Errorf("Metadata = %+v, want versions [%s %s]", md, old.Version, v2)
	}
	// A crypto.Signer made now signs with the new version.
	s, err := e.h.Signer(ctx, e.ref("hrot"))
	if err != nil {
		t.Fatal(err)
	}
	d256, _ := shared.Digest(shared.RS256, []byte("via crypto.Signer"))
	raw, err := s.Sign(nil, d256, cryptoSHA256)
	if err != nil {
		t.Fatal(err)
	}
	if err := shared.VerifyDigest(s.Public(), shared.RS256, d256, raw); err != nil {
		t.Errorf("crypto.Signer signature does not verify: %v", err)
	}
	// The plugin answered the bearer challenge once, then sent its token
	// with every request; the create request carried its body.
	reqs := srv.Requests()
	if len(reqs) < 3 || reqs[0].Authorized || reqs[0].Status != http.StatusUnauthorized {
		t.Fatalf("requests = %+v, want an unauthenticated 401 first", reqs)
	}
	for i, r := range reqs[1:] {
		if !r.Authorized {
			t.Errorf("request %d (%s %s) carried no token after the challenge", i+1, r.Method, r.Path)
		}
		if strings.HasSuffix(r.Path, "/create") && r.BodyLen == 0 {
			t.Errorf("create request %d arrived without its body", i+1)
		}
	}
}

// TestErrorsThroughHost maps the vault's 401, 403, 404, 429 and
// disabled-key answers to typed errors as the host's caller sees them, and
// checks the token is in no error and no log line.
func TestErrorsThroughHost(t *testing.T) {
	srv := newVault(t)
	e := newHostEnv(t, srv, srv.Token)
	ctx := context.Background()
	for _, name := range []string{"herr", "hdis"} {
		if _, err := e.h.CreateKey(ctx, e.ref(name), shared.ECP256); err != nil {
			t.Fatal(err)
		}
	}
	digest, _ := shared.Digest(shared.ES256, []byte("x"))
	sign := func(h *host.Host, ref string) error {
		k, err := h.Key(ctx, ref)
		if err != nil {
			return err
		}
		_, err = k.SignDigest(ctx, digest, host.SignOptions{})
		return err
	}
	var errs []error
	tests := []struct {
		name  string
		setup func(t *testing.T)
		run   func(t *testing.T) error
		want  error
		says  []string
	}{
		{name: "404", run: func(*testing.T) error { return sign(e.h, e.ref("hmissing")) },
			want: shared.ErrKeyNotFound, says: []string{"KeyNotFound"}},
		{name: "403", setup: func(*testing.T) { srv.Deny("sign", true) },
			run:  func(*testing.T) error { defer srv.Deny("sign", false); return sign(e.h, e.ref("herr")) },
			want: shared.ErrPermissionDenied, says: []string{"ForbiddenByPolicy", "access policies or Azure RBAC"}},
		{name: "429", setup: func(*testing.T) { srv.FailNext(4, http.StatusTooManyRequests, "Throttled") },
			run: func(*testing.T) error { return sign(e.h, e.ref("herr")) }, want: shared.ErrUnavailable, says: []string{"429", "Throttled"}},
		{name: "disabled", setup: func(t *testing.T) {
			kv := (&env{srv: srv}).azkeysClient(t)
			if _, err := kv.UpdateKey(ctx, "hdis", "", azkeys.UpdateKeyParameters{KeyAttributes: &azkeys.KeyAttributes{Enabled: to.Ptr(false)}}, nil); err != nil {
				t.Fatal(err)
			}
		}, run: func(*testing.T) error { return sign(e.h, e.ref("hdis")) }, want: shared.ErrFailedPrecondition, says: []string{"KeyDisabled"}},
		{name: "401", run: func(t *testing.T) error {
			// A second host whose plugin holds a token the vault refuses.
			bad := newHostEnv(t, srv, "refused-token-0123456789")
			err := sign(bad.h, bad.ref("herr"))
			bad.h.Close()
			if strings.Contains(bad.logs.String(), "refused-token-0123456789") {
				t.Error("the refused token appears in the plugin's logs")
			}
			return err
		}, want: shared.ErrPermissionDenied, says: []string{"401", "Unauthorized", "access policies or Azure RBAC"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup(t)
			}
			err := tt.run(t)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			errs = append(errs, err)
		})
	}
	// The SDK's trace log (requests and responses) reached the host, with
	// the Authorization header redacted and the token nowhere.
	e.h.Close()
	out := e.logs.String()
	if !strings.Contains(out, "Authorization: REDACTED") || !strings.Contains(out, "created key") {
		t.Errorf("the host's log lacks the plugin's trace lines:\n%.2000s", out)
	}
	if strings.Contains(out, srv.Token) {
		t.Error("the token appears in a log line")
	}
	for _, err := range errs {
		if strings.Contains(err.Error(), srv.Token) || strings.Contains(err.Error(), "refused-token-0123456789") {
			t.Errorf("a token appears in error %q", err)
		}
	}
}

func hostSignOptions() host.SignOptions { return host.SignOptions{} }
