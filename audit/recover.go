package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// recover makes the writer's file: it continues Path, or when Path is
// missing the last rotated file (a crash between rotation's renames), or
// else starts a new log.
func (l *Log) recover() error {
	fi, err := os.Lstat(l.path)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return fmt.Errorf("audit: %s is not a regular file", l.path)
	case err == nil && fi.Size() > 0:
		return l.continueFile(l.path)
	case err != nil && !os.IsNotExist(err):
		return fmt.Errorf("audit: %w", err)
	}
	// Path is missing (or empty: made by something else).
	rotated, err := rotatedFiles(l.path)
	if err != nil {
		return fmt.Errorf("audit: list the log's rotated files: %w", err)
	}
	if len(rotated) > 0 {
		last := rotated[len(rotated)-1]
		l.logger.Warn("audit log file is missing: continuing the log from its last rotated file (a crash while rotating?)", "path", l.path, "from", last)
		if err := l.continueFile(last); err != nil {
			return err
		}
		return l.rotate()
	}
	if l.origin == "" {
		l.origin = l.host + "/knhk-audit"
	}
	f, size, err := createFile(l.path+".new", header{Format: formatVersion, Origin: l.origin})
	if err != nil {
		return err
	}
	if err := os.Rename(l.path+".new", l.path); err != nil {
		f.Close()
		return fmt.Errorf("audit: create %s: %w", l.path, err)
	}
	if err := syncDir(l.path); err != nil {
		f.Close()
		return newUnavailable("syncing the directory of", l.path, err)
	}
	l.w = writer{f: f, curPath: l.path, size: size, tree: newTree(false)}
	return nil
}

// lineProbe is what Open reads of each line.
type lineProbe struct {
	Format     *string   `json:"knhk_audit"`
	Seq        *int64    `json:"seq"`
	Checkpoint *string   `json:"checkpoint"`
	Prev       string    `json:"prev"`
	Time       time.Time `json:"time"`
}

// scanned is a checkpoint Open has read.
type scanned struct {
	note string
	size int64
	line int
	err  error // why its signature does not verify with the log's key
}

