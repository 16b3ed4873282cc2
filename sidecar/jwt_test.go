package sidecar

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	jwtv1 "k8s.io/externaljwt/apis/v1"
	jwtv1alpha1 "k8s.io/externaljwt/apis/v1alpha1"

	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/internal/keyfmt"
	"github.com/knhk/knhk/plugins/fake"
	"github.com/knhk/knhk/shared"
)

// jwtClaims is a service-account token's payload as kube-apiserver
// builds it.
const jwtClaims = `{"aud":["https://kubernetes.default.svc"],"exp":1900000000,"iat":1800000000,"iss":"https://kubernetes.default.svc","kubernetes.io":{"namespace":"default","serviceaccount":{"name":"web","uid":"0b7c2d7e-4f1a-4d36-9d44-7f2b7c1e8a11"}},"nbf":1800000000,"sub":"system:serviceaccount:default:web"}`

// jwtSegment is the claims as kube-apiserver sends them.
var jwtSegment = base64.RawURLEncoding.EncodeToString([]byte(jwtClaims))

// jwtAllowed are the algorithms kube-apiserver accepts.
var jwtAllowed = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.ES384, jose.ES512}

// jwtPrincipal is this test process on the unix socket.
func jwtPrincipal() string { return "unix:uid=" + strconv.Itoa(os.Getuid()) }

// jwtConfig serves key "sa" (ref) as the ExternalJWTSigner to principal,
// which may sign with it and read its public keys.
func jwtConfig(ref, principal string) Config {
	return Config{
		Keys:     map[string]string{"sa": ref},
		Policies: []Policy{{Keys: []string{"sa"}, Principals: []string{principal}, Operations: []Op{OpSign, OpPublicKey}}},
		JWT:      &JWTConfig{Key: "sa"},
	}
}

// jwtCore is testCore over a host built with opts.
func jwtCore(t *testing.T, cfg Config, opts ...hosttest.Option) *core {
	t.Helper()
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return newCore(hosttest.New(t, opts...), cfg)
}

// jwtCreate creates the key a core's config names "sa".
func jwtCreate(t *testing.T, c *core, kt shared.KeyType) {
	t.Helper()
	if _, err := c.h.CreateKey(t.Context(), c.cfg().Keys["sa"], kt); err != nil {
		t.Fatal(err)
	}
}

