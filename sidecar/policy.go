package sidecar

import (
	"fmt"
	"strings"

	"github.com/knhk/knhk/shared"
)

// Op is an operation a policy allows.
type Op string

// The operations. OpList lists a provider's keys; it is matched against
// the key pattern "PROVIDER:" (so "fake:*" allows listing the fake's).
// OpRotate covers a rotation to a pending version too. The version
// operations (issue #17's promotion gates): OpVersions lists a key's
// versions and checks a version's gates, OpApprove approves a version of
// the key (signing the approval also needs OpSign on the approver's
// key), OpPromote and OpRetire move a version to active and retired.
const (
	OpSign      Op = "sign"
	OpVerify    Op = "verify"
	OpPublicKey Op = "public_key"
	OpMetadata  Op = "metadata"
	OpRotate    Op = "rotate"
	OpCreate    Op = "create"
	OpList      Op = "list"
	OpVersions  Op = "versions"
	OpApprove   Op = "approve"
	OpPromote   Op = "promote"
	OpRetire    Op = "retire"
)

// Ops lists every operation, in the order the docs give them.
var Ops = []Op{OpSign, OpVerify, OpPublicKey, OpMetadata, OpRotate, OpCreate, OpList, OpVersions, OpApprove, OpPromote, OpRetire}

// auditName is the operation as the host's audit records name it.
func (o Op) auditName() string {
	switch o {
	case OpCreate:
		return "create_key"
	case OpList:
		return "list_keys"
	}
	return string(o)
}

// Policy allows its Principals its Operations on its Keys. In each list,
// an entry ending in '*' matches every value with that prefix, and "*"
// alone matches anything. For SPIFFE IDs that gives exact IDs
// ("spiffe://example.org/ns/prod/web"), path prefixes
// ("spiffe://example.org/ns/prod/*": every ID below /ns/prod, not
// /ns/prod itself nor /ns/production) and trust domains
// ("spiffe://example.org/*"); a principal that says spiffe:// must be a
// valid SPIFFE ID, or one followed by "/*", and the IDs callers get are
// valid ones (no "..", no upper-case trust domain), so a prefix cannot be
// escaped.
type Policy struct {
	// Keys are key names from Config.Keys, or (with AllowReferences)
	// canonical references such as "fake:demo?state=/var/lib/k.json" or
	// patterns such as "vault:*".
	Keys []string
	// Principals are callers: "unix:uid=N", "unix:gid=N",
	// "spiffe://trust.domain/path" or "x509:<subject DN>"; patterns such as
	// "spiffe://example.org/ns/prod/*".
	Principals []string
	// Operations allowed; "*" is all of them.
	Operations []Op
}

// check refuses a policy that could never match, or names an unknown
// operation.
func (p Policy) check() error {
	if len(p.Keys) == 0 || len(p.Principals) == 0 || len(p.Operations) == 0 {
		return fmt.Errorf("needs keys, principals and operations")
	}
	for _, op := range p.Operations {
		if op == "*" {
			continue
		}
		known := false
		for _, o := range Ops {
			known = known || o == op
		}
		if !known {
			return fmt.Errorf("unknown operation %s (want one of %s, or *)", shared.Quote(string(op)), opList())
		}
	}
	for _, list := range [][]string{p.Keys, p.Principals} {
		for _, s := range list {
			if s == "" || strings.Contains(strings.TrimSuffix(s, "*"), "*") {
				return fmt.Errorf("pattern %s: '*' may only end a pattern", shared.Quote(s))
			}
		}
	}
	for _, pr := range p.Principals {
		if err := checkSPIFFEPrincipal(pr); err != nil {
			return err
		}
	}
	return nil
}

// opList is every operation's name, comma-separated.
func opList() string {
	names := make([]string, len(Ops))
	for i, o := range Ops {
		names[i] = string(o)
	}
	return strings.Join(names, ", ")
}

// allows reports whether p allows one of principals op on key.
func (p Policy) allows(principals []string, op Op, key string) bool {
	if !matchAny(p.Keys, key) {
		return false
	}
	opOK := false
	for _, o := range p.Operations {
		opOK = opOK || o == op || o == "*"
	}
	if !opOK {
		return false
	}
	for _, pr := range principals {
		if matchAny(p.Principals, pr) {
			return true
		}
	}
	return false
}

// matchAny reports whether s matches a pattern of patterns.
func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(s, prefix) {
				return true
			}
		} else if p == s {
			return true
		}
	}
	return false
}
