package aws_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/knhk/knhk/plugins/aws"
	"github.com/knhk/knhk/plugins/aws/internal/localkms"
	"github.com/knhk/knhk/shared"
)

// TestErrors checks the mapping of what the emulator answers to knhk's
// typed errors, and that messages keep the request id and no credential.
func TestErrors(t *testing.T) {
	e := newEnv(t)
	rsaID, _ := e.create(t, "alias/errors-rsa", shared.RSA2048)
	ecID, _ := e.create(t, "", shared.ECP256)
	disabledID, _ := e.create(t, "", shared.ECP256)
	if err := e.srv.DisableKey(ctxT(t), disabledID); err != nil {
		t.Fatal(err)
	}
	d256 := digestOf(t, shared.ES256, []byte("m"))
	sign := func(id string, alg shared.Algorithm, digest []byte) error {
		_, err := e.p.Sign(ctxT(t), shared.SignRequest{Key: e.ref(id), Algorithm: alg, Digest: digest})
		return err
	}
	verify := func(id string, alg shared.Algorithm, digest []byte) error {
		_, err := e.p.Verify(ctxT(t), shared.VerifyRequest{Key: e.ref(id), Algorithm: alg, Digest: digest, Signature: []byte{1}})
		return err
	}
	cases := []struct {
		name      string
		err       error
		want      error
		requestID bool // the message carries the emulator's request id
	}{
		{"unknown key id", sign("9d7f8c46-6b1c-4f1e-9a43-000000000000", shared.ES256, d256), shared.ErrKeyNotFound, true},
		{"unknown alias", sign("alias/missing", shared.ES256, d256), shared.ErrKeyNotFound, true},
		{"unknown key public key", func() error {
			_, err := e.p.PublicKey(ctxT(t), shared.PublicKeyRequest{Key: e.ref("alias/missing")})
			return err
		}(), shared.ErrKeyNotFound, true},
		{"unknown key metadata", func() error {
			_, err := e.p.KeyMetadata(ctxT(t), shared.KeyMetadataRequest{Key: e.ref("alias/missing")})
			return err
		}(), shared.ErrKeyNotFound, true},
		{"disabled key sign", sign(disabledID, shared.ES256, d256), shared.ErrFailedPrecondition, true},
		{"disabled key public key", func() error {
			_, err := e.p.PublicKey(ctxT(t), shared.PublicKeyRequest{Key: e.ref(disabledID)})
			return err
		}(), shared.ErrFailedPrecondition, true},
		{"ECDSA on an RSA key", sign(rsaID, shared.ES256, d256), shared.ErrUnsupportedAlgorithm, true},
		{"ES384 on a P-256 key", sign(ecID, shared.ES384, digestOf(t, shared.ES384, nil)), shared.ErrUnsupportedAlgorithm, true},
		{"RSA on an EC key", sign(ecID, shared.PS256, d256), shared.ErrUnsupportedAlgorithm, true},
		{"verify ES512 on a P-256 key", verify(ecID, shared.ES512, digestOf(t, shared.ES512, nil)), shared.ErrUnsupportedAlgorithm, false},
		{"verify ES256 on an RSA key", verify(rsaID, shared.ES256, d256), shared.ErrUnsupportedAlgorithm, false},
		{"EdDSA", sign(ecID, shared.EdDSA, nil), shared.ErrUnsupportedAlgorithm, false},
		{"oversized digest", sign(ecID, shared.ES256, make([]byte, 64)), shared.ErrInvalidArgument, false},
		{"short digest", sign(rsaID, shared.RS256, make([]byte, 20)), shared.ErrInvalidArgument, false},
		{"no input", sign(rsaID, shared.RS256, nil), shared.ErrInvalidArgument, false},
		{"verify oversized digest", verify(ecID, shared.ES256, make([]byte, 48)), shared.ErrInvalidArgument, false},
		{"alias exists", func() error {
			_, err := e.p.CreateKey(ctxT(t), shared.CreateKeyRequest{Key: e.ref("alias/errors-rsa"), Type: shared.ECP256})
			return err
		}(), shared.ErrAlreadyExists, false},
		{"create with a key id", func() error {
			_, err := e.p.CreateKey(ctxT(t), shared.CreateKeyRequest{Key: e.ref("my-key"), Type: shared.ECP256})
			return err
		}(), shared.ErrInvalidArgument, false},
		{"create ed25519", func() error {
			_, err := e.p.CreateKey(ctxT(t), shared.CreateKeyRequest{Key: e.ref(""), Type: shared.Ed25519})
			return err
		}(), shared.ErrUnsupportedAlgorithm, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErr(t, c.name, c.err, c.want)
			noSecrets(t, c.err)
			if c.requestID && !strings.Contains(c.err.Error(), "request id "+localkms.RequestIDPrefix) {
				t.Fatalf("message has no request id: %v", c.err)
			}
		})
	}
}