// jwtRotate rotates key "sa" through the core's host.
func jwtRotate(t *testing.T, c *core) {
	t.Helper()
	k, err := c.h.Key(t.Context(), c.cfg().Keys["sa"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// jwtAPI is one API version's client, answering in v1's types.
type jwtAPI struct {
	name     string
	sign     func(ctx context.Context, claims string) (*jwtv1.SignJWTResponse, error)
	fetch    func(ctx context.Context) (*jwtv1.FetchKeysResponse, error)
	metadata func(ctx context.Context) (*jwtv1.MetadataResponse, error)
}

// jwtServe serves registerJWT for c on a unix socket and returns a client
// of each API version, dialled as kube-apiserver dials.
func jwtServe(t *testing.T, c *core) []jwtAPI {
	t.Helper()
	conn := grpcServeConn(t, func(gs *grpc.Server) { registerJWT(gs, c) }, grpc.WithAuthority("localhost"))
	v1 := jwtv1.NewExternalJWTSignerClient(conn)
	v1a := jwtv1alpha1.NewExternalJWTSignerClient(conn)
	return []jwtAPI{
		{
			name: "v1",
			sign: func(ctx context.Context, claims string) (*jwtv1.SignJWTResponse, error) {
				return v1.Sign(ctx, &jwtv1.SignJWTRequest{Claims: claims})
			},
			fetch: func(ctx context.Context) (*jwtv1.FetchKeysResponse, error) {
				return v1.FetchKeys(ctx, &jwtv1.FetchKeysRequest{})
			},
			metadata: func(ctx context.Context) (*jwtv1.MetadataResponse, error) {
				return v1.Metadata(ctx, &jwtv1.MetadataRequest{})
			},
		},
		{
			name: "v1alpha1",
			sign: func(ctx context.Context, claims string) (*jwtv1.SignJWTResponse, error) {
				r, err := v1a.Sign(ctx, &jwtv1alpha1.SignJWTRequest{Claims: claims})
				if err != nil {
					return nil, err
				}
				return &jwtv1.SignJWTResponse{Header: r.GetHeader(), Signature: r.GetSignature()}, nil
			},
			fetch: func(ctx context.Context) (*jwtv1.FetchKeysResponse, error) {
				r, err := v1a.FetchKeys(ctx, &jwtv1alpha1.FetchKeysRequest{})
				if err != nil {
					return nil, err
				}
				out := &jwtv1.FetchKeysResponse{DataTimestamp: r.GetDataTimestamp(), RefreshHintSeconds: r.GetRefreshHintSeconds()}
				for _, k := range r.GetKeys() {
					out.Keys = append(out.Keys, &jwtv1.Key{KeyId: k.GetKeyId(), Key: k.GetKey(), ExcludeFromOidcDiscovery: k.GetExcludeFromOidcDiscovery()})
				}
				return out, nil
			},
			metadata: func(ctx context.Context) (*jwtv1.MetadataResponse, error) {
				r, err := v1a.Metadata(ctx, &jwtv1alpha1.MetadataRequest{})
				if err != nil {
					return nil, err
				}
				return &jwtv1.MetadataResponse{MaxTokenExpirationSeconds: r.GetMaxTokenExpirationSeconds()}, nil
			},
		},
	}
}

// jwtToken is a token kube-apiserver assembled: its header's alg and kid
// and the compact serialization.
type jwtToken struct {
	alg, kid, compact string
}

// jwtSign signs jwtSegment and checks the header as kube-apiserver does:
// base64url JSON with exactly alg, kid and typ "JWT", alg one it accepts.
func jwtSign(t *testing.T, api jwtAPI) jwtToken {
	t.Helper()
	resp, err := api.sign(t.Context(), jwtSegment)
	if err != nil {
		t.Fatalf("%s Sign: %v", api.name, err)
	}
	return jwtAssemble(t, resp)
}

func jwtAssemble(t *testing.T, resp *jwtv1.SignJWTResponse) jwtToken {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(resp.GetHeader())
	if err != nil {
		t.Fatalf("header is not base64url without padding: %v", err)
	}
	var members map[string]any
	if err := json.Unmarshal(raw, &members); err != nil {
		t.Fatalf("header is not JSON: %v", err)
	}
	if len(members) != 3 {
		t.Fatalf("header %s: want exactly alg, kid and typ", raw)
	}
	var h struct{ Alg, Kid, Typ string }
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		t.Fatalf("header %s: %v", raw, err)
	}
	if h.Typ != "JWT" || h.Kid == "" || len(h.Kid) > 1024 || !slices.Contains(jwtAllowed, jose.SignatureAlgorithm(h.Alg)) {
		t.Fatalf("header %s is not one kube-apiserver accepts", raw)
	}
	if resp.GetSignature() == "" {
		t.Fatal("empty signature")
	}
	return jwtToken{alg: h.Alg, kid: h.Kid, compact: resp.GetHeader() + "." + jwtSegment + "." + resp.GetSignature()}
}

// jwtFetched is a FetchKeys answer as kube-apiserver takes it.
type jwtFetched struct {
	keys map[string]crypto.PublicKey // by kid
	kids []string                    // in order
	at   time.Time
	hint int64
}

// jwtFetch calls FetchKeys and checks the answer as kube-apiserver's key
// cache does.
func jwtFetch(t *testing.T, api jwtAPI) jwtFetched {
	t.Helper()
	resp, err := api.fetch(t.Context())
	if err != nil {
		t.Fatalf("%s FetchKeys: %v", api.name, err)
	}
	if resp.GetRefreshHintSeconds() <= 0 {
		t.Fatalf("refresh hint %d", resp.GetRefreshHintSeconds())
	}
	if len(resp.GetKeys()) == 0 {
		t.Fatal("no keys")
	}
	if err := resp.GetDataTimestamp().CheckValid(); err != nil {
		t.Fatalf("data timestamp: %v", err)
	}
	f := jwtFetched{keys: map[string]crypto.PublicKey{}, at: resp.GetDataTimestamp().AsTime(), hint: resp.GetRefreshHintSeconds()}
	for _, k := range resp.GetKeys() {
		if k.GetKeyId() == "" || len(k.GetKeyId()) > 1024 || k.GetExcludeFromOidcDiscovery() {
			t.Fatalf("key id %q (excluded %v)", k.GetKeyId(), k.GetExcludeFromOidcDiscovery())
		}
		pub, err := x509.ParsePKIXPublicKey(k.GetKey())
		if err != nil {
			t.Fatalf("key %s: %v", k.GetKeyId(), err)
		}
		f.keys[k.GetKeyId()] = pub
		f.kids = append(f.kids, k.GetKeyId())
	}
	return f
}

// jwtVerify verifies tok against the fetched key its kid names, with
// go-jose (as kube-apiserver does) and by hand with the standard library,
// and checks the payload is the claims.
func jwtVerify(t *testing.T, tok jwtToken, f jwtFetched) {
	t.Helper()
	pub, ok := f.keys[tok.kid]
	if !ok {
		t.Fatalf("kid %s is not among the fetched keys %v", tok.kid, f.kids)
	}
	jws, err := jose.ParseSignedCompact(tok.compact, jwtAllowed)
	if err != nil {
		t.Fatal(err)
	}
	if got := jws.Signatures[0].Header.KeyID; got != tok.kid {
		t.Fatalf("go-jose reads kid %s, want %s", got, tok.kid)
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		t.Fatalf("go-jose: %v", err)
	}
	if string(payload) != jwtClaims {
		t.Fatalf("payload %s, want the claims", payload)
	}

	dot := strings.LastIndexByte(tok.compact, '.')
	signed := tok.compact[:dot] // header.claims
	sig, err := base64.RawURLEncoding.DecodeString(tok.compact[dot+1:])
	if err != nil {
		t.Fatal(err)
	}
	hashes := map[string]crypto.Hash{"RS256": crypto.SHA256, "ES256": crypto.SHA256, "ES384": crypto.SHA384, "ES512": crypto.SHA512}
	hh := hashes[tok.alg].New()
	hh.Write([]byte(signed))
	digest := hh.Sum(nil)
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			t.Fatalf("%s signature is %d bytes, want r||s of %d", tok.alg, len(sig), 2*size)
		}
		r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(k, digest, r, s) {
			t.Fatal("ecdsa.Verify: the r||s signature does not verify")
		}
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, sig); err != nil {
			t.Fatalf("rsa.VerifyPKCS1v15: %v", err)
		}
	default:
		t.Fatalf("fetched key is %T", pub)
	}
}

