package spire_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/spire-plugin-sdk/pluginsdk"
	"github.com/spiffe/spire-plugin-sdk/plugintest"
	keymanagerv1 "github.com/spiffe/spire-plugin-sdk/proto/spire/plugin/server/keymanager/v1"
	configv1 "github.com/spiffe/spire-plugin-sdk/proto/spire/service/common/config/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/plugins/spire"
)

// fixture is the KeyManager served over go-plugin gRPC as SPIRE serves
// it (the plugin SDK's test server), with knhk hosts from host/hosttest:
// the fake provider in this process.
type fixture struct {
	t   *testing.T
	km  *keymanagerv1.KeyManagerPluginClient
	cfg *configv1.ConfigServiceClient

	mu    sync.Mutex
	hosts []*host.Host // every host the plugin made, latest last
}

// serve starts the plugin, unconfigured.
func serve(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, km: new(keymanagerv1.KeyManagerPluginClient), cfg: new(configv1.ConfigServiceClient)}
	p := spire.NewWithHost(func(_ context.Context, hc host.Config) (*host.Host, error) {
		h, stop, err := hosttest.Start(hosttest.WithConfig(hc))
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { _ = stop() })
		f.mu.Lock()
		f.hosts = append(f.hosts, h)
		f.mu.Unlock()
		return h, nil
	})
	plugintest.ServeInBackground(t, plugintest.Config{
		PluginServer:   keymanagerv1.KeyManagerPluginServer(p),
		PluginClient:   f.km,
		ServiceServers: []pluginsdk.ServiceServer{configv1.ConfigServiceServer(p)},
		ServiceClients: []pluginsdk.ServiceClient{f.cfg},
	})
	return f
}

// start serves the plugin and configures it with plugin_data hcl.
func start(t *testing.T, hcl string) *fixture {
	t.Helper()
	f := serve(t)
	if _, err := f.cfg.Configure(ctx(t), &configv1.ConfigureRequest{HclConfiguration: hcl, CoreConfiguration: &configv1.CoreConfiguration{TrustDomain: "example.org"}}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return f
}

// host is the knhk host the plugin runs on now.
func (f *fixture) host() *host.Host {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.hosts) == 0 {
		f.t.Fatal("the plugin made no knhk host")
	}
	return f.hosts[len(f.hosts)-1]
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// generate asks for a key and checks the answer's shape.
func (f *fixture) generate(id string, kt keymanagerv1.KeyType) *keymanagerv1.PublicKey {
	f.t.Helper()
	resp, err := f.km.GenerateKey(ctx(f.t), &keymanagerv1.GenerateKeyRequest{KeyId: id, KeyType: kt})
	if err != nil {
		f.t.Fatalf("GenerateKey(%s, %s): %v", id, kt, err)
	}
	pk := resp.GetPublicKey()
	checkPublicKey(f.t, pk, id, kt)
	return pk
}

// checkPublicKey checks a PublicKey: id, type, a SubjectPublicKeyInfo of
// that type, and the fingerprint the plugin documents.
func checkPublicKey(t *testing.T, pk *keymanagerv1.PublicKey, id string, kt keymanagerv1.KeyType) crypto.PublicKey {
	t.Helper()
	if pk.GetId() != id || pk.GetType() != kt {
		t.Fatalf("public key is %s %s, want %s %s", pk.GetId(), pk.GetType(), id, kt)
	}
	pub, err := x509.ParsePKIXPublicKey(pk.GetPkixData())
	if err != nil {
		t.Fatalf("%s: PKIX data does not parse: %v", id, err)
	}
	switch kt {
	case keymanagerv1.KeyType_EC_P256, keymanagerv1.KeyType_EC_P384:
		ec, ok := pub.(*ecdsa.PublicKey)
		want := map[keymanagerv1.KeyType]string{keymanagerv1.KeyType_EC_P256: "P-256", keymanagerv1.KeyType_EC_P384: "P-384"}[kt]
		if !ok || ec.Curve.Params().Name != want {
			t.Fatalf("%s: public key %T is not an ECDSA %s key", id, pub, want)
		}
	case keymanagerv1.KeyType_RSA_2048, keymanagerv1.KeyType_RSA_4096:
		r, ok := pub.(*rsa.PublicKey)
		want := map[keymanagerv1.KeyType]int{keymanagerv1.KeyType_RSA_2048: 2048, keymanagerv1.KeyType_RSA_4096: 4096}[kt]
		if !ok || r.N.BitLen() != want {
			t.Fatalf("%s: public key %T is not an RSA %d key", id, pub, want)
		}
	}
	sum := sha256.Sum256(pk.GetPkixData())
	if got, want := pk.GetFingerprint(), hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("%s: fingerprint %s, want the SHA-256 of the SPKI %s", id, got, want)
	}
	return pub
}

