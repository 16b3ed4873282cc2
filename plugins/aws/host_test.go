package aws_test

import (
	"bytes"
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/plugins/aws/internal/localkms"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/shared/providertest"
)

// newHost starts a knhk host whose plugin directory holds the
// knhk-plugin-aws binary TestMain built.
func newHost(t *testing.T) *host.Host {
	t.Helper()
	h, err := host.New(context.Background(), host.Config{PluginDirs: []string{filepath.Dir(pluginBin)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// kitConfig is the conformance kit's configuration for the emulator: the
// kit's keys are created under aliases (so they can rotate), and the
// missing key is an alias too.
func kitConfig(srv *localkms.Server) providertest.Config {
	return providertest.Config{
		Params:       map[string]string{"endpoint": srv.URL},
		KeyID:        func(kt shared.KeyType) string { return "alias/knhk-kit-" + string(kt) },
		MissingKeyID: "alias/knhk-kit-missing",
		Concurrency:  16,
	}
}

// TestConformanceThroughHost runs the conformance kit against the built
// knhk-plugin-aws as the host manages it (launch, timeouts, retries,
// verify-after-sign, public-key cache), for every key type and algorithm
// the plugin claims: six key types, nine algorithms.
func TestConformanceThroughHost(t *testing.T) {
	srv := localkms.Start(t)
	h := newHost(t)
	p, err := h.Provider(context.Background(), "aws")
	if err != nil {
		t.Fatal(err)
	}
	d, err := p.Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.KeyTypes) != 6 || len(d.Algorithms) != 9 || d.Name != "aws" {
		t.Fatalf("Describe through the host: %+v; want aws with six key types and nine algorithms", d)
	}
	cfg := kitConfig(srv)
	cfg.Provider = p
	providertest.Run(t, cfg)
}

// TestConformanceBinary runs the kit against the binary directly, as a
// plugin author would.
func TestConformanceBinary(t *testing.T) {
	srv := localkms.Start(t)
	cfg := kitConfig(srv)
	cfg.Binary = pluginBin
	providertest.Run(t, cfg)
}

// keyRef writes a host key reference for the emulator.
func keyRef(srv *localkms.Server, id string) string {
	return "aws:" + id + "?endpoint=" + url.QueryEscape(srv.URL)
}

// TestRotationThroughHost signs with v1, rotates through the host, signs
// with v2, and checks that v1's signature still verifies, that metadata
// lists both versions, and that the host's cached public key was dropped.
func TestRotationThroughHost(t *testing.T) {
	srv := localkms.Start(t)
	h := newHost(t)
	ctx := ctxT(t)
	k, err := h.CreateKey(ctx, keyRef(srv, "alias/host-rotate"), shared.ECP384)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("release v1")
	s1, err := k.SignMessage(ctx, msg, host.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v1 := s1.Version
	pk1, err := k.PublicKey(ctx, "")
	if err != nil || pk1.Version != v1 || pk1.Type != shared.ECP384 {
		t.Fatalf("current public key before rotation: %+v %v", pk1, err)
	}

	// Control: a rotation the host does not see (straight through the
	// plugin) leaves the host's cached current key in place, so the cache
	// is real and the check below means something.
	side := newEnv(t)
	side.params = map[string]string{"endpoint": srv.URL}
	v2, err := side.p.RotateKey(ctx, shared.RotateKeyRequest{Key: side.ref("alias/host-rotate")})
	if err != nil {
		t.Fatal(err)
	}
	cached, err := k.PublicKey(ctx, "")
	if err != nil || cached.Version != v1 {
		t.Fatalf("cached current key after an out-of-band rotation: version %q, %v; want the cached %q", cached.Version, err, v1)
	}

	// Rotation through the host drops the cache.
	v3, err := k.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v3 == "" || v3 == v1 || v3 == v2.Version {
		t.Fatalf("Rotate returned %q (earlier versions %q, %q)", v3, v1, v2.Version)
	}
	cur, err := k.PublicKey(ctx, "")
	if err != nil || cur.Version != v3 || bytes.Equal(cur.DER, pk1.DER) {
		t.Fatalf("current public key after rotation through the host: version %q, %v; want %q with a new key", cur.Version, err, v3)
	}
	s3, err := k.SignMessage(ctx, []byte("release v3"), host.SignOptions{})
	if err != nil || s3.Version != v3 {
		t.Fatalf("sign after rotation: %+v %v", s3, err)
	}
	if err := k.VerifyMessage(ctx, []byte("release v3"), s3.Signature, host.SignOptions{}); err != nil {
		t.Fatal(err)
	}
	// The old signature still verifies against v1, locally and in KMS.
	if err := k.VerifyMessage(ctx, msg, s1.Signature, host.SignOptions{Version: v1}); err != nil {
		t.Fatalf("v1 signature after rotation: %v", err)
	}
	if err := shared.VerifyMessage(pk1.Key, shared.ES384, msg, s1.Signature); err != nil {
		t.Fatal(err)
	}
	p, err := h.Provider(ctx, "aws")
	if err != nil {
		t.Fatal(err)
	}
	vr, err := p.Verify(ctx, shared.VerifyRequest{Key: shared.KeyRef{ID: "alias/host-rotate", Params: map[string]string{"endpoint": srv.URL}},
		Version: v1, Algorithm: shared.ES384, Message: msg, Signature: s1.Signature})
	if err != nil || !vr.Valid || vr.Version != v1 {
		t.Fatalf("KMS Verify of the v1 signature: %+v %v", vr, err)
	}
	// Signing with the old version by name still works.
	old, err := k.SignMessage(ctx, msg, host.SignOptions{Version: v1})
	if err != nil || old.Version != v1 {
		t.Fatalf("sign with v1: %+v %v", old, err)
	}
	md, err := k.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range md.Versions {
		got = append(got, v.Version)
	}
	if want := []string{v1, v2.Version, v3}; strings.Join(got, ",") != strings.Join(want, ",") || md.CurrentVersion != v3 {
		t.Fatalf("metadata versions %v (current %q), want %v", got, md.CurrentVersion, want)
	}

	// A bare key id cannot rotate, and the host says why.
	bare, err := h.Key(ctx, keyRef(srv, v1))
	if err != nil {
		t.Fatal(err)
	}
	_, err = bare.Rotate(ctx)
	wantErr(t, "rotate a bare key id through the host", err, shared.ErrInvalidArgument)
	if !strings.Contains(err.Error(), "alias") {
		t.Fatalf("refusal does not explain itself: %v", err)
	}
}

// TestErrorsThroughHost: unknown key, disabled key, wrong algorithm and
// oversized digest each come out of the host as their typed error, both
// through a Key (the host's own checks) and through the managed Provider
// (the plugin's and KMS's).
func TestErrorsThroughHost(t *testing.T) {
	srv := localkms.Start(t)
	h := newHost(t)
	ctx := ctxT(t)
	params := map[string]string{"endpoint": srv.URL}
	p, err := h.Provider(ctx, "aws")
	if err != nil {
		t.Fatal(err)
	}
	rsa, err := h.CreateKey(ctx, keyRef(srv, "alias/host-errors-rsa"), shared.RSA3072)
	if err != nil {
		t.Fatal(err)
	}
	created, err := p.CreateKey(ctx, shared.CreateKeyRequest{Key: shared.KeyRef{Params: params}, Type: shared.ECP521})
	if err != nil {
		t.Fatal(err)
	}
	disabledID := created.KeyID
	if err := srv.DisableKey(ctx, disabledID); err != nil {
		t.Fatal(err)
	}
	ref := func(id string) shared.KeyRef { return shared.KeyRef{ID: id, Params: params} }
	d256 := digestOf(t, shared.ES256, []byte("m"))
	d512 := digestOf(t, shared.ES512, []byte("m"))

	missing, err := h.Key(ctx, keyRef(srv, "alias/host-missing"))
	if err != nil {
		t.Fatal(err)
	}
	disabled, err := h.Key(ctx, keyRef(srv, disabledID))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		err       error
		want      error
		requestID bool
	}{
		{"unknown key: Key.SignDigest", func() error { _, err := missing.SignDigest(ctx, d256, host.SignOptions{}); return err }(), shared.ErrKeyNotFound, true},
		{"unknown key: Provider.Sign", func() error {
			_, err := p.Sign(ctx, shared.SignRequest{Key: ref("alias/host-missing"), Algorithm: shared.ES256, Digest: d256})
			return err
		}(), shared.ErrKeyNotFound, true},
		{"unknown key: metadata", func() error { _, err := missing.Metadata(ctx); return err }(), shared.ErrKeyNotFound, true},
		{"unknown key: rotate", func() error { _, err := missing.Rotate(ctx); return err }(), shared.ErrKeyNotFound, true},
		{"disabled key: Key.SignDigest", func() error { _, err := disabled.SignDigest(ctx, d512, host.SignOptions{}); return err }(), shared.ErrFailedPrecondition, true},
		{"disabled key: Provider.Sign", func() error {
			_, err := p.Sign(ctx, shared.SignRequest{Key: ref(disabledID), Algorithm: shared.ES512, Digest: d512})
			return err
		}(), shared.ErrFailedPrecondition, true},
		{"wrong algorithm: Key.SignDigest", func() error {
			_, err := rsa.SignDigest(ctx, d256, host.SignOptions{Algorithm: shared.ES256})
			return err
		}(), shared.ErrUnsupportedAlgorithm, false},
		{"wrong algorithm: Provider.Sign", func() error {
			_, err := p.Sign(ctx, shared.SignRequest{Key: ref("alias/host-errors-rsa"), Algorithm: shared.ES256, Digest: d256})
			return err
		}(), shared.ErrUnsupportedAlgorithm, true},
		{"wrong algorithm: Provider.Verify", func() error {
			_, err := p.Verify(ctx, shared.VerifyRequest{Key: ref("alias/host-errors-rsa"), Algorithm: shared.ES256, Digest: d256, Signature: []byte{1}})
			return err
		}(), shared.ErrUnsupportedAlgorithm, false},
		{"oversized digest: Key.SignDigest", func() error {
			_, err := rsa.SignDigest(ctx, make([]byte, 64), host.SignOptions{Algorithm: shared.PS256})
			return err
		}(), shared.ErrInvalidArgument, false},
		{"oversized digest: Provider.Sign", func() error {
			_, err := p.Sign(ctx, shared.SignRequest{Key: ref("alias/host-errors-rsa"), Algorithm: shared.PS256, Digest: make([]byte, 64)})
			return err
		}(), shared.ErrInvalidArgument, false},
		{"unknown parameter", func() error {
			_, err := p.PublicKey(ctx, shared.PublicKeyRequest{Key: shared.KeyRef{ID: "alias/host-errors-rsa", Params: map[string]string{"endpoint": srv.URL, "access_key": "x"}}})
			return err
		}(), shared.ErrInvalidArgument, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErr(t, c.name, c.err, c.want)
			noSecrets(t, c.err)
			if c.requestID && !strings.Contains(c.err.Error(), "request id "+localkms.RequestIDPrefix) {
				t.Fatalf("the AWS request id did not survive the trip: %v", c.err)
			}
		})
	}
}