// jwtCode fails unless err is a gRPC status with code want.
func jwtCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("got %v (%v), want %v", got, err, want)
	}
}

func TestJWTSignAndVerify(t *testing.T) {
	for _, tc := range []struct {
		kt  shared.KeyType
		alg string
	}{
		{shared.ECP256, "ES256"},
		{shared.RSA2048, "RS256"},
		{shared.ECP384, "ES384"},
		{shared.ECP521, "ES512"},
	} {
		t.Run(string(tc.kt), func(t *testing.T) {
			cfg := jwtConfig("fake:sa?seed=jwt", jwtPrincipal())
			cfg.JWT.MaxTokenLifetime = 2 * time.Hour
			cfg.JWT.RefreshHint = 90 * time.Second
			c := testCore(t, cfg)
			jwtCreate(t, c, tc.kt)
			pk, err := c.h.Key(t.Context(), "fake:sa?seed=jwt")
			if err != nil {
				t.Fatal(err)
			}
			pub, err := pk.PublicKey(t.Context(), "")
			if err != nil {
				t.Fatal(err)
			}
			jwk, err := keyfmt.NewJWK(pub.Key, "")
			if err != nil {
				t.Fatal(err)
			}
			for _, api := range jwtServe(t, c) {
				md, err := api.metadata(t.Context())
				if err != nil {
					t.Fatalf("%s Metadata: %v", api.name, err)
				}
				if got := md.GetMaxTokenExpirationSeconds(); got != 7200 { // kube-apiserver wants >= 600
					t.Fatalf("%s max token expiration %d, want 7200", api.name, got)
				}
				f := jwtFetch(t, api)
				if f.hint != 90 || len(f.kids) != 1 {
					t.Fatalf("%s FetchKeys: hint %d, kids %v", api.name, f.hint, f.kids)
				}
				tok := jwtSign(t, api)
				if tok.alg != tc.alg || tok.kid != jwk.Thumbprint() {
					t.Fatalf("%s header alg %s kid %s, want %s and the key's RFC 7638 thumbprint", api.name, tok.alg, tok.kid, tc.alg)
				}
				jwtVerify(t, tok, f)
			}
		})
	}
}

