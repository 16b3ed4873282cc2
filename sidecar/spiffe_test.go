package sidecar

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffegrpc/grpccredentials"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/shared"
	sidecarv1 "github.com/knhk/knhk/sidecar/proto/knhk/sidecar/v1"
)

// spiffeCA is a test SPIFFE trust domain's X.509 CA.
type spiffeCA struct {
	td   spiffeid.TrustDomain
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newSpiffeCA(t *testing.T, td string) *spiffeCA {
	t.Helper()
	trust := spiffeid.RequireTrustDomainFromString(td)
	cert, key := httpIssue(t, &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: td + " test CA"},
		URIs:                  []*url.URL{trust.ID().URL()},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, nil)
	return &spiffeCA{td: trust, cert: cert, key: key}
}

// svid issues an X.509-SVID for id (any URI: an invalid SPIFFE ID too).
func (ca *spiffeCA) svid(t *testing.T, id string) *x509svid.SVID {
	t.Helper()
	u, err := url.Parse(id)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := httpIssue(t, &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "svid", Organization: []string{"SPIRE"}},
		URIs:         []*url.URL{u},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, ca.cert, ca.key)
	sid, _ := spiffeid.FromURI(u) // zero for an invalid ID, which some tests want
	return &x509svid.SVID{ID: sid, Certificates: []*x509.Certificate{cert}, PrivateKey: key}
}

func (ca *spiffeCA) bundle() *x509bundle.Bundle {
	return x509bundle.FromX509Authorities(ca.td, []*x509.Certificate{ca.cert})
}

// swappableSource is an SVID and bundle set that the test replaces while
// the daemon serves, as the Workload API does on rotation.
type swappableSource struct {
	mu      sync.Mutex
	svid    *x509svid.SVID
	bundles *x509bundle.Set
}

func (s *swappableSource) set(svid *x509svid.SVID, bundles ...*x509bundle.Bundle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.svid, s.bundles = svid, x509bundle.NewSet(bundles...)
}

func (s *swappableSource) GetX509SVID() (*x509svid.SVID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.svid, nil
}

func (s *swappableSource) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bundles.GetX509BundleForTrustDomain(td)
}

// jwtIssuer mints JWT-SVIDs of a trust domain with one key.
type jwtIssuer struct {
	td  spiffeid.TrustDomain
	kid string
	key *ecdsa.PrivateKey
}

func newJWTIssuer(t *testing.T, td, kid string) *jwtIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &jwtIssuer{td: spiffeid.RequireTrustDomainFromString(td), kid: kid, key: key}
}

func (j *jwtIssuer) bundle() *jwtbundle.Bundle {
	return jwtbundle.FromJWTAuthorities(j.td, map[string]crypto.PublicKey{j.kid: &j.key.PublicKey})
}

// token is a JWT-SVID for sub with audience aud, expiring at exp.
func (j *jwtIssuer) token(t *testing.T, sub, aud string, exp time.Time) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: j.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", j.kid))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(signer).Claims(jwt.Claims{
		Subject: sub, Audience: jwt.Audience{aud},
		IssuedAt: jwt.NewNumericDate(exp.Add(-5 * time.Minute)), Expiry: jwt.NewNumericDate(exp),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestSPIFFEPolicyPatterns: a SPIFFE ID matches a policy exactly, by path
