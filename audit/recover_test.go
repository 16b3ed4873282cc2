package audit

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// The crash child's environment: the log's path and the checkpoint key.
const (
	crashPathEnv = "KNHK_AUDIT_CRASH_PATH"
	crashKeyEnv  = "KNHK_AUDIT_CRASH_SKEY"
	crashVKeyEnv = "KNHK_AUDIT_CRASH_VKEY"
)

// TestCrashChild is the writer TestKilledWriter kills: it appends from
// 64 goroutines until killed, printing "ACK principal" for every Append
// that returned nil. Without its environment it does nothing.
func TestCrashChild(t *testing.T) {
	path, skey := os.Getenv(crashPathEnv), os.Getenv(crashKeyEnv)
	if path == "" {
		return
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(os.Getenv(crashVKeyEnv))
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(context.Background(), Options{Path: path, Key: &Key{Signer: s, Verifier: v}, Host: "child"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			for i := 0; ; i++ {
				p := fmt.Sprintf("g%d-%d", g, i)
				if err := l.Append(context.Background(), record(p)); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ACK %s\n", p)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestKilledWriter kills a writer (SIGKILL) under 64-way appending:
// reopened, the log verifies, and every record whose Append returned nil
// is in it.
func TestKilledWriter(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short: starts a child process")
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, "test.example/audit")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	key := &Key{Signer: s, Verifier: v, VerifierKey: vkey}
	o, logs := testOptions(t, t.TempDir(), key)

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(), crashPathEnv+"="+o.Path, crashKeyEnv+"="+skey, crashVKeyEnv+"="+vkey)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "ACK "); ok {
			acked[p] = true
		}
		if len(acked) == 3000 {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = cmd.Wait()
	if len(acked) < 3000 {
		t.Fatalf("the child stopped after %d records: %v\n%s", len(acked), err, stderr.String())
	}

	l := mustOpen(t, o)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "writable again") {
		t.Fatalf("a healthy reopen logged a recovery:\n%s", logs)
	}
	c := checkLog(t, o.Path, key)
	in := map[string]bool{}
	for _, r := range c.records {
		in[r.Principal] = true
	}
	for p := range acked {
		if !in[p] {
			t.Fatalf("Append of %s returned nil but its record is not in the log", p)
		}
	}
	t.Logf("%d acknowledged, %d in the log; reopening said:\n%s", len(acked), len(c.records), logs)
}

func TestWriterRecord(t *testing.T) {
	prev := strings.Repeat("A", 43) + "="
	for line, want := range map[string]string{
		`{"seq":0,"time":"x","outcome":"ok"}`:                "0 ",
		`{"seq":12,"outcome":"ok","prev":"` + prev + `"}`:    "12 " + prev,
		`{"seq":12,"outcome":"ok"}`:                          "nil", // no prev
		`{"seq":012,"outcome":"ok","prev":"` + prev + `"}`:   "nil", // not JSON
		`{"seq":-1,"outcome":"ok","prev":"` + prev + `"}`:    "nil",
		`{"seq":1e3,"outcome":"ok","prev":"` + prev + `"}`:   "nil",
		`{"seq":1234567890123456789,"prev":"` + prev + `"}`:  "nil", // too long
		`{"time":"x","seq":3,"prev":"` + prev + `"}`:         "nil", // another order: decoded in full
		`{"seq":3,"prev":"` + prev + `","outcome":"ok"}`:     "nil",
		`{"seq":3,"outcome":"ok","prev":"` + prev[1:] + `"}`: "nil",
		`{"seq":3}`:          "nil",
		`{"seq":`:            "nil",
		`{"checkpoint":"x"}`: "nil",
	} {
		seq, p := writerRecord([]byte(line))
		got := "nil"
		if seq != nil {
			got = fmt.Sprintf("%d %s", *seq, p)
		}
		if got != want {
			t.Errorf("writerRecord(%s) = %s, want %s", line, got, want)
		}
	}
}
