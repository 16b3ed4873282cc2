package azure_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/knhk/knhk/internal/pluginrpc"
	"github.com/knhk/knhk/plugins/azure/internal/kvtest"
	"github.com/knhk/knhk/shared"
	"github.com/knhk/knhk/shared/providertest"
)

// pluginBin is the knhk-plugin-azure binary TestMain builds.
var pluginBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	bin, remove, err := providertest.BuildTemp("./cmd/knhk-plugin-azure")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer remove()
	pluginBin = bin
	return m.Run()
}

// syncBuffer is a log sink that tests can read while the plugin writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestBinary drives the built plugin over go-plugin's gRPC, with the
// static AZURE_AUTH_TOKEN credential, and checks typed errors cross the
// process boundary and the token shows up in no log line.
func TestBinary(t *testing.T) {
	srv, err := kvtest.New("")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	p, logs, client := launch(t, "AZURE_AUTH_TOKEN="+srv.Token, "KNHK_LOG_LEVEL=trace")
	ctx := context.Background()
	d, err := p.Describe(ctx)
	if err != nil || d.Name != "azure" || d.ProtocolVersion != shared.ProtocolVersion || len(d.Algorithms) != 9 {
		t.Fatalf("Describe = %+v, %v", d, err)
	}
	ref := shared.KeyRef{ID: srv.KeyID("bin"), Params: map[string]string{"ca_file": srv.CAFile}}
	if _, err := p.CreateKey(ctx, shared.CreateKeyRequest{Key: ref, Type: shared.ECP521}); err != nil {
		t.Fatal(err)
	}
	pk, err := p.PublicKey(ctx, shared.PublicKeyRequest{Key: ref})
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := shared.ParsePublicKey(pk.DER)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := shared.Digest(shared.ES512, []byte("through the binary"))
	sig, err := p.Sign(ctx, shared.SignRequest{Key: ref, Algorithm: shared.ES512, Digest: digest})
	if err != nil {
		t.Fatal(err)
	}
	if err := shared.VerifyDigest(pub, shared.ES512, digest, sig.Signature); err != nil {
		t.Errorf("signature from the binary does not verify: %v", err)
	}
	var errs []error
	_, err = p.Sign(ctx, shared.SignRequest{Key: shared.KeyRef{ID: srv.KeyID("nope"), Params: ref.Params}, Algorithm: shared.ES512, Digest: digest})
	if !errors.Is(err, shared.ErrKeyNotFound) {
		t.Errorf("unknown key over gRPC = %v, want ErrKeyNotFound", err)
	}
	errs = append(errs, err)
	_, err = p.Sign(ctx, shared.SignRequest{Key: ref, Algorithm: shared.EdDSA, Message: []byte("x")})
	if !errors.Is(err, shared.ErrUnsupportedAlgorithm) {
		t.Errorf("EdDSA over gRPC = %v, want ErrUnsupportedAlgorithm", err)
	}
	errs = append(errs, err)
	srv.Deny("get", true)
	_, err = p.PublicKey(ctx, shared.PublicKeyRequest{Key: ref})
	if !errors.Is(err, shared.ErrPermissionDenied) {
		t.Errorf("denied get over gRPC = %v, want ErrPermissionDenied", err)
	}
	errs = append(errs, err)
	client.Kill()

	out := logs.String()
	if os.Getenv("SHOWLOG") != "" {
		t.Log(out)
	}
	if !strings.Contains(out, "signed") || !strings.Contains(out, "Authorization") {
		t.Errorf("plugin trace logs lack the sign line or the SDK's request log:\n%s", out)
	}
	if strings.Contains(out, srv.Token) {
		t.Error("the token appears in the plugin's logs")
	}
	for _, err := range errs {
		if strings.Contains(err.Error(), srv.Token) {
			t.Errorf("the token appears in error %q", err)
		}
	}
}

// TestBinaryTraceLogNoBodies runs the built plugin at trace level, with
// the Azure SDK's own console logging asked for (AZURE_SDK_GO_LOGGING=all)
// and the static token, against a vault that reflects the token in its
// error answers: the reflected answer reaches no log line, the token
// appears in no log line and no error, and the SDK's request log still
// comes through.
func TestBinaryTraceLogNoBodies(t *testing.T) {
	srv, err := kvtest.New("")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	p, logs, client := launch(t, "AZURE_AUTH_TOKEN="+srv.Token, "KNHK_LOG_LEVEL=trace", "AZURE_SDK_GO_LOGGING=all")
	checkReflected(t, p, srv)
	client.Kill()
	checkTraceLog(t, logs.String(), srv.Token)
}

// launch starts the built plugin with extra environment variables and
// returns it, its log (at trace level) and its go-plugin client.
func launch(t *testing.T, env ...string) (shared.Provider, *syncBuffer, *plugin.Client) {
	t.Helper()
	logs := &syncBuffer{}
	cmd := exec.Command(pluginBin)
	cmd.Env = append(os.Environ(), env...)
	cfg := pluginrpc.ClientConfig(cmd)
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace})
	client := plugin.NewClient(cfg)
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatal(err)
	}
	p, err := pluginrpc.Dispense(rpc)
	if err != nil {
		t.Fatal(err)
	}
	return p, logs, client
}
