package sidecar

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/knhk/knhk/shared"
)

const (
	httpSPIFFE  = "spiffe://example.org/ns/test/sa/web"
	httpSubject = "x509:CN=batch,O=Example"
)

// httpPKI is a test CA that issues client certificates.
type httpPKI struct {
	pool   *x509.CertPool
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
}

// httpIssue makes a key and a certificate for it from tmpl, signed by
// parent (self-signed when parent is nil).
func httpIssue(t *testing.T, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func httpNewPKI(t *testing.T) *httpPKI {
	t.Helper()
	cert, key := httpIssue(t, &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}, nil, nil)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &httpPKI{pool: pool, caCert: cert, caKey: key}
}

// client issues a client certificate for subject and URI SANs.
func (p *httpPKI) client(t *testing.T, subject pkix.Name, uris ...string) tls.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      subject,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, u := range uris {
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	cert, key := httpIssue(t, tmpl, p.caCert, p.caKey)
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key}
}

// httpServe serves the JSON API over c with mutual TLS and returns
// clients for a SPIFFE certificate and a subject-only one.
func httpServe(t *testing.T, c *core) (srv *httptest.Server, spiffe, subject *http.Client) {
	t.Helper()
	pki := httpNewPKI(t)
	srv = httptest.NewUnstartedServer(newHTTPHandler(c, httpIdentity{}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.pool, MinVersion: tls.VersionTLS13}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	client := func(cert tls.Certificate) *http.Client {
		tr := srv.Client().Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	spiffe = client(pki.client(t, pkix.Name{CommonName: "web"}, httpSPIFFE))
	subject = client(pki.client(t, pkix.Name{CommonName: "batch", Organization: []string{"Example"}}))
	return srv, spiffe, subject
}

// httpKeyURL is the URL of an operation on key.
func httpKeyURL(srv *httptest.Server, key, op string) string {
	return srv.URL + "/v1/keys/" + url.PathEscape(key) + "/" + op
}

// httpDo sends body (JSON-encoded unless a string, sent as it is) and
// returns the status and the body, which must be JSON.
func httpDo(t *testing.T, cl *http.Client, method, u string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" || !json.Valid(out) {
		t.Fatalf("%s %s: %s answer %q", method, u, ct, out)
	}
	return resp.StatusCode, out
}

// httpDecode decodes an answer strictly: a field the API should not send
// fails the test.
func httpDecode(t *testing.T, body []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
}

// httpWantOK checks a 200 answer and decodes it into v.
func httpWantOK(t *testing.T, status int, body []byte, v any) {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	httpDecode(t, body, v)
}

// httpWantError checks an error answer's status and body.
func httpWantError(t *testing.T, status int, body []byte, wantStatus int, code, reason string) string {
	t.Helper()
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"error"`
	}
	httpDecode(t, body, &e)
	if status != wantStatus || e.Error.Code != code || e.Error.Reason != reason || e.Error.Message == "" {
		t.Fatalf("status %d %s, want %d with code %s reason %s", status, body, wantStatus, code, reason)
	}
	return e.Error.Message
}

// httpPublicKeyJSON is the public-key object.
type httpPublicKeyJSON struct {
	DER     []byte            `json:"der"`
	PEM     string            `json:"pem"`
	JWK     map[string]string `json:"jwk"`
	KeyType string            `json:"key_type"`
	Version string            `json:"version"`
}

func httpTestConfig() Config {
	return Config{
		AllowReferences: true,
		MaxRequestBytes: 4096,
		Keys:            map[string]string{"release": "fake:release?seed=b", "locked": "fake:locked?seed=b"},
		Policies: []Policy{
			{Keys: []string{"release", "fake:*"}, Principals: []string{"spiffe://example.org/ns/test/*"}, Operations: []Op{"*"}},
			{Keys: []string{"locked"}, Principals: []string{"spiffe://example.org/ns/test/*"}, Operations: []Op{OpCreate, OpPublicKey}},
			{Keys: []string{"release"}, Principals: []string{httpSubject}, Operations: []Op{OpPublicKey}},
		},
	}
}

func TestHTTPSignVerifyAndKeys(t *testing.T) {
	srv, cl, _ := httpServe(t, testCore(t, httpTestConfig()))
	const key = "fake:demo?seed=a"

	var created struct {
		KeyID string `json:"key_id"`
		httpPublicKeyJSON
	}
	st, body := httpDo(t, cl, "POST", httpKeyURL(srv, key, "create"), map[string]string{"key_type": "ec-p256"})
	httpWantOK(t, st, body, &created)
	pub := created.httpPublicKeyJSON
	if created.KeyID != "demo" {
		t.Fatalf("created key id %q, want demo", created.KeyID)
	}
	if blk, _ := pem.Decode([]byte(pub.PEM)); blk == nil || !bytes.Equal(blk.Bytes, pub.DER) {
		t.Fatalf("PEM is not the DER key: %s", body)
	}
	if pub.KeyType != "ec-p256" || pub.Version != "1" || pub.JWK["kty"] != "EC" || pub.JWK["crv"] != "P-256" ||
		pub.JWK["alg"] != "ES256" || pub.JWK["kid"] == "" {
		t.Fatalf("public key: %s", body)
	}
	var again httpPublicKeyJSON
	st, body = httpDo(t, cl, "GET", httpKeyURL(srv, key, "public-key"), nil)
	httpWantOK(t, st, body, &again)
	if !bytes.Equal(again.DER, pub.DER) || again.JWK["kid"] != pub.JWK["kid"] {
		t.Fatalf("public key differs from the created one: %s", body)
	}

	msg := []byte("sign me over HTTP")
	digest := sha256.Sum256(msg)
	type signAnswer struct {
		Signature []byte `json:"signature"`
		Algorithm string `json:"algorithm"`
		Version   string `json:"version"`
	}
	for _, tc := range []struct {
		name            string
		body            map[string]any
		digest, message []byte
	}{
		{"digest", map[string]any{"digest": digest[:], "algorithm": "ES256"}, digest[:], nil},
		{"message", map[string]any{"message": msg}, nil, msg},
		{"empty message", map[string]any{"message": []byte{}, "version": "1"}, nil, []byte{}},
	} {
		var sig signAnswer
		st, body = httpDo(t, cl, "POST", httpKeyURL(srv, key, "sign"), tc.body)
		httpWantOK(t, st, body, &sig)
		if sig.Algorithm != "ES256" || sig.Version != "1" || !grpcStdVerify(t, pub.DER, shared.ES256, tc.digest, tc.message, sig.Signature) {
			t.Fatalf("%s: signature %s does not verify with the standard library", tc.name, body)
		}
		vbody := map[string]any{"signature": sig.Signature, "algorithm": "ES256"}
		for k, v := range tc.body {
			if k != "algorithm" {
				vbody[k] = v
			}
		}
		var valid struct {
			Valid bool `json:"valid"`
		}
		st, body = httpDo(t, cl, "POST", httpKeyURL(srv, key, "verify"), vbody)
		if httpWantOK(t, st, body, &valid); !valid.Valid {
			t.Fatalf("%s: verify: %s", tc.name, body)
		}
		vbody["signature"] = append(bytes.Clone(sig.Signature[:len(sig.Signature)-1]), sig.Signature[len(sig.Signature)-1]^1)
		st, body = httpDo(t, cl, "POST", httpKeyURL(srv, key, "verify"), vbody)
		if httpWantOK(t, st, body, &valid); valid.Valid {
			t.Fatalf("%s: a flipped signature verifies: %s", tc.name, body)
		}
	}

	var md struct {
		KeyID          string   `json:"key_id"`
		KeyType        string   `json:"key_type"`
		Algorithms     []string `json:"algorithms"`
		CurrentVersion string   `json:"current_version"`
		Versions       []struct {
			Version string `json:"version"`
			Created string `json:"created"`
			Enabled bool   `json:"enabled"`
		} `json:"versions"`
		Attributes map[string]string `json:"attributes"`
	}
	st, body = httpDo(t, cl, "GET", httpKeyURL(srv, key, "metadata"), nil)
	httpWantOK(t, st, body, &md)
	if md.KeyID != "demo" || md.KeyType != "ec-p256" || strings.Join(md.Algorithms, ",") != "ES256" || md.CurrentVersion != "1" ||
		len(md.Versions) != 1 || md.Versions[0].Version != "1" || !md.Versions[0].Enabled || md.Attributes == nil {
		t.Fatalf("metadata: %s", body)
	}
	if _, err := time.Parse(time.RFC3339, md.Versions[0].Created); err != nil {
		t.Fatalf("created: %v", err)
	}

	var rot struct {
		Version string `json:"version"`
	}
	st, body = httpDo(t, cl, "POST", httpKeyURL(srv, key, "rotate"), nil)
	if httpWantOK(t, st, body, &rot); rot.Version != "2" {
		t.Fatalf("rotate: %s", body)
	}
	var v1 httpPublicKeyJSON
	st, body = httpDo(t, cl, "GET", httpKeyURL(srv, key, "public-key")+"?version=1", nil)
	if httpWantOK(t, st, body, &v1); v1.Version != "1" || !bytes.Equal(v1.DER, pub.DER) {
		t.Fatalf("public key version 1: %s", body)
	}
	st, body = httpDo(t, cl, "GET", httpKeyURL(srv, key, "public-key")+"?versoin=1", nil)
	httpWantError(t, st, body, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT")

	var list struct {
		Keys []struct {
			KeyID          string   `json:"key_id"`
			KeyType        string   `json:"key_type"`
			CurrentVersion string   `json:"current_version"`
			Aliases        []string `json:"aliases"`
		} `json:"keys"`
	}
	st, body = httpDo(t, cl, "GET", srv.URL+"/v1/providers/fake/keys?seed=a", nil)
	httpWantOK(t, st, body, &list)
	if len(list.Keys) != 1 || list.Keys[0].KeyID != "demo" || list.Keys[0].KeyType != "ec-p256" ||
		list.Keys[0].CurrentVersion != "2" || list.Keys[0].Aliases == nil {
		t.Fatalf("list: %s", body)
	}
}

func TestHTTPErrors(t *testing.T) {
	c := testCore(t, httpTestConfig())
	srv, cl, subjectCl := httpServe(t, c)
	for _, k := range []string{"release", "locked"} {
		st, body := httpDo(t, cl, "POST", httpKeyURL(srv, k, "create"), map[string]string{"key_type": "ec-p256"})
		httpWantOK(t, st, body, new(struct {
			KeyID string `json:"key_id"`
			httpPublicKeyJSON
		}))
	}
	sign := map[string]any{"message": []byte("x")}

	st, body := httpDo(t, cl, "GET", httpKeyURL(srv, "nosuchkey", "metadata"), nil)
	httpWantError(t, st, body, http.StatusNotFound, "NOT_FOUND", "KEY_NOT_FOUND")
	st, body = httpDo(t, cl, "POST", httpKeyURL(srv, "fake:missing?seed=a", "sign"), sign)
	httpWantError(t, st, body, http.StatusNotFound, "NOT_FOUND", "KEY_NOT_FOUND")

	st, body = httpDo(t, cl, "POST", httpKeyURL(srv, "locked", "sign"), sign)
	msg := httpWantError(t, st, body, http.StatusForbidden, "PERMISSION_DENIED", "POLICY_DENIED")
	if !strings.Contains(msg, httpSPIFFE) || !strings.Contains(msg, "sign") || strings.Contains(msg, "seed") {
		t.Fatalf("denial %q: want the principal and the operation, and not the reference", msg)
	}

	// A certificate without a SPIFFE ID is its subject.
	st, body = httpDo(t, subjectCl, "GET", httpKeyURL(srv, "release", "public-key"), nil)
	httpWantOK(t, st, body, new(httpPublicKeyJSON))
	st, body = httpDo(t, subjectCl, "POST", httpKeyURL(srv, "release", "sign"), sign)
	if msg := httpWantError(t, st, body, http.StatusForbidden, "PERMISSION_DENIED", "POLICY_DENIED"); !strings.Contains(msg, httpSubject) {
		t.Fatalf("denial %q does not name %s", msg, httpSubject)
	}

	big := map[string]any{"message": bytes.Repeat([]byte("a"), 4000)}
	st, body = httpDo(t, cl, "POST", httpKeyURL(srv, "release", "sign"), big)
	httpWantError(t, st, body, http.StatusRequestEntityTooLarge, "INVALID_ARGUMENT", "INVALID_ARGUMENT")

	st, body = httpDo(t, cl, "POST", httpKeyURL(srv, "release", "sign"), map[string]any{"message": []byte("x"), "bogus": 1})
	if msg := httpWantError(t, st, body, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT"); !strings.Contains(msg, "bogus") {
		t.Fatalf("unknown field: %q does not name it", msg)
	}
	for _, bad := range []string{`{"message":`, `{"message": "not base64!"}`, `{} {}`, ``, `[]`} {
		st, body = httpDo(t, cl, "POST", httpKeyURL(srv, "release", "sign"), bad)
		httpWantError(t, st, body, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT")
	}
	st, body = httpDo(t, cl, "POST", httpKeyURL(srv, "release", "sign"), map[string]any{"message": []byte("x"), "algorithm": "XX1"})
	httpWantError(t, st, body, http.StatusBadRequest, "INVALID_ARGUMENT", "UNSUPPORTED_ALGORITHM")
	st, body = httpDo(t, cl, "POST", httpKeyURL(srv, "fake:new?seed=a", "create"), map[string]any{"key_type": "rsa-1"})
	httpWantError(t, st, body, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT")
	st, body = httpDo(t, cl, "POST", httpKeyURL(srv, "release", "create"), map[string]any{"key_type": "ec-p256"})
	httpWantError(t, st, body, http.StatusConflict, "ALREADY_EXISTS", "ALREADY_EXISTS")
	st, body = httpDo(t, cl, "GET", srv.URL+"/v1/providers/fake/keys?seed=a&seed=b", nil)
	httpWantError(t, st, body, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT")

	// Without a verified client certificate (a listener misconfigured
	// without client auth), the call is refused before anything runs.
	rec := httptest.NewRecorder()
	newHTTPHandler(c, httpIdentity{}).ServeHTTP(rec, httptest.NewRequest("GET", "/v1/keys/release/public-key", nil))
	httpWantError(t, rec.Code, rec.Body.Bytes(), http.StatusUnauthorized, "UNAUTHENTICATED", "PERMISSION_DENIED")

	c.startDrain()
	st, body = httpDo(t, cl, "GET", httpKeyURL(srv, "release", "public-key"), nil)
	httpWantError(t, st, body, http.StatusServiceUnavailable, "UNAVAILABLE", "DRAINING")
}
