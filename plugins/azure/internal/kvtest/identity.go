package kvtest

import (
	"net/http"
	"strconv"
	"time"
)

// IdentityPath is where the server answers as an App Service managed
// identity endpoint. Point IDENTITY_ENDPOINT at s.URL+IdentityPath and
// IDENTITY_HEADER at s.IdentityHeader, and azidentity's
// ManagedIdentityCredential (and so DefaultAzureCredential) fetches this
// server's token from it: the real credential chain, with no Entra ID.
const IdentityPath = "/msi/token"

// TokenRequest is one request the identity endpoint answered.
type TokenRequest struct {
	Resource string // e.g. https://vault.azure.net
	ClientID string // user-assigned identity asked for; empty for system-assigned
}

// TokenRequests returns the token requests seen so far.
func (s *Server) TokenRequests() []TokenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]TokenRequest(nil), s.tokenReqs...)
}

// identity answers an App Service managed identity token request
// (api-version 2019-08-01): X-IDENTITY-HEADER must match.
func (s *Server) identity(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-IDENTITY-HEADER") != s.IdentityHeader {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"statusCode": 401, "message": "X-IDENTITY-HEADER is missing or wrong"})
		return
	}
	q := r.URL.Query()
	s.mu.Lock()
	s.tokenReqs = append(s.tokenReqs, TokenRequest{Resource: q.Get("resource"), ClientID: q.Get("client_id")})
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": s.Token,
		"expires_on":   strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10),
		"resource":     q.Get("resource"),
		"token_type":   "Bearer",
		"client_id":    q.Get("client_id"),
	})
}
