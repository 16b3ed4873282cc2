package vault_test

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"

	"github.com/knhk/knhk/plugins/vault"
	"github.com/knhk/knhk/plugins/vault/internal/vaulttest"
	"github.com/knhk/knhk/shared"
)

// signerPolicy allows signing, verifying and reading Transit keys, but not
// rotating or creating them.
const signerPolicy = `
path "transit/sign/*"   { capabilities = ["update"] }
path "transit/verify/*" { capabilities = ["update"] }
path "transit/keys/*"   { capabilities = ["read"] }
`

// signerToken writes the signer policy and returns a token holding it.
func signerToken(t *testing.T, ttl string) string {
	t.Helper()
	if err := srv.Policy("knhk-signer", signerPolicy); err != nil {
		t.Fatal(err)
	}
	yes := true
	tok, err := srv.Token(&api.TokenCreateRequest{Policies: []string{"knhk-signer"}, TTL: ttl, Renewable: &yes})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// capture returns a provider (behind the SDK's request checks) logging at
// trace level into a buffer.
func capture(t *testing.T) (shared.Provider, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	p := vault.New(vault.Config{Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: logs})})
	t.Cleanup(func() { p.Close() })
	return shared.Validate(p), logs
}

// TestPermissionDenied: a token that may sign but not rotate signs, and
// gets ErrPermissionDenied naming the denied path on rotate.
func TestPermissionDenied(t *testing.T) {
	p := newProvider(t)
	name := keyName("deny")
	create(t, p, name, shared.ECP256, params())
	tok := signerToken(t, "1h")
	prm := params("token_file", writeFile(t, tok+"\n"))
	ref := shared.KeyRef{ID: name, Params: prm}
	d := sha256.Sum256([]byte("allowed"))
	if _, err := p.Sign(ctx(t), shared.SignRequest{Key: ref, Algorithm: shared.ES256, Digest: d[:]}); err != nil {
		t.Fatalf("Sign with the signer token: %v", err)
	}
	_, err := p.RotateKey(ctx(t), shared.RotateKeyRequest{Key: ref})
	if !errors.Is(err, shared.ErrPermissionDenied) {
		t.Fatalf("RotateKey with the signer token: %v, want ErrPermissionDenied", err)
	}
	t.Logf("rotate: %v", err)
	if !strings.Contains(err.Error(), "transit/keys/"+name+"/rotate") {
		t.Errorf("error %q does not name the denied path", err)
	}
	assertNoSecrets(t, err.Error(), tok, srv.RootToken)
}

// TestAppRole logs in with AppRole, from files named by parameters and
// from the environment, and signs.
func TestAppRole(t *testing.T) {
	if err := srv.Policy("knhk-signer", signerPolicy); err != nil {
		t.Fatal(err)
	}
	roleID, secretID, err := srv.AppRole("knhk-signer", []string{"knhk-signer"}, "1h")
	if err != nil {
		t.Fatal(err)
	}
	name := keyName("approle")
	create(t, newProvider(t), name, shared.Ed25519, params())
	check := func(t *testing.T, prm map[string]string) {
		p, logs := capture(t)
		ref := shared.KeyRef{ID: name, Params: prm}
		pub, _ := publicKey(t, p, ref, "")
		sig, err := p.Sign(ctx(t), shared.SignRequest{Key: ref, Algorithm: shared.EdDSA, Message: []byte("approle")})
		if err != nil {
			t.Fatalf("Sign after AppRole login: %v", err)
		}
		if err := shared.VerifyMessage(pub, shared.EdDSA, []byte("approle"), sig.Signature); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), "logged in to Vault") {
			t.Errorf("no login in the logs:\n%s", logs)
		}
		assertNoSecrets(t, logs.String(), secretID, srv.RootToken)
	}
	t.Run("files", func(t *testing.T) {
		check(t, params("auth", "approle", "role_id_file", writeFile(t, roleID), "secret_id_file", writeFile(t, secretID)))
	})
	t.Run("environment", func(t *testing.T) {
		t.Setenv(vault.EnvRoleID, roleID)
		t.Setenv(vault.EnvSecretID, secretID)
		check(t, params("auth", "approle"))
	})
	t.Run("wrong secret id", func(t *testing.T) {
		p, _ := capture(t)
		wrong := "00000000-0000-0000-0000-000000000000"
		_, err := p.PublicKey(ctx(t), shared.PublicKeyRequest{Key: shared.KeyRef{ID: name,
			Params: params("auth", "approle", "role_id", roleID, "secret_id_file", writeFile(t, wrong))}})
		if !errors.Is(err, shared.ErrPermissionDenied) {
			t.Fatalf("AppRole login with a wrong secret id: %v, want ErrPermissionDenied", err)
		}
		assertNoSecrets(t, err.Error(), wrong, secretID)
	})
}

