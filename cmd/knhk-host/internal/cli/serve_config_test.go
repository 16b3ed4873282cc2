package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestReadmeSPIFFEConfig: the README's SPIFFE serve block loads into a
// SPIFFE configuration with listeners that take their certificates from
// the Workload API, and is a valid daemon configuration.
func TestReadmeSPIFFEConfig(t *testing.T) {
	readme, err := os.ReadFile("../../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "### SPIFFE workload identity")
	_, rest, ok2 := strings.Cut(rest, "```hcl\n")
	block, _, ok3 := strings.Cut(rest, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("README has no SPIFFE config example")
	}
	path := filepath.Join(t.TempDir(), "knhk.hcl")
	if err := os.WriteFile(path, []byte("key \"release\" {\n  ref = \"fake:release\"\n}\n"+block), 0o600); err != nil {
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
		t.Fatalf("the README's SPIFFE config is not a valid daemon config: %v", err)
	}
	sp := sc.SPIFFE
	if sp == nil || sp.WorkloadAPI != "unix:///run/spire/agent/public/api.sock" || sp.JWTAudience != "knhk" || len(sp.TrustDomains) != 1 || sp.FetchTimeout != 30*time.Second {
		t.Fatalf("spiffe block: %+v", sp)
	}
	if sc.TLS == nil || sc.TLS.CertFile != "" || sc.TLS.ClientCAFile != "" || sc.HTTP == nil || sc.HTTP.KeyFile != "" {
		t.Fatalf("listeners should name no files: tls %+v, http %+v", sc.TLS, sc.HTTP)
	}

	// Without the spiffe block, a listener without files is refused.
	noSPIFFE := "serve {\n  tls { address = \"127.0.0.1:8443\" }\n}\n"
	if err := os.WriteFile(path, []byte(noSPIFFE), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err = loadConfig(path); err != nil {
		t.Fatal(err)
	}
	sc, err = cfg.sidecarConfig(path, "", hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sidecar.New(hosttest.New(t), sc); !errors.Is(err, sidecar.ErrConfig) || !strings.Contains(err.Error(), "spiffe") {
		t.Fatalf("tls without files or spiffe: %v, want ErrConfig naming the spiffe block", err)
	}
}
