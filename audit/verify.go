package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Kinds of Problem.
const (
	// ProblemChanged: a record's bytes differ from what was written
	// (Problem.Seq names it).
	ProblemChanged = "changed"
	// ProblemRemoved: records are missing (Seq is the first).
	ProblemRemoved = "removed"
	// ProblemReordered: a record is out of place, or a copy.
	ProblemReordered = "reordered"
	// ProblemUnsealed: records follow the last checkpoint (Seq is the
	// first): appended after the log was closed, or the log was cut
	// short after them, or its writer is still running or crashed.
	ProblemUnsealed = "unsealed"
	// ProblemTorn: a file ends in a partial line.
	ProblemTorn = "torn"
	// ProblemMalformed: a line that is no record, checkpoint or header,
	// or a header that cannot be read.
	ProblemMalformed = "malformed"
	// ProblemBadCheckpoint: a checkpoint that is not signed by the
	// verifier's key, whose signature does not verify, with another
	// origin, older than one before it, or replaced.
	ProblemBadCheckpoint = "bad_checkpoint"
	// ProblemRootMismatch: the records do not hash to a checkpoint's root.
	ProblemRootMismatch = "root_mismatch"
	// ProblemTruncated: a checkpoint covers more records than the log holds.
	ProblemTruncated = "truncated"
	// ProblemChain: a file does not continue the one before it.
	ProblemChain = "chain"
)

// maxProblems bounds Report.Problems; Report.Omitted counts the rest.
const maxProblems = 1000

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// AllowUnsealed accepts records after the last checkpoint, and a
	// partial last line: the tail of a log whose writer is running, which
	// its next checkpoint will seal. Report.Unsealed still counts them.
	AllowUnsealed bool
}

// Report is what Verify found.
type Report struct {
	// Files are the files verified, in order.
	Files []string `json:"files"`
	// Records counts the record lines read.
	Records int64 `json:"records"`
	// Checkpoints counts the checkpoint lines whose signature verified.
	Checkpoints int `json:"checkpoints"`
	// TreeSize and Root are those of the last checkpoint that verified
	// (including one in a file's header): what the log's key has sealed.
	TreeSize int64  `json:"tree_size"`
	Root     string `json:"root,omitempty"`
	// Unsealed counts the records after the last checkpoint.
	Unsealed int64 `json:"unsealed"`
	// Problems is empty when the log is intact. They come in the order
	// of the lines they name, except that unsealed records, found at the
	// end, come last; Problems[0] is the first thing wrong.
	Problems []Problem `json:"problems"`
	// Omitted counts problems left out of Problems after the first
	// thousand.
	Omitted int64 `json:"omitted,omitempty"`
}

// Intact reports whether Verify found no problem.
func (r *Report) Intact() bool { return len(r.Problems) == 0 }

// Problem is one thing wrong with a log.
type Problem struct {
	// File and Line (from 1) are where it is.
	File string `json:"file"`
	Line int    `json:"line"`
	// Seq is the record it names, or -1.
	Seq int64 `json:"seq"`
	// Kind is one of the Problem* constants.
	Kind string `json:"kind"`
	// Detail says what was found and what it means.
	Detail string `json:"detail"`
}

// String is the problem on one line: file:line: kind (record N): detail.
func (p Problem) String() string {
	rec := ""
	if p.Seq >= 0 {
		rec = fmt.Sprintf(" (record %d)", p.Seq)
	}
	return fmt.Sprintf("%s:%d: %s%s: %s", p.File, p.Line, p.Kind, rec, p.Detail)
}

// Verify checks the log in paths (oldest file first, as Files lists
// them) against the checkpoint key v: it recomputes the Merkle tree of
// the records, checks every checkpoint's signature, origin and root and
// the consistency between checkpoints, follows the Prev link of each
// record to the one before, and checks that each file continues the one
// before it. The first file may start after record 0 (older files
// archived): its header's checkpoint, signed by v, vouches for what came
// before.
//
// Tampering is reported in Report.Problems, naming the first record
// changed, removed, reordered or appended after the last checkpoint; the
// error is only for files that cannot be read. Verify holds the tree's
// hashes in memory, and one file's lines while it checks them: a few
// hundred bytes per record.
func Verify(paths []string, v note.Verifier, o VerifyOptions) (*Report, error) {
	if v == nil {
		return nil, errors.New("verify the audit log: no checkpoint verifier key")
	}
	if len(paths) == 0 {
		return nil, errors.New("verify the audit log: no files")
	}
	w := &walker{
		verifiers: note.VerifierList(v),
		key:       fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash()),
		opts:      o,
		rep:       &Report{Files: paths, Problems: []Problem{}},
		misplaced: map[int64]bool{},
		seen:      map[string]bool{},
		firstBad:  -1,
	}
	for i, path := range paths {
		w.file, w.lastFile = path, i == len(paths)-1
		var es []entry
		err := eachFileLine(path, func(num int, line []byte, complete bool) error {
			es = append(es, parseEntry(num, line, complete))
			return nil
		})
		if err != nil {
			return nil, err
		}
		if err := w.walk(es); err != nil {
			return nil, err
		}
	}
	w.finish()
	return w.rep, nil
}