// faultServer stands in front of the emulator and answers every call to
// one KMS operation with a fixed error, counting the attempts.
func faultServer(t *testing.T, upstream, op string, status int, code string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") != "TrentService."+op {
			proxy.ServeHTTP(w, r)
			return
		}
		k := n.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-Requestid", fmt.Sprintf("fault-%d", k))
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"__type":%q,"message":"injected %s"}`, code, code)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// TestUnavailable: 5xx and network failures become ErrUnavailable once
// the SDK's retryer gives up, throttling ErrThrottled (not retried by the
// standard retryer);
// permission errors are not retried.
func TestUnavailable(t *testing.T) {
	e := newEnv(t)
	id, _ := e.create(t, "", shared.ECP256)
	d := digestOf(t, shared.ES256, []byte("m"))
	cases := []struct {
		status       int
		code, mode   string
		want         error
		wantAttempts int64
	}{
		// Standard: throttling goes to the host at once (its quota
		// adapts); adaptive: the SDK retries it.
		{400, "ThrottlingException", "standard", shared.ErrThrottled, 1},
		{400, "ThrottlingException", "adaptive", shared.ErrThrottled, 3},
		{500, "KMSInternalException", "standard", shared.ErrUnavailable, 3},
		{503, "ServiceUnavailable", "standard", shared.ErrUnavailable, 3},
		{400, "AccessDeniedException", "standard", shared.ErrPermissionDenied, 1},
		{400, "UnrecognizedClientException", "standard", shared.ErrPermissionDenied, 1},
		{400, "KMSInvalidStateException", "standard", shared.ErrFailedPrecondition, 1},
		{400, "ValidationException", "standard", shared.ErrInvalidArgument, 1},
	}
	for _, c := range cases {
		t.Run(c.code+"/"+c.mode, func(t *testing.T) {
			srv, attempts := faultServer(t, e.srv.URL, "Sign", c.status, c.code)
			p := aws.New(aws.Config{})
			ref := shared.KeyRef{ID: id, Params: map[string]string{"endpoint": srv.URL, "retry_mode": c.mode}}
			_, err := p.Sign(ctxT(t), shared.SignRequest{Key: ref, Algorithm: shared.ES256, Digest: d})
			wantErr(t, c.code, err, c.want)
			if got := attempts.Load(); got != c.wantAttempts {
				t.Fatalf("%d attempts, want %d", got, c.wantAttempts)
			}
			if !strings.Contains(err.Error(), c.code) || !strings.Contains(err.Error(), fmt.Sprintf("request id fault-%d", c.wantAttempts)) {
				t.Fatalf("message lost the code or request id: %v", err)
			}
			noSecrets(t, err)
			// Other operations still reach the emulator through the proxy.
			if _, err := p.PublicKey(ctxT(t), shared.PublicKeyRequest{Key: ref}); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		p := aws.New(aws.Config{})
		_, err = p.Sign(ctxT(t), shared.SignRequest{Key: shared.KeyRef{ID: id, Params: map[string]string{"endpoint": "http://" + addr}}, Algorithm: shared.ES256, Digest: d})
		wantErr(t, "closed port", err, shared.ErrUnavailable)
		noSecrets(t, err)
	})
	t.Run("deadline", func(t *testing.T) {
		// A KMS that never answers. Reading the body lets the server see the
		// client hang up; the timer keeps a mistake from hanging the test.
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-time.After(30 * time.Second):
			}
		}))
		t.Cleanup(srv.Close)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := aws.New(aws.Config{}).Sign(ctx, shared.SignRequest{Key: shared.KeyRef{ID: id, Params: map[string]string{"endpoint": srv.URL}}, Algorithm: shared.ES256, Digest: d})
		wantErr(t, "deadline", err, context.DeadlineExceeded)
	})
}

// TestNoCredentials: without credentials in the chain the provider says
// so as a permission error, naming no secret.
func TestNoCredentials(t *testing.T) {
	e := newEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	p := aws.New(aws.Config{})
	_, err := p.PublicKey(ctxT(t), shared.PublicKeyRequest{Key: e.ref("alias/any")})
	wantErr(t, "no credentials", err, shared.ErrPermissionDenied)
	if !strings.Contains(err.Error(), "credentials") {
		t.Fatalf("message does not say what is missing: %v", err)
	}
}
