package spire

import (
	"reflect"
	"testing"
	"time"
)

// spirePrinted is plugin_data as SPIRE hands it over: SPIRE parses its
// configuration with HCL 1 and prints the plugin_data block back with
// HCL 1's printer (blank lines between attributes, objects with one item
// per line, key blocks with quoted labels).
const spirePrinted = `plugin_dirs = ["/usr/lib/knhk/plugins", "/opt/knhk"]

lock_file = "/etc/knhk/knhk.lock"

key_ref = "vault:transit/spire-{id}?addr=https://vault:8200&namespace=ns1"

call_timeout = "45s"

plugin_env = {
  vault = ["VAULT_CLIENT_TIMEOUT"]

  "*" = ["MYCORP_*"]
}

key "JWT-Signer-A" {
  ref = "azure:https://v.vault.azure.net/keys/jwt-a"
}
`

func TestParseSPIREPrintedConfig(t *testing.T) {
	cfg, err := ParseConfig(spirePrinted)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/usr/lib/knhk/plugins", "/opt/knhk"}; !reflect.DeepEqual(cfg.PluginDirs, want) {
		t.Fatalf("plugin_dirs %v, want %v", cfg.PluginDirs, want)
	}
	if cfg.LockFile != "/etc/knhk/knhk.lock" || cfg.CallTimeout != 45*time.Second {
		t.Fatalf("lock_file %q call_timeout %s", cfg.LockFile, cfg.CallTimeout)
	}
	if want := map[string][]string{"vault": {"VAULT_CLIENT_TIMEOUT"}, "*": {"MYCORP_*"}}; !reflect.DeepEqual(cfg.PluginEnv, want) {
		t.Fatalf("plugin_env %v, want %v", cfg.PluginEnv, want)
	}
	hc := cfg.hostConfig()
	if !hc.OnlyPluginDirs || hc.LockFile != cfg.LockFile || hc.CallTimeout != cfg.CallTimeout {
		t.Fatalf("host config %+v", hc)
	}
	for id, want := range map[string]string{
		"x509-CA-A":    "vault:transit/spire-x509-CA-A?addr=https://vault:8200&namespace=ns1",
		"JWT-Signer-B": "vault:transit/spire-JWT-Signer-B?addr=https://vault:8200&namespace=ns1",
		"JWT-Signer-A": "azure:https://v.vault.azure.net/keys/jwt-a", // its block wins
	} {
		if got, ok := cfg.keyRef(id); !ok || got != want {
			t.Fatalf("keyRef(%s) = %q, %v; want %q", id, got, ok, want)
		}
	}
	if got := cfg.providers(); !reflect.DeepEqual(got, []string{"azure", "vault"}) {
		t.Fatalf("providers %v", got)
	}
	tm := cfg.tmpl
	if tm.provider != "vault" || tm.idPrefix != "transit/spire-" || tm.idSuffix != "" ||
		!reflect.DeepEqual(tm.params, map[string]string{"addr": "https://vault:8200", "namespace": "ns1"}) {
		t.Fatalf("template %+v", tm)
	}
}

// TestTemplateSpireID: listing maps provider key ids back to SPIRE ids
// only when the template could have made them.
func TestTemplateSpireID(t *testing.T) {
	tm, err := parseTemplate("fake:team/spire-{id}.key?state=/s.json")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"team/spire-x509-CA-A.key":         "x509-CA-A",
		"team/spire-bundle-acme-a+rsa.key": "bundle-acme-a+rsa",
		"team/spire-.key":                  "", // empty id
		"team/spire-a/b.key":               "", // not an id SPIRE makes
		"other/spire-x509-CA-A.key":        "", // another prefix
		"team/spire-x509-CA-A":             "", // no suffix
		"team/spire.key":                   "", // shorter than prefix+suffix
	} {
		got, ok := tm.spireID(name)
		if ok != (want != "") || got != want && ok {
			t.Fatalf("spireID(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
	if got := tm.ref("JWT-Signer-A"); got != "fake:team/spire-JWT-Signer-A.key?state=/s.json" {
		t.Fatalf("ref = %q", got)
	}
}
