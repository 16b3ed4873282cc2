package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// rotatedDigits is the width of a rotated file's suffix: the seq of its
// first record, zero-padded, so that names sort in log order.
const rotatedDigits = 12

// maxLine bounds a line read into memory. Records are a few hundred
// bytes; a longer line is cut there, and so is malformed.
const maxLine = 1 << 20

// Files lists the files of the log at path, oldest first: the rotated
// files (path + "." + the 12-digit seq of their first record) in order,
// then path itself if it exists. It is what Verify, Prove and Scan take.
// A log with none of them is an error wrapping fs.ErrNotExist.
func Files(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list the audit log's files: %w", err)
	}
	var out []string
	for _, e := range entries {
		suffix, ok := strings.CutPrefix(e.Name(), base+".")
		if ok && isRotatedSuffix(suffix) && e.Type().IsRegular() {
			out = append(out, path+"."+suffix)
		}
	}
	slices.Sort(out)
	if _, err := os.Stat(path); err == nil {
		out = append(out, path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no audit log at %s (nor rotated files %s.NNNNNNNNNNNN): %w", path, path, fs.ErrNotExist)
	}
	return out, nil
}

func isRotatedSuffix(s string) bool {
	if len(s) != rotatedDigits {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// eachLine calls fn with every line read from r: its number (from 1),
// its bytes without the newline (valid only during the call) and whether
// the newline was there (only a last line can lack it). A line longer
// than maxLine is passed cut to maxLine bytes. An error from fn stops
// the reading and is returned as it is; a read error is named after
// name.
func eachLine(r io.Reader, name string, fn func(num int, line []byte, complete bool) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	num := 0
	for {
		chunk, err := br.ReadSlice('\n')
		if room := maxLine + 1 - len(buf); room > 0 {
			buf = append(buf, chunk[:min(len(chunk), room)]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read %s: %w", name, err)
		}
		if len(buf) > 0 {
			num++
			complete := len(chunk) > 0 && chunk[len(chunk)-1] == '\n'
			line := buf
			if complete && len(line) <= maxLine+1 && line[len(line)-1] == '\n' {
				line = line[:len(line)-1]
			}
			if len(line) > maxLine {
				line = line[:maxLine]
			}
			if ferr := fn(num, line, complete); ferr != nil {
				return ferr
			}
		}
		if err != nil { // io.EOF
			return nil
		}
		buf = buf[:0]
	}
}

// eachFileLine is eachLine over the file at path.
func eachFileLine(path string, fn func(num int, line []byte, complete bool) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return eachLine(f, path, fn)
}

// seqPrefix reads the seq of a record line that is not valid JSON from
// its start, as the writer puts it first ({"seq":N,...}); ok is false
// when the line does not start so, or ends inside the number.
func seqPrefix(line []byte) (seq int64, ok bool) {
	rest, found := bytes.CutPrefix(line, []byte(`{"seq":`))
	if !found {
		return 0, false
	}
	end := bytes.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end <= 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(rest[:end]), 10, 64)
	return n, err == nil
}

// Filter selects records for Scan. An empty field, or a zero time,
// selects every record.
type Filter struct {
	// Key selects records of this key (PROVIDER:KEYID, as records hold
	// it), or of every key of a provider when it ends in ':' ("aws:").
	Key string
	// Principal selects the records of one caller, exactly as recorded
	// (e.g. "unix:uid=1000").
	Principal string
	// Operation selects one operation (Record.Operation: sign, verify...).
	Operation string
	// Outcome selects ok, error or denied.
	Outcome string
	// Since selects records at or after this time; Until, records before it.
	Since, Until time.Time
}

// Match reports whether r passes the filter.
func (f Filter) Match(r Record) bool {
	switch {
	case f.Key != "" && r.Key != f.Key && !(strings.HasSuffix(f.Key, ":") && strings.HasPrefix(r.Key, f.Key)):
		return false
	case f.Principal != "" && r.Principal != f.Principal:
		return false
	case f.Operation != "" && r.Operation != f.Operation:
		return false
	case f.Outcome != "" && r.Outcome != f.Outcome:
		return false
	case !f.Since.IsZero() && r.Time.Before(f.Since):
		return false
	case !f.Until.IsZero() && !r.Time.Before(f.Until):
		return false
	}
	return true
}

// Scan calls fn with every record of the files (as Files lists them)
// that f selects, in log order. It reads; it does not verify: lines that
// are not records (headers, checkpoints, a torn last line, anything
// malformed) are skipped, so run Verify to know the records are
// genuine. An error from fn stops the scan, and Scan returns it.
func Scan(paths []string, f Filter, fn func(Record) error) error {
	for _, path := range paths {
		err := eachFileLine(path, func(_ int, line []byte, complete bool) error {
			if !complete || kindOf(line) != kindRecord {
				return nil
			}
			var r Record
			if json.Unmarshal(line, &r) != nil || !f.Match(r) {
				return nil
			}
			return fn(r)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
