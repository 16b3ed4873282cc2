package kvtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
)

// Tenant is the tenant named in the challenge.
const Tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"

// Challenge is the WWW-Authenticate header of a 401.
const Challenge = `Bearer authorization="https://login.microsoftonline.com/` + Tenant + `", resource="https://vault.azure.net"`

// Server is a running test Key Vault.
type Server struct {
	URL    string // vault URL, https://127.0.0.1:<port>
	CAFile string // PEM file of the server certificate, for ca_file
	Token  string // the one bearer token accepted
	// IdentityHeader is the secret the managed identity endpoint wants.
	IdentityHeader string

	srv *httptest.Server
	dir string

	mu     sync.Mutex
	keys   map[string]*key
	reqs   []Request
	denied map[string]bool // operation → 403 ForbiddenByPolicy
	faults []fault

	tokenReqs []TokenRequest

	reflect  atomic.Bool // answer with the request's Authorization header
	ecPadded atomic.Bool // EC coordinates with a leading zero byte
}

// Request is what the server saw of one request.
type Request struct {
	Method, Path string
	Authorized   bool // carried the right bearer token
	BodyLen      int
	Status       int
}

type fault struct {
	status        int
	code, message string
}

// New starts a server accepting token as its bearer token.
func New(token string) (*Server, error) {
	if token == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		token = "kvtest-" + hex.EncodeToString(b)
	}
	dir, err := os.MkdirTemp("", "kvtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{Token: token, IdentityHeader: "kvtest-identity-" + token, dir: dir, keys: map[string]*key{}, denied: map[string]bool{}}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	// Clients that do not trust the CA are part of the tests; keep their
	// handshake errors out of the output.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.StartTLS()
	s.URL = s.srv.URL
	s.CAFile = filepath.Join(dir, "ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	if err := os.WriteFile(s.CAFile, ca, 0o600); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close stops the server and removes its CA file.
func (s *Server) Close() {
	s.srv.Close()
	os.RemoveAll(s.dir)
}

// KeyID is the id of a key (without version) in this vault.
func (s *Server) KeyID(name string) string { return s.URL + "/keys/" + name }

// Requests returns the requests seen so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// ResetRequests forgets the requests seen so far.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = nil
}

// Deny makes an operation (get, list, create, update, rotate, sign,
// verify) fail with 403 ForbiddenByPolicy, as when the identity lacks the
// permission; deny=false undoes it.
func (s *Server) Deny(op string, deny bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[op] = deny
}

// FailNext makes the next n authorised requests fail with the given HTTP
// status and Key Vault error code. A 429 or 5xx carries retry-after-ms: 1,
// so the SDK's retries are quick.
func (s *Server) FailNext(n, status int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < n; i++ {
		s.faults = append(s.faults, fault{status, code, fmt.Sprintf("injected %d %s", status, code)})
	}
}

// Reflect makes every authorised request fail with 400 BadParameter whose
// message, and an X-Reflected-Authorization response header, echo the
// request's Authorization header, bearer token included, as a broken
// proxy or server might; on=false undoes it. The message starts with
// ReflectedMarker.
func (s *Server) Reflect(on bool) { s.reflect.Store(on) }

// ReflectedMarker starts the message of a reflected answer (see Reflect).
const ReflectedMarker = "KVTEST-REFLECTED-BODY"

// PadECCoordinates makes the server return EC public keys as Key Vault
// returns some imported keys: x and y one byte longer than the field, with
// a leading zero byte (33 bytes for P-256, 49 for P-384, 67 for P-521);
// on=false returns them at the field size again.
func (s *Server) PadECCoordinates(on bool) { s.ecPadded.Store(on) }

// serve authenticates, applies faults and routes one request.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == IdentityPath {
		s.identity(w, r) // recorded in TokenRequests, not Requests
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	authorized := r.Header.Get("Authorization") == "Bearer "+s.Token
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		s.mu.Lock()
		s.reqs = append(s.reqs, Request{Method: r.Method, Path: r.URL.Path, Authorized: authorized, BodyLen: len(body), Status: rec.status})
		s.mu.Unlock()
	}()
	if r.URL.Query().Get("api-version") == "" {
		writeError(rec, http.StatusBadRequest, "BadParameter", "", "The api-version query parameter is missing.")
		return
	}
	if !authorized {
		rec.Header().Set("WWW-Authenticate", Challenge)
		msg := "AKV10000: Request is missing a Bearer or PoP token."
		if r.Header.Get("Authorization") != "" {
			msg = "AKV10032: Invalid issuer or token."
		}
		writeError(rec, http.StatusUnauthorized, "Unauthorized", "", msg)
		return
	}
	if s.reflect.Load() {
		auth := r.Header.Get("Authorization")
		rec.Header().Set("X-Reflected-Authorization", auth)
		writeError(rec, http.StatusBadRequest, "BadParameter", "", ReflectedMarker+": the request carried Authorization: "+auth)
		return
	}
	s.mu.Lock()
	var f *fault
	if len(s.faults) > 0 {
		f = &s.faults[0]
		s.faults = s.faults[1:]
	}
	s.mu.Unlock()
	if f != nil {
		if f.status == http.StatusTooManyRequests || f.status >= 500 {
			rec.Header().Set("retry-after-ms", "1")
		}
		writeError(rec, f.status, f.code, "", f.message)
		return
	}
	s.route(rec, r, body)
}

// route dispatches by method and path.
func (s *Server) route(w http.ResponseWriter, r *http.Request, body []byte) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if parts[0] != "keys" {
		writeError(w, http.StatusNotFound, "NotFound", "", "No route for "+r.URL.Path)
		return
	}
	op, handler := s.handler(r.Method, parts)
	if handler == nil {
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "", r.Method+" "+r.URL.Path+" is not supported")
		return
	}
	s.mu.Lock()
	denied := s.denied[op]
	s.mu.Unlock()
	if denied {
		writeError(w, http.StatusForbidden, "Forbidden", "ForbiddenByPolicy",
			fmt.Sprintf("The user, group or application 'appid=kvtest' does not have keys %s permission on key vault 'kvtest'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287", op))
		return
	}
	handler(w, r, parts, body)
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, parts []string, body []byte)

// handler names the permission and handler for a request.
func (s *Server) handler(method string, parts []string) (string, handlerFunc) {
	switch {
	case len(parts) == 1 && method == http.MethodGet:
		return "list", s.list
	case len(parts) == 3 && parts[2] == "create" && method == http.MethodPost:
		return "create", s.create
	case len(parts) == 3 && parts[2] == "rotate" && method == http.MethodPost:
		return "rotate", s.rotate
	case len(parts) == 3 && parts[2] == "versions" && method == http.MethodGet:
		return "list", s.versions
	case (len(parts) == 2 || len(parts) == 3) && method == http.MethodGet:
		return "get", s.get
	case len(parts) == 3 && method == http.MethodPatch:
		return "update", s.update
	case (len(parts) == 3 || len(parts) == 4) && parts[len(parts)-1] == "sign" && method == http.MethodPost:
		return "sign", s.sign
	case (len(parts) == 3 || len(parts) == 4) && parts[len(parts)-1] == "verify" && method == http.MethodPost:
		return "verify", s.verify
	}
	return "", nil
}

// recorder remembers the status written.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes Key Vault's error shape.
func writeError(w http.ResponseWriter, status int, code, inner, msg string) {
	e := map[string]any{"code": code, "message": msg}
	if inner != "" {
		e["innererror"] = map[string]any{"code": inner}
	}
	writeJSON(w, status, map[string]any{"error": e})
}