func TestJWTRotation(t *testing.T) {
	c := testCore(t, jwtConfig("fake:sa?seed=jwt", jwtPrincipal()))
	jwtCreate(t, c, shared.ECP256)
	apis := jwtServe(t, c)
	v1, v1a := apis[0], apis[1]

	before := jwtSign(t, v1)
	f1 := jwtFetch(t, v1)
	if again := jwtFetch(t, v1a); !again.at.Equal(f1.at) {
		t.Fatalf("data timestamp moved from %v to %v with the key set unchanged", f1.at, again.at)
	}

	jwtRotate(t, c) // through the daemon's host: Sign sees it at once
	after := jwtSign(t, v1)
	if after.kid == before.kid {
		t.Fatal("Sign still names the old version after a rotation")
	}
	f2 := jwtFetch(t, v1)
	if len(f2.kids) != 2 || f2.keys[before.kid] == nil || f2.keys[after.kid] == nil {
		t.Fatalf("FetchKeys after rotation has %v, want the old kid %s and the new %s", f2.kids, before.kid, after.kid)
	}
	if f2.at.Equal(f1.at) {
		t.Fatalf("data timestamp stayed %v when the key set changed", f1.at)
	}
	jwtVerify(t, before, f2) // a token from before the rotation still verifies
	jwtVerify(t, after, f2)
	if again := jwtFetch(t, v1a); !again.at.Equal(f2.at) {
		t.Fatalf("v1alpha1 data timestamp %v, v1 %v: one key set, one timestamp", again.at, f2.at)
	}
}

// TestJWTRotationElsewhere rotates the key through another host sharing
// the fake's state file: FetchKeys sees the rotation and Sign follows.
func TestJWTRotationElsewhere(t *testing.T) {
	ref := "fake:sa?state=" + filepath.Join(t.TempDir(), "keys.json")
	c := testCore(t, jwtConfig(ref, jwtPrincipal()))
	jwtCreate(t, c, shared.ECP256)
	api := jwtServe(t, c)[0]
	before := jwtSign(t, api)

	other := testCore(t, jwtConfig(ref, jwtPrincipal()))
	jwtRotate(t, other)

	f := jwtFetch(t, api)
	if len(f.kids) != 2 {
		t.Fatalf("FetchKeys after rotation elsewhere has %v, want both versions", f.kids)
	}
	after := jwtSign(t, api)
	if after.kid == before.kid {
		t.Fatal("Sign names the old version after FetchKeys saw the rotation")
	}
	jwtVerify(t, before, f)
	jwtVerify(t, after, f)
}

// jwtRetiring is the fake with versions that can be disabled, as a KMS
// disables or destroys a key version.
type jwtRetiring struct {
	*fake.Provider
	mu       sync.Mutex
	disabled map[string]bool
}

func (p *jwtRetiring) disable(version string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.disabled[version] = true
}

func (p *jwtRetiring) KeyMetadata(ctx context.Context, req shared.KeyMetadataRequest) (shared.KeyMetadata, error) {
	md, err := p.Provider.KeyMetadata(ctx, req)
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, v := range md.Versions {
		md.Versions[i].Enabled = !p.disabled[v.Version]
	}
	return md, err
}

