package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPluginEnvironment (item 3): a plugin gets the base set, its own
// provider's variables and its allow-list, never another provider's
// credentials; KNHK_LOG_LEVEL is the host's level.
func TestPluginEnvironment(t *testing.T) {
	for k, v := range map[string]string{
		"AWS_SECRET_ACCESS_KEY": "aws-secret", "VAULT_TOKEN": "vault-secret", "AZURE_CLIENT_SECRET": "azure-secret",
		"IDENTITY_ENDPOINT": "http://169.254.169.254/id", "FAKE_SETTING": "fake-own", "KNHK_TEST_ALLOWED": "allowed",
		"MYCORP_REGION": "north", "HTTPS_PROXY": "http://proxy:3128", "LC_ALL": "C", "KNHK_LOG_LEVEL": "trace",
		"UNRELATED": "x",
	} {
		t.Setenv(k, v)
	}
	dir := filepath.Join(t.TempDir(), envDumpDir)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"fake", "aws", "azure", "vault"} {
		testBinaryAs(t, dir, PluginPrefix+name)
	}
	h, _ := newHost(t, Config{PluginDirs: []string{dir}, OnlyPluginDirs: true,
		PluginEnv: map[string][]string{"fake": {"KNHK_TEST_ALLOWED", "MYCORP_*"}}})
	env := func(name string) map[string]string {
		if _, err := h.ListKeys(context.Background(), name, nil); !errors.Is(err, ErrPluginCrashed) {
			t.Fatalf("%s: %v; want the dumping plugin to exit", name, err)
		}
		b, err := os.ReadFile(filepath.Join(dir, PluginPrefix+name+".env"))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, kv := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name       string
		has, lacks []string
	}{
		{"fake", []string{"FAKE_SETTING", "KNHK_TEST_ALLOWED", "MYCORP_REGION"}, []string{"AWS_SECRET_ACCESS_KEY", "VAULT_TOKEN", "AZURE_CLIENT_SECRET", "IDENTITY_ENDPOINT"}},
		{"aws", []string{"AWS_SECRET_ACCESS_KEY"}, []string{"VAULT_TOKEN", "AZURE_CLIENT_SECRET", "FAKE_SETTING", "KNHK_TEST_ALLOWED", "MYCORP_REGION"}},
		{"azure", []string{"AZURE_CLIENT_SECRET", "IDENTITY_ENDPOINT"}, []string{"AWS_SECRET_ACCESS_KEY", "VAULT_TOKEN"}},
		{"vault", []string{"VAULT_TOKEN"}, []string{"AWS_SECRET_ACCESS_KEY", "AZURE_CLIENT_SECRET"}},
	}
	for _, tt := range tests {
		got := env(tt.name)
		for _, k := range append([]string{"PATH", "HOME", "HTTPS_PROXY", "LC_ALL"}, tt.has...) {
			if _, ok := got[k]; !ok {
				t.Errorf("%s plugin lacks %s", tt.name, k)
			}
		}
		for _, k := range append([]string{"UNRELATED"}, tt.lacks...) {
			if v, ok := got[k]; ok {
				t.Errorf("%s plugin got %s=%s", tt.name, k, v)
			}
		}
		if got["KNHK_LOG_LEVEL"] != "warn" {
			t.Errorf("%s plugin: KNHK_LOG_LEVEL=%q; want the host's level, warn", tt.name, got["KNHK_LOG_LEVEL"])
		}
	}
}
