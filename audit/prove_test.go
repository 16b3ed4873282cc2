package audit

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// checkProof checks a proof as its reader would: the checkpoint's
// signature, its tree against TreeSize and Root, the leaf against the
// line, and the hashes with tlog.CheckRecord.
func checkProof(t *testing.T, p *Proof, v note.Verifier) {
	t.Helper()
	n, err := note.Open([]byte(p.Checkpoint), note.VerifierList(v))
	if err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	_, size, root, err := parseCheckpointText(n.Text)
	if err != nil || size != p.TreeSize || hashString(root) != p.Root {
		t.Fatalf("checkpoint %q does not say tree %d root %s (%v)", n.Text, p.TreeSize, p.Root, err)
	}
	leaf := tlog.RecordHash([]byte(p.Line))
	if hashString(leaf) != p.LeafHash {
		t.Fatalf("leaf hash %s, line hashes to %s", p.LeafHash, hashString(leaf))
	}
	hs := make(tlog.RecordProof, len(p.Hashes))
	for i, s := range p.Hashes {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != tlog.HashSize {
			t.Fatalf("hash %q", s)
		}
		copy(hs[i][:], b)
	}
	if err := tlog.CheckRecord(hs, size, root, p.Record.Seq, leaf); err != nil {
		t.Fatalf("record %d in tree %d: %v", p.Record.Seq, size, err)
	}
	// The proof is of this record, and not of another.
	if p.Record.Seq+1 < size {
		if err := tlog.CheckRecord(hs, size, root, p.Record.Seq+1, leaf); err == nil {
			t.Fatal("the proof checks for the next record too")
		}
	}
}

func TestProve(t *testing.T) {
	k := testKey(t, "test.example/audit")
	path := writeLog(t, t.TempDir(), logSpec{records: 200, checkpoint: 7, rotateSize: 8 << 10, key: k})
	files, err := Files(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []int64{0, 1, 6, 7, 100, 198, 199} {
		p, err := Prove(files, seq)
		if err != nil {
			t.Fatalf("record %d: %v", seq, err)
		}
		if p.Record.Seq != seq || p.Record.Principal != testRecord(int(seq), p.Record.Time).Principal {
			t.Fatalf("record %d: got %+v", seq, p.Record)
		}
		// The first checkpoint that covers it: every 7 records, and at
		// each rotation and at Close.
		if p.TreeSize <= seq || p.TreeSize > (seq/7+1)*7 {
			t.Errorf("record %d proved in a tree of %d", seq, p.TreeSize)
		}
		checkProof(t, p, k.Verifier)
	}
	// From the last file alone, for a record it holds.
	last := files[len(files)-1]
	p, err := Prove([]string{last}, 199)
	if err != nil {
		t.Fatal(err)
	}
	checkProof(t, p, k.Verifier)
	if _, err := Prove([]string{last}, 0); !errors.Is(err, ErrRecordNotFound) || !strings.Contains(err.Error(), "rotated files") {
		t.Errorf("a record in an older file: %v", err)
	}
	for _, seq := range []int64{200, -1} {
		if _, err := Prove(files, seq); !errors.Is(err, ErrRecordNotFound) {
			t.Errorf("record %d: %v", seq, err)
		}
	}
}

func TestProveUnsealedAndAltered(t *testing.T) {
	k := testKey(t, "test.example/audit")
	path := writeLog(t, t.TempDir(), logSpec{records: 25, checkpoint: 10, key: k, noClose: true})
	if _, err := Prove([]string{path}, 22); err == nil || !strings.Contains(err.Error(), "not covered by a checkpoint yet") {
		t.Errorf("unsealed record: %v", err)
	}
	p, err := Prove([]string{path}, 12)
	if err != nil {
		t.Fatal(err)
	}
	checkProof(t, p, k.Verifier)

	lines := readLines(t, path)
	i := recordLine(t, lines, 3)
	lines[i] = strings.Replace(lines[i], "unix:uid=", "unix:uid=9", 1)
	writeLines(t, path, lines)
	if _, err := Prove([]string{path}, 5); !errors.Is(err, ErrAltered) || !strings.Contains(err.Error(), "audit verify") {
		t.Errorf("altered log: %v", err)
	}
}