// TestTokenRenewal: a renewable token with a 6s TTL keeps signing for
// well past 6s because the lifetime watcher renews it.
func TestTokenRenewal(t *testing.T) {
	t.Parallel()
	name := keyName("renew")
	create(t, newProvider(t), name, shared.ECP256, params())
	tok := signerToken(t, "6s")
	p, logs := capture(t)
	ref := shared.KeyRef{ID: name, Params: params("token_file", writeFile(t, tok))}
	d := sha256.Sum256([]byte("renewal"))
	signFor(t, p, ref, shared.ES256, d[:], 15*time.Second)

	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	look, err := c.Auth().Token().Lookup(tok)
	if err != nil {
		t.Fatalf("looking up the token after 15s (its TTL was 6s): %v", err)
	}
	if n, _ := look.Data["last_renewal_time"].(json.Number).Int64(); n == 0 {
		t.Errorf("token was never renewed: %v", look.Data)
	}
	if !strings.Contains(logs.String(), "renewed Vault token") {
		t.Errorf("no renewal in the logs:\n%s", logs)
	}
	assertNoSecrets(t, logs.String(), tok, srv.RootToken)
}

// TestReloginAfterMaxTTL: an AppRole token that cannot be renewed past its
// max TTL (8s) is replaced by a fresh login while signing continues.
func TestReloginAfterMaxTTL(t *testing.T) {
	t.Parallel()
	if err := srv.Policy("knhk-signer", signerPolicy); err != nil {
		t.Fatal(err)
	}
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	roleID, secretID, err := srv.AppRole("knhk-short", []string{"knhk-signer"}, "4s")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("auth/approle/role/knhk-short", map[string]any{"token_max_ttl": "8s", "secret_id_num_uses": 0}); err != nil {
		t.Fatal(err)
	}
	name := keyName("relogin")
	create(t, newProvider(t), name, shared.ECP384, params())
	p, logs := capture(t)
	ref := shared.KeyRef{ID: name, Params: params("auth", "approle", "role_id", roleID, "secret_id_file", writeFile(t, secretID))}
	d := make([]byte, 48)
	signFor(t, p, ref, shared.ES384, d, 18*time.Second)
	if n := strings.Count(logs.String(), "logged in to Vault"); n < 2 {
		t.Errorf("logged in %d times in 18s with an 8s max TTL, want at least 2:\n%s", n, logs)
	}
	assertNoSecrets(t, logs.String(), secretID, srv.RootToken)
}

// signFor signs every 500ms for d and fails on the first error.
func signFor(t *testing.T, p shared.Provider, ref shared.KeyRef, alg shared.Algorithm, digest []byte, d time.Duration) {
	t.Helper()
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		if _, err := p.Sign(ctx(t), shared.SignRequest{Key: ref, Algorithm: alg, Digest: digest}); err != nil {
			t.Fatalf("Sign #%d failed: %v", n, err)
		}
		n++
	}
}

// TestSealed: a sealed Vault gives ErrUnavailable. It uses a server of its
// own so the other tests keep theirs.
func TestSealed(t *testing.T) {
	s, err := startServer()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	p := newProvider(t)
	prm := map[string]string{"addr": s.Addr, "token_file": writeFile(t, s.RootToken)}
	name := keyName("sealed")
	create(t, p, name, shared.ECP256, prm)
	if err := s.Seal(); err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("sealed"))
	_, err = p.Sign(ctx(t), shared.SignRequest{Key: shared.KeyRef{ID: name, Params: prm}, Algorithm: shared.ES256, Digest: d[:]})
	if !errors.Is(err, shared.ErrUnavailable) {
		t.Fatalf("Sign on a sealed Vault: %v, want ErrUnavailable", err)
	}
	t.Logf("sealed: %v", err)
	if !strings.Contains(err.Error(), "sealed") {
		t.Errorf("error %q does not say the Vault is sealed", err)
	}
}

// assertNoSecrets fails if text contains any of the secrets.
func assertNoSecrets(t *testing.T, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("a secret (%d chars) appears in:\n%s", len(s), strings.ReplaceAll(text, s, "<SECRET>"))
		}
	}
}

