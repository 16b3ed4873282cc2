package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// writerKey is a fresh Ed25519 checkpoint key, made with note directly.
func writerKey(t testing.TB, name string) *Key {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{Signer: s, Verifier: v, VerifierKey: vkey}
}

// logBuffer collects a Log's log output.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// testOptions are Options for a log in dir, logging into the returned
// buffer.
func testOptions(t testing.TB, dir string, key *Key) (Options, *logBuffer) {
	logs := &logBuffer{}
	return Options{
		Path:        filepath.Join(dir, "audit.log"),
		Key:         key,
		Host:        "test-host",
		Logger:      hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: logs}),
		LockTimeout: 200 * time.Millisecond,
	}, logs
}

func mustOpen(t testing.TB, o Options) *Log {
	t.Helper()
	l, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func record(principal string) Record {
	return Record{Principal: principal, Operation: "sign", Key: "fake:k1", Params: []string{"region"},
		KeyVersion: "1", Algorithm: "ES256", Input: "digest", InputSHA256: strings.Repeat("ab", 32),
		SignatureSHA256: strings.Repeat("cd", 32), Outcome: OutcomeOK}
}

func appendN(t testing.TB, l *Log, prefix string, n int) {
	t.Helper()
	for i := range n {
		if err := l.Append(context.Background(), record(fmt.Sprintf("%s%d", prefix, i))); err != nil {
			t.Fatal(err)
		}
	}
}

// checked is what checkLog found in a log's files.
type checked struct {
	records     []Record
	checkpoints []int64 // sizes, in file order
	files       []string
}

// checkLog checks the log at path, independently of the writer's own
// reading: every file's header continues the previous file (start,
// frontier, last hash and checkpoint), seqs run from 0 without gaps,
// every record chains to the one before, every line is what encodeLine
// makes of its record, every checkpoint is signed by key and has the
// root of a full tree of the records before it, and the last checkpoint
// covers every record.
func checkLog(t testing.TB, path string, key *Key) checked {
	t.Helper()
	files, err := rotatedFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err == nil {
		files = append(files, path)
	}
	full := newTree(true)
	var c checked
	c.files = files
	var lastNote string
	var prev tlog.Hash
	for fi, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == 0 || data[len(data)-1] != '\n' {
			t.Fatalf("%s does not end with a newline", file)
		}
		lines := bytes.Split(data[:len(data)-1], []byte("\n"))
		var h header
		if err := json.Unmarshal(lines[0], &h); err != nil || h.Format != formatVersion {
			t.Fatalf("%s header %q: %v", file, lines[0], err)
		}
		if h.Start != full.size {
			t.Fatalf("%s starts at %d, want %d", file, h.Start, full.size)
		}
		if fi > 0 {
			if h.Checkpoint != lastNote {
				t.Fatalf("%s header checkpoint is not the previous file's last checkpoint", file)
			}
			if *h.Last != full.last {
				t.Fatalf("%s header last hash differs", file)
			}
			rt, err := resumeTree(h.Start, h.Frontier, *h.Last, false)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := rt.root()
			want, _ := full.root()
			if got != want {
				t.Fatalf("%s header frontier gives another root", file)
			}
		}
		for i, line := range lines[1:] {
			switch kindOf(line) {
			case kindRecord:
				var r Record
				if err := json.Unmarshal(line, &r); err != nil {
					t.Fatal(err)
				}
				if r.Seq != full.size {
					t.Fatalf("%s line %d: seq %d, want %d", file, i+2, r.Seq, full.size)
				}
				if r.Seq > 0 && r.Prev != hashString(prev) {
					t.Fatalf("%s line %d: prev %q does not chain", file, i+2, r.Prev)
				}
				if r.Seq == 0 && r.Prev != "" {
					t.Fatalf("record 0 has prev %q", r.Prev)
				}
				enc, err := encodeLine(r)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(enc[:len(enc)-1], line) {
					t.Fatalf("%s line %d:\n got %s\nwant %s", file, i+2, line, enc)
				}
				prev = leafHash(line)
				if err := full.append(prev); err != nil {
					t.Fatal(err)
				}
				c.records = append(c.records, r)
			case kindCheckpoint:
				var cl checkpointLine
				if err := json.Unmarshal(line, &cl); err != nil {
					t.Fatal(err)
				}
				n, err := note.Open([]byte(cl.Checkpoint), note.VerifierList(key.Verifier))
				if err != nil {
					t.Fatalf("%s line %d: %v", file, i+2, err)
				}
				origin, size, root, err := parseCheckpointText(n.Text)
				if err != nil {
					t.Fatal(err)
				}
				if origin != h.Origin {
					t.Fatalf("checkpoint origin %q, header %q", origin, h.Origin)
				}
				if size > full.size {
					t.Fatalf("%s line %d: checkpoint of %d records after %d", file, i+2, size, full.size)
				}
				want, err := tlog.TreeHash(size, full)
				if err != nil {
					t.Fatal(err)
				}
				if root != want {
					t.Fatalf("%s line %d: checkpoint root differs", file, i+2)
				}
				c.checkpoints = append(c.checkpoints, size)
				lastNote = cl.Checkpoint
			default:
				t.Fatalf("%s line %d: not a record or checkpoint: %q", file, i+2, line)
			}
		}
	}
	if len(c.checkpoints) == 0 || c.checkpoints[len(c.checkpoints)-1] != full.size {
		t.Fatalf("the last checkpoint (%v) does not cover all %d records", c.checkpoints, full.size)
	}
	return c
}