// continueFile reads the log file p to continue it: the writer's tree is
// rebuilt from its header and records, every checkpoint's root is
// checked, and the last checkpoint's signature. A torn last line is cut
// off; records after the last checkpoint are sealed at once.
func (l *Log) continueFile(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("audit: open the log: %w", err)
	}
	l.w.f, l.w.curPath = f, p
	altered := func(line int, format string, args ...any) error {
		return fmt.Errorf("%w: %s line %d: %s; run 'knhk-host audit verify --log %s' for details, and move the log's files aside to start a new log",
			ErrAltered, p, line, fmt.Sprintf(format, args...), p)
	}
	verifiers := note.VerifierList(l.key.Verifier)

	var (
		h       header
		t       *tree       // the tree up to the last checkpoint read
		pending []tlog.Hash // leaves of the records after it
		next    int64       // the next record's seq
		prev    tlog.Hash   // the last record's leaf hash
		last    scanned
		opened  time.Time
		off     int64 // the offset of the line being read
		n       int   // its line number
	)
	// checkpoint checks the checkpoint msg read at line n, folding the
	// pending leaves it covers into t.
	checkpoint := func(msg string) error {
		text, verr := openCheckpoint(msg, verifiers)
		if text == "" {
			return altered(n, "a checkpoint is not a validly signed note: %v", verr)
		}
		origin, size, root, err := parseCheckpointText(text)
		switch {
		case err != nil:
			return altered(n, "a checkpoint's text is malformed: %v", err)
		case origin != h.Origin:
			return altered(n, "a checkpoint names origin %q, not the log's %q", origin, h.Origin)
		case size < t.size:
			return altered(n, "a checkpoint covers %d records, fewer than the one before it (%d)", size, t.size)
		case size > next:
			return altered(n, "a checkpoint covers %d records, but only %d precede it: records were removed", size, next)
		}
		k := size - t.size
		for _, leaf := range pending[:k] {
			if err := t.append(leaf); err != nil {
				return fmt.Errorf("audit: rebuilding the tree: %w", err)
			}
		}
		pending = append(pending[:0], pending[k:]...)
		got, err := t.root()
		if err != nil {
			return fmt.Errorf("audit: rebuilding the tree: %w", err)
		}
		if got != root {
			return altered(n, "the checkpoint of %d records does not match them: a record before it was changed", size)
		}
		last = scanned{note: msg, size: size, line: n, err: verr}
		return nil
	}

	r := bufio.NewReaderSize(f, 1<<16)
	var scratch []byte
	for {
		line, rerr := readLine(r, &scratch)
		if rerr != nil && rerr != io.EOF {
			return fmt.Errorf("audit: read %s: %w", p, rerr)
		}
		if len(line) == 0 {
			break
		}
		n++
		complete := line[len(line)-1] == '\n'
		body := bytes.TrimSuffix(line, []byte("\n"))
		_, perr := r.Peek(1)
		isLast := perr == io.EOF
		var pr lineProbe
		if complete && !isLast && n > 1 && !opened.IsZero() {
			// Most lines: no decoding. A garbled one fails the hash chain
			// (the next record's prev) or a checkpoint's root; the last
			// line is decoded, to tell a torn one.
			pr.Seq, pr.Prev = writerRecord(body)
		}
		if pr.Seq == nil && (!complete || json.Unmarshal(body, &pr) != nil || pr.Format == nil && pr.Seq == nil && pr.Checkpoint == nil) {
			if !isLast || n == 1 {
				return altered(n, "the line is not a record, checkpoint or header")
			}
			if err := l.cutTornTail(p, off, body); err != nil {
				return err
			}
			break
		}
		switch {
		case n == 1:
			if pr.Format == nil {
				return fmt.Errorf("audit: %s is not a knhk audit log (its first line is not a header)", p)
			}
			if err := json.Unmarshal(body, &h); err != nil || h.Format != formatVersion || h.Origin == "" || h.Start < 0 {
				return fmt.Errorf("audit: %s has a header this knhk does not read (format %q)", p, h.Format)
			}
			if l.origin != "" && l.origin != h.Origin {
				return fmt.Errorf("audit: %s is the log %q, not %q (Options.Origin): leave origin unset to continue it, or move its files aside to start a new log", p, h.Origin, l.origin)
			}
			if h.Start == 0 {
				t = newTree(false)
			} else {
				if h.Last == nil || h.Checkpoint == "" {
					return altered(n, "the header of a file that continues a log lacks its last hash or checkpoint")
				}
				if t, err = resumeTree(h.Start, h.Frontier, *h.Last, false); err != nil {
					return altered(n, "%v", err)
				}
				prev = *h.Last
			}
			next = h.Start
			if h.Checkpoint != "" {
				if err := checkpoint(h.Checkpoint); err != nil {
					return err
				}
			}
		case pr.Format != nil:
			return altered(n, "a header in the middle of the file")
		case pr.Seq != nil:
			if *pr.Seq != next {
				return altered(n, "record seq %d where %d was expected: records were removed, reordered or inserted", *pr.Seq, next)
			}
			if next > 0 && pr.Prev != hashString(prev) {
				return altered(n, "record %d does not chain to record %d (its prev hash differs): one of them was changed", next, next-1)
			}
			if opened.IsZero() {
				opened = pr.Time
			}
			prev = leafHash(body)
			pending = append(pending, prev)
			next++
		default:
			if err := checkpoint(*pr.Checkpoint); err != nil {
				return err
			}
		}
		off += int64(len(line))
	}
	if n == 0 {
		return fmt.Errorf("audit: %s is empty", p)
	}
	for _, leaf := range pending {
		if err := t.append(leaf); err != nil {
			return fmt.Errorf("audit: rebuilding the tree: %w", err)
		}
	}
	if last.err != nil {
		return fmt.Errorf("%w: %s line %d: its last checkpoint %v (%s+%08x): it was forged, or the checkpoint key was changed; check the log with 'knhk-host audit verify --log %s --key OLD-KEY' and move its files aside to start a new log",
			ErrAltered, p, last.line, last.err, l.key.Verifier.Name(), l.key.Verifier.KeyHash(), p)
	}
	l.origin = h.Origin
	l.w.tree, l.w.start, l.w.size, l.w.opened = t, h.Start, off, opened
	l.w.ckptSize, l.w.ckptNote = last.size, last.note
	if unsealed := t.size - last.size; unsealed > 0 {
		l.logger.Warn("audit log has records after its last checkpoint (its writer stopped without a final one: a crash?); sealing them now",
			"path", p, "records", unsealed)
		if err := l.seal(); err != nil {
			return err
		}
	}
	return nil
}

