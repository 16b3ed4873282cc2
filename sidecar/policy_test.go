package sidecar

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/knhk/knhk/shared"
)

func TestPolicyAllows(t *testing.T) {
	p := Policy{
		Keys:       []string{"release", "fake:*"},
		Principals: []string{"unix:uid=1000", "spiffe://example.org/ns/prod/*"},
		Operations: []Op{OpSign, OpPublicKey},
	}
	for _, tc := range []struct {
		principals []string
		op         Op
		key        string
		want       bool
	}{
		{[]string{"unix:uid=1000", "unix:gid=1000"}, OpSign, "release", true},
		{[]string{"unix:uid=1001", "unix:gid=1000"}, OpSign, "release", false},
		{[]string{"unix:uid=10000"}, OpSign, "release", false}, // no prefix match without '*'
		{[]string{"spiffe://example.org/ns/prod/sa/web"}, OpPublicKey, "release", true},
		{[]string{"spiffe://example.org/ns/production/sa/web"}, OpSign, "release", false},
		{[]string{"spiffe://example.org/ns/prod/sa/web"}, OpRotate, "release", false},
		{[]string{"unix:uid=1000"}, OpSign, "fake:demo?seed=x", true},
		{[]string{"unix:uid=1000"}, OpSign, "releases", false},
		{[]string{"unix:uid=1000"}, OpSign, "aws:alias/x", false},
		{nil, OpSign, "release", false},
	} {
		if got := p.allows(tc.principals, tc.op, tc.key); got != tc.want {
			t.Errorf("allows(%v, %s, %s) = %v, want %v", tc.principals, tc.op, tc.key, got, tc.want)
		}
	}
	all := Policy{Keys: []string{"*"}, Principals: []string{"*"}, Operations: []Op{"*"}}
	if !all.allows([]string{"x509:CN=a"}, OpCreate, "k") {
		t.Error("a policy of '*' everywhere allows nothing")
	}
}

func TestPolicyCheck(t *testing.T) {
	for _, p := range []Policy{
		{Principals: []string{"unix:uid=1"}, Operations: []Op{OpSign}},
		{Keys: []string{"k"}, Principals: []string{"unix:uid=1"}, Operations: []Op{"delete"}},
		{Keys: []string{"k*x"}, Principals: []string{"unix:uid=1"}, Operations: []Op{OpSign}},
		{Keys: []string{"k"}, Principals: []string{""}, Operations: []Op{OpSign}},
	} {
		if _, err := (Config{Policies: []Policy{p}}).withDefaults(); !errors.Is(err, ErrConfig) {
			t.Errorf("policy %+v: got %v, want ErrConfig", p, err)
		}
	}
}

