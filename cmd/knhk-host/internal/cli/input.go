package cli

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// readInput reads the message or digest: the file at path, or stdin for ""
// and "-". An unreadable file is a usage error: the invocation names it.
func readInput(path string, stdin io.Reader, what string) ([]byte, error) {
	if path == "" || path == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("read %s from stdin: %w", what, err)
		}
		return b, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("check the path and its permissions", "read %s: %v", what, unwrapPathError(err))
	}
	return b, nil
}

// decodeSignature accepts a signature file as raw bytes or as the base64
// text `sign` prints (standard or URL alphabet, padded or not, surrounded by
// whitespace). Raw signatures are random-looking binary and practically
// never consist solely of base64 characters, so text that decodes as base64
// is taken as base64.
func decodeSignature(b []byte) []byte {
	text := bytes.TrimSpace(b)
	if len(text) == 0 {
		return b
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if out, err := enc.DecodeString(string(text)); err == nil && len(out) > 0 {
			return out
		}
	}
	return b
}

// writeOutput writes data to path atomically enough for a CLI: a temporary
// file in the same directory, renamed into place, so a failed write never
// leaves half a signature behind.
func writeOutput(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".knhk-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, unwrapPathError(err))
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, unwrapPathError(werr))
	}
	return nil
}