func TestJWTRetiredVersions(t *testing.T) {
	p := &jwtRetiring{Provider: fake.New(fake.Config{}), disabled: map[string]bool{}}
	c := jwtCore(t, jwtConfig("fake:sa?seed=jwt", jwtPrincipal()), hosttest.WithProvider("fake", p))
	jwtCreate(t, c, shared.ECP256)
	api := jwtServe(t, c)[0]
	v1 := jwtSign(t, api)
	jwtRotate(t, c)
	v2 := jwtSign(t, api)
	jwtRotate(t, c)
	v3 := jwtSign(t, api)
	f := jwtFetch(t, api)
	if !slices.Equal(f.kids, []string{v1.kid, v2.kid, v3.kid}) {
		t.Fatalf("FetchKeys %v, want the three versions oldest first", f.kids)
	}

	p.disable("1")
	retired := jwtFetch(t, api)
	if !slices.Equal(retired.kids, []string{v2.kid, v3.kid}) {
		t.Fatalf("FetchKeys with version 1 disabled: %v, want versions 2 and 3", retired.kids)
	}
	if retired.at.Equal(f.at) {
		t.Fatal("data timestamp did not move when a version retired")
	}
	jwtVerify(t, v2, retired)
	jwtVerify(t, jwtSign(t, api), retired)

	// The current version retired: FetchKeys leaves it out, so Sign must
	// not name it.
	p.disable("3")
	if got := jwtFetch(t, api); !slices.Equal(got.kids, []string{v2.kid}) {
		t.Fatalf("FetchKeys with versions 1 and 3 disabled: %v", got.kids)
	}
	_, err := api.sign(t.Context(), jwtSegment)
	jwtCode(t, err, codes.FailedPrecondition)

	p.disable("2")
	_, err = api.fetch(t.Context())
	jwtCode(t, err, codes.FailedPrecondition) // kube-apiserver refuses an empty key set
}

func TestJWTEd25519Refused(t *testing.T) {
	c := testCore(t, jwtConfig("fake:sa?seed=jwt", jwtPrincipal()))
	jwtCreate(t, c, shared.Ed25519)
	for _, api := range jwtServe(t, c) {
		_, err := api.sign(t.Context(), jwtSegment)
		jwtCode(t, err, codes.FailedPrecondition)
		if !strings.Contains(status.Convert(err).Message(), "RS256, ES256, ES384 and ES512") {
			t.Fatalf("%s: message %q does not say what kube-apiserver accepts", api.name, status.Convert(err).Message())
		}
		_, err = api.fetch(t.Context())
		jwtCode(t, err, codes.FailedPrecondition)
	}
}

func TestJWTPolicy(t *testing.T) {
	t.Run("denied", func(t *testing.T) {
		c := testCore(t, jwtConfig("fake:sa?seed=jwt", "unix:uid="+strconv.Itoa(os.Getuid()+1)))
		jwtCreate(t, c, shared.ECP256)
		for _, api := range jwtServe(t, c) {
			_, err := api.sign(t.Context(), jwtSegment)
			jwtCode(t, err, codes.PermissionDenied)
			_, err = api.fetch(t.Context())
			jwtCode(t, err, codes.PermissionDenied)
			// Metadata touches no key: an identified caller is enough.
			if _, err := api.metadata(t.Context()); err != nil {
				t.Fatalf("%s Metadata: %v", api.name, err)
			}
		}
	})
	t.Run("sign only", func(t *testing.T) {
		cfg := jwtConfig("fake:sa?seed=jwt", jwtPrincipal())
		cfg.Policies[0].Operations = []Op{OpSign}
		c := testCore(t, cfg)
		jwtCreate(t, c, shared.ECP256)
		api := jwtServe(t, c)[0]
		jwtSign(t, api)
		_, err := api.fetch(t.Context())
		jwtCode(t, err, codes.PermissionDenied) // FetchKeys is public_key
	})
}

// TestJWTUnidentified calls the service without a transport that names
// the caller.
func TestJWTUnidentified(t *testing.T) {
	c := testCore(t, jwtConfig("fake:sa?seed=jwt", "*"))
	s := newJWTService(c)
	_, _, err := s.sign(t.Context(), jwtSegment)
	jwtCode(t, err, codes.PermissionDenied)
	_, err = s.fetchKeys(t.Context())
	jwtCode(t, err, codes.PermissionDenied)
	_, err = s.maxTokenLifetime(t.Context())
	jwtCode(t, err, codes.PermissionDenied)
}

