package sidecar

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/knhk/knhk/audit"
	"github.com/knhk/knhk/audit/audittest"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/host/hosttest"
	"github.com/knhk/knhk/shared"
)

// TestAuditCallers: the daemon's records name the authenticated caller,
// policy denials are recorded as denied, and a log that cannot take
// records makes the daemon not ready and its signatures fail with
// host.ErrAuditUnavailable.
func TestAuditCallers(t *testing.T) {
	tl := audittest.Open(t, audit.Options{})
	l, path := tl.Log, tl.Path
	h := hosttest.New(t, hosttest.WithConfig(host.Config{Audit: l}))
	cfg, err := Config{
		Keys:     map[string]string{"k": "fake:k?seed=x"},
		Policies: []Policy{{Keys: []string{"k"}, Principals: []string{"unix:uid=1"}, Operations: []Op{OpSign, OpCreate}}},
	}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	c := newCore(h, cfg)
	ctx, allowed, other := context.Background(), uidCaller(1, 1), uidCaller(2, 2)
	if _, _, err := c.Create(ctx, allowed, "k", shared.ECP256); err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("who asked"))
	if _, err := c.Sign(ctx, allowed, "k", SignInput{Digest: digest[:]}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sign(ctx, other, "k", SignInput{Digest: digest[:]}); !errors.Is(err, ErrPolicyDenied) {
		t.Fatalf("sign by another uid: %v", err)
	}
	if err := c.ready(ctx); err != nil {
		t.Fatalf("ready: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.ready(ctx); !errors.Is(err, host.ErrAuditUnavailable) {
		t.Errorf("ready with the audit log closed: %v", err)
	}
	sig, err := c.Sign(ctx, allowed, "k", SignInput{Digest: digest[:]})
	if !errors.Is(err, host.ErrAuditUnavailable) || sig.Signature != nil {
		t.Errorf("sign with the audit log closed: %v", err)
	}

	got := audittest.Records(t, path)
	// create_key, the public key Create returns, sign, the denial.
	if len(got) != 4 {
		t.Fatalf("%d records, want 4: %+v", len(got), got)
	}
	if r := got[2]; r.Operation != "sign" || r.Outcome != audit.OutcomeOK || r.Principal != "unix:uid=1" || r.Key != "fake:k" {
		t.Errorf("sign record: %+v", r)
	}
	if r := got[3]; r.Operation != "sign" || r.Outcome != audit.OutcomeDenied || r.Principal != "unix:uid=2" || r.ErrorType != "policy_denied" || r.Key != "fake:k" || len(r.Params) != 1 {
		t.Errorf("denial record: %+v", r)
	}
}