func TestAppendCloseReopen(t *testing.T) {
	key := writerKey(t, "test.example/audit")
	o, _ := testOptions(t, t.TempDir(), key)
	l := mustOpen(t, o)
	appendN(t, l, "a", 10)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c := checkLog(t, o.Path, key)
	if len(c.records) != 10 || c.records[3].Principal != "a3" || c.records[3].Host != "test-host" {
		t.Fatalf("records: %+v", c.records)
	}
	if fi, err := os.Stat(o.Path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("log file mode: %v %v", fi.Mode(), err)
	}
	if err := l.Append(context.Background(), record("late")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append after Close: %v", err)
	}
	if err := l.Ready(); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Ready after Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	l = mustOpen(t, o)
	appendN(t, l, "b", 10)
	st := l.Stats()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c = checkLog(t, o.Path, key)
	if len(c.records) != 20 || c.records[15].Principal != "b5" {
		t.Fatalf("after reopen: %d records", len(c.records))
	}
	if len(c.checkpoints) != 2 || c.checkpoints[0] != 10 {
		t.Fatalf("checkpoints %v, want [10 20]", c.checkpoints)
	}
	if st.Records != 10 || st.Batches != 10 || st.Failures != 0 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := os.Stat(o.Path + ".new"); !os.IsNotExist(err) {
		t.Fatalf("%s.new left behind: %v", o.Path, err)
	}
}