// prefix and by trust domain, and nothing else; principals that could
// never match a valid ID are refused; a certificate whose SPIFFE URI is
// not a valid ID names no SPIFFE principal.
func TestSPIFFEPolicyPatterns(t *testing.T) {
	exact := Policy{Keys: []string{"k"}, Principals: []string{"spiffe://example.org/ns/prod/web"}, Operations: []Op{OpSign}}
	prefix := Policy{Keys: []string{"k"}, Principals: []string{"spiffe://example.org/ns/prod/*"}, Operations: []Op{OpSign}}
	domain := Policy{Keys: []string{"k"}, Principals: []string{"spiffe://example.org/*"}, Operations: []Op{OpSign}}
	for _, tc := range []struct {
		p    Policy
		id   string
		want bool
	}{
		{exact, "spiffe://example.org/ns/prod/web", true},
		{exact, "spiffe://example.org/ns/prod/web2", false},
		{exact, "spiffe://example.org/ns/prod/web/x", false},
		{exact, "spiffe://other.org/ns/prod/web", false},
		{prefix, "spiffe://example.org/ns/prod/web", true},
		{prefix, "spiffe://example.org/ns/prod/team/web", true},
		{prefix, "spiffe://example.org/ns/prod", false},
		{prefix, "spiffe://example.org/ns/production/web", false},
		{prefix, "spiffe://example.org/ns/dev/web", false},
		{prefix, "spiffe://other.org/ns/prod/web", false},
		{domain, "spiffe://example.org/anything/at/all", true},
		{domain, "spiffe://example.org.evil/x", false},
		{domain, "spiffe://other.org/x", false},
	} {
		if got := tc.p.allows(callerOfSVID(spiffeid.RequireFromString(tc.id)).Principals, OpSign, "k"); got != tc.want {
			t.Errorf("%v allows %s: %v, want %v", tc.p.Principals, tc.id, got, tc.want)
		}
	}
	for _, bad := range []string{
		"spiffe://Example.org/ns/prod/web", // trust domains are lower case
		"spiffe://example.org/ns/../admin",
		"spiffe://example.org/ns//web",
		"spiffe://example.org/ns/prod/",
		"SPIFFE://example.org/*",
		"spiffe://exa mple.org/*",
		"spiffe://example.org/ns/../*",
	} {
		p := Policy{Keys: []string{"k"}, Principals: []string{bad}, Operations: []Op{OpSign}}
		if _, err := (Config{Policies: []Policy{p}}).withDefaults(); !errors.Is(err, ErrConfig) {
			t.Errorf("principal %q: %v, want ErrConfig", bad, err)
		}
	}
	for _, good := range []string{"spiffe://example.org/ns/prod/web", "spiffe://example.org/ns/prod/*", "spiffe://example.org/*", "spiffe://*"} {
		p := Policy{Keys: []string{"k"}, Principals: []string{good}, Operations: []Op{OpSign}}
		if _, err := (Config{Policies: []Policy{p}}).withDefaults(); err != nil {
			t.Errorf("principal %q refused: %v", good, err)
		}
	}
	// Static client certificates: a SPIFFE URI with ".." is no SPIFFE
	// ID, so it cannot pass a prefix by walking out of it.
	ca := newSpiffeCA(t, "example.org")
	sneaky := ca.svid(t, "spiffe://example.org/ns/prod/../../admin").Certificates[0]
	if c := callerOfCert(sneaky); len(c.Principals) != 1 || !strings.HasPrefix(c.Principals[0], "x509:") {
		t.Errorf("certificate with an invalid SPIFFE URI: principals %v, want only its subject", c.Principals)
	}
	good := ca.svid(t, "spiffe://example.org/ns/prod/web").Certificates[0]
	if c := callerOfCert(good); len(c.Principals) != 2 || c.Principals[0] != "spiffe://example.org/ns/prod/web" {
		t.Errorf("certificate with a SPIFFE ID: principals %v", c.Principals)
	}
}