func TestJWTNotConfigured(t *testing.T) {
	cfg := jwtConfig("fake:sa?seed=jwt", jwtPrincipal())
	cfg.JWT = nil // as after a reload that removed it
	c := testCore(t, cfg)
	jwtCreate(t, c, shared.ECP256)
	api := jwtServe(t, c)[0]
	_, err := api.sign(t.Context(), jwtSegment)
	jwtCode(t, err, codes.FailedPrecondition)
	_, err = api.fetch(t.Context())
	jwtCode(t, err, codes.FailedPrecondition)
	_, err = api.metadata(t.Context())
	jwtCode(t, err, codes.FailedPrecondition)
}

func TestJWTBadClaims(t *testing.T) {
	c := testCore(t, jwtConfig("fake:sa?seed=jwt", jwtPrincipal()))
	jwtCreate(t, c, shared.ECP256)
	api := jwtServe(t, c)[0]
	for _, claims := range []string{
		"",
		base64.URLEncoding.EncodeToString([]byte(`{"sub":"x"}`)), // padded
		base64.StdEncoding.EncodeToString([]byte(`{"sub":"?>?"}`)),
		base64.RawURLEncoding.EncodeToString([]byte(`["sub"]`)),
		base64.RawURLEncoding.EncodeToString([]byte(`null`)),
		base64.RawURLEncoding.EncodeToString([]byte(`{"sub":`)),
		jwtSegment + ".x",
	} {
		_, err := api.sign(t.Context(), claims)
		jwtCode(t, err, codes.InvalidArgument)
	}
}

// TestJWTConcurrentRotation signs while the key rotates: every token's
// header and signature name the same version, which FetchKeys publishes.
func TestJWTConcurrentRotation(t *testing.T) {
	c := testCore(t, jwtConfig("fake:sa?seed=jwt", jwtPrincipal()))
	jwtCreate(t, c, shared.ECP256)
	api := jwtServe(t, c)[0]
	const signers, each = 8, 10
	var wg sync.WaitGroup
	resps := make(chan *jwtv1.SignJWTResponse, signers*each)
	errs := make(chan error, signers*each+1)
	for range signers {
		wg.Go(func() {
			for range each {
				r, err := api.sign(t.Context(), jwtSegment)
				if err != nil {
					errs <- err
					return
				}
				resps <- r
			}
		})
	}
	wg.Go(func() {
		k, err := c.h.Key(t.Context(), "fake:sa?seed=jwt")
		for i := 0; err == nil && i < 3; i++ {
			_, err = k.Rotate(t.Context())
		}
		if err != nil {
			errs <- err
		}
	})
	wg.Wait()
	close(resps)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	f := jwtFetch(t, api)
	n := 0
	for r := range resps {
		jwtVerify(t, jwtAssemble(t, r), f)
		n++
	}
	if n != signers*each {
		t.Fatalf("%d tokens, want %d", n, signers*each)
	}
}

func TestJWTJOSEECDSA(t *testing.T) {
	small, err := asn1.Marshal(struct{ R, S *big.Int }{big.NewInt(1), big.NewInt(2)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := joseECDSA(small, 32)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 64)
	want[31], want[63] = 1, 2
	if !bytes.Equal(got, want) {
		t.Fatalf("r=1 s=2 as %x, want each left-padded to 32 bytes", got)
	}
	tooBig, _ := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(2)})
	negative, _ := asn1.Marshal(struct{ R, S *big.Int }{big.NewInt(-1), big.NewInt(2)})
	for name, der := range map[string][]byte{
		"trailing": append(bytes.Clone(small), 0),
		"too big":  tooBig,
		"negative": negative,
		"garbage":  []byte("not der"),
	} {
		if _, err := joseECDSA(der, 32); err == nil {
			t.Errorf("%s: converted", name)
		}
	}

	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	digest := crypto.SHA512.New()
	digest.Write([]byte("header.claims"))
	sum := digest.Sum(nil)
	for range 16 { // r or s is often shorter than 66 bytes on P-521
		der, err := ecdsa.SignASN1(rand.Reader, key, sum)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := joseECDSA(der, 66)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 132 || !ecdsa.Verify(&key.PublicKey, sum, new(big.Int).SetBytes(rs[:66]), new(big.Int).SetBytes(rs[66:])) {
			t.Fatal("converted P-521 signature does not verify")
		}
	}
}
