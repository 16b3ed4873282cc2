package vault_test

import (
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/knhk/knhk/internal/pluginrpc"
	"github.com/knhk/knhk/shared"
)

// launchPlugin starts the built knhk-plugin-vault as the host would and
// returns its provider. The plugin's log lines (at trace level) go to logs.
func launchPlugin(t *testing.T, logs *lockedBuffer, env ...string) *pluginrpc.Client {
	t.Helper()
	cmd := exec.Command(pluginBin)
	cmd.Env = append(append(os.Environ(), "KNHK_LOG_LEVEL=trace"), env...)
	cfg := pluginrpc.ClientConfig(cmd)
	cfg.SkipHostEnv = true // cmd.Env has it already; go-plugin would append it after env and override env
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "host", Level: hclog.Trace, Output: logs})
	client := plugin.NewClient(cfg)
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("starting %s: %v", pluginBin, err)
	}
	p, err := pluginrpc.Dispense(rpc)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPluginBinary drives the built plugin over gRPC: Describe, create,
// sign and verify, and typed errors across the process boundary.
func TestPluginBinary(t *testing.T) {
	p := launchPlugin(t, &lockedBuffer{})
	d, err := p.Describe(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "vault" || d.ProtocolVersion != shared.ProtocolVersion || len(d.KeyTypes) != 7 || len(d.Algorithms) != 10 || !d.Has(shared.CapRotateKey) {
		t.Fatalf("Describe = %+v", d)
	}
	id := "transit/" + keyName("bin")
	ref := shared.KeyRef{ID: id, Params: params()}
	create(t, p, id, shared.ECP521, params())
	pub, _ := publicKey(t, p, ref, "")
	d512 := sha512.Sum512([]byte("through the binary"))
	sig, err := p.Sign(ctx(t), shared.SignRequest{Key: ref, Algorithm: shared.ES512, Digest: d512[:]})
	if err != nil {
		t.Fatal(err)
	}
	if err := shared.VerifyDigest(pub, shared.ES512, d512[:], sig.Signature); err != nil {
		t.Fatal(err)
	}
	vr, err := p.Verify(ctx(t), shared.VerifyRequest{Key: ref, Algorithm: shared.ES512, Digest: d512[:], Signature: sig.Signature})
	if err != nil || !vr.Valid {
		t.Fatalf("Verify = %+v, %v", vr, err)
	}
	_, err = p.Sign(ctx(t), shared.SignRequest{Key: shared.KeyRef{ID: keyName("nope"), Params: params()}, Algorithm: shared.ES512, Digest: d512[:]})
	if !errors.Is(err, shared.ErrKeyNotFound) {
		t.Errorf("unknown key through the binary: %v, want ErrKeyNotFound", err)
	}
	_, err = p.Sign(ctx(t), shared.SignRequest{Key: shared.KeyRef{ID: id, Params: params("bogus", "1")}, Algorithm: shared.ES512, Digest: d512[:]})
	if !errors.Is(err, shared.ErrInvalidArgument) {
		t.Errorf("unknown parameter through the binary: %v, want ErrInvalidArgument", err)
	}
	_, err = p.Sign(ctx(t), shared.SignRequest{Key: ref, Algorithm: shared.RS256, Digest: d512[:32]})
	if !errors.Is(err, shared.ErrUnsupportedAlgorithm) {
		t.Errorf("RS256 on a P-521 key through the binary: %v, want ErrUnsupportedAlgorithm", err)
	}
}

// TestNoSecretsThroughBinary runs failing and renewing operations through
// the plugin binary, with its logs at trace level, and checks that no token
// appears in any log line or error.
func TestNoSecretsThroughBinary(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	p := launchPlugin(t, logs)
	name := keyName("leak")
	create(t, p, name, shared.RSA2048, params())
	short := signerToken(t, "5s")
	long := signerToken(t, "1h")
	bogus := "hvs.CAESIbogusbogusbogusbogusbogusbogus"
	var errs []string
	note := func(err error) {
		if err == nil {
			t.Error("operation succeeded, want an error")
			return
		}
		errs = append(errs, err.Error())
	}
	d := sha256.Sum256([]byte("leak"))
	sign := func(prm map[string]string) error {
		_, err := p.Sign(ctx(t), shared.SignRequest{Key: shared.KeyRef{ID: name, Params: prm}, Algorithm: shared.PS256, Digest: d[:]})
		return err
	}
	note(sign(params("token_file", writeFile(t, bogus))))
	_, err := p.RotateKey(ctx(t), shared.RotateKeyRequest{Key: shared.KeyRef{ID: name, Params: params("token_file", writeFile(t, long))}})
	note(err)
	_, err = p.CreateKey(ctx(t), shared.CreateKeyRequest{Key: shared.KeyRef{ID: keyName("x"), Params: params("token_file", writeFile(t, long))}, Type: shared.ECP256})
	note(err)
	// Renewals of the short token happen while signing continues.
	shortRef := shared.KeyRef{ID: name, Params: params("token_file", writeFile(t, short))}
	signFor(t, p, shortRef, shared.PS256, d[:], 9*time.Second)
	if !strings.Contains(logs.String(), "renewed Vault token") {
		t.Errorf("no renewal logged by the plugin:\n%s", logs)
	}
	all := logs.String() + "\n" + strings.Join(errs, "\n")
	assertNoSecrets(t, all, srv.RootToken, short, long, bogus)
}