func TestConfigChecks(t *testing.T) {
	for name, cfg := range map[string]Config{
		"tls without client CA":    {TLS: &TLSConfig{Address: "127.0.0.1:0", CertFile: "c", KeyFile: "k"}},
		"http without client CA":   {HTTP: &TLSConfig{Address: "127.0.0.1:0", CertFile: "c", KeyFile: "k"}},
		"key name with colon":      {Keys: map[string]string{"a:b": "fake:x"}},
		"malformed ref":            {Keys: map[string]string{"a": "nope"}},
		"jwt key not configured":   {JWT: &JWTConfig{Key: "sa"}},
		"jwt lifetime under 10m":   {Keys: map[string]string{"sa": "fake:sa"}, JWT: &JWTConfig{Key: "sa", MaxTokenLifetime: 5 * 60e9}},
		"socket mode beyond perms": {Socket: SocketConfig{Mode: 0o4755}},
		"negative limit":           {MaxCallsPerCaller: -1},
	} {
		if _, err := cfg.withDefaults(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: got %v, want ErrConfig", name, err)
		}
	}
	cfg, err := Config{Keys: map[string]string{"sa": "fake:sa"}, JWT: &JWTConfig{Key: "sa"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.JWT.MaxTokenLifetime != DefaultMaxTokenLifetime || cfg.MaxCallsPerCaller != DefaultMaxCallsPerCaller || cfg.Socket.Mode != DefaultSocketMode {
		t.Errorf("defaults not filled: %+v", cfg)
	}
}

// TestCoreDeniesByDefault: with no policy nothing is allowed, and the
// denial names the principal and the operation.
func TestCoreDeniesByDefault(t *testing.T) {
	c := testCore(t, Config{Keys: map[string]string{"k": "fake:k?seed=x"}})
	caller := uidCaller(1000, 1000)
	ctx := context.Background()
	_, err := c.Sign(ctx, caller, "k", SignInput{Digest: make([]byte, 32)})
	if !errors.Is(err, ErrPolicyDenied) || !errors.Is(err, shared.ErrPermissionDenied) {
		t.Fatalf("sign with no policy: %v, want ErrPolicyDenied", err)
	}
	if !strings.Contains(err.Error(), "unix:uid=1000") || !strings.Contains(err.Error(), "sign") {
		t.Fatalf("denial %q does not name the principal and the operation", err)
	}
}

// TestCoreKeys: names resolve, references only when allowed and then by
// their canonical form, unknown names are not found.
func TestCoreKeys(t *testing.T) {
	allow := []Policy{{Keys: []string{"k", "fake:r?seed=x"}, Principals: []string{"unix:uid=1"}, Operations: []Op{"*"}}}
	c := testCore(t, Config{Keys: map[string]string{"k": "fake:k?seed=x"}, Policies: allow})
	ctx, caller := context.Background(), uidCaller(1, 1)
	if _, err := c.Metadata(ctx, caller, "missing"); !errors.Is(err, shared.ErrKeyNotFound) {
		t.Errorf("unknown name: %v", err)
	}
	if _, err := c.Metadata(ctx, caller, "fake:r?seed=x"); !errors.Is(err, shared.ErrInvalidArgument) {
		t.Errorf("reference with allow_references off: %v", err)
	}
	if _, err := c.List(ctx, caller, "fake", nil); !errors.Is(err, shared.ErrInvalidArgument) {
		t.Errorf("list with allow_references off: %v", err)
	}

	c = testCore(t, Config{Keys: map[string]string{"k": "fake:k?seed=x"}, Policies: allow, AllowReferences: true})
	// Past the policy, the fake has no such key yet.
	if _, err := c.PublicKey(ctx, caller, "fake:r?seed=x", ""); !errors.Is(err, shared.ErrKeyNotFound) {
		t.Errorf("allowed reference: %v, want the fake's key not found", err)
	}
	if _, err := c.PublicKey(ctx, caller, "fake:r?seed=y", ""); !errors.Is(err, ErrPolicyDenied) {
		t.Errorf("reference the policy does not name: %v", err)
	}
	if _, err := c.PublicKey(ctx, caller, "fake:", ""); !errors.Is(err, shared.ErrInvalidArgument) {
		t.Errorf("malformed reference: %v", err)
	}
}

// TestCoreLimits: a caller's calls beyond MaxCallsPerCaller are refused
// while others' are not; draining refuses everyone.
func TestCoreLimits(t *testing.T) {
	c := testCore(t, Config{MaxCallsPerCaller: 2})
	a, b := uidCaller(1, 1), uidCaller(2, 2)
	r1, err := c.enter(a)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := c.enter(a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.enter(a); !errors.Is(err, ErrTooManyCalls) || !errors.Is(err, shared.ErrUnavailable) {
		t.Fatalf("third call: %v, want ErrTooManyCalls", err)
	}
	rb, err := c.enter(b)
	if err != nil {
		t.Fatalf("another caller: %v", err)
	}
	r1()
	r1() // releasing twice is harmless
	r3, err := c.enter(a)
	if err != nil {
		t.Fatalf("after a release: %v", err)
	}
	r2()
	r3()
	rb()
	if len(c.inFlight) != 0 {
		t.Fatalf("counts left behind: %v", c.inFlight)
	}
	c.startDrain()
	if _, err := c.enter(b); !errors.Is(err, ErrDraining) {
		t.Fatalf("while draining: %v", err)
	}
}
