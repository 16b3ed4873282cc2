package audit

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// The file format (docs/audit.md has it for readers without Go):
//
// A log file is JSON lines. The first is a header (an object with the
// key "knhk_audit"); then each line is either a record (an object with
// "seq") or a checkpoint (an object whose only key is "checkpoint").
// A record's leaf hash is tlog.RecordHash of its line's bytes without
// the newline, so the bytes on disk are what is sealed: nothing is
// re-encoded before hashing. A checkpoint is a C2SP signed note whose
// text is a C2SP tlog checkpoint: origin, tree size and base64 root hash,
// one per line.
//
// A file that continues a log after rotation starts where the previous
// file ended: its header carries the previous file's last checkpoint and
// the tree's frontier hashes at that size (which the checkpoint's root
// proves), so every file can be verified on its own.

// formatVersion is the header's "knhk_audit" value.
const formatVersion = "v1"

// header is a file's first line.
type header struct {
	Format string `json:"knhk_audit"`
	Origin string `json:"origin"`
	// Start is the number of records before this file: its first
	// record's seq.
	Start int64 `json:"start"`
	// Frontier are the tree's frontier hashes at Start, largest subtree
	// first; Last is record Start-1's leaf hash; Checkpoint is the signed
	// checkpoint at Start. All empty when Start is 0.
	Frontier   []tlog.Hash `json:"frontier,omitempty"`
	Last       *tlog.Hash  `json:"last,omitempty"`
	Checkpoint string      `json:"checkpoint,omitempty"`
}

// checkpointLine is a checkpoint's line.
type checkpointLine struct {
	Checkpoint string `json:"checkpoint"`
}

// lineKind tells the kinds of line apart.
type lineKind int

const (
	kindBad lineKind = iota
	kindHeader
	kindRecord
	kindCheckpoint
)

// errNotHeld: a proof needs tree hashes from before the file's start.
var errNotHeld = errors.New("not held")

// probe is enough of a line to know its kind.
type probe struct {
	Format     *string `json:"knhk_audit"`
	Seq        *int64  `json:"seq"`
	Checkpoint *string `json:"checkpoint"`
}

// kindOf classifies one line (without its newline).
func kindOf(line []byte) lineKind {
	var p probe
	if json.Unmarshal(line, &p) != nil {
		return kindBad
	}
	switch {
	case p.Format != nil:
		return kindHeader
	case p.Seq != nil:
		return kindRecord
	case p.Checkpoint != nil:
		return kindCheckpoint
	}
	return kindBad
}

// encodeLine is v as one JSON line with its newline. HTML escaping is
// off so keys and principals read as written.
func encodeLine(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// leafHash is a record line's leaf hash (line without its newline).
func leafHash(line []byte) tlog.Hash {
	return tlog.RecordHash(line)
}

// hashString is a hash as checkpoints and Prev write it.
func hashString(h tlog.Hash) string {
	return base64.StdEncoding.EncodeToString(h[:])
}

// checkpointText is a C2SP tlog checkpoint body: origin, size, root.
func checkpointText(origin string, size int64, root tlog.Hash) string {
	return origin + "\n" + strconv.FormatInt(size, 10) + "\n" + hashString(root) + "\n"
}

// parseCheckpointText reads a checkpoint body (extension lines after the
// root are allowed and ignored).
func parseCheckpointText(text string) (origin string, size int64, root tlog.Hash, err error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 {
		return "", 0, root, fmt.Errorf("checkpoint has %d lines, not origin, size and root", len(lines)-1)
	}
	origin = lines[0]
	if origin == "" {
		return "", 0, root, errors.New("checkpoint has an empty origin")
	}
	size, err = strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return "", 0, root, fmt.Errorf("checkpoint size %q is not a decimal count", lines[1])
	}
	raw, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize {
		return "", 0, root, fmt.Errorf("checkpoint root %q is not a base64 SHA-256 hash", lines[2])
	}
	copy(root[:], raw)
	return origin, size, root, nil
}
