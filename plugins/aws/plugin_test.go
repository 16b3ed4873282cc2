package aws_test

import (
	"context"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/hashicorp/go-plugin"

	"github.com/knhk/knhk/internal/pluginrpc"
	"github.com/knhk/knhk/plugins/aws"
	"github.com/knhk/knhk/plugins/aws/internal/localkms"
	"github.com/knhk/knhk/shared"
)

// dispense launches the built binary with go-plugin, as the host does.
func dispense(t *testing.T) *pluginrpc.Client {
	t.Helper()
	c := plugin.NewClient(pluginrpc.ClientConfig(exec.Command(pluginBin)))
	t.Cleanup(c.Kill)
	rpc, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	p, err := pluginrpc.Dispense(rpc)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDescribe: in process and over gRPC, the plugin claims the six key
// types and nine algorithms KMS and its emulator share; never Ed25519.
func TestDescribe(t *testing.T) {
	for name, p := range map[string]shared.Provider{"in-process": aws.New(aws.Config{}), "binary": dispense(t)} {
		d, err := p.Describe(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if d.Name != "aws" || slices.Contains(d.KeyTypes, shared.Ed25519) || slices.Contains(d.Algorithms, shared.EdDSA) {
			t.Fatalf("%s: %+v", name, d)
		}
		if len(d.KeyTypes) != 6 || len(d.Algorithms) != 9 {
			t.Fatalf("%s: %d key types, %d algorithms", name, len(d.KeyTypes), len(d.Algorithms))
		}
		for _, c := range []shared.Capability{shared.CapCreateKey, shared.CapListKeys, shared.CapRotateKey, shared.CapVerify, shared.CapSignMessage} {
			if !d.Has(c) {
				t.Fatalf("%s: does not claim %s", name, c)
			}
		}
		if d.Has(shared.CapSignBatch) {
			t.Fatalf("%s: claims a native batch it does not have", name)
		}
	}
}

// TestPluginBinary drives the binary over go-plugin: the plugin process
// takes credentials from its environment, reaches the emulator through the
// endpoint parameter, and its typed errors survive the process boundary.
func TestPluginBinary(t *testing.T) {
	srv := localkms.Start(t)
	p := dispense(t)
	ctx := ctxT(t)
	ref := func(id string) shared.KeyRef {
		return shared.KeyRef{ID: id, Params: map[string]string{"endpoint": srv.URL}}
	}
	ck, err := p.CreateKey(ctx, shared.CreateKeyRequest{Key: ref("alias/bin"), Type: shared.RSA2048})
	if err != nil {
		t.Fatal(err)
	}
	pk, err := p.PublicKey(ctx, shared.PublicKeyRequest{Key: ref("alias/bin")})
	if err != nil || pk.Version != ck.Version {
		t.Fatalf("PublicKey: %+v %v", pk, err)
	}
	pub, _, err := shared.ParsePublicKey(pk.DER)
	if err != nil {
		t.Fatal(err)
	}
	long := []byte(strings.Repeat("a long message ", 1000)) // > 4096: hashed in the plugin
	for _, alg := range shared.RSA2048.Algorithms() {
		r, err := p.Sign(ctx, shared.SignRequest{Key: ref("alias/bin"), Algorithm: alg, Message: long})
		if err != nil {
			t.Fatal(err)
		}
		if err := shared.VerifyMessage(pub, alg, long, r.Signature); err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
	}
	_, err = p.Sign(ctx, shared.SignRequest{Key: ref("alias/nope"), Algorithm: shared.RS256, Message: []byte("m")})
	wantErr(t, "unknown key over gRPC", err, shared.ErrKeyNotFound)
	if !strings.Contains(err.Error(), "request id "+localkms.RequestIDPrefix) {
		t.Fatalf("request id lost over gRPC: %v", err)
	}
	_, err = p.Sign(ctx, shared.SignRequest{Key: ref("alias/bin"), Algorithm: shared.ES256, Message: []byte("m")})
	wantErr(t, "wrong algorithm over gRPC", err, shared.ErrUnsupportedAlgorithm)
	_, err = p.RotateKey(ctx, shared.RotateKeyRequest{Key: ref(ck.Version)})
	wantErr(t, "rotate a key id over gRPC", err, shared.ErrInvalidArgument)
	_, err = p.ListKeys(ctx, shared.ListKeysRequest{Params: map[string]string{"endpoint": srv.URL, "aws_secret_access_key": "s"}})
	wantErr(t, "credential parameter over gRPC", err, shared.ErrInvalidArgument)
	noSecrets(t, err)
}

// TestListKeys lists signing keys with their aliases, leaving out keys
// knhk cannot sign with.
func TestListKeys(t *testing.T) {
	e := newEnv(t)
	_, aliased := e.create(t, "alias/listed", shared.ECP256)
	plain, _ := e.create(t, "", shared.RSA3072)
	sym, err := e.srv.Client().CreateKey(ctxT(t), &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := e.p.ListKeys(ctxT(t), shared.ListKeysRequest{Params: e.params})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]shared.KeySummary{}
	for _, k := range keys {
		byID[k.KeyID] = k
	}
	if k := byID[aliased]; k.Type != shared.ECP256 || k.CurrentVersion != aliased || !slices.Equal(k.Aliases, []string{"alias/listed"}) {
		t.Fatalf("aliased key listed as %+v", k)
	}
	if k := byID[plain]; k.Type != shared.RSA3072 || len(k.Aliases) != 0 {
		t.Fatalf("plain key listed as %+v", k)
	}
	if _, ok := byID[awssdk.ToString(sym.KeyMetadata.KeyId)]; ok || len(keys) != 2 {
		t.Fatalf("listed %d keys, including a symmetric one: %+v", len(keys), keys)
	}
}

// TestMetadata reads DescribeKey's fields into metadata and reports a
// disabled key's version as disabled.
func TestMetadata(t *testing.T) {
	e := newEnv(t)
	id, v := e.create(t, "", shared.ECP521)
	md, err := e.p.KeyMetadata(ctxT(t), shared.KeyMetadataRequest{Key: e.ref(id)})
	if err != nil {
		t.Fatal(err)
	}
	a := md.Attributes
	if md.KeyID != id || md.CurrentVersion != v || md.Type != shared.ECP521 || !slices.Equal(md.Algorithms, []shared.Algorithm{shared.ES512}) ||
		a["key_spec"] != string(types.KeySpecEccNistP521) || a["key_usage"] != "SIGN_VERIFY" || a["key_state"] != "Enabled" ||
		a["multi_region"] != "false" || !strings.HasSuffix(a["arn"], ":key/"+id) || a["created"] == "" {
		t.Fatalf("metadata %+v", md)
	}
	if len(md.Versions) != 1 || !md.Versions[0].Enabled || md.Versions[0].Created.IsZero() {
		t.Fatalf("versions %+v", md.Versions)
	}
	if err := e.srv.DisableKey(ctxT(t), id); err != nil {
		t.Fatal(err)
	}
	md, err = e.p.KeyMetadata(ctxT(t), shared.KeyMetadataRequest{Key: e.ref(id)})
	if err != nil || md.Versions[0].Enabled || md.Attributes["key_state"] != "Disabled" {
		t.Fatalf("disabled key metadata %+v, %v", md, err)
	}
	if errors.Is(err, shared.ErrFailedPrecondition) {
		t.Fatal("metadata of a disabled key must still be readable")
	}
}
