package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/sidecar"
)

// TestReadmeServeConfig: the sidecar config the README shows loads and is
// a valid daemon configuration (its certificate files are only read when
// the daemon listens).
func TestReadmeServeConfig(t *testing.T) {
	readme, err := os.ReadFile("../../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```hcl\n# /etc/knhk/knhk.hcl\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README has no sidecar config example (```hcl # /etc/knhk/knhk.hcl)")
	}
	path := filepath.Join(t.TempDir(), "knhk.hcl")
	if err := os.WriteFile(path, []byte(block), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := cfg.sidecarConfig(path, "", hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sidecar.New(hosttest.New(t), sc); err != nil {
		t.Fatalf("the README's config is not a valid daemon config: %v", err)
	}
	if sc.JWT == nil || sc.TLS == nil || sc.HTTP == nil || len(sc.Policies) != 2 || sc.Socket.Mode != 0o660 {
		t.Fatalf("parsed config lost parts: %+v", sc)
	}
	if want := filepath.Join(filepath.Dir(path), "clients-ca.pem"); sc.TLS.ClientCAFile != want {
		t.Fatalf("client CA path %q, want it relative to the config file (%q)", sc.TLS.ClientCAFile, want)
	}
}
