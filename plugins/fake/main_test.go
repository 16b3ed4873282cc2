package fake_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/knhk/knhk/internal/pluginrpc"
	"github.com/knhk/knhk/shared/providertest"
)

// pluginBin is the knhk-plugin-fake binary built for this test run.
var pluginBin string

func TestMain(m *testing.M) {
	bin, remove, err := providertest.BuildTemp("./cmd/knhk-plugin-fake")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pluginBin = bin
	code := m.Run()
	remove()
	os.Exit(code)
}

// launched is one running plugin process and its provider client.
type launched struct {
	proc *plugin.Client
	prov *pluginrpc.Client
}

// launch starts the plugin binary the way the host does and kills it when
// the test ends.
func launch(t testing.TB) launched {
	t.Helper()
	cfg := pluginrpc.ClientConfig(exec.Command(pluginBin))
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Error, Output: os.Stderr})
	cfg.StartTimeout = time.Minute
	pc := plugin.NewClient(cfg)
	t.Cleanup(pc.Kill)
	rpc, err := pc.Client()
	if err != nil {
		t.Fatalf("starting plugin: %v", err)
	}
	prov, err := pluginrpc.Dispense(rpc)
	if err != nil {
		t.Fatalf("dispense: %v", err)
	}
	return launched{proc: pc, prov: prov}
}

// ctxT is a context that ends with the test, bounded to a few minutes.
func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