// TestSPIFFEConfigChecks: listeners without files need a spiffe block;
// a bad Workload API address, trust domain or source set is refused.
func TestSPIFFEConfigChecks(t *testing.T) {
	src := &swappableSource{}
	for name, cfg := range map[string]Config{
		"tls without files or spiffe":  {TLS: &TLSConfig{Address: "127.0.0.1:0"}},
		"http without files or spiffe": {HTTP: &TLSConfig{Address: "127.0.0.1:0"}},
		"tls with some files":          {TLS: &TLSConfig{Address: "127.0.0.1:0", ClientCAFile: "ca"}, SPIFFE: &SPIFFEConfig{Source: src}},
		"bad workload api":             {SPIFFE: &SPIFFEConfig{WorkloadAPI: "http://agent"}},
		"bad trust domain":             {SPIFFE: &SPIFFEConfig{Source: src, TrustDomains: []string{"Bad Domain"}}},
		"audience without jwt bundles": {SPIFFE: &SPIFFEConfig{Source: src, JWTAudience: "knhk"}},
	} {
		if _, err := cfg.withDefaults(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: got %v, want ErrConfig", name, err)
		}
	}
	if _, err := (Config{TLS: &TLSConfig{Address: "127.0.0.1:0"}, HTTP: &TLSConfig{Address: "127.0.0.1:0"}, SPIFFE: &SPIFFEConfig{WorkloadAPI: "unix:///run/spire/agent.sock"}}).withDefaults(); err != nil {
		t.Errorf("SPIFFE listeners: %v", err)
	}
}

// spiffeDaemon is a Server with SPIFFE listeners over static sources.
type spiffeDaemon struct {
	grpcAddr, httpAddr string
	src                *swappableSource
	ca                 *spiffeCA
	id                 spiffeid.ID // the daemon's
}

