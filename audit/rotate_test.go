package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRotateBySize(t *testing.T) {
	key := writerKey(t, "test.example/audit")
	o, _ := testOptions(t, t.TempDir(), key)
	o.RotateSize = 4096
	l := mustOpen(t, o)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() { appendN(t, l, fmt.Sprintf("g%d-", g), 40) })
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c := checkLog(t, o.Path, key)
	if len(c.records) != 320 {
		t.Fatalf("%d records", len(c.records))
	}
	if len(c.files) < 4 {
		t.Fatalf("only %d files for %d records of ~300 bytes, rotating at 4 KiB", len(c.files), len(c.records))
	}
	for i, f := range c.files[:len(c.files)-1] {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		// A file rotates after the batch that takes it past RotateSize.
		if fi.Size() < o.RotateSize || fi.Size() > o.RotateSize+64*400 {
			t.Fatalf("file %d is %d bytes", i, fi.Size())
		}
	}
	if _, err := os.Stat(o.Path + ".new"); !os.IsNotExist(err) {
		t.Fatalf(".new left behind: %v", err)
	}

	// Reopened, the log goes on rotating in the same tree.
	l = mustOpen(t, o)
	appendN(t, l, "late", 30)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c2 := checkLog(t, o.Path, key)
	if len(c2.records) != 350 || len(c2.files) <= len(c.files) {
		t.Fatalf("after reopening: %d records in %d files", len(c2.records), len(c2.files))
	}
}

func TestRotateByTime(t *testing.T) {
	key := writerKey(t, "test.example/audit")
	o, _ := testOptions(t, t.TempDir(), key)
	o.RotateInterval = time.Nanosecond // every batch
	l := mustOpen(t, o)
	appendN(t, l, "a", 5)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c := checkLog(t, o.Path, key)
	rotated, _ := rotatedFiles(o.Path)
	want := []string{o.Path + ".000000000000", o.Path + ".000000000001", o.Path + ".000000000002", o.Path + ".000000000003", o.Path + ".000000000004"}
	if fmt.Sprint(rotated) != fmt.Sprint(want) {
		t.Fatalf("rotated files %v", rotated)
	}
	if len(c.records) != 5 || fmt.Sprint(c.checkpoints) != "[1 2 3 4 5]" {
		t.Fatalf("%d records, checkpoints %v", len(c.records), c.checkpoints)
	}
	// The active file holds only its header: a file without records is
	// not rotated, and Close needs no new checkpoint.
	data, _ := os.ReadFile(o.Path)
	if strings.Count(string(data), "\n") != 1 || !strings.Contains(string(data), `"start":5`) {
		t.Fatalf("active file:\n%s", data)
	}
}

// TestContinueFromRotated: a crash between rotation's renames leaves no
// active file; Open continues from the last rotated one.
func TestContinueFromRotated(t *testing.T) {
	key := writerKey(t, "test.example/audit")
	o, logs := testOptions(t, t.TempDir(), key)
	o.RotateSize = 2048
	l := mustOpen(t, o)
	appendN(t, l, "a", 20)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	before := checkLog(t, o.Path, key)
	if len(before.files) < 2 {
		t.Fatalf("%d files", len(before.files))
	}
	// Rename the active file as rotation's first rename would.
	var h header
	data, _ := os.ReadFile(o.Path)
	if err := json.Unmarshal(data[:bytes.IndexByte(data, '\n')], &h); err != nil || h.Start == 0 {
		t.Fatalf("header %+v: %v", h, err)
	}
	if err := os.Rename(o.Path, rotatedName(o.Path, h.Start)); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, o)
	if !strings.Contains(logs.String(), "continuing the log from its last rotated file") {
		t.Fatalf("no warning:\n%s", logs)
	}
	appendN(t, l, "b", 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	after := checkLog(t, o.Path, key)
	if len(after.records) != 23 || after.records[20].Principal != "b0" {
		t.Fatalf("%d records", len(after.records))
	}
}

// TestRotatedFileOpensAlone: each file of a rotated log stands on its
// own: its header is enough to check its checkpoints and go on.
func TestRotatedFileOpensAlone(t *testing.T) {
	key := writerKey(t, "test.example/audit")
	dir := t.TempDir()
	o, _ := testOptions(t, dir, key)
	o.RotateSize = 3000
	l := mustOpen(t, o)
	appendN(t, l, "a", 40)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c := checkLog(t, o.Path, key)
	if len(c.files) < 3 {
		t.Fatalf("%d files", len(c.files))
	}
	// The middle file, copied as the active file of another log.
	mid, err := os.ReadFile(c.files[1])
	if err != nil {
		t.Fatal(err)
	}
	o2, _ := testOptions(t, t.TempDir(), key)
	writeFile(t, o2.Path, mid)
	l2 := mustOpen(t, o2)
	appendN(t, l2, "b", 1)
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	l2 = mustOpen(t, o2)
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
}
