package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/knhk/knhk/audit"
)

// runAudit runs the command line and returns its exit status and streams.
func runAudit(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// auditFixture makes a checkpoint key with `audit keygen` and a log of
// 20 records sealed with it, record i by unix:uid=1000+i%2, key
// fake:k(i%3), outcome denied for every fifth.
func auditFixture(t *testing.T) (dir, logPath, keyFile, vkey string) {
	t.Helper()
	dir = t.TempDir()
	keyFile = filepath.Join(dir, "audit.key")
	code, out, errs := runAudit(t, "audit", "keygen", "--name", "test.example/knhk-audit", "--out", keyFile)
	if code != ExitOK || errs != "" {
		t.Fatalf("keygen: exit %d, stderr %q", code, errs)
	}
	vkey = strings.TrimSpace(out)
	k, err := audit.LoadKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	logPath = filepath.Join(dir, "audit.log")
	ctx := context.Background()
	l, err := audit.Open(ctx, audit.Options{Path: logPath, Key: k, Host: "testhost", CheckpointInterval: time.Hour, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for i := range 20 {
		outcome := audit.OutcomeOK
		if i%5 == 4 {
			outcome = audit.OutcomeDenied
		}
		r := audit.Record{
			Time: base.Add(time.Duration(i) * time.Hour), Principal: fmt.Sprintf("unix:uid=%d", 1000+i%2),
			Operation: "sign", Key: fmt.Sprintf("fake:k%d", i%3), Algorithm: "ES256", Outcome: outcome,
		}
		if err := l.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
		if i == 9 {
			if err := l.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, logPath, keyFile, vkey
}

func TestAuditKeygen(t *testing.T) {
	dir, _, keyFile, vkey := auditFixture(t)
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	k, err := audit.LoadKeyFile(keyFile)
	if err != nil || k.VerifierKey != vkey || !strings.HasPrefix(vkey, "test.example/knhk-audit+") {
		t.Fatalf("key file holds %v (%v), keygen printed %q", k, err, vkey)
	}
	before, _ := os.ReadFile(keyFile)
	code, out, errs := runAudit(t, "audit", "keygen", "--name", "x.example/a", "--out", keyFile)
	if after, _ := os.ReadFile(keyFile); code != ExitUsage || out != "" || !strings.Contains(errs, "does not overwrite") || !bytes.Equal(before, after) {
		t.Errorf("overwrite: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, out, errs = runAudit(t, "audit", "keygen", "--name", "x.example/a", "--out", filepath.Join(dir, "k2"), "-o", "json")
	var res keygenJSON
	if code != ExitOK || json.Unmarshal([]byte(out), &res) != nil || res.Name != "x.example/a" || res.KeyFile != filepath.Join(dir, "k2") || !strings.HasPrefix(res.VerifierKey, "x.example/a+") {
		t.Errorf("-o json: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	for _, args := range [][]string{
		{"--out", filepath.Join(dir, "k3")},
		{"--name", "x.example/a"},
		{"--name", "has space", "--out", filepath.Join(dir, "k4")},
		{"--name", "x.example/a", "--out", filepath.Join(dir, "absent", "k5")},
	} {
		code, out, errs := runAudit(t, append([]string{"audit", "keygen"}, args...)...)
		if code != ExitUsage || out != "" || errs == "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "k4")); !os.IsNotExist(err) {
		t.Errorf("a refused name left a file: %v", err)
	}
}

func TestAuditVerify(t *testing.T) {
	dir, logPath, _, vkey := auditFixture(t)
	pub := filepath.Join(dir, "audit.pub")
	if err := os.WriteFile(pub, []byte(vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{vkey, pub} {
		code, out, errs := runAudit(t, "audit", "verify", "--log", logPath, "--key", key)
		if code != ExitOK || errs != "" || !strings.HasPrefix(out, "intact: 20 records in 1 file, 2 checkpoints, tree size 20, root ") {
			t.Errorf("--key %s: exit %d, stdout %q, stderr %q", key, code, out, errs)
		}
	}
	code, out, _ := runAudit(t, "audit", "verify", "--log", logPath, "--key", vkey, "-o", "json")
	var rep audit.Report
	if code != ExitOK || json.Unmarshal([]byte(out), &rep) != nil || !rep.Intact() || rep.Records != 20 || rep.Problems == nil {
		t.Errorf("-o json: exit %d, stdout %q", code, out)
	}
	// The log named by --audit-log (as for the commands that write it).
	if code, out, errs := runAudit(t, "--audit-log", logPath, "audit", "verify", "--key", vkey); code != ExitOK || !strings.HasPrefix(out, "intact: 20 records") {
		t.Errorf("--audit-log: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// --server does not apply: the command reads files here.
	if code, _, errs := runAudit(t, "--server", "unix:///nonexistent.sock", "audit", "verify", "--log", logPath, "--key", vkey); code != ExitUsage || !strings.Contains(errs, "runs locally") {
		t.Errorf("--server: exit %d, stderr %q", code, errs)
	}

	// Another key with the same name: not intact.
	_, other, err := audit.GenerateKey("test.example/knhk-audit")
	if err != nil {
		t.Fatal(err)
	}
	if code, out, _ := runAudit(t, "audit", "verify", "--log", logPath, "--key", other); code != ExitInvalid || !strings.Contains(out, "bad_checkpoint") {
		t.Errorf("another key: exit %d, stdout %q", code, out)
	}

	// Record 4's principal edited: exit 1, the first problem on stdout,
	// nothing on stderr.
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	lines[5] = strings.Replace(lines[5], "unix:uid=1000", "unix:uid=0", 1) // line 6: record 4
	if err := os.WriteFile(logPath, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runAudit(t, "audit", "verify", "--log", logPath, "--key", vkey)
	if code != ExitInvalid || errs != "" || !strings.HasPrefix(out, "not intact: "+logPath+":6: changed (record 4): ") || !strings.Contains(out, "\n3 problems in 20 records, 1 file") {
		t.Errorf("edited: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, out, errs = runAudit(t, "audit", "verify", "--log", logPath, "--key", vkey, "-o", "json")
	rep = audit.Report{}
	if code != ExitInvalid || errs != "" || json.Unmarshal([]byte(out), &rep) != nil || rep.Intact() || rep.Problems[0].Seq != 4 || rep.Problems[0].Line != 6 {
		t.Errorf("edited, -o json: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	for name, args := range map[string][]string{
		"no --log":         {"--key", vkey},
		"no --key":         {"--log", logPath},
		"absent log":       {"--log", filepath.Join(dir, "absent.log"), "--key", vkey},
		"malformed key":    {"--log", logPath, "--key", "a+b+c"},
		"key file garbage": {"--log", logPath, "--key", filepath.Join(dir, "audit.key")},
		"absent key file":  {"--log", logPath, "--key", filepath.Join(dir, "absent.pub")},
	} {
		code, out, errs := runAudit(t, append([]string{"audit", "verify"}, args...)...)
		if code != ExitUsage || out != "" || errs == "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", name, code, out, errs)
		}
		if strings.Contains(errs, "PRIVATE+KEY") {
			t.Errorf("%s: the private key is in the error: %q", name, errs)
		}
	}
}

func TestAuditVerifyUnsealed(t *testing.T) {
	_, logPath, _, vkey := auditFixture(t)
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A record being written: a partial last line.
	if _, err := f.WriteString(`{"seq":20,"time":"2025`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if code, out, _ := runAudit(t, "audit", "verify", "--log", logPath, "--key", vkey); code != ExitInvalid || !strings.Contains(out, "torn (record 20)") {
		t.Errorf("torn: exit %d, stdout %q", code, out)
	}
	if code, out, _ := runAudit(t, "audit", "verify", "--log", logPath, "--key", vkey, "--allow-unsealed"); code != ExitOK || !strings.HasPrefix(out, "intact: 20 records") {
		t.Errorf("torn, allowed: exit %d, stdout %q", code, out)
	}
}

func TestAuditProve(t *testing.T) {
	_, logPath, _, vkey := auditFixture(t)
	code, out, errs := runAudit(t, "audit", "prove", "--log", logPath, "--seq", "3", "-o", "json")
	var p audit.Proof
	if code != ExitOK || errs != "" || json.Unmarshal([]byte(out), &p) != nil {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if p.Record.Seq != 3 || p.TreeSize != 10 || p.Record.Principal != "unix:uid=1001" {
		t.Fatalf("proof %+v", p)
	}
	// Check it as its reader would: the checkpoint with the verifier
	// key, then the record in its tree.
	v, err := audit.ParseVerifierKey(vkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open([]byte(p.Checkpoint), note.VerifierList(v))
	if err != nil || !strings.Contains(n.Text, "\n10\n"+p.Root+"\n") {
		t.Fatalf("checkpoint %q: %v", p.Checkpoint, err)
	}
	root, hs := decodeHash(t, p.Root), make(tlog.RecordProof, len(p.Hashes))
	for i, h := range p.Hashes {
		hs[i] = decodeHash(t, h)
	}
	if err := tlog.CheckRecord(hs, p.TreeSize, root, 3, tlog.RecordHash([]byte(p.Line))); err != nil {
		t.Fatal(err)
	}

	code, out, errs = runAudit(t, "audit", "prove", "--log", logPath, "--seq", "15")
	if code != ExitOK || errs != "" || !strings.HasPrefix(out, `record:     {"seq":15,`) || !strings.Contains(out, "tree size:  20\n") || !strings.Contains(out, "checkpoint:\n  ") {
		t.Errorf("text: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	for _, args := range [][]string{{"--seq", "20"}, {"--seq", "-5"}, {}} {
		code, out, errs := runAudit(t, append([]string{"audit", "prove", "--log", logPath}, args...)...)
		if code != ExitUsage || out != "" || errs == "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
}

func decodeHash(t *testing.T, s string) tlog.Hash {
	t.Helper()
	var h tlog.Hash
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != len(h) {
		t.Fatalf("hash %q: %v", s, err)
	}
	copy(h[:], b)
	return h
}

func TestAuditShow(t *testing.T) {
	_, logPath, _, _ := auditFixture(t)
	code, out, errs := runAudit(t, "audit", "show", "--log", logPath, "--principal", "unix:uid=1001", "--key", "fake:k1")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// Records 1, 7, 13, 19: odd and 1 mod 3.
	if code != ExitOK || errs != "" || len(lines) != 5 || !strings.HasPrefix(lines[0], "SEQ") || !strings.HasPrefix(lines[1], "1 ") || !strings.HasPrefix(lines[4], "19 ") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if !strings.Contains(lines[1], "2025-06-01T13:00:00Z") || !strings.Contains(lines[1], "unix:uid=1001") || !strings.Contains(lines[1], "ES256") {
		t.Errorf("row %q", lines[1])
	}
	code, out, _ = runAudit(t, "audit", "show", "--log", logPath, "--outcome", "denied", "--since", "2025-06-01T14:00:00Z", "--until", "2025-06-02T08:00:00Z", "-o", "json")
	var seqs []int64
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r audit.Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		seqs = append(seqs, r.Seq)
	}
	if code != ExitOK || fmt.Sprint(seqs) != "[4 9 14 19]" {
		t.Errorf("json: exit %d, seqs %v", code, seqs)
	}
	// Nothing in the last hour: the log is from 2025.
	if code, out, _ := runAudit(t, "audit", "show", "--log", logPath, "--since", "1h"); code != ExitOK || strings.Count(out, "\n") != 1 {
		t.Errorf("--since 1h: exit %d, stdout %q", code, out)
	}
	for _, args := range [][]string{{"--since", "yesterday"}, {"--until", "-1h"}, {"--outcome", "fine"}} {
		code, out, errs := runAudit(t, append([]string{"audit", "show", "--log", logPath}, args...)...)
		if code != ExitUsage || out != "" || errs == "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
}

func TestAuditGroup(t *testing.T) {
	code, out, errs := runAudit(t, "audit")
	if code != ExitUsage || out != "" || !strings.Contains(errs, "keygen, prove, show, verify") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if code, _ := classify(fmt.Errorf("x: %w", errLogNotIntact), "knhk-host audit verify"); code != ExitInvalid {
		t.Errorf("not intact: exit %d", code)
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                          {},
		"2025-05-01T10:00:00Z":      time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC),
		"2025-05-01T10:00:00+02:00": time.Date(2025, 5, 1, 8, 0, 0, 0, time.UTC),
		"2025-05-01":                time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC),
		"90m":                       now.Add(-90 * time.Minute),
	} {
		if got, err := parseWhen(in, "--since", now); err != nil || !got.Equal(want) {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
}