// startSPIFFEDaemon serves key "release" (seeded fake) on SPIFFE gRPC and
// HTTP listeners: signing is allowed to spiffe://example.org/ns/prod/*,
// public keys to the whole trust domain.
func startSPIFFEDaemon(t *testing.T, sp SPIFFEConfig) *spiffeDaemon {
	t.Helper()
	ca := newSpiffeCA(t, "example.org")
	d := &spiffeDaemon{grpcAddr: spiffeFreeAddr(t), httpAddr: spiffeFreeAddr(t), src: &swappableSource{}, ca: ca, id: spiffeid.RequireFromString("spiffe://example.org/knhk")}
	d.src.set(ca.svid(t, d.id.String()), ca.bundle())
	sp.Source = d.src
	h := hosttest.New(t)
	if _, err := h.CreateKey(context.Background(), "fake:release?seed=spiffe", shared.ECP256); err != nil {
		t.Fatal(err)
	}
	srv, err := New(h, Config{
		Socket: SocketConfig{Path: filepath.Join(shortDir(t), "s.sock")},
		Keys:   map[string]string{"release": "fake:release?seed=spiffe"},
		TLS:    &TLSConfig{Address: d.grpcAddr},
		HTTP:   &TLSConfig{Address: d.httpAddr},
		SPIFFE: &sp,
		Policies: []Policy{
			{Keys: []string{"release"}, Principals: []string{"spiffe://example.org/ns/prod/*"}, Operations: []Op{OpSign}},
			{Keys: []string{"release"}, Principals: []string{"spiffe://example.org/*"}, Operations: []Op{OpPublicKey}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, srv)
	return d
}

func spiffeFreeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// shortDir is a temporary directory with a short path (for sockets).
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// grpcSPIFFE is a Signer client over gRPC authenticated by svid and
// trusting bundle, which accepts only the daemon's ID.
func (d *spiffeDaemon) grpcSPIFFE(t *testing.T, svid x509svid.Source, bundle x509bundle.Source) sidecarv1.SignerClient {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+d.grpcAddr, grpc.WithTransportCredentials(grpccredentials.MTLSClientCredentials(svid, bundle, tlsconfig.AuthorizeID(d.id))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return sidecarv1.NewSignerClient(conn)
}

// spiffeSign signs a digest as client and checks the signature with the
// standard library against the key's public key.
func spiffeSign(t *testing.T, c sidecarv1.SignerClient, msg string) error {
	t.Helper()
	ctx := context.Background()
	digest := sha256.Sum256([]byte(msg))
	resp, err := c.Sign(ctx, &sidecarv1.SignRequest{Key: "release", Digest: digest[:]})
	if err != nil {
		return err
	}
	pk, err := c.PublicKey(ctx, &sidecarv1.PublicKeyRequest{Key: "release"})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(pk.GetDer())
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], resp.GetSignature()) {
		t.Fatalf("%s: the signature does not verify", msg)
	}
	return nil
}

// TestSPIFFEGRPC: callers by X.509-SVID over gRPC: the policy sees the
// SPIFFE ID, a denial names it, and an SVID from a trust domain without a
// bundle (or outside TrustDomains) does not get through the handshake.
func TestSPIFFEGRPC(t *testing.T) {
	d := startSPIFFEDaemon(t, SPIFFEConfig{TrustDomains: []string{"example.org", "partner.org"}})
	bundle := d.ca.bundle()
	web := d.grpcSPIFFE(t, d.ca.svid(t, "spiffe://example.org/ns/prod/web"), bundle)
	if err := spiffeSign(t, web, "prod signs"); err != nil {
		t.Fatalf("spiffe://example.org/ns/prod/web: %v", err)
	}
	dev := d.grpcSPIFFE(t, d.ca.svid(t, "spiffe://example.org/ns/dev/tool"), bundle)
	err := spiffeSign(t, dev, "dev may not")
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "spiffe://example.org/ns/dev/tool") || !strings.Contains(err.Error(), "sign") {
		t.Fatalf("dev sign: %v, want PermissionDenied naming spiffe://example.org/ns/dev/tool and sign", err)
	}
	// The trust domain pattern lets dev read the public key.
	if _, err := dev.PublicKey(context.Background(), &sidecarv1.PublicKeyRequest{Key: "release"}); err != nil {
		t.Fatalf("dev public key (allowed to spiffe://example.org/*): %v", err)
	}
	// An SVID from a CA the daemon has no bundle for.
	other := newSpiffeCA(t, "other.org")
	stranger := d.grpcSPIFFE(t, other.svid(t, "spiffe://other.org/ns/prod/web"), bundle)
	if err := spiffeSign(t, stranger, "stranger"); status.Code(err) != codes.Unavailable {
		t.Fatalf("SVID from an unknown trust domain: %v, want the handshake to fail (Unavailable)", err)
	}
	// A bundle for another trust domain, not in TrustDomains: its SVIDs
	// verify but are not accepted.
	d.src.set(d.ca.svid(t, d.id.String()), bundle, other.bundle())
	if err := spiffeSign(t, d.grpcSPIFFE(t, other.svid(t, "spiffe://other.org/ns/prod/web"), bundle), "outside"); status.Code(err) != codes.Unavailable {
		t.Fatalf("SVID from a trust domain outside trust_domains: %v, want the handshake to fail", err)
	}
	// A client without an SVID at all.
	anon, err := grpc.NewClient("passthrough:///"+d.grpcAddr, grpc.WithTransportCredentials(grpccredentials.TLSClientCredentials(bundle, tlsconfig.AuthorizeID(d.id))))
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if err := spiffeSign(t, sidecarv1.NewSignerClient(anon), "anonymous"); status.Code(err) != codes.Unavailable {
		t.Fatalf("no client SVID: %v, want the handshake to fail", err)
	}
}

// TestSPIFFERotation: the daemon serves whatever SVID and trusts whatever
// bundle the source holds at each handshake: a new SVID is served and a
// new CA trusted without a restart, and the old CA is no longer trusted.
func TestSPIFFERotation(t *testing.T) {
	d := startSPIFFEDaemon(t, SPIFFEConfig{})
	serial := func(cfg *tls.Config) (*big.Int, error) {
		conn, err := tls.Dial("tcp", d.httpAddr, cfg)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		if err := conn.Handshake(); err != nil {
			return nil, err
		}
		return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
	}
	client := d.ca.svid(t, "spiffe://example.org/ns/prod/web")
	before, err := serial(tlsconfig.MTLSClientConfig(client, d.ca.bundle(), tlsconfig.AuthorizeID(d.id)))
	if err != nil {
		t.Fatal(err)
	}
	web := d.grpcSPIFFE(t, client, d.ca.bundle())
	if err := spiffeSign(t, web, "before rotation"); err != nil {
		t.Fatal(err)
	}

	// A new CA (the trust domain's CA rotated) issues the daemon's next
	// SVID; the bundle holds only the new CA.
	next := newSpiffeCA(t, "example.org")
	newSVID := next.svid(t, d.id.String())
	d.src.set(newSVID, next.bundle())
	newClient := next.svid(t, "spiffe://example.org/ns/prod/web")
	after, err := serial(tlsconfig.MTLSClientConfig(newClient, next.bundle(), tlsconfig.AuthorizeID(d.id)))
	if err != nil {
		t.Fatalf("handshake after rotation: %v", err)
	}
	if after.Cmp(before) == 0 || after.Cmp(newSVID.Certificates[0].SerialNumber) != 0 {
		t.Fatalf("serving certificate serial %v after rotation (was %v), want the new SVID's %v", after, before, newSVID.Certificates[0].SerialNumber)
	}
	if err := spiffeSign(t, d.grpcSPIFFE(t, newClient, next.bundle()), "after rotation"); err != nil {
		t.Fatalf("new connection after rotation: %v", err)
	}
	// The connection made before keeps working.
	if err := spiffeSign(t, web, "old connection"); err != nil {
		t.Fatalf("connection made before the rotation: %v", err)
	}
	// A client with an SVID from the old CA, now out of the bundle.
	if err := spiffeSign(t, d.grpcSPIFFE(t, client, next.bundle()), "old CA"); status.Code(err) != codes.Unavailable {
		t.Fatalf("client SVID from the CA rotated out: %v, want the handshake to fail", err)
	}
}

// TestSPIFFEHTTP: HTTP/JSON callers by X.509-SVID or by JWT-SVID
// (Authorization: Bearer): the right audience, unexpired, signed by a key
// in the bundle, of an accepted trust domain; everything else is 401.
func TestSPIFFEHTTP(t *testing.T) {
	iss := newJWTIssuer(t, "example.org", "k1")
	partner := newJWTIssuer(t, "partner.org", "p1")
	d := startSPIFFEDaemon(t, SPIFFEConfig{JWTAudience: "knhk", TrustDomains: []string{"example.org"}, JWTBundles: jwtbundle.NewSet(iss.bundle(), partner.bundle())})
	bundle := d.ca.bundle()
	base := "https://" + d.httpAddr + "/v1/keys/release/"
	httpClient := func(cfg *tls.Config) *http.Client {
		tr := &http.Transport{TLSClientConfig: cfg}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	noCert := httpClient(tlsconfig.TLSClientConfig(bundle, tlsconfig.AuthorizeID(d.id)))
	pubStatus, pubBody := httpDo(t, httpClient(tlsconfig.MTLSClientConfig(d.ca.svid(t, "spiffe://example.org/ns/dev/x"), bundle, tlsconfig.AuthorizeID(d.id))), "GET", base+"public-key", nil)
	var pk httpPublicKeyJSON
	httpWantOK(t, pubStatus, pubBody, &pk)
	pub, err := x509.ParsePKIXPublicKey(pk.DER)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("over HTTP"))
	body := map[string][]byte{"digest": digest[:]}
	sign := func(cl *http.Client, token string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest("POST", base+"sign", strings.NewReader(`{"digest":"`+base64.StdEncoding.EncodeToString(digest[:])+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", token)
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
		return resp.StatusCode, out
	}
	checkSigned := func(what string, st int, b []byte) {
		t.Helper()
		var out struct {
			Signature []byte `json:"signature"`
			Algorithm string `json:"algorithm"`
			Version   string `json:"version"`
		}
		httpWantOK(t, st, b, &out)
		if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], out.Signature) {
			t.Fatalf("%s: the signature does not verify", what)
		}
	}

	// X.509-SVID on the HTTP listener.
	st, b := httpDo(t, httpClient(tlsconfig.MTLSClientConfig(d.ca.svid(t, "spiffe://example.org/ns/prod/web"), bundle, tlsconfig.AuthorizeID(d.id))), "POST", base+"sign", body)
	checkSigned("X.509-SVID", st, b)

	// JWT-SVID, no client certificate.
	now := time.Now()
	st, b = sign(noCert, "Bearer "+iss.token(t, "spiffe://example.org/ns/prod/api", "knhk", now.Add(5*time.Minute)))
	checkSigned("JWT-SVID", st, b)
	// A JWT-SVID whose ID the policy does not allow to sign: 403 naming it.
	st, b = sign(noCert, "Bearer "+iss.token(t, "spiffe://example.org/ns/dev/api", "knhk", now.Add(5*time.Minute)))
	if msg := httpWantError(t, st, b, http.StatusForbidden, "PERMISSION_DENIED", "POLICY_DENIED"); !strings.Contains(msg, "spiffe://example.org/ns/dev/api") {
		t.Fatalf("denial %q does not name the JWT-SVID's ID", msg)
	}
	// The bearer token decides even with a client certificate.
	st, b = sign(httpClient(tlsconfig.MTLSClientConfig(d.ca.svid(t, "spiffe://example.org/ns/prod/web"), bundle, tlsconfig.AuthorizeID(d.id))), "Bearer "+iss.token(t, "spiffe://example.org/ns/dev/api", "knhk", now.Add(5*time.Minute)))
	httpWantError(t, st, b, http.StatusForbidden, "PERMISSION_DENIED", "POLICY_DENIED")

	forger := newJWTIssuer(t, "example.org", "k1") // same kid, another key
	for name, auth := range map[string]string{
		"other audience":         "Bearer " + iss.token(t, "spiffe://example.org/ns/prod/api", "other", now.Add(5*time.Minute)),
		"expired":                "Bearer " + iss.token(t, "spiffe://example.org/ns/prod/api", "knhk", now.Add(-3*time.Minute)),
		"bad signature":          "Bearer " + forger.token(t, "spiffe://example.org/ns/prod/api", "knhk", now.Add(5*time.Minute)),
		"unknown key id":         "Bearer " + newJWTIssuer(t, "example.org", "k2").token(t, "spiffe://example.org/ns/prod/api", "knhk", now.Add(5*time.Minute)),
		"trust domain not taken": "Bearer " + partner.token(t, "spiffe://partner.org/ns/prod/api", "knhk", now.Add(5*time.Minute)),
		"not a bearer token":     "Basic d2ViOnB3",
		"garbage":                "Bearer not.a.jwt",
	} {
		st, b := sign(noCert, auth)
		msg := httpWantError(t, st, b, http.StatusUnauthorized, "UNAUTHENTICATED", "PERMISSION_DENIED")
		if !strings.Contains(msg, "could not be identified") {
			t.Errorf("%s: message %q", name, msg)
		}
	}
	// Neither certificate nor token.
	st, b = sign(noCert, "")
	httpWantError(t, st, b, http.StatusUnauthorized, "UNAUTHENTICATED", "PERMISSION_DENIED")
}

// TestSPIFFEBearerWithoutAudience: a daemon without a JWT audience takes
// no bearer tokens, and its HTTP listener requires an X.509-SVID.
func TestSPIFFEBearerWithoutAudience(t *testing.T) {
	id := httpIdentity{spiffe: true}
	r := httptest.NewRequest("GET", "/v1/keys/release/public-key", nil)
	r.Header.Set("Authorization", "Bearer x.y.z")
	if _, err := id.identify(r); err == nil || !strings.Contains(err.Error(), "no bearer tokens") {
		t.Fatalf("bearer without jwt_audience: %v", err)
	}
	d := startSPIFFEDaemon(t, SPIFFEConfig{})
	tr := &http.Transport{TLSClientConfig: tlsconfig.TLSClientConfig(d.ca.bundle(), tlsconfig.AuthorizeID(d.id))}
	defer tr.CloseIdleConnections()
	if resp, err := (&http.Client{Transport: tr}).Get("https://" + d.httpAddr + "/v1/keys/release/public-key"); err == nil {
		resp.Body.Close()
		t.Fatalf("HTTP without a client SVID or audience: status %d, want the handshake to fail", resp.StatusCode)
	}
}