func TestAppendConcurrent(t *testing.T) {
	key := writerKey(t, "test.example/audit")
	o, _ := testOptions(t, t.TempDir(), key)
	l := mustOpen(t, o)
	const callers, each = 64, 40
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := range callers {
		wg.Go(func() {
			for i := range each {
				if err := l.Append(context.Background(), record(fmt.Sprintf("g%d-%d", g, i))); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := l.Stats()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c := checkLog(t, o.Path, key)
	if len(c.records) != callers*each {
		t.Fatalf("%d records, want %d", len(c.records), callers*each)
	}
	seen := map[string]bool{}
	for _, r := range c.records {
		if seen[r.Principal] {
			t.Fatalf("%s recorded twice", r.Principal)
		}
		seen[r.Principal] = true
	}
	if st.Records != callers*each || st.Batches >= st.Records {
		t.Fatalf("stats %+v: want %d records in fewer batches", st, callers*each)
	}
	t.Logf("%d records in %d batches (%.1f per fsync)", st.Records, st.Batches, float64(st.Records)/float64(st.Batches))
}

func TestTornTail(t *testing.T) {
	for name, tail := range map[string]string{
		"no newline":   `{"seq":5,"time":"2026-01-02T03:04:05Z","ho`,
		"not JSON":     "{\"seq\":5,\"ti\x00\x00\n",
		"probe spaces": strings.Repeat(" ", 100),
	} {
		t.Run(name, func(t *testing.T) {
			key := writerKey(t, "test.example/audit")
			o, logs := testOptions(t, t.TempDir(), key)
			l := mustOpen(t, o)
			appendN(t, l, "a", 5)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(o.Path)
			writeFile(t, o.Path, append(before, tail...))

			l = mustOpen(t, o)
			if !strings.Contains(logs.String(), "dropped a") {
				t.Fatalf("no warning about the torn line:\n%s", logs)
			}
			after, _ := os.ReadFile(o.Path)
			if !bytes.Equal(after, before) {
				t.Fatalf("torn tail not cut off exactly:\n%q", after[len(before)-20:])
			}
			appendN(t, l, "b", 2)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			c := checkLog(t, o.Path, key)
			if len(c.records) != 7 || c.records[5].Principal != "b0" {
				t.Fatalf("%d records after the torn tail", len(c.records))
			}
		})
	}
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestUnsealedSealedOnOpen: records after the last checkpoint (a writer
// that crashed) get a checkpoint as soon as the log is opened.
func TestUnsealedSealedOnOpen(t *testing.T) {
	key := writerKey(t, "test.example/audit")
	o, logs := testOptions(t, t.TempDir(), key)
	l := mustOpen(t, o)
	appendN(t, l, "a", 3)
	if err := l.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, "b", 4)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Cut the final checkpoint off: as if the writer had been killed.
	data, _ := os.ReadFile(o.Path)
	lines := bytes.SplitAfter(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	writeFile(t, o.Path, bytes.Join(lines[:len(lines)-1], nil))

	l = mustOpen(t, o)
	if !strings.Contains(logs.String(), "records after its last checkpoint") || !strings.Contains(logs.String(), "records=4") {
		t.Fatalf("no warning about 4 unsealed records:\n%s", logs)
	}
	c := checkLog(t, o.Path, key) // while open: sealed already
	if len(c.records) != 7 || fmt.Sprint(c.checkpoints) != "[3 7]" {
		t.Fatalf("records %d, checkpoints %v", len(c.records), c.checkpoints)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesAlteredLog(t *testing.T) {
	key := writerKey(t, "test.example/audit")
	for name, alter := range map[string]func(lines [][]byte) [][]byte{
		"record edited": func(lines [][]byte) [][]byte {
			lines[2] = bytes.Replace(lines[2], []byte(`"a1"`), []byte(`"a7"`), 1)
			return lines
		},
		"last record edited": func(lines [][]byte) [][]byte {
			lines[5] = bytes.Replace(lines[5], []byte(`"a4"`), []byte(`"a7"`), 1)
			return lines
		},
		"record removed": func(lines [][]byte) [][]byte {
			return append(lines[:2], lines[3:]...)
		},
		"records swapped": func(lines [][]byte) [][]byte {
			lines[2], lines[3] = lines[3], lines[2]
			return lines
		},
		"checkpoint by another key": func(lines [][]byte) [][]byte {
			other := writerKey(t, "test.example/audit")
			var cl checkpointLine
			if err := json.Unmarshal(lines[len(lines)-1], &cl); err != nil {
				t.Fatal(err)
			}
			n, err := note.Open([]byte(cl.Checkpoint), note.VerifierList(key.Verifier))
			if err != nil {
				t.Fatal(err)
			}
			forged, err := note.Sign(&note.Note{Text: n.Text}, other.Signer)
			if err != nil {
				t.Fatal(err)
			}
			line, _ := encodeLine(checkpointLine{Checkpoint: string(forged)})
			lines[len(lines)-1] = line[:len(line)-1]
			return lines
		},
		"checkpoint signature edited": func(lines [][]byte) [][]byte {
			last := lines[len(lines)-1]
			i := bytes.LastIndex(last, []byte(`\n"}`)) - 3
			last[i] ^= 'A' ^ 'B'
			if last[i] == last[i]^'A'^'B' {
				t.Fatal("no edit")
			}
			return lines
		},
		"middle line garbled": func(lines [][]byte) [][]byte {
			lines[3] = []byte("{garbage")
			return lines
		},
	} {
		t.Run(name, func(t *testing.T) {
			o, _ := testOptions(t, t.TempDir(), key)
			l := mustOpen(t, o)
			appendN(t, l, "a", 5)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(o.Path)
			lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
			lines = alter(lines)
			altered := append(bytes.Join(lines, []byte("\n")), '\n')
			writeFile(t, o.Path, altered)
			_, err := Open(context.Background(), o)
			if !errors.Is(err, ErrAltered) {
				t.Fatalf("Open of an altered log: %v", err)
			}
			if !strings.Contains(err.Error(), "audit verify") {
				t.Fatalf("error does not say how to find out more: %v", err)
			}
			if got, _ := os.ReadFile(o.Path); !bytes.Equal(got, altered) {
				t.Fatal("Open changed an altered log")
			}
			t.Log(err)
		})
	}
}

func TestOriginKeptAndChecked(t *testing.T) {
	key := writerKey(t, "test.example/audit")
	o, _ := testOptions(t, t.TempDir(), key)
	l := mustOpen(t, o)
	appendN(t, l, "a", 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Another host name (a new pod): the log keeps its origin.
	o.Host = "other-host"
	l = mustOpen(t, o)
	appendN(t, l, "b", 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c := checkLog(t, o.Path, key)
	if c.records[1].Host != "other-host" {
		t.Fatalf("host %q", c.records[1].Host)
	}
	o.Origin = "elsewhere/knhk-audit"
	if _, err := Open(context.Background(), o); err == nil || !strings.Contains(err.Error(), `"test-host/knhk-audit"`) {
		t.Fatalf("Open with another origin: %v", err)
	}
}

func TestCheckpoints(t *testing.T) {
	key := writerKey(t, "test.example/audit")
	o, _ := testOptions(t, t.TempDir(), key)
	o.CheckpointInterval = 20 * time.Millisecond
	l := mustOpen(t, o)
	defer l.Close()
	appendN(t, l, "a", 3)
	deadline := time.Now().Add(10 * time.Second)
	for l.Stats().Checkpoints == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no interval checkpoint")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Not grown: no more checkpoints.
	time.Sleep(100 * time.Millisecond)
	if n := l.Stats().Checkpoints; n != 1 {
		t.Fatalf("%d checkpoints without new records", n)
	}
	if err := l.Checkpoint(context.Background()); err != nil || l.Stats().Checkpoints != 1 {
		t.Fatalf("Checkpoint without new records: %v, %d checkpoints", err, l.Stats().Checkpoints)
	}
	c := checkLog(t, o.Path, key)
	if fmt.Sprint(c.checkpoints) != "[3]" {
		t.Fatalf("checkpoints %v", c.checkpoints)
	}

	o.CheckpointInterval = time.Hour
	o.Path = filepath.Join(t.TempDir(), "b.log")
	l2 := mustOpen(t, o)
	appendN(t, l2, "a", 2)
	if err := l2.Checkpoint(context.Background()); err != nil || l2.Stats().Checkpoints != 1 {
		t.Fatalf("Checkpoint: %v, %d", err, l2.Stats().Checkpoints)
	}
	if c := checkLog(t, o.Path, key); fmt.Sprint(c.checkpoints) != "[2]" {
		t.Fatalf("checkpoints %v", c.checkpoints)
	}
	if err := l2.Close(); err != nil || l2.Stats().Checkpoints != 1 {
		t.Fatalf("Close wrote a checkpoint without new records: %v %+v", err, l2.Stats())
	}
}

// TestCloseUnderLoad: Close while 64 callers append. Every Append that
// returned nil is in the log; the others failed with ErrUnavailable.
func TestCloseUnderLoad(t *testing.T) {
	key := writerKey(t, "test.example/audit")
	o, _ := testOptions(t, t.TempDir(), key)
	l := mustOpen(t, o)
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			for i := 0; ; i++ {
				p := fmt.Sprintf("g%d-%d", g, i)
				err := l.Append(context.Background(), record(p))
				if err != nil {
					if !errors.Is(err, ErrUnavailable) {
						t.Errorf("Append during Close: %v", err)
					}
					return
				}
				mu.Lock()
				acked[p] = true
				mu.Unlock()
			}
		})
	}
	for l.Stats().Records < 500 {
		time.Sleep(time.Millisecond)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	c := checkLog(t, o.Path, key)
	if len(c.records) != len(acked) {
		t.Fatalf("%d records in the log, %d acknowledged", len(c.records), len(acked))
	}
	for _, r := range c.records {
		if !acked[r.Principal] {
			t.Fatalf("%s is in the log but its Append failed", r.Principal)
		}
	}
}