// entry is one line of a file, as much of it as verifying needs.
type entry struct {
	line     int
	kind     lineKind
	complete bool // ended with a newline

	// Records (and malformed lines that may be records).
	seq    int64
	hasSeq bool
	leaf   tlog.Hash
	prev   string
	prevOK bool // prev was read from a valid record

	text      string  // a checkpoint's signed note
	hdr       *header // a header
	looksCkpt bool    // a malformed line that starts as a checkpoint does
}

func parseEntry(num int, line []byte, complete bool) entry {
	e := entry{line: num, complete: complete, kind: kindBad}
	if complete {
		e.kind = kindOf(line)
	}
	switch e.kind {
	case kindHeader:
		var h header
		if json.Unmarshal(line, &h) == nil {
			e.hdr = &h
		} else {
			e.kind = kindBad
		}
	case kindRecord:
		var r struct {
			Seq  int64  `json:"seq"`
			Prev string `json:"prev"`
		}
		if json.Unmarshal(line, &r) == nil {
			e.seq, e.hasSeq, e.prev, e.prevOK = r.Seq, true, r.Prev, true
		} else {
			e.kind = kindBad
		}
	case kindCheckpoint:
		var c checkpointLine
		if json.Unmarshal(line, &c) == nil {
			e.text = c.Checkpoint
		} else {
			e.kind = kindBad
		}
	}
	if e.kind == kindBad {
		e.seq, e.hasSeq = seqPrefix(line)
		e.looksCkpt = bytes.HasPrefix(line, []byte(`{"checkpoint"`))
	}
	e.leaf = leafHash(line)
	return e
}

// walker is Verify's state across the files of a log.
type walker struct {
	verifiers note.Verifiers
	key       string // the verifier key's name+hash, for messages
	opts      VerifyOptions
	rep       *Report

	file     string // the file being walked
	lastFile bool

	started  bool
	origin   string
	tree     *tree
	next     int64          // the seq the next record should have
	last     *prevRecord    // the record before (or a header's Last)
	good     *sealed        // the last checkpoint whose signature verified
	lastText string         // the last checkpoint line's note, for the next file's header
	tail     []tailRecord   // records at or after good's size
	missing  []missingRange // removed records that may yet turn up
	// misplaced are records seen before their place; the walk skips
	// their seq when it gets there.
	misplaced map[int64]bool
	// mismatched are root_mismatch problems no later checkpoint has
	// explained; oversized are checkpoints that covered more records
	// than came before them.
	mismatched []int
	oversized  []oversize
	seen       map[string]bool // record problems already reported
	firstBad   int64           // the smallest seq a record problem named, or -1
}

type prevRecord struct {
	seq    int64
	leaf   tlog.Hash
	file   string
	line   int
	header bool // the Last of the first file's header
}

type sealed struct {
	size    int64
	root    tlog.Hash
	file    string
	line    int
	matched bool // its root is the recomputed tree's
}

type tailRecord struct {
	pos  int64
	seq  int64
	file string
	line int
}

type missingRange struct {
	lo, hi  int64 // seqs lo..hi-1
	problem int
}

type oversize struct {
	problem int
	size    int64
}

// add appends a problem and returns its index, or -1 when it repeats one
// about the same record or the list is full.
func (w *walker) add(p Problem) int {
	switch p.Kind {
	case ProblemChanged, ProblemRemoved, ProblemReordered:
		k := fmt.Sprintf("%s/%d", p.Kind, p.Seq)
		if w.seen[k] {
			return -1
		}
		w.seen[k] = true
		if w.firstBad < 0 || p.Seq < w.firstBad {
			w.firstBad = p.Seq
		}
	}
	if len(w.rep.Problems) >= maxProblems {
		w.rep.Omitted++
		return -1
	}
	w.rep.Problems = append(w.rep.Problems, p)
	return len(w.rep.Problems) - 1
}

