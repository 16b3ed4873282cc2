package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/knhk/knhk/shared"
)

// TestQuotaConfig: quota blocks become host.Quotas; mistakes are
// refused with the file and provider named.
func TestQuotaConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(src string) string {
		p := filepath.Join(dir, "knhk.hcl")
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err := loadConfig(write(`
quota "aws" {
  class "sign-verify-ecc" {
    rate  = 3000
    burst = 300
  }
}
quota "vault" {
  class "transit" {
    rate       = 200
    operations = ["sign", "verify"]
    scope      = ["address"]
    weights    = { "rsa-4096" = 8 }
  }
}
quota "fake" { disable = true }
`))
	if err != nil {
		t.Fatal(err)
	}
	aws := cfg.Quotas.Classes["aws"]
	if len(aws) != 1 || aws[0].Name != "sign-verify-ecc" || aws[0].Rate != 3000 || aws[0].Burst != 300 {
		t.Errorf("aws: %+v", aws)
	}
	v := cfg.Quotas.Classes["vault"]
	if len(v) != 1 || v[0].Rate != 200 || len(v[0].Operations) != 2 || v[0].Scope[0] != "address" || v[0].Weights[shared.RSA4096] != 8 {
		t.Errorf("vault: %+v", v)
	}
	if f := cfg.Quotas.Classes["fake"]; len(f) != 1 || f[0].Rate >= 0 || !f[0].Counts(shared.OpSign, "") {
		t.Errorf("fake: %+v, want one unlimited class that counts everything", f)
	}
	for _, tc := range []struct{ src, want string }{
		{"quota \"aws\" {\nclass \"x\" { operations = [\"sing\"] }\n}\n", `unknown operation "sing"`},
		{"quota \"aws\" {\nclass \"x\" { key_types = [\"rsa-1024\"] }\n}\n", "rsa-1024"},
		{"quota \"aws\" {\nclass \"x\" { burst = -1 }\n}\n", "negative burst"},
		{"quota \"aws\" {}\nquota \"aws\" {}\n", "defined twice"},
		{"quota \"aws\" {\ndisable = true\nclass \"x\" { rate = 1 }\n}\n", "disable"},
	} {
		_, err := loadConfig(write(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "knhk.hcl") {
			t.Errorf("%s: err = %v, want one naming the file and %q", tc.src, err, tc.want)
		}
	}
}