// knhkPublicKey is the public key knhk itself has for ref, as DER.
func (f *fixture) knhkPublicKey(ref string) []byte {
	f.t.Helper()
	k, err := f.host().Key(ctx(f.t), ref)
	if err != nil {
		f.t.Fatalf("knhk key %s: %v", ref, err)
	}
	pk, err := k.PublicKey(ctx(f.t), "")
	if err != nil {
		f.t.Fatalf("knhk public key of %s: %v", ref, err)
	}
	der, err := x509.MarshalPKIXPublicKey(pk.Key)
	if err != nil {
		f.t.Fatal(err)
	}
	return der
}

// kmSigner is a crypto.Signer over the plugin's SignData, made as SPIRE
// makes its own (pkg/server/plugin/keymanager/v1.go): the digest goes as
// Data, PSS options as PSSOptions, and the fingerprint must match.
type kmSigner struct {
	t           *testing.T
	km          *keymanagerv1.KeyManagerPluginClient
	id          string
	pub         crypto.PublicKey
	fingerprint string
}

func (f *fixture) signer(pk *keymanagerv1.PublicKey) *kmSigner {
	pub, err := x509.ParsePKIXPublicKey(pk.GetPkixData())
	if err != nil {
		f.t.Fatal(err)
	}
	return &kmSigner{t: f.t, km: f.km, id: pk.GetId(), pub: pub, fingerprint: pk.GetFingerprint()}
}

func (s *kmSigner) Public() crypto.PublicKey { return s.pub }

func (s *kmSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	req := &keymanagerv1.SignDataRequest{KeyId: s.id, Data: digest}
	if pss, ok := opts.(*rsa.PSSOptions); ok {
		req.SignerOpts = &keymanagerv1.SignDataRequest_PssOptions{PssOptions: &keymanagerv1.SignDataRequest_PSSOptions{
			SaltLength: int32(pss.SaltLength), HashAlgorithm: keymanagerv1.HashAlgorithm(pss.Hash),
		}}
	} else {
		req.SignerOpts = &keymanagerv1.SignDataRequest_HashAlgorithm{HashAlgorithm: keymanagerv1.HashAlgorithm(opts.HashFunc())}
	}
	resp, err := s.km.SignData(ctx(s.t), req)
	if err != nil {
		return nil, err
	}
	if resp.GetKeyFingerprint() != s.fingerprint {
		return nil, fmt.Errorf("fingerprint %s, want %s", resp.GetKeyFingerprint(), s.fingerprint)
	}
	return resp.GetSignature(), nil
}

// digest hashes msg with h.
func digest(h crypto.Hash, msg []byte) []byte {
	var w hash.Hash
	switch h {
	case crypto.SHA256:
		w = sha256.New()
	case crypto.SHA384:
		w = sha512.New384()
	case crypto.SHA512:
		w = sha512.New()
	default:
		panic("no hash " + h.String())
	}
	w.Write(msg)
	return w.Sum(nil)
}

// wantCode fails the test unless err is a status with code c whose
// message contains every one of parts.
func wantCode(t *testing.T, err error, c codes.Code, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %s", c)
	}
	s, _ := status.FromError(err)
	if s.Code() != c {
		t.Fatalf("code %s (%v); want %s", s.Code(), err, c)
	}
	for _, p := range parts {
		if !strings.Contains(s.Message(), p) {
			t.Fatalf("message %q does not contain %q", s.Message(), p)
		}
	}
}
