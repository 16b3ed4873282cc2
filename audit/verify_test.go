package audit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/mod/sumdb/note"
)

// testKey is a fresh Ed25519 checkpoint key named name.
func testKey(t testing.TB, name string) *Key {
	t.Helper()
	skey, _, err := GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	k, err := parseSignerKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// logSpec says how writeLog writes a log.
type logSpec struct {
	records    int
	checkpoint int   // a checkpoint after every this many records (0: only at Close)
	rotateSize int64 // Options.RotateSize
	key        *Key
	noClose    bool   // leave the log open (its tail unsealed); closed at test end
	host       string // Options.Host; default testhost
}

// writeLog writes a log with the real writer, one record at a time, and
// returns its path. Record i has principal user-i%5, op sign or verify,
// key fake:k(i%3).
func writeLog(t testing.TB, dir string, s logSpec) string {
	t.Helper()
	path := filepath.Join(dir, "audit.log")
	if s.key == nil {
		s.key = testKey(t, "test.example/audit")
	}
	if s.host == "" {
		s.host = "testhost"
	}
	ctx := context.Background()
	l, err := Open(ctx, Options{
		Path: path, Key: s.key, Host: s.host, Origin: "testhost/knhk-audit",
		CheckpointInterval: time.Hour, RotateSize: s.rotateSize,
		Logger: hclog.NewNullLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range s.records {
		if err := l.Append(ctx, testRecord(i, base)); err != nil {
			t.Fatal(err)
		}
		if s.checkpoint > 0 && (i+1)%s.checkpoint == 0 {
			if err := l.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s.noClose {
		t.Cleanup(func() { l.Close() })
		return path
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func testRecord(i int, base time.Time) Record {
	op := "sign"
	if i%4 == 3 {
		op = "verify"
	}
	outcome := OutcomeOK
	if i%10 == 9 {
		outcome = OutcomeDenied
	}
	return Record{
		Time:        base.Add(time.Duration(i) * time.Minute),
		Principal:   fmt.Sprintf("unix:uid=%d", 1000+i%5),
		Operation:   op,
		Key:         fmt.Sprintf("fake:k%d", i%3),
		Algorithm:   "ES256",
		Input:       "digest",
		InputSHA256: strings.Repeat("ab", 32),
		Outcome:     outcome,
	}
}

// readLines reads a file as lines, each with its newline.
func readLines(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.SplitAfter(string(b), "\n")
}

func writeLines(t testing.TB, path string, lines []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
}

// recordLine is the index (from 0) of record seq's line in lines.
func recordLine(t testing.TB, lines []string, seq int) int {
	t.Helper()
	prefix := fmt.Sprintf(`{"seq":%d,`, seq)
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return i
		}
	}
	t.Fatalf("no line of record %d", seq)
	return -1
}

// checkpointLines are the indexes of the checkpoint lines.
func checkpointLines(lines []string) []int {
	var out []int
	for i, l := range lines {
		if strings.HasPrefix(l, `{"checkpoint":`) {
			out = append(out, i)
		}
	}
	return out
}

func verifyFiles(t testing.TB, path string, v note.Verifier, o VerifyOptions) *Report {
	t.Helper()
	files, err := Files(path)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(files, v, o)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestVerifyIntact(t *testing.T) {
	k := testKey(t, "test.example/audit")
	path := writeLog(t, t.TempDir(), logSpec{records: 100, checkpoint: 20, key: k})
	rep := verifyFiles(t, path, k.Verifier, VerifyOptions{})
	if !rep.Intact() || rep.Records != 100 || rep.TreeSize != 100 || rep.Checkpoints != 5 || rep.Unsealed != 0 || rep.Root == "" {
		t.Fatalf("report %+v", rep)
	}
	// The wrong key: every checkpoint is reported as not its.
	other := testKey(t, "test.example/audit")
	rep = verifyFiles(t, path, other.Verifier, VerifyOptions{})
	if rep.Intact() || rep.Problems[0].Kind != ProblemBadCheckpoint || !strings.Contains(rep.Problems[0].Detail, "not by the verifier key") {
		t.Fatalf("wrong key: %+v", rep.Problems)
	}
}

// TestVerify10000 is the bar: a log of 10,000 records, written by
// 64 callers at once, verifies.
func TestVerify10000(t *testing.T) {
	k := testKey(t, "test.example/audit")
	path := filepath.Join(t.TempDir(), "audit.log")
	ctx := context.Background()
	l, err := Open(ctx, Options{Path: path, Key: k, Host: "testhost", CheckpointInterval: 20 * time.Millisecond, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	const n, callers = 10000, 64
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	base := time.Now().UTC()
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < n; i += callers {
				if err := l.Append(ctx, testRecord(i, base)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep := verifyFiles(t, path, k.Verifier, VerifyOptions{})
	if !rep.Intact() || rep.Records != n || rep.TreeSize != n || rep.Checkpoints < 1 {
		t.Fatalf("report: records %d, tree %d, checkpoints %d, problems %v", rep.Records, rep.TreeSize, rep.Checkpoints, rep.Problems)
	}
}

// TestTamper changes a log in every way the issue names (and a few
// more) and checks that Verify finds it and that its first problem names
// the right record and line.
func TestTamper(t *testing.T) {
	k := testKey(t, "test.example/audit")
	dir := t.TempDir()
	path := writeLog(t, dir, logSpec{records: 100, checkpoint: 20, key: k})
	orig := readLines(t, path)
	ck := checkpointLines(orig) // after records 19, 39, 59, 79, 99
	if len(ck) != 5 || ck[4] != len(orig)-2 {
		t.Fatalf("checkpoint lines %v of %d", ck, len(orig))
	}

	// A second log with the same key and origin but other records: its
	// checkpoints are genuine signatures over another tree.
	otherPath := writeLog(t, t.TempDir(), logSpec{records: 40, checkpoint: 20, key: k, host: "otherhost"})
	otherCk := readLines(t, otherPath)[checkpointLines(readLines(t, otherPath))[1]] // size 40

	// A key with the same name as the log's key.
	forger := testKey(t, "test.example/audit")
	resign := func(line string, s note.Signer) string {
		var c checkpointLine
		mustUnmarshal(t, line, &c)
		n, err := note.Open([]byte(c.Checkpoint), note.VerifierList(k.Verifier))
		if err != nil {
			t.Fatal(err)
		}
		msg, err := note.Sign(&note.Note{Text: n.Text}, s)
		if err != nil {
			t.Fatal(err)
		}
		out, err := encodeLine(checkpointLine{Checkpoint: string(msg)})
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}

	r30 := recordLine(t, orig, 30)
	type want struct {
		kind string
		seq  int64
		line int // index in the tampered file, from 0
	}
	for _, tc := range []struct {
		name   string
		tamper func(l []string) []string
		want   want
		allow  bool // AllowUnsealed
	}{
		{"edit one byte of a record", func(l []string) []string {
			l[r30] = strings.Replace(l[r30], "uid=1000", "uid=1001", 1)
			return l
		}, want{ProblemChanged, 30, r30}, false},
		{"edit one byte of a record, breaking its JSON", func(l []string) []string {
			l[r30] = "[" + l[r30][1:]
			return l
		}, want{ProblemChanged, 30, r30}, false},
		{"edit a record's seq", func(l []string) []string {
			l[r30] = strings.Replace(l[r30], `{"seq":30,`, `{"seq":38,`, 1)
			return l
		}, want{ProblemChanged, 30, r30}, false},
		{"edit a record's prev", func(l []string) []string {
			i := strings.Index(l[r30], `"prev":"`) + len(`"prev":"`)
			b := []byte(l[r30])
			b[i] ^= 0x01
			l[r30] = string(b)
			return l
		}, want{ProblemChanged, 30, r30}, false},
		{"edit the last record", func(l []string) []string {
			i := recordLine(t, l, 99)
			l[i] = strings.Replace(l[i], `"alg":"ES256"`, `"alg":"ES257"`, 1)
			return l
		}, want{ProblemRootMismatch, 99, ck[4]}, false},
		{"delete a record", func(l []string) []string {
			return del(l, r30)
		}, want{ProblemRemoved, 30, r30}, false},
		{"delete the record before a checkpoint", func(l []string) []string {
			return del(l, recordLine(t, l, 39))
		}, want{ProblemRemoved, 39, ck[1] - 1}, false},
		{"swap two adjacent records", func(l []string) []string {
			l[r30], l[r30+1] = l[r30+1], l[r30]
			return l
		}, want{ProblemReordered, 31, r30}, false},
		{"swap two records far apart", func(l []string) []string {
			r50 := recordLine(t, l, 50)
			l[r30], l[r50] = l[r50], l[r30]
			return l
		}, want{ProblemReordered, 50, r30}, false},
		{"duplicate a record", func(l []string) []string {
			return ins(l, r30+1, l[r30])
		}, want{ProblemReordered, 30, r30 + 1}, false},
		{"truncate the file mid-record", func(l []string) []string {
			i := recordLine(t, l, 90)
			l = l[:i+1]
			l[i] = l[i][:len(l[i])/2]
			return l
		}, want{ProblemTorn, 90, recordLine(t, orig, 90)}, false},
		{"truncate the file after a record", func(l []string) []string {
			return l[:recordLine(t, l, 89)+1]
		}, want{ProblemUnsealed, 80, recordLine(t, orig, 80)}, false},
		{"replace a checkpoint with another log's", func(l []string) []string {
			l[ck[1]] = otherCk
			return l
		}, want{ProblemBadCheckpoint, -1, ck[1]}, false},
		{"replace the last checkpoint with an older one", func(l []string) []string {
			l[ck[4]] = l[ck[3]]
			return l
		}, want{ProblemUnsealed, 80, recordLine(t, orig, 80)}, false},
		{"replace a checkpoint with an older one", func(l []string) []string {
			l[ck[2]] = l[ck[0]]
			return l
		}, want{ProblemBadCheckpoint, -1, ck[2]}, false},
		{"forge a checkpoint with another key", func(l []string) []string {
			l[ck[2]] = resign(l[ck[2]], forger.Signer)
			return l
		}, want{ProblemBadCheckpoint, -1, ck[2]}, false},
		{"forge a checkpoint's signature", func(l []string) []string {
			l[ck[2]] = flipSignature(t, l[ck[2]])
			return l
		}, want{ProblemBadCheckpoint, -1, ck[2]}, false},
		{"change a record and re-sign with another key", func(l []string) []string {
			i := recordLine(t, l, 99)
			l[i] = strings.Replace(l[i], `"outcome":"denied"`, `"outcome":"ok"`, 1)
			l[ck[4]] = resign(l[ck[4]], forger.Signer)
			return l
		}, want{ProblemBadCheckpoint, -1, ck[4]}, false},
		{"append a record after the last checkpoint", func(l []string) []string {
			// A well-formed record 100, linked to record 99.
			last := l[recordLine(t, l, 99)]
			var r Record
			mustUnmarshal(t, last, &r)
			r.Seq, r.Prev = 100, hashString(leafHash([]byte(strings.TrimSuffix(last, "\n"))))
			extra, err := encodeLine(r)
			if err != nil {
				t.Fatal(err)
			}
			return append(l[:len(l)-1], string(extra), "")
		}, want{ProblemUnsealed, 100, len(orig) - 1}, false},
		{"insert a line", func(l []string) []string {
			return ins(l, r30, "hello\n")
		}, want{ProblemMalformed, -1, r30}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := tc.tamper(append([]string(nil), orig...))
			writeLines(t, path, lines)
			rep := verifyFiles(t, path, k.Verifier, VerifyOptions{AllowUnsealed: tc.allow})
			if rep.Intact() {
				t.Fatal("not detected")
			}
			for _, q := range rep.Problems {
				t.Log(q)
			}
			p := rep.Problems[0]
			if p.Kind != tc.want.kind || p.Seq != tc.want.seq || p.Line != tc.want.line+1 || p.File != path {
				t.Errorf("first problem %v; want %s of record %d at line %d", p, tc.want.kind, tc.want.seq, tc.want.line+1)
			}
		})
	}
	writeLines(t, path, orig)
	if rep := verifyFiles(t, path, k.Verifier, VerifyOptions{}); !rep.Intact() {
		t.Fatalf("the original: %v", rep.Problems)
	}
}

func del(l []string, i int) []string { return append(l[:i:i], l[i+1:]...) }

func ins(l []string, i int, s string) []string {
	return append(l[:i:i], append([]string{s}, l[i:]...)...)
}

// TestVerifyLateCheckpoint: a checkpoint may come after records it does
// not cover (the writer signs off the write path and writes it with a
// later batch); that is intact.
func TestVerifyLateCheckpoint(t *testing.T) {
	k := testKey(t, "test.example/audit")
	path := writeLog(t, t.TempDir(), logSpec{records: 30, checkpoint: 10, key: k})
	lines := readLines(t, path)
	c := checkpointLines(lines)[0] // after record 9
	moved := lines[c]
	lines = ins(del(lines, c), recordLine(t, del(lines, c), 14), moved)
	writeLines(t, path, lines)
	if rep := verifyFiles(t, path, k.Verifier, VerifyOptions{}); !rep.Intact() || rep.Checkpoints != 3 {
		t.Fatalf("late checkpoint: %+v", rep)
	}
}

// TestVerifyUnsealed: a live log's tail passes with AllowUnsealed and is
// counted.
func TestVerifyUnsealed(t *testing.T) {
	k := testKey(t, "test.example/audit")
	path := writeLog(t, t.TempDir(), logSpec{records: 25, checkpoint: 10, key: k, noClose: true})
	rep := verifyFiles(t, path, k.Verifier, VerifyOptions{AllowUnsealed: true})
	if !rep.Intact() || rep.Unsealed != 5 || rep.TreeSize != 20 {
		t.Fatalf("allowing unsealed: %+v", rep)
	}
	rep = verifyFiles(t, path, k.Verifier, VerifyOptions{})
	if rep.Intact() || rep.Problems[0].Kind != ProblemUnsealed || rep.Problems[0].Seq != 20 {
		t.Fatalf("not allowing unsealed: %+v", rep.Problems)
	}
	// A partial last line is a record being written: allowed too, and
	// not counted.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"seq":25,"time":`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	rep = verifyFiles(t, path, k.Verifier, VerifyOptions{AllowUnsealed: true})
	if !rep.Intact() || rep.Unsealed != 5 || rep.Records != 25 {
		t.Fatalf("allowing a partial line: %+v", rep)
	}
	rep = verifyFiles(t, path, k.Verifier, VerifyOptions{})
	if rep.Intact() || rep.Problems[0].Kind != ProblemTorn || rep.Problems[0].Seq != 25 {
		t.Fatalf("not allowing a partial line: %+v", rep.Problems)
	}
}

// TestVerifyRotation: a log rotated across files verifies as a chain
// and file by file; a missing, reordered or foreign file breaks the chain.
func TestVerifyRotation(t *testing.T) {
	k := testKey(t, "test.example/audit")
	path := writeLog(t, t.TempDir(), logSpec{records: 200, checkpoint: 7, rotateSize: 8 << 10, key: k})
	files, err := Files(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 || files[len(files)-1] != path {
		t.Fatalf("files %v", files)
	}
	rep, err := Verify(files, k.Verifier, VerifyOptions{})
	if err != nil || !rep.Intact() || rep.Records != 200 || rep.TreeSize != 200 {
		t.Fatalf("chain: %+v, %v", rep, err)
	}
	var sum int64
	for _, f := range files {
		rep, err := Verify([]string{f}, k.Verifier, VerifyOptions{})
		if err != nil || !rep.Intact() {
			t.Fatalf("%s alone: %+v, %v", f, rep, err)
		}
		sum += rep.Records
	}
	if sum != 200 {
		t.Fatalf("files hold %d records", sum)
	}

	check := func(name string, files []string, wantFile string, kind string) {
		t.Helper()
		rep, err := Verify(files, k.Verifier, VerifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Intact() || rep.Problems[0].Kind != kind || rep.Problems[0].File != wantFile || rep.Problems[0].Line != 1 {
			t.Errorf("%s: problems %v", name, rep.Problems)
		}
	}
	check("a file missing", append(files[:1:1], files[2:]...), files[2], ProblemChain)
	check("files out of order", []string{files[0], files[2], files[1]}, files[2], ProblemChain)

	// Another log's file in the middle (same key): its header does not
	// continue the file before.
	other := writeLog(t, t.TempDir(), logSpec{records: 200, checkpoint: 7, rotateSize: 8 << 10, key: k, host: "otherhost"})
	otherFiles, err := Files(other)
	if err != nil {
		t.Fatal(err)
	}
	mixed := append([]string{files[0]}, otherFiles[1:]...)
	check("another log's file", mixed, otherFiles[1], ProblemChain)

	// A record edited in a rotated file is named there.
	lines := readLines(t, files[1])
	i := 1 // the file's first record
	lines[i] = strings.Replace(lines[i], `"op":"sign"`, `"op":"nope"`, 1)
	lines[i] = strings.Replace(lines[i], `"op":"verify"`, `"op":"nope"`, 1)
	writeLines(t, files[1], lines)
	rep, err = Verify(files, k.Verifier, VerifyOptions{})
	if err != nil || rep.Intact() || rep.Problems[0].Kind != ProblemChanged || rep.Problems[0].File != files[1] || rep.Problems[0].Line != 2 {
		t.Fatalf("edited rotated file: %v, %v", rep.Problems, err)
	}
}

// TestVerifyECDSAKey: a log sealed by an ECDSA P-256 crypto.Signer (as a
// KMS key through a plugin would be) verifies with its verifier key.
func TestVerifyECDSAKey(t *testing.T) {
	k := ecdsaTestKey(t)
	path := writeLog(t, t.TempDir(), logSpec{records: 50, checkpoint: 10, key: k})
	v, err := ParseVerifierKey(k.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	if rep := verifyFiles(t, path, v, VerifyOptions{}); !rep.Intact() || rep.Checkpoints != 5 {
		t.Fatalf("report %+v", rep)
	}
}

func TestVerifyEmptyAndMissing(t *testing.T) {
	k := testKey(t, "test.example/audit")
	dir := t.TempDir()
	if _, err := Verify([]string{filepath.Join(dir, "absent")}, k.Verifier, VerifyOptions{}); !os.IsNotExist(err) {
		t.Errorf("absent file: %v", err)
	}
	empty := filepath.Join(dir, "empty.log")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify([]string{empty}, k.Verifier, VerifyOptions{})
	if err != nil || rep.Intact() || rep.Problems[0].Kind != ProblemMalformed {
		t.Errorf("empty file: %+v, %v", rep, err)
	}
	if _, err := Verify([]string{empty}, nil, VerifyOptions{}); err == nil {
		t.Error("no verifier: no error")
	}
	// A log closed with no records is intact.
	path := writeLog(t, t.TempDir(), logSpec{key: k})
	if rep := verifyFiles(t, path, k.Verifier, VerifyOptions{}); !rep.Intact() || rep.Records != 0 {
		t.Errorf("empty log: %+v", rep)
	}
}

func TestProblemString(t *testing.T) {
	p := Problem{File: "a.log", Line: 3, Seq: 1, Kind: ProblemChanged, Detail: "x"}
	if got := p.String(); got != "a.log:3: changed (record 1): x" {
		t.Errorf("%q", got)
	}
	p.Seq = -1
	if got := p.String(); got != "a.log:3: changed: x" {
		t.Errorf("%q", got)
	}
}

func mustUnmarshal(t testing.TB, line string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(strings.TrimSuffix(line, "\n")), v); err != nil {
		t.Fatal(err)
	}
}

// flipSignature changes one bit of a checkpoint line's signature (not of
// its key hash), keeping it valid base64.
func flipSignature(t testing.TB, line string) string {
	t.Helper()
	var c checkpointLine
	mustUnmarshal(t, line, &c)
	i := strings.LastIndex(c.Checkpoint, " ") + 1
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(c.Checkpoint[i:], "\n"))
	if err != nil {
		t.Fatal(err)
	}
	sig[len(sig)-1] ^= 0x01
	out, err := encodeLine(checkpointLine{Checkpoint: c.Checkpoint[:i] + base64.StdEncoding.EncodeToString(sig) + "\n"})
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// BenchmarkVerify10000 verifies a log of 10,000 records.
func BenchmarkVerify10000(b *testing.B) {
	k := testKey(b, "test.example/audit")
	path := filepath.Join(b.TempDir(), "audit.log")
	ctx := context.Background()
	l, err := Open(ctx, Options{Path: path, Key: k, Host: "testhost", CheckpointInterval: 20 * time.Millisecond, Logger: hclog.NewNullLogger()})
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	base := time.Now().UTC()
	for c := range 64 {
		wg.Go(func() {
			for i := c; i < 10000; i += 64 {
				if err := l.Append(ctx, testRecord(i, base)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		rep, err := Verify([]string{path}, k.Verifier, VerifyOptions{})
		if err != nil || !rep.Intact() {
			b.Fatal(rep, err)
		}
	}
}

// TestVerifyBadHeaders: a file whose header cannot be read is reported,
// and the files after it are still checked.
func TestVerifyBadHeaders(t *testing.T) {
	k := testKey(t, "test.example/audit")
	path := writeLog(t, t.TempDir(), logSpec{records: 120, checkpoint: 7, rotateSize: 8 << 10, key: k})
	files, err := Files(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, header := range map[string]string{
		"unknown format":   `{"knhk_audit":"v9","origin":"testhost/knhk-audit","start":0}` + "\n",
		"no last hash":     `{"knhk_audit":"v1","origin":"testhost/knhk-audit","start":5}` + "\n",
		"a bad frontier":   `{"knhk_audit":"v1","origin":"testhost/knhk-audit","start":5,"frontier":[],"last":"` + strings.Repeat("A", 43) + `="}` + "\n",
		"no header at all": "",
	} {
		lines := readLines(t, files[1])
		lines[0] = header
		writeLines(t, files[1], lines)
		rep, err := Verify(files[1:], k.Verifier, VerifyOptions{})
		if err != nil || rep.Intact() || rep.Problems[0].Line != 1 || rep.Problems[0].File != files[1] {
			t.Errorf("%s: %v, %v", name, rep.Problems, err)
		}
	}
}
