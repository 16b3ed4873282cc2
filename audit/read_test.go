package audit

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	if _, err := Files(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no log: %v", err)
	}
	if _, err := Files(filepath.Join(dir, "absent", "audit.log")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no directory: %v", err)
	}
	for _, name := range []string{
		"audit.log.000000000120", "audit.log.000000000000", "audit.log.000000000045",
		"audit.log.lock", "audit.log.12", "audit.log.00000000012x", "other.log.000000000000", "audit.log",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Files(path)
	want := []string{path + ".000000000000", path + ".000000000045", path + ".000000000120", path}
	if err != nil || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("files %v, %v; want %v", got, err, want)
	}
	// The active file missing (a crash between rotation's rename and
	// create): the rotated ones.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if got, err := Files(path); err != nil || len(got) != 3 {
		t.Errorf("without the active file: %v, %v", got, err)
	}
}

func TestScan(t *testing.T) {
	k := testKey(t, "test.example/audit")
	path := writeLog(t, t.TempDir(), logSpec{records: 100, checkpoint: 9, rotateSize: 8 << 10, key: k})
	files, err := Files(path)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	count := func(f Filter) (n int, seqs []int64) {
		t.Helper()
		err := Scan(files, f, func(r Record) error {
			if len(seqs) > 0 && r.Seq <= seqs[len(seqs)-1] {
				t.Fatalf("record %d after %d", r.Seq, seqs[len(seqs)-1])
			}
			seqs = append(seqs, r.Seq)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return len(seqs), seqs
	}
	if n, _ := count(Filter{}); n != 100 {
		t.Errorf("all: %d", n)
	}
	if n, seqs := count(Filter{Key: "fake:k1"}); n != 33 || seqs[0] != 1 {
		t.Errorf("key: %d %v", n, seqs)
	}
	if n, _ := count(Filter{Key: "fake:"}); n != 100 {
		t.Errorf("provider: %d", n)
	}
	if n, _ := count(Filter{Key: "fake"}); n != 0 {
		t.Errorf("a key that is no key: %d", n)
	}
	if n, _ := count(Filter{Principal: "unix:uid=1002", Operation: "sign"}); n != 15 {
		t.Errorf("principal and op: %d", n)
	}
	if n, _ := count(Filter{Outcome: OutcomeDenied}); n != 10 {
		t.Errorf("outcome: %d", n)
	}
	if n, seqs := count(Filter{Since: base.Add(10 * time.Minute), Until: base.Add(20 * time.Minute)}); n != 10 || seqs[0] != 10 || seqs[9] != 19 {
		t.Errorf("time: %d %v", n, seqs)
	}
	stop := errors.New("stop")
	seen := 0
	err = Scan(files, Filter{}, func(Record) error {
		seen++
		if seen == 3 {
			return stop
		}
		return nil
	})
	if err != stop || seen != 3 {
		t.Errorf("stop: %v after %d", err, seen)
	}
}

func TestEachLine(t *testing.T) {
	long := strings.Repeat("x", maxLine+10)
	var got []string
	var complete []bool
	err := eachLine(strings.NewReader("a\n\nb\n"+long+"\ntail"), "test", func(num int, line []byte, c bool) error {
		if num != len(got)+1 {
			t.Fatalf("line %d after %d", num, len(got))
		}
		got = append(got, string(line))
		complete = append(complete, c)
		return nil
	})
	if err != nil || len(got) != 5 || got[0] != "a" || got[1] != "" || got[2] != "b" || len(got[3]) != maxLine || got[4] != "tail" {
		t.Fatalf("%d lines %q..., %v", len(got), got[:3], err)
	}
	if !complete[3] || complete[4] {
		t.Errorf("complete %v", complete)
	}
}

func TestSeqPrefix(t *testing.T) {
	for in, want := range map[string]int64{`{"seq":12,"time"`: 12, `{"seq":0,`: 0, `{"seq":7`: -1, `{"seq":x`: -1, `{"seq":`: -1, `{"x":1}`: -1} {
		got, ok := seqPrefix([]byte(in))
		if (want < 0 && ok) || (want >= 0 && (!ok || got != want)) {
			t.Errorf("%q: %d %v", in, got, ok)
		}
	}
}
