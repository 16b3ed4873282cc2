package azure

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/knhk/knhk/shared"
)

// EnvAuthToken names the environment variable holding a static bearer
// token. It is used as is: it expires (typically after an hour) and is
// never refreshed.
const EnvAuthToken = "AZURE_AUTH_TOKEN"

// staticToken is a TokenCredential that hands out one fixed token.
type staticToken struct{ token string }

var _ azcore.TokenCredential = staticToken{}

// GetToken returns the token. The expiry is a guess (Key Vault tokens last
// about an hour); it only makes the SDK ask again later for the same token.
func (s staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: s.token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// String and GoString keep the token out of anything that prints the value.
func (s staticToken) String() string   { return "static bearer token from " + EnvAuthToken }
func (s staticToken) GoString() string { return s.String() }

// newCredential builds the credential for one parameter set: the static
// token when AZURE_AUTH_TOKEN is set, else DefaultAzureCredential (for the
// tenant_id given), or, when client_id names an identity, that identity via
// a client secret, workload identity or managed identity.
func newCredential(token string, ps shared.Params, opts azcore.ClientOptions) (azcore.TokenCredential, error) {
	if token != "" {
		return staticToken{token: token}, nil
	}
	tenantID, clientID := ps.String(ParamTenantID), ps.String(ParamClientID)
	if clientID == "" {
		return azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: opts, TenantID: tenantID})
	}
	tenant := tenantID
	if tenant == "" {
		tenant = os.Getenv("AZURE_TENANT_ID")
	}
	var chain []azcore.TokenCredential
	if secret := os.Getenv("AZURE_CLIENT_SECRET"); secret != "" && tenant != "" {
		c, err := azidentity.NewClientSecretCredential(tenant, clientID, secret, &azidentity.ClientSecretCredentialOptions{ClientOptions: opts})
		if err != nil {
			return nil, err
		}
		chain = append(chain, c)
	}
	if os.Getenv("AZURE_FEDERATED_TOKEN_FILE") != "" {
		c, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{ClientOptions: opts, ClientID: clientID, TenantID: tenantID})
		if err != nil {
			return nil, err
		}
		chain = append(chain, c)
	}
	mi, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts, ID: azidentity.ClientID(clientID)})
	if err != nil {
		return nil, err
	}
	chain = append(chain, mi)
	return azidentity.NewChainedTokenCredential(chain, nil)
}

// tokenError marks an error from getting a token, so it maps to
// ErrPermissionDenied rather than to a network failure.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// markedCredential tags its credential's errors as tokenErrors and
// records the tokens it hands out, so that messages can be scrubbed of
// them.
type markedCredential struct {
	azcore.TokenCredential
	issued *tokenSet
}

var _ azcore.TokenCredential = markedCredential{}

// GetToken gets a token from the wrapped credential.
func (c markedCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tk, err := c.TokenCredential.GetToken(ctx, o)
	if err != nil {
		return tk, &tokenError{err}
	}
	c.issued.add(tk.Token)
	return tk, nil
}

// maxTokens bounds how many recent tokens a tokenSet remembers: more than
// a process holds at once (one per identity and tenant, renewed hourly).
const maxTokens = 32

// tokenSet is the bearer tokens a provider has used, newest last: what
// redaction removes from errors and the SDK's log, in case a server or
// proxy echoes one. The zero value is empty and ready.
type tokenSet struct {
	mu     sync.Mutex
	tokens []string
}

// add remembers a token.
func (s *tokenSet) add(token string) {
	if token == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Contains(s.tokens, token) {
		return
	}
	if len(s.tokens) == maxTokens {
		s.tokens = slices.Delete(s.tokens, 0, 1)
	}
	s.tokens = append(s.tokens, token)
}

// list returns the tokens remembered.
func (s *tokenSet) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.tokens)
}

// isCredentialError reports whether err came from getting a token.
func isCredentialError(err error) bool {
	var te *tokenError
	return errors.As(err, &te)
}

// credentialHint is appended to token errors.
func credentialHint() string {
	return fmt.Sprintf("configure Azure credentials (environment, workload identity, managed identity or Azure CLI; see DefaultAzureCredential) or set %s", EnvAuthToken)
}