// at is a problem at a line of the file being walked.
func (w *walker) at(line int, seq int64, kind, format string, args ...any) int {
	return w.add(Problem{File: w.file, Line: line, Seq: seq, Kind: kind, Detail: fmt.Sprintf(format, args...)})
}

func (w *walker) patch(i int, kind string, seq int64, detail string) {
	if i >= 0 {
		p := &w.rep.Problems[i]
		p.Kind, p.Seq, p.Detail = kind, seq, detail
	}
}

// nextRecord is the index of the first valid record after es[i], or -1.
func nextRecord(es []entry, i int) int {
	for j := i + 1; j < len(es); j++ {
		if es[j].kind == kindRecord {
			return j
		}
	}
	return -1
}

// walk checks one file's lines.
func (w *walker) walk(es []entry) error {
	if len(es) == 0 {
		if !(w.lastFile && w.opts.AllowUnsealed) {
			w.at(1, -1, ProblemMalformed, "the file is empty: it has no header")
		}
		return nil
	}
	from := 0
	if es[0].kind == kindHeader && es[0].complete {
		if !w.header(es[0].hdr) {
			return nil
		}
		from = 1
	} else {
		w.at(1, -1, ProblemMalformed, "the first line is not a knhk audit log header")
		if !w.started {
			w.started, w.tree = true, newTree(true)
		}
	}
	for i := from; i < len(es); i++ {
		e := &es[i]
		switch {
		case !e.complete:
			if w.lastFile && w.opts.AllowUnsealed {
				continue // being written
			}
			seq := int64(-1)
			if e.hasSeq {
				seq = e.seq
			}
			w.at(e.line, seq, ProblemTorn, "the file ends in a partial line (no newline): its writer crashed mid-write, or the file was cut short")
		case e.kind == kindRecord:
			if err := w.record(es, i); err != nil {
				return err
			}
		case e.kind == kindCheckpoint:
			w.checkpoint(es, i)
		case e.kind == kindHeader:
			w.at(e.line, -1, ProblemMalformed, "a header in the middle of the file: lines were inserted or files joined")
		case e.looksCkpt:
			w.at(e.line, -1, ProblemBadCheckpoint, "the checkpoint line is not valid JSON: it was altered")
		default:
			w.skipMisplaced()
			if !e.hasSeq {
				// A record altered where its seq is, or a line inserted:
				// the next record's seq tells which.
				if n := nextRecord(es, i); n >= 0 && es[n].seq == w.next {
					w.at(e.line, -1, ProblemMalformed, "the line is neither a record nor a checkpoint (not valid JSON, or its keys were altered): it was inserted or altered")
					continue
				}
				e.seq, e.hasSeq = w.next, true
			}
			w.at(e.line, e.seq, ProblemChanged, "the line is not a valid record (not valid JSON, or its fields were altered): record %d was changed", e.seq)
			if err := w.record(es, i); err != nil {
				return err
			}
		}
	}
	return nil
}

// header checks a file's header and sets the walk up for its records.
// It returns false when the rest of the file cannot be checked.
func (w *walker) header(h *header) bool {
	if h.Format != formatVersion {
		w.at(1, -1, ProblemMalformed, "the header's format %q is not one this verifier reads (%s)", h.Format, formatVersion)
		return false
	}
	if !w.started {
		w.origin = h.Origin
		if h.Start == 0 {
			w.started, w.tree = true, newTree(true)
			return true
		}
		if h.Start < 0 || h.Last == nil {
			w.at(1, -1, ProblemMalformed, "the header of a file that starts at record %d has no last record hash", h.Start)
			return false
		}
		t, err := resumeTree(h.Start, h.Frontier, *h.Last, true)
		if err != nil {
			w.at(1, -1, ProblemMalformed, "the header's tree: %v", err)
			return false
		}
		w.started, w.tree, w.next = true, t, h.Start
		w.last = &prevRecord{seq: h.Start - 1, leaf: *h.Last, file: w.file, line: 1, header: true}
		w.headerCheckpoint(h)
		return true
	}
	if h.Origin != w.origin {
		w.at(1, -1, ProblemChain, "the header's origin %q is not the log's, %q: this file belongs to another log", h.Origin, w.origin)
	}
	if h.Start != w.tree.size {
		w.at(1, min(h.Start, w.tree.size), ProblemChain, "the file starts at record %d, but the files before it end at record %d: files are missing, repeated or out of order", h.Start, w.tree.size-1)
		return true
	}
	fr, err := w.tree.frontier()
	if err != nil || !slices.Equal(fr, h.Frontier) {
		w.at(1, -1, ProblemChain, "the header's tree hashes are not those of the records before it: the file does not continue the one before")
	}
	if h.Last == nil || *h.Last != w.tree.last {
		w.at(1, -1, ProblemChain, "the header's last record hash is not that of the record before it: the file does not continue the one before")
	}
	if h.Checkpoint != w.lastText {
		w.at(1, -1, ProblemChain, "the header's checkpoint is not the last checkpoint of the file before: the file does not continue it")
	}
	w.headerCheckpoint(h)
	return true
}

