package kvtest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// client talks raw HTTP to a Server, to check the wire format the azkeys
// client relies on.
type client struct {
	t   *testing.T
	s   *Server
	hc  *http.Client
	tok string
}

func newClient(t *testing.T) *client {
	s, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("CAFile holds no certificate")
	}
	return &client{t: t, s: s, hc: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}, tok: s.Token}
}

// do sends a request and decodes the JSON answer.
func (c *client) do(method, path string, body any) (int, http.Header, map[string]any) {
	c.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	u := path
	if !strings.HasPrefix(u, "https://") {
		u = c.s.URL + path
	}
	req, _ := http.NewRequest(method, u, rd)
	if c.tok != "" {
		req.Header.Set("Authorization", "Bearer "+c.tok)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, resp.Header, out
}

func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// b64field decodes an unpadded base64url field, failing on padding.
func b64field(t *testing.T, m map[string]any, k string) []byte {
	t.Helper()
	s, _ := m[k].(string)
	if strings.ContainsAny(s, "=+/") {
		t.Fatalf("field %s = %q is not unpadded base64url", k, s)
	}
	b, err := b64.DecodeString(s)
	if err != nil {
		t.Fatalf("field %s: %v", k, err)
	}
	return b
}

const api = "?api-version=2025-07-01"

func TestChallengeAndAPIVersion(t *testing.T) {
	c := newClient(t)
	if st, _, m := c.do("GET", "/keys/k", nil); st != http.StatusBadRequest || errCode(m) != "BadParameter" {
		t.Errorf("no api-version: %d %v, want 400 BadParameter", st, m)
	}
	c.tok = ""
	st, h, m := c.do("POST", "/keys/k/create"+api, map[string]any{"kty": "EC"})
	if st != http.StatusUnauthorized || h.Get("WWW-Authenticate") != Challenge || errCode(m) != "Unauthorized" {
		t.Errorf("no token: %d %q %v, want 401 with the challenge", st, h.Get("WWW-Authenticate"), m)
	}
	// The SDK splits the challenge on spaces and '=': no '=' in values,
	// and the authorization URL's path is the tenant.
	if !regexp.MustCompile(`^Bearer authorization="https://login\.microsoftonline\.com/[0-9a-f-]+", resource="https://vault\.azure\.net"$`).MatchString(Challenge) {
		t.Errorf("challenge %q has the wrong shape", Challenge)
	}
	c.tok = "wrong"
	if st, _, _ := c.do("GET", "/keys/k"+api, nil); st != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", st)
	}
	if r := c.s.Requests(); len(r) != 3 || r[1].Authorized || r[1].BodyLen == 0 {
		t.Errorf("requests = %+v, want 3 recorded, the create one with its body", r)
	}
}

func TestKeysWireFormat(t *testing.T) {
	c := newClient(t)
	before := time.Now().Unix()
	st, _, m := c.do("POST", "/keys/ec1/create"+api, map[string]any{"kty": "EC-HSM", "crv": "P-256", "key_ops": []string{"sign", "verify"}})
	if st != http.StatusOK {
		t.Fatalf("create: %d %v", st, m)
	}
	key := m["key"].(map[string]any)
	kid := key["kid"].(string)
	if !regexp.MustCompile(`^`+regexp.QuoteMeta(c.s.URL)+`/keys/ec1/[0-9a-f]{32}$`).MatchString(kid) || key["kty"] != "EC-HSM" || key["crv"] != "P-256" {
		t.Errorf("create answered %v", key)
	}
	attrs := m["attributes"].(map[string]any)
	if created, ok := attrs["created"].(float64); !ok || int64(created) < before || int64(created) > time.Now().Unix() || attrs["enabled"] != true {
		t.Errorf("attributes %v: want enabled and a Unix-second created time", attrs)
	}
	x, y := b64field(t, key, "x"), b64field(t, key, "y")
	pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
	if len(x) != 32 || len(y) != 32 {
		t.Errorf("x, y are %d, %d bytes, want 32", len(x), len(y))
	}
	digest := sha256.Sum256([]byte("hello"))
	st, _, m = c.do("POST", "/keys/ec1/sign"+api, map[string]any{"alg": "ES256", "value": b64.EncodeToString(digest[:])})
	if st != http.StatusOK || m["kid"] != kid {
		t.Fatalf("sign: %d %v", st, m)
	}
	sig := b64field(t, m, "value")
	if len(sig) != 64 || !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Errorf("ES256 signature (%d bytes) is not a valid r||s", len(sig))
	}
	ver := kid[strings.LastIndex(kid, "/")+1:]
	st, _, m = c.do("POST", "/keys/ec1/"+ver+"/verify"+api, map[string]any{"alg": "ES256", "digest": b64.EncodeToString(digest[:]), "value": b64.EncodeToString(sig)})
	if st != http.StatusOK || m["value"] != true {
		t.Errorf("verify: %d %v", st, m)
	}
	if st, _, m := c.do("POST", "/keys/ec1/sign"+api, map[string]any{"alg": "RS256", "value": b64.EncodeToString(digest[:])}); st != http.StatusBadRequest || errCode(m) != "BadParameter" {
		t.Errorf("RS256 on an EC key: %d %v, want 400 BadParameter", st, m)
	}
	if st, _, m := c.do("GET", "/keys/nope"+api, nil); st != http.StatusNotFound || errCode(m) != "KeyNotFound" {
		t.Errorf("missing key: %d %v, want 404 KeyNotFound", st, m)
	}

	// RSA-PSS: salt = hash length.
	st, _, m = c.do("POST", "/keys/rsa1/create"+api, map[string]any{"kty": "RSA", "key_size": 2048})
	if st != http.StatusOK {
		t.Fatalf("create rsa: %d %v", st, m)
	}
	rk := m["key"].(map[string]any)
	rpub := &rsa.PublicKey{N: new(big.Int).SetBytes(b64field(t, rk, "n")), E: int(new(big.Int).SetBytes(b64field(t, rk, "e")).Int64())}
	_, _, m = c.do("POST", "/keys/rsa1/sign"+api, map[string]any{"alg": "PS256", "value": b64.EncodeToString(digest[:])})
	if err := rsa.VerifyPSS(rpub, crypto.SHA256, digest[:], b64field(t, m, "value"), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
		t.Errorf("PS256 signature with salt = hash length: %v", err)
	}

	// Disable, then sign: 403 with innererror KeyDisabled.
	if st, _, m := c.do("PATCH", "/keys/rsa1/"+api, map[string]any{"attributes": map[string]any{"enabled": false}}); st != http.StatusOK {
		t.Fatalf("update: %d %v", st, m)
	}
	st, _, m = c.do("POST", "/keys/rsa1/sign"+api, map[string]any{"alg": "RS256", "value": b64.EncodeToString(digest[:])})
	inner, _ := m["error"].(map[string]any)["innererror"].(map[string]any)
	if st != http.StatusForbidden || errCode(m) != "Forbidden" || inner["code"] != "KeyDisabled" {
		t.Errorf("sign with a disabled key: %d %v, want 403 Forbidden/KeyDisabled", st, m)
	}
}

