package cli

import (
	"fmt"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// quotaBlock configures the host's request quotas for one provider
// (host.Quotas): it overrides the rates the plugin declares (after a
// quota increase, say) and adds classes (a provider that declares none):
//
//	quota "aws" {
//	  class "sign-verify-ecc" {       # a class the plugin declares
//	    rate  = 3000                  # requests per second
//	    burst = 300                   # default: a tenth of a second's worth
//	  }
//	}
//	quota "vault" {
//	  class "transit" {               # a new class, tried first
//	    rate       = 200
//	    operations = ["sign", "verify"]
//	    scope      = ["address"]      # one bucket per Vault address
//	  }
//	}
//	quota "fake" { disable = true }   # no throttling for this provider
type quotaBlock struct {
	Provider string       `hcl:"provider,label"`
	Disable  bool         `hcl:"disable,optional"`
	Classes  []classBlock `hcl:"class,block"`
}

// classBlock is one shared.QuotaClass. A rate of -1 makes a declared
// class unlimited.
type classBlock struct {
	Name       string         `hcl:"name,label"`
	Rate       float64        `hcl:"rate,optional"`
	Burst      int            `hcl:"burst,optional"`
	Operations []string       `hcl:"operations,optional"`
	KeyTypes   []string       `hcl:"key_types,optional"`
	Scope      []string       `hcl:"scope,optional"`
	Weights    map[string]int `hcl:"weights,optional"`
}

// quotas checks the quota blocks and makes host.Quotas of them.
func quotas(path string, blocks []quotaBlock) (host.Quotas, error) {
	var q host.Quotas
	seen := map[string]bool{}
	for _, b := range blocks {
		bad := func(format string, args ...any) (host.Quotas, error) {
			return host.Quotas{}, fmt.Errorf("%w: %s: quota %s: %s", errConfig, path, shared.Quote(b.Provider), fmt.Sprintf(format, args...))
		}
		if seen[b.Provider] {
			return bad("defined twice")
		}
		seen[b.Provider] = true
		if q.Classes == nil {
			q.Classes = map[string][]shared.QuotaClass{}
		}
		if b.Disable {
			if len(b.Classes) > 0 {
				return bad("disable = true leaves no room for classes")
			}
			// A class that counts everything, unlimited, tried first.
			q.Classes[b.Provider] = []shared.QuotaClass{{Name: "disabled", Rate: -1}}
			continue
		}
		for _, c := range b.Classes {
			qc := shared.QuotaClass{Name: c.Name, Rate: c.Rate, Burst: c.Burst, Scope: c.Scope}
			for _, op := range c.Operations {
				qc.Operations = append(qc.Operations, shared.Operation(op))
			}
			for _, kt := range c.KeyTypes {
				qc.KeyTypes = append(qc.KeyTypes, shared.KeyType(kt))
			}
			if len(c.Weights) > 0 {
				qc.Weights = map[shared.KeyType]int{}
				for kt, w := range c.Weights {
					qc.Weights[shared.KeyType(kt)] = w
				}
			}
			if err := qc.Check(); err != nil {
				return bad("%v", err)
			}
			q.Classes[b.Provider] = append(q.Classes[b.Provider], qc)
		}
	}
	return q, nil
}