// headerCheckpoint checks the checkpoint a header carries: signed by the
// key, at the file's start, and the root of the tree there.
func (w *walker) headerCheckpoint(h *header) {
	if h.Checkpoint == "" {
		w.at(1, -1, ProblemMalformed, "the header of a file that starts at record %d has no checkpoint", h.Start)
		return
	}
	size, root, bad := w.openCheckpoint(h.Checkpoint)
	switch {
	case bad != "":
		w.at(1, -1, ProblemBadCheckpoint, "the header's checkpoint: %s", bad)
	case size != h.Start:
		w.at(1, -1, ProblemBadCheckpoint, "the header's checkpoint covers %d records, not the %d before the file", size, h.Start)
	default:
		r, err := w.tree.root()
		if err != nil || r != root {
			w.at(1, -1, ProblemBadCheckpoint, "the header's tree hashes do not match its checkpoint's root: the header was altered")
			return
		}
		w.seal(size, root, 1, true)
	}
}

// openCheckpoint checks a checkpoint's signature and origin and reads
// it; bad says what is wrong.
func (w *walker) openCheckpoint(text string) (size int64, root tlog.Hash, bad string) {
	n, err := note.Open([]byte(text), w.verifiers)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			var keys []string
			for _, s := range unverified.Note.UnverifiedSigs {
				keys = append(keys, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
			}
			return 0, root, fmt.Sprintf("signed by %s, not by the verifier key %s: forged with another key, or this log is checked with the wrong key", strings.Join(keys, ", "), w.key)
		case errors.As(err, &invalid):
			return 0, root, fmt.Sprintf("the signature of %s does not verify: the checkpoint was altered or forged", w.key)
		}
		return 0, root, fmt.Sprintf("not a signed note (%v): the checkpoint was altered", err)
	}
	origin, size, root, err := parseCheckpointText(n.Text)
	if err != nil {
		return 0, root, fmt.Sprintf("not a tlog checkpoint: %v", err)
	}
	if w.origin == "" {
		w.origin = origin // the header was unreadable
	}
	if origin != w.origin {
		return 0, root, fmt.Sprintf("its origin %q is not the log's, %q: a checkpoint of another log", origin, w.origin)
	}
	return size, root, ""
}

// seal makes a checkpoint that verified the last one.
func (w *walker) seal(size int64, root tlog.Hash, line int, matched bool) {
	w.good = &sealed{size: size, root: root, file: w.file, line: line, matched: matched}
	k := 0
	for k < len(w.tail) && w.tail[k].pos < size {
		k++
	}
	w.tail = w.tail[k:]
}

