package audit

import (
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ErrRecordNotFound: the log's files do not hold the record asked for.
var ErrRecordNotFound = errors.New("no such record in the audit log")

// Proof is an inclusion proof of one record: with the checkpoint key's
// verifier key, anyone can check that the record is in the log the
// checkpoint seals, without the rest of the log (see Prove).
type Proof struct {
	// Record is the record, and Line its line as written (without the
	// newline): the leaf's bytes.
	Record Record `json:"record"`
	Line   string `json:"line"`
	// LeafHash is tlog.RecordHash(Line), base64.
	LeafHash string `json:"leaf_hash"`
	// TreeSize and Root are the checkpoint's tree: Root in base64.
	TreeSize int64  `json:"tree_size"`
	Root     string `json:"root"`
	// Checkpoint is the signed checkpoint (a C2SP signed note) whose
	// tree includes the record: the first one in the log that does.
	Checkpoint string `json:"checkpoint"`
	// Hashes is the proof: tlog.ProveRecord(TreeSize, Record.Seq), each
	// hash in base64. tlog.CheckRecord checks it against Root.
	Hashes []string `json:"hashes"`
}

// altered is an ErrAltered error: the log does not hold together.
func altered(format string, args ...any) error {
	return fmt.Errorf("%w: %s (run knhk-host audit verify to see what changed)", ErrAltered, fmt.Sprintf(format, args...))
}

// errStop ends a walk over a file's lines early.
var errStop = errors.New("stop")

// Prove makes the inclusion proof of record seq in the log in paths
// (oldest first, as Files lists them), against the first checkpoint that
// covers it. It does not check the checkpoint's signature (the proof's
// reader does, with the verifier key), but it does check that the
// checkpoint's root is the records' and that the proof checks; if not,
// the log was altered (ErrAltered) and Verify says where. A record not
// in the files is ErrRecordNotFound; one no checkpoint covers yet is an
// error too.
func Prove(paths []string, seq int64) (*Proof, error) {
	if len(paths) == 0 {
		return nil, errors.New("prove: no audit log files given")
	}
	if seq < 0 {
		return nil, fmt.Errorf("%w: record %d (records are numbered from 0)", ErrRecordNotFound, seq)
	}
	var (
		t     *tree
		first int64 // the first file's start
		proof *Proof
		leaf  tlog.Hash
		where string // the record's file:line
	)
	for _, path := range paths {
		err := eachFileLine(path, func(num int, line []byte, complete bool) error {
			if !complete {
				return nil // a torn last line: no record
			}
			k := kindOf(line)
			if num == 1 {
				var h header
				if k != kindHeader || json.Unmarshal(line, &h) != nil || h.Format != formatVersion {
					return altered("%s does not start with a knhk audit log header", path)
				}
				return proveHeader(&t, &first, h, path)
			}
			switch k {
			case kindRecord:
				if t.size == seq {
					var r Record
					if err := json.Unmarshal(line, &r); err != nil || r.Seq != seq {
						return altered("%s:%d is not record %d", path, num, seq)
					}
					leaf = leafHash(line)
					where = fmt.Sprintf("%s:%d", path, num)
					proof = &Proof{Record: r, Line: string(line), LeafHash: hashString(leaf)}
				}
				return t.append(leafHash(line))
			case kindCheckpoint:
				if proof == nil {
					return nil
				}
				return proveAt(proof, t, leaf, line, path, num)
			}
			return altered("%s:%d is neither a record nor a checkpoint", path, num)
		})
		if errors.Is(err, errStop) {
			return proof, nil
		}
		if err != nil {
			return nil, err
		}
	}
	switch {
	case t == nil:
		return nil, altered("%s has no header", paths[0])
	case proof != nil:
		return nil, fmt.Errorf("record %d (%s) is not covered by a checkpoint yet; the log writes one every checkpoint interval and when it closes", seq, where)
	case seq < first:
		return nil, fmt.Errorf("%w: record %d is in a file older than %s, which starts at record %d: pass the rotated files too", ErrRecordNotFound, seq, paths[0], first)
	}
	return nil, fmt.Errorf("%w: record %d; the log holds records %d..%d", ErrRecordNotFound, seq, first, t.size-1)
}

// proveHeader starts Prove's tree at the first file's header and checks
// that a later file's header continues it.
func proveHeader(t **tree, first *int64, h header, path string) error {
	if *t != nil {
		if h.Start != (*t).size {
			return altered("%s starts at record %d, not %d: the files do not follow each other", path, h.Start, (*t).size)
		}
		return nil
	}
	*first = h.Start
	if h.Start == 0 {
		*t = newTree(true)
		return nil
	}
	if h.Last == nil {
		return altered("%s: the header has no last record hash", path)
	}
	rt, err := resumeTree(h.Start, h.Frontier, *h.Last, true)
	if err != nil {
		return altered("%s: the header's tree: %v", path, err)
	}
	*t = rt
	return nil
}

// proveAt completes p against the checkpoint line if it covers the
// record, and returns errStop when it did.
func proveAt(p *Proof, t *tree, leaf tlog.Hash, line []byte, path string, num int) error {
	var c checkpointLine
	if err := json.Unmarshal(line, &c); err != nil {
		return altered("%s:%d: %v", path, num, err)
	}
	// The signature is the proof reader's to check; here only the text.
	var text string
	n, err := note.Open([]byte(c.Checkpoint), note.VerifierList())
	var unverified *note.UnverifiedNoteError
	switch {
	case errors.As(err, &unverified):
		text = unverified.Note.Text
	case err == nil:
		text = n.Text
	default:
		return altered("%s:%d: the checkpoint is not a signed note", path, num)
	}
	_, size, root, err := parseCheckpointText(text)
	if err != nil {
		return altered("%s:%d: %v", path, num, err)
	}
	seq := p.Record.Seq
	if size <= seq {
		return nil // an older checkpoint, written late
	}
	if size > t.size {
		return altered("%s:%d: the checkpoint covers %d records, but only %d come before it", path, num, size, t.size)
	}
	if r, err := tlog.TreeHash(size, t); err != nil || r != root {
		return altered("%s:%d: the records do not hash to the checkpoint's root", path, num)
	}
	hs, err := tlog.ProveRecord(size, seq, t)
	if err != nil {
		return fmt.Errorf("prove record %d in a tree of %d: %w", seq, size, err)
	}
	if err := tlog.CheckRecord(hs, size, root, seq, leaf); err != nil {
		return fmt.Errorf("the proof of record %d does not check: %w", seq, err)
	}
	p.TreeSize, p.Root, p.Checkpoint = size, hashString(root), c.Checkpoint
	p.Hashes = make([]string, len(hs))
	for i, h := range hs {
		p.Hashes[i] = hashString(h)
	}
	return errStop
}
