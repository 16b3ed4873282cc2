package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// promotionBlock gives a key block promotion gates (host.Gates), which
// `knhk-host promote` checks before a pending version signs:
//
//	key "release" {
//	  ref = "aws:alias/release"
//	  promotion {
//	    canary         = true          # a challenge signed by the version verifies
//	    replicas_agree = true          # every replica of its key groups holds it
//	    soak           = "24h"         # pending at least this long
//	    approvals_dir  = "approvals"   # where approve stores, promote reads
//	    approvals {
//	      required  = 2
//	      approvers = ["alice+1c2d3e4f+AUx...", "aws:alias/bob-approver"]
//	    }
//	  }
//	}
//
// On a key group's block the gates apply to every replica's key.
type promotionBlock struct {
	Canary        bool            `hcl:"canary,optional"`
	ReplicasAgree bool            `hcl:"replicas_agree,optional"`
	Soak          string          `hcl:"soak,optional"`
	ApprovalsDir  string          `hcl:"approvals_dir,optional"`
	Approvals     *approvalsBlock `hcl:"approvals,block"`
}

// approvalsBlock is host.ApprovalGate: Required distinct approvers of
// Approvers (signed-note verifier keys, as `knhk-host audit keygen`
// prints them, or knhk key references).
type approvalsBlock struct {
	Required  int      `hcl:"required"`
	Approvers []string `hcl:"approvers"`
}

// promotion is one key's checked promotion configuration.
type promotion struct {
	gates host.Gates
	// dir holds the key's approvals, one directory per version ("" for
	// none): approve writes there, promote and versions read there.
	dir string
}

// promotions checks the key blocks' promotion blocks: by PROVIDER:KEYID
// (as host.Config.Promotion applies them) and by reference for the host.
func promotions(path, base string, keys []keyBlock) (byKey map[string]promotion, gates map[string]host.Gates, err error) {
	for _, k := range keys {
		if k.Promotion == nil {
			continue
		}
		p, err := k.Promotion.check(path, base, k.Name)
		if err != nil {
			return nil, nil, err
		}
		refs := k.Replicas
		if len(refs) == 0 {
			refs = []string{k.Ref}
		}
		for _, ref := range refs {
			r, err := host.ParseRef(ref)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: %s: key %s: %w", errConfig, path, shared.Quote(k.Name), err)
			}
			id := r.Provider + ":" + r.KeyID
			if _, dup := byKey[id]; dup {
				return nil, nil, fmt.Errorf("%w: %s: key %s: %s has promotion gates in two key blocks", errConfig, path, shared.Quote(k.Name), id)
			}
			if byKey == nil {
				byKey, gates = map[string]promotion{}, map[string]host.Gates{}
			}
			byKey[id] = p
			gates[ref] = p.gates
		}
	}
	return byKey, gates, nil
}

// check makes a promotion of the block.
func (b *promotionBlock) check(path, base, key string) (promotion, error) {
	bad := func(format string, args ...any) (promotion, error) {
		return promotion{}, fmt.Errorf("%w: %s: key %s: promotion: %s", errConfig, path, shared.Quote(key), fmt.Sprintf(format, args...))
	}
	p := promotion{gates: host.Gates{Canary: b.Canary, ReplicasAgree: b.ReplicasAgree}}
	soak, err := duration(path, "soak", b.Soak)
	if err != nil {
		return promotion{}, err
	}
	if soak < 0 {
		return bad("soak %s is negative", b.Soak)
	}
	p.gates.Soak = soak
	if b.Approvals != nil {
		a := b.Approvals
		if a.Required < 1 || a.Required > len(a.Approvers) {
			return bad("approvals: required = %d of %d approvers (want 1 to %d)", a.Required, len(a.Approvers), len(a.Approvers))
		}
		p.gates.Approvals = host.ApprovalGate{Required: a.Required, Approvers: a.Approvers}
	}
	if b.ApprovalsDir != "" {
		p.dir = relTo(base, b.ApprovalsDir)
	}
	return p, nil
}

// promotionOf is the promotion configuration of the key spec names.
func (a *app) promotionOf(spec keySpec) promotion {
	return a.cfg.Promotion[spec.ref.Provider+":"+spec.ref.KeyID]
}

// maxApprovalFile bounds an approval file: a statement and a few
// signatures are well under a kilobyte.
const maxApprovalFile = 64 << 10

// readApprovals reads the approval files given and those stored for the
// version in the key's approvals directory.
func readApprovals(p promotion, version string, files []string) ([][]byte, error) {
	if p.dir != "" {
		dir := filepath.Join(p.dir, approvalDirName(version))
		stored, err := filepath.Glob(filepath.Join(dir, "*.note"))
		if err != nil {
			return nil, err
		}
		sort.Strings(stored)
		files = append(stored, files...)
	}
	var out [][]byte
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return nil, &usageError{err: fmt.Errorf("approval: %w", err)}
		}
		if st.Size() > maxApprovalFile {
			return nil, &usageError{err: fmt.Errorf("approval %s is %d bytes: not an approval (at most %d)", f, st.Size(), maxApprovalFile)}
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, &usageError{err: fmt.Errorf("approval: %w", err)}
		}
		out = append(out, b)
	}
	return out, nil
}

// storeApproval writes an approval into the key's approvals directory,
// one file per approver key and version (a new approval replaces the
// approver's older one), and returns its path.
func storeApproval(p promotion, version string, signed []byte) (string, error) {
	name, hash, err := noteSigner(signed)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(p.dir, approvalDirName(version))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	file := filepath.Join(dir, fmt.Sprintf("%s-%08x.note", approvalDirName(name), hash))
	tmp, err := os.CreateTemp(dir, ".approval-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(signed); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return file, os.Rename(tmp.Name(), file)
}

// approvalDirName makes a version or approver name a safe file name.
func approvalDirName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, strings.TrimLeft(s, "."))
}