// checkpoint checks a checkpoint line (es[i]).
func (w *walker) checkpoint(es []entry, i int) {
	line, text := es[i].line, es[i].text
	w.lastText = text
	size, root, bad := w.openCheckpoint(text)
	if bad != "" {
		w.at(line, -1, ProblemBadCheckpoint, "%s", bad)
		return
	}
	w.rep.Checkpoints++
	prev := w.good
	if prev != nil && size < prev.size {
		w.at(line, -1, ProblemBadCheckpoint, "it covers %d records, fewer than the checkpoint at %s:%d (%d): an old checkpoint was put after a newer one", size, prev.file, prev.line, prev.size)
		return
	}
	if size > w.tree.size {
		if w.firstBad >= 0 && w.firstBad < size {
			// Explained by a record found missing or out of place.
			w.at(line, w.firstBad, ProblemRemoved, "the checkpoint covers %d records, but only %d come before it: record %d is missing or out of place (see above)", size, w.tree.size, w.firstBad)
		} else {
			i := w.at(line, w.tree.size, ProblemRemoved, "the checkpoint covers %d records, but only %d come before it: records from %d on were removed", size, w.tree.size, w.tree.size)
			w.oversized = append(w.oversized, oversize{problem: i, size: size})
		}
		w.seal(size, root, line, false)
		return
	}
	r, err := tlog.TreeHash(size, w.tree)
	if err != nil || r != root {
		// The record before the checkpoint may be the one changed: its
		// link to the record after the checkpoint says so. Check it now,
		// so that the change is named first.
		if j := nextRecord(es, i); j >= 0 && w.last != nil && !w.last.header && es[j].seq == w.last.seq+1 {
			w.link(es, j)
		}
		w.mismatch(line, size)
		w.seal(size, root, line, false)
		return
	}
	// The records up to size are what the key sealed, so a checkpoint
	// before this one that did not match them was replaced.
	for _, i := range w.mismatched {
		w.patch(i, ProblemBadCheckpoint, -1, fmt.Sprintf("its root does not match the records before it, but the later checkpoint at %s:%d, which covers them too, does: this checkpoint was replaced", w.file, line))
	}
	w.mismatched = nil
	if prev != nil && prev.matched && prev.size > 0 && prev.size < size {
		// Consistency: the older tree is a prefix of this one.
		if p, err := tlog.ProveTree(size, prev.size, w.tree); err == nil {
			if err := tlog.CheckTree(p, size, root, prev.size, prev.root); err != nil {
				w.at(line, -1, ProblemRootMismatch, "the checkpoint is not consistent with the one at %s:%d: %v", prev.file, prev.line, err)
			}
		}
	}
	w.seal(size, root, line, true)
}

// mismatch reports a checkpoint whose root is not the records'.
func (w *walker) mismatch(line int, size int64) {
	if p := w.good; p != nil && p.matched && p.size == size {
		w.at(line, -1, ProblemBadCheckpoint, "it covers the same %d records as the checkpoint at %s:%d, with another root: it was replaced", size, p.file, p.line)
		return
	}
	if w.firstBad >= 0 && w.firstBad < size {
		i := w.at(line, w.firstBad, ProblemRootMismatch, "the records before it do not hash to its root: record %d is changed, missing or out of place (see above)", w.firstBad)
		w.mismatched = append(w.mismatched, i)
		return
	}
	from := int64(0)
	if w.good != nil {
		from = w.good.size
	}
	where := ""
	for _, t := range w.tail {
		if t.pos == size-1 {
			where = fmt.Sprintf(" (%s:%d)", t.file, t.line)
		}
	}
	i := w.at(line, size-1, ProblemRootMismatch,
		"the records before it do not hash to its root, though each one's prev links it to the one before: record %d%s was changed (only a checkpoint seals the last record before it), or records %d..%d were rewritten together, or the checkpoint was replaced",
		size-1, where, from, size-1)
	w.mismatched = append(w.mismatched, i)
}

// skipMisplaced moves the expected seq past records already met early.
func (w *walker) skipMisplaced() {
	for w.misplaced[w.next] {
		delete(w.misplaced, w.next)
		w.next++
	}
}

// record checks a record (es[i]) and adds it to the tree.
func (w *walker) record(es []entry, i int) error {
	e := &es[i]
	pos := w.tree.size
	w.order(es, i)
	w.link(es, i)
	if err := w.tree.append(e.leaf); err != nil {
		return fmt.Errorf("verify %s:%d: %w", w.file, e.line, err)
	}
	w.last = &prevRecord{seq: e.seq, leaf: e.leaf, file: w.file, line: e.line}
	w.rep.Records++
	if w.good == nil || pos >= w.good.size {
		w.tail = append(w.tail, tailRecord{pos: pos, seq: e.seq, file: w.file, line: e.line})
	}
	return nil
}