// cutTornTail cuts off the torn last line at off of file p.
func (l *Log) cutTornTail(p string, off int64, body []byte) error {
	if err := l.w.f.Truncate(off); err != nil {
		return newUnavailable("cutting a torn line off", p, err)
	}
	if err := l.w.f.Sync(); err != nil {
		return newUnavailable("syncing", p, err)
	}
	if len(bytes.Trim(body, " ")) == 0 {
		l.logger.Warn("audit log: dropped a readiness probe left at the end by a writer that crashed", "path", p, "bytes", len(body))
	} else {
		l.logger.Warn("audit log: dropped a torn record at the end, written by a writer that crashed; no caller got its result", "path", p, "bytes", len(body))
	}
	return nil
}

// writerRecord reads seq and prev from a record line in the shape the
// writer makes, {"seq":N,...} with "prev":"..." last (when N > 0); seq
// is nil for any other line, which is then decoded in full.
func writerRecord(line []byte) (seq *int64, prev string) {
	rest, ok := bytes.CutPrefix(line, []byte(`{"seq":`))
	if !ok {
		return nil, ""
	}
	var n int64
	digits := 0
	for ; digits < len(rest) && digits < 18 && '0' <= rest[digits] && rest[digits] <= '9'; digits++ {
		n = n*10 + int64(rest[digits]-'0')
	}
	if digits == 0 || digits == len(rest) || rest[digits] != ',' || digits > 1 && rest[0] == '0' {
		return nil, ""
	}
	if n == 0 {
		return &n, ""
	}
	const prevKey, b64 = `,"prev":"`, 44
	end := len(line) - len(`"}`)
	if end-b64-len(prevKey) < 0 || string(line[end:]) != `"}` || string(line[end-b64-len(prevKey):end-b64]) != prevKey {
		return nil, ""
	}
	return &n, string(line[end-b64 : end])
}

// readLine reads a line with its newline (without one at the end of
// the file). The line is valid until the next call.
func readLine(r *bufio.Reader, scratch *[]byte) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return line, err
	}
	buf := append((*scratch)[:0], line...)
	for err == bufio.ErrBufferFull {
		line, err = r.ReadSlice('\n')
		buf = append(buf, line...)
	}
	*scratch = buf
	return buf, err
}

// openCheckpoint opens a checkpoint note. text is its text when it is a
// well-formed note validly signed, by the log's key or by another (verr
// then says which); empty when it is malformed or its signature by the
// log's key is invalid.
func openCheckpoint(msg string, v note.Verifiers) (text string, verr error) {
	n, err := note.Open([]byte(msg), v)
	if err == nil {
		return n.Text, nil
	}
	var unverified *note.UnverifiedNoteError
	if errors.As(err, &unverified) {
		var by []string
		for _, s := range unverified.Note.UnverifiedSigs {
			by = append(by, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
		}
		return unverified.Note.Text, fmt.Errorf("is signed by %s, not by the log's checkpoint key", strings.Join(by, ", "))
	}
	return "", err
}