// TestKubernetesLogin: auth=kubernetes reads the service-account token file
// and logs in at auth/<mount>/login. The test Vault has no Kubernetes API
// to review the token, so the login is refused; the error is typed and
// does not contain the service-account token.
func TestKubernetesLogin(t *testing.T) {
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().EnableAuthWithOptions("k8s-test", &api.EnableAuthOptions{Type: "kubernetes"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("auth/k8s-test/config", map[string]any{"kubernetes_host": "https://127.0.0.1:1", "disable_local_ca_jwt": true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("auth/k8s-test/role/signer", map[string]any{
		"bound_service_account_names": "knhk", "bound_service_account_namespaces": "default", "token_policies": "knhk-signer",
	}); err != nil {
		t.Fatal(err)
	}
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDprbmhrIn0.c2lnbmF0dXJl"
	p, logs := capture(t)
	_, err = p.PublicKey(ctx(t), shared.PublicKeyRequest{Key: shared.KeyRef{ID: "transit/x",
		Params: params("auth", "kubernetes", "role", "signer", "auth_mount", "k8s-test", "jwt_file", writeFile(t, jwt))}})
	if !errors.Is(err, shared.ErrPermissionDenied) && !errors.Is(err, shared.ErrUnavailable) {
		t.Fatalf("kubernetes login without a Kubernetes API: %v, want ErrPermissionDenied or ErrUnavailable", err)
	}
	t.Logf("kubernetes login: %v", err)
	if !strings.Contains(err.Error(), "auth/k8s-test/login") {
		t.Errorf("error %q does not name the login path", err)
	}
	assertNoSecrets(t, err.Error()+logs.String(), jwt, srv.RootToken)

	_, err = p.PublicKey(ctx(t), shared.PublicKeyRequest{Key: shared.KeyRef{ID: "transit/x",
		Params: params("auth", "kubernetes", "role", "signer", "jwt_file", "/nonexistent/jwt")}})
	if !errors.Is(err, shared.ErrInvalidArgument) {
		t.Errorf("missing service-account token file: %v, want ErrInvalidArgument", err)
	}
}

// TestReloginAfterRevocation: when Vault revokes the plugin's token between
// renewals, the next request finds it dead, logs in again (AppRole) or
// reads the refreshed token file (token auth), and succeeds.
func TestReloginAfterRevocation(t *testing.T) {
	if err := srv.Policy("knhk-signer", signerPolicy); err != nil {
		t.Fatal(err)
	}
	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	name := keyName("revoked")
	create(t, newProvider(t), name, shared.ECP256, params())
	d := sha256.Sum256([]byte("revoked"))
	sign := func(p shared.Provider, prm map[string]string) error {
		_, err := p.Sign(ctx(t), shared.SignRequest{Key: shared.KeyRef{ID: name, Params: prm}, Algorithm: shared.ES256, Digest: d[:]})
		return err
	}

	t.Run("approle", func(t *testing.T) {
		roleID, secretID, err := srv.AppRole("knhk-revoked", []string{"knhk-signer"}, "1h")
		if err != nil {
			t.Fatal(err)
		}
		p, logs := capture(t)
		prm := params("auth", "approle", "role_id", roleID, "secret_id_file", writeFile(t, secretID))
		if err := sign(p, prm); err != nil {
			t.Fatal(err)
		}
		if err := c.Sys().RevokePrefix("auth/approle/login"); err != nil {
			t.Fatal(err)
		}
		if err := sign(p, prm); err != nil {
			t.Fatalf("Sign after the token was revoked: %v", err)
		}
		if n := strings.Count(logs.String(), "logged in to Vault"); n != 2 {
			t.Errorf("%d logins, want 2:\n%s", n, logs)
		}
	})

	t.Run("token file", func(t *testing.T) {
		first, second := signerToken(t, "1h"), signerToken(t, "1h")
		file := writeFile(t, first)
		p, _ := capture(t)
		prm := params("token_file", file)
		if err := sign(p, prm); err != nil {
			t.Fatal(err)
		}
		if err := c.Auth().Token().RevokeTree(first); err != nil {
			t.Fatal(err)
		}
		if err := sign(p, prm); !errors.Is(err, shared.ErrPermissionDenied) {
			t.Fatalf("Sign with a revoked token and no other: %v, want ErrPermissionDenied", err)
		}
		if err := os.WriteFile(file, []byte(second), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := sign(p, prm); err != nil {
			t.Fatalf("Sign after the token file was refreshed: %v", err)
		}
	})
}

// TestTLS talks to a Vault with its own CA: with ca_file the provider
// signs; without it the certificate is not trusted and the request fails
// as ErrUnavailable.
func TestTLS(t *testing.T) {
	s, err := vaulttest.StartTLS()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	p := newProvider(t)
	tok := writeFile(t, s.RootToken)
	prm := map[string]string{"addr": s.Addr, "ca_file": s.CAFile, "token_file": tok}
	name := keyName("tls")
	create(t, p, name, shared.Ed25519, prm)
	pub, _ := publicKey(t, p, shared.KeyRef{ID: name, Params: prm}, "")
	sig, err := p.Sign(ctx(t), shared.SignRequest{Key: shared.KeyRef{ID: name, Params: prm}, Algorithm: shared.EdDSA, Message: []byte("tls")})
	if err != nil {
		t.Fatal(err)
	}
	if err := shared.VerifyMessage(pub, shared.EdDSA, []byte("tls"), sig.Signature); err != nil {
		t.Fatal(err)
	}
	_, err = p.PublicKey(ctx(t), shared.PublicKeyRequest{Key: shared.KeyRef{ID: name, Params: map[string]string{"addr": s.Addr, "token_file": tok}}})
	if !errors.Is(err, shared.ErrUnavailable) {
		t.Errorf("without ca_file: %v, want ErrUnavailable (untrusted certificate)", err)
	}
	t.Logf("without ca_file: %v", err)
	_, err = p.PublicKey(ctx(t), shared.PublicKeyRequest{Key: shared.KeyRef{ID: name, Params: map[string]string{"addr": s.Addr, "token_file": tok, "ca_file": "/nonexistent/ca.pem"}}})
	if !errors.Is(err, shared.ErrInvalidArgument) {
		t.Errorf("missing ca_file: %v, want ErrInvalidArgument", err)
	}
}

// TestPasswordInAddr: an address with a password in it
// (http://admin:s3cret@...) is refused with ErrInvalidArgument, in process
// and through the plugin binary, from the addr parameter and from
// VAULT_ADDR, and the password appears in no error and no log line.
func TestPasswordInAddr(t *testing.T) {
	const password = "s3cret"
	addr := "http://admin:" + password + "@127.0.0.1:1"
	try := func(t *testing.T, p shared.Provider, prm map[string]string) string {
		t.Helper()
		ref := shared.KeyRef{ID: "transit/x", Params: prm}
		d := sha256.Sum256([]byte("userinfo"))
		var errs []error
		_, err := p.Sign(ctx(t), shared.SignRequest{Key: ref, Algorithm: shared.ES256, Digest: d[:]})
		errs = append(errs, err)
		_, err = p.PublicKey(ctx(t), shared.PublicKeyRequest{Key: ref})
		errs = append(errs, err)
		_, err = p.CreateKey(ctx(t), shared.CreateKeyRequest{Key: ref, Type: shared.ECP256})
		errs = append(errs, err)
		_, err = p.ListKeys(ctx(t), shared.ListKeysRequest{Params: prm})
		errs = append(errs, err)
		var text []string
		for i, err := range errs {
			if !errors.Is(err, shared.ErrInvalidArgument) {
				t.Errorf("operation %d with a password in the address: %v, want ErrInvalidArgument", i, err)
				continue
			}
			text = append(text, err.Error())
		}
		if len(text) > 0 {
			t.Logf("%s", text[0])
		}
		return strings.Join(text, "\n")
	}
	t.Run("in process", func(t *testing.T) {
		p, logs := capture(t)
		errs := try(t, p, map[string]string{"addr": addr})
		assertNoSecrets(t, errs+"\n"+logs.String(), password)
	})
	t.Run("in process from VAULT_ADDR", func(t *testing.T) {
		t.Setenv("VAULT_ADDR", addr)
		p, logs := capture(t)
		errs := try(t, p, nil)
		assertNoSecrets(t, errs+"\n"+logs.String(), password)
	})
	t.Run("binary", func(t *testing.T) {
		logs := &lockedBuffer{}
		errs := try(t, launchPlugin(t, logs), map[string]string{"addr": addr})
		assertNoSecrets(t, errs+"\n"+logs.String(), password)
	})
	t.Run("binary from VAULT_ADDR", func(t *testing.T) {
		logs := &lockedBuffer{}
		errs := try(t, launchPlugin(t, logs, "VAULT_ADDR="+addr), nil)
		assertNoSecrets(t, errs+"\n"+logs.String(), password)
	})
}