// order checks that a record's seq follows the one before.
func (w *walker) order(es []entry, i int) {
	e := &es[i]
	s := e.seq
	w.skipMisplaced()
	switch {
	case s == w.next:
		w.next++
	case e.prevOK && w.last != nil && w.last.seq == w.next-1 && e.prev == hashString(w.last.leaf):
		// In its place (it links to the record before), but with
		// another seq: the seq itself was edited.
		w.at(e.line, w.next, ProblemChanged, "the line reads seq %d where record %d belongs, and its prev links it to record %d: record %d was changed", s, w.next, w.next-1, w.next)
		e.seq = w.next
		w.next++
	case s > w.next:
		if n := nextRecord(es, i); n >= 0 && es[n].seq < s {
			w.at(e.line, s, ProblemReordered, "record %d is at line %d, where record %d belongs: records are out of order", s, e.line, w.next)
			w.misplaced[s] = true
			return
		}
		what := fmt.Sprintf("record %d is", w.next)
		if s-w.next > 1 {
			what = fmt.Sprintf("records %d..%d are", w.next, s-1)
		}
		p := w.at(e.line, w.next, ProblemRemoved, "%s missing: line %d holds record %d after record %d", what, e.line, s, w.next-1)
		if p >= 0 {
			w.missing = append(w.missing, missingRange{lo: w.next, hi: s, problem: p})
		}
		w.next = s + 1
	default: // s < w.next
		for k, m := range w.missing {
			if s >= m.lo && s < m.hi && m.hi-m.lo == 1 {
				old := w.rep.Problems[m.problem]
				w.patch(m.problem, ProblemReordered, s, fmt.Sprintf("record %d is not in its place (before %s:%d): it is at %s:%d, after record %d", s, old.File, old.Line, w.file, e.line, w.last.seq))
				w.missing = slices.Delete(w.missing, k, k+1)
				return
			}
		}
		if w.last != nil && w.last.seq == s && w.last.leaf == e.leaf {
			w.at(e.line, s, ProblemReordered, "line %d repeats record %d (%s:%d): a copy", e.line, s, w.last.file, w.last.line)
			return
		}
		w.at(e.line, s, ProblemReordered, "record %d is at line %d, after record %d: a record out of order, or a copy", s, e.line, w.next-1)
	}
}

// link checks a record's Prev against the record before. A broken link
// means the record before changed, unless this record's own link to the
// next is broken too: then this one changed.
func (w *walker) link(es []entry, i int) {
	e := &es[i]
	if !e.prevOK || w.last == nil || w.last.seq != e.seq-1 || e.prev == hashString(w.last.leaf) {
		return
	}
	if n := nextRecord(es, i); n >= 0 && es[n].seq == e.seq+1 && es[n].prev != hashString(e.leaf) {
		w.at(e.line, e.seq, ProblemChanged, "its prev is not record %d's hash, and its own hash is not record %d's prev: record %d was changed", e.seq-1, e.seq+1, e.seq)
		return
	}
	if w.last.header {
		w.add(Problem{File: w.last.file, Line: 1, Seq: -1, Kind: ProblemChain, Detail: fmt.Sprintf("the header's last record hash is not record %d's prev (line %d): the header was altered", e.seq, e.line)})
		return
	}
	w.add(Problem{File: w.last.file, Line: w.last.line, Seq: w.last.seq, Kind: ProblemChanged,
		Detail: fmt.Sprintf("its hash is not the prev of record %d (%s:%d): record %d was changed", e.seq, w.file, e.line, w.last.seq)})
}

// finish reports what only the end of the log tells: records no
// checkpoint seals, and checkpoints that cover records the log lacks.
func (w *walker) finish() {
	total := int64(0)
	if w.tree != nil {
		total = w.tree.size
	}
	for _, o := range w.oversized {
		if o.problem >= 0 && total < o.size {
			w.patch(o.problem, ProblemTruncated, total, fmt.Sprintf("the checkpoint covers %d records, but the log holds %d: records from %d on were cut off", o.size, total, total))
		}
	}
	sealedSize := int64(0)
	if w.good != nil {
		sealedSize = w.good.size
		w.rep.TreeSize, w.rep.Root = w.good.size, hashString(w.good.root)
	}
	if total <= sealedSize {
		return
	}
	w.rep.Unsealed = total - sealedSize
	if w.opts.AllowUnsealed || len(w.tail) == 0 {
		return
	}
	t := w.tail[0]
	n := total - sealedSize
	what := fmt.Sprintf("%d records, from record %d on, are", n, t.seq)
	if n == 1 {
		what = fmt.Sprintf("record %d is", t.seq)
	}
	cover := "the log has no checkpoint"
	if w.good != nil {
		cover = fmt.Sprintf("not covered by the last checkpoint (%s:%d, of %d records)", w.good.file, w.good.line, w.good.size)
	}
	w.add(Problem{File: t.file, Line: t.line, Seq: t.seq, Kind: ProblemUnsealed,
		Detail: what + " " + cover + ": records were appended after the log was closed, or it was cut short after them, or its writer is still running or crashed (verify a live log allowing unsealed records)"})
}
