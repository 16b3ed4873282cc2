package azure_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"testing"

	"github.com/knhk/knhk/plugins/azure"
	"github.com/knhk/knhk/plugins/azure/internal/kvtest"
	"github.com/knhk/knhk/shared"
)

// useManagedIdentity points azidentity's managed identity credential at the
// test vault's identity endpoint and clears AZURE_AUTH_TOKEN, so the
// provider runs the real DefaultAzureCredential chain.
func useManagedIdentity(t *testing.T, srv *kvtest.Server) {
	t.Helper()
	t.Setenv("IDENTITY_ENDPOINT", srv.URL+kvtest.IdentityPath)
	t.Setenv("IDENTITY_HEADER", srv.IdentityHeader)
	t.Setenv(azure.EnvAuthToken, "")
}

// randomID is a client id not used before in this process: MSAL caches
// managed identity tokens process-wide, by identity.
func randomID(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// TestDefaultCredential signs with a token DefaultAzureCredential gets
// from a managed identity endpoint (the identity AZURE_CLIENT_ID names):
// fetched once for the vault's resource, then reused; the client_id
// parameter selects another user-assigned identity.
func TestDefaultCredential(t *testing.T) {
	srv := newVault(t)
	useManagedIdentity(t, srv)
	envID, paramID, badID := randomID(t), randomID(t), randomID(t)
	t.Setenv("AZURE_CLIENT_ID", envID)
	ctx := context.Background()
	p := azure.New(azure.Config{})
	ref := shared.KeyRef{ID: srv.KeyID("mi"), Params: map[string]string{"ca_file": srv.CAFile}}
	if _, err := p.CreateKey(ctx, shared.CreateKeyRequest{Key: ref, Type: shared.ECP256}); err != nil {
		t.Fatal(err)
	}
	digest, _ := shared.Digest(shared.ES256, []byte("mi"))
	for i := 0; i < 3; i++ {
		if _, err := p.Sign(ctx, shared.SignRequest{Key: ref, Algorithm: shared.ES256, Digest: digest}); err != nil {
			t.Fatal(err)
		}
	}
	reqs := srv.TokenRequests()
	if len(reqs) != 1 || reqs[0].Resource != "https://vault.azure.net" || reqs[0].ClientID != envID {
		t.Fatalf("token requests = %+v, want one for https://vault.azure.net as %s", reqs, envID)
	}

	uref := shared.KeyRef{ID: ref.ID, Params: map[string]string{"ca_file": srv.CAFile, "client_id": paramID}}
	if _, err := p.Sign(ctx, shared.SignRequest{Key: uref, Algorithm: shared.ES256, Digest: digest}); err != nil {
		t.Fatal(err)
	}
	reqs = srv.TokenRequests()
	if len(reqs) != 2 || reqs[1].ClientID != paramID {
		t.Fatalf("token requests = %+v, want a second one for the client_id", reqs)
	}

	// A refused identity header is a permission error naming the cause.
	t.Setenv("IDENTITY_HEADER", "wrong")
	bad := shared.KeyRef{ID: ref.ID, Params: map[string]string{"ca_file": srv.CAFile, "client_id": badID}}
	_, err := azure.New(azure.Config{}).PublicKey(ctx, shared.PublicKeyRequest{Key: bad})
	if !errorIs(err, shared.ErrPermissionDenied) || !contains(err, "could not get a token") {
		t.Errorf("PublicKey with a refused identity = %v, want ErrPermissionDenied about the token", err)
	}
	if contains(err, srv.Token) || contains(err, srv.IdentityHeader) {
		t.Errorf("error %q carries a secret", err)
	}
}

// TestDefaultCredentialThroughHost does the same with the built plugin
// under the host.
func TestDefaultCredentialThroughHost(t *testing.T) {
	srv := newVault(t)
	e := newHostEnv(t, srv, "")
	useManagedIdentity(t, srv)
	ctx := context.Background()
	k, err := e.h.CreateKey(ctx, "azure:"+srv.KeyID("himi")+"?ca_file="+url.QueryEscape(srv.CAFile)+"&tenant_id="+kvtest.Tenant, shared.ECP384)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := shared.Digest(shared.ES384, []byte("host mi"))
	for i := 0; i < 3; i++ {
		if _, err := k.SignDigest(ctx, digest, hostSignOptions()); err != nil {
			t.Fatal(err)
		}
	}
	if reqs := srv.TokenRequests(); len(reqs) != 1 || reqs[0].Resource != "https://vault.azure.net" {
		t.Errorf("token requests = %+v, want exactly one for https://vault.azure.net", reqs)
	}
}