func TestPagingAndFaults(t *testing.T) {
	c := newClient(t)
	for i := 0; i < 30; i++ {
		if st, _, m := c.do("POST", fmt.Sprintf("/keys/k%02d/create", i)+api, map[string]any{"kty": "EC"}); st != http.StatusOK {
			t.Fatalf("create: %d %v", st, m)
		}
	}
	_, _, m := c.do("GET", "/keys"+api, nil)
	page1, _ := m["value"].([]any)
	next, _ := m["nextLink"].(string)
	if len(page1) != pageSize || next == "" {
		t.Fatalf("first page has %d keys and nextLink %q, want %d and a link", len(page1), next, pageSize)
	}
	if kid := page1[0].(map[string]any)["kid"]; kid != c.s.KeyID("k00") {
		t.Errorf("first listed kid = %v, want %s (no version)", kid, c.s.KeyID("k00"))
	}
	_, _, m = c.do("GET", next, nil)
	if page2, _ := m["value"].([]any); len(page2) != 5 || m["nextLink"] != nil {
		t.Errorf("second page has %d keys and nextLink %v, want 5 and null", len(page2), m["nextLink"])
	}
	c.s.FailNext(1, http.StatusTooManyRequests, "Throttled")
	st, h, m := c.do("GET", "/keys/k00"+api, nil)
	if st != http.StatusTooManyRequests || errCode(m) != "Throttled" || h.Get("retry-after-ms") == "" {
		t.Errorf("fault: %d %v, want 429 Throttled with retry-after-ms", st, m)
	}
	if st, _, _ := c.do("GET", "/keys/k00"+api, nil); st != http.StatusOK {
		t.Errorf("after the fault: %d, want 200", st)
	}
	c.s.Deny("get", true)
	st, _, m = c.do("GET", "/keys/k00"+api, nil)
	inner, _ := m["error"].(map[string]any)["innererror"].(map[string]any)
	if st != http.StatusForbidden || inner["code"] != "ForbiddenByPolicy" {
		t.Errorf("denied get: %d %v, want 403 ForbiddenByPolicy", st, m)
	}
}

// TestPadECCoordinates checks the imported-key form: x and y one byte
// longer than the field, the first byte zero, the same point.
func TestPadECCoordinates(t *testing.T) {
	c := newClient(t)
	for _, tc := range []struct {
		crv  string
		size int
	}{{"P-256", 32}, {"P-384", 48}, {"P-521", 66}} {
		_, _, m := c.do("POST", "/keys/ec-"+tc.crv[2:]+"/create"+api, map[string]any{"kty": "EC", "crv": tc.crv})
		plain := m["key"].(map[string]any)
		c.s.PadECCoordinates(true)
		_, _, m = c.do("GET", "/keys/ec-"+tc.crv[2:]+api, nil)
		c.s.PadECCoordinates(false)
		padded := m["key"].(map[string]any)
		for _, f := range []string{"x", "y"} {
			p, q := b64field(t, padded, f), b64field(t, plain, f)
			if len(p) != tc.size+1 || p[0] != 0 || !bytes.Equal(p[1:], q) || len(q) != tc.size {
				t.Errorf("%s %s: padded %d bytes (first %#x), plain %d bytes; want %d with a leading zero, %d", tc.crv, f, len(p), p[0], len(q), tc.size+1, tc.size)
			}
		}
	}
}

// TestReflect checks the reflecting answer: 400 whose message and header
// carry the request's token.
func TestReflect(t *testing.T) {
	c := newClient(t)
	c.s.Reflect(true)
	st, h, m := c.do("GET", "/keys/k"+api, nil)
	msg, _ := m["error"].(map[string]any)["message"].(string)
	if st != http.StatusBadRequest || !strings.HasPrefix(msg, ReflectedMarker) || !strings.Contains(msg, c.s.Token) || !strings.Contains(h.Get("X-Reflected-Authorization"), c.s.Token) {
		t.Errorf("reflected answer: %d %q %q, want 400 echoing the token", st, msg, h.Get("X-Reflected-Authorization"))
	}
	c.s.Reflect(false)
	if st, _, _ := c.do("GET", "/keys/k"+api, nil); st != http.StatusNotFound {
		t.Errorf("after Reflect(false): %d, want 404", st)
	}
}
