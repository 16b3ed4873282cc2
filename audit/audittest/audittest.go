package audittest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/knhk/knhk/audit"
)

// Log is an audit log opened for a test.
type Log struct {
	*audit.Log
	// Path is the log's active file.
	Path string
	// VerifierKey verifies its checkpoints (audit.ParseVerifierKey).
	VerifierKey string
}

// Open opens a log with o: in a new temporary directory unless o.Path
// is set, sealed by a new checkpoint key unless o.Key is set (then
// VerifierKey is o.Key's). The log is closed when the test ends, if the
// test has not closed it.
func Open(t testing.TB, o audit.Options) *Log {
	t.Helper()
	if o.Path == "" {
		o.Path = filepath.Join(t.TempDir(), "audit.log")
	}
	if o.Key == nil {
		o.Key = NewKey(t, "test.example/knhk-audit")
	}
	l, err := audit.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return &Log{Log: l, Path: o.Path, VerifierKey: o.Key.VerifierKey}
}

// NewKey makes a new Ed25519 checkpoint key named name, through a key
// file as the CLI makes it.
func NewKey(t testing.TB, name string) *audit.Key {
	t.Helper()
	skey, _, err := audit.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "audit.key")
	if err := os.WriteFile(file, []byte(skey), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := audit.LoadKeyFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Records returns every record of the log at path, in order (audit.Scan:
// read, not verified).
func Records(t testing.TB, path string) []audit.Record {
	t.Helper()
	files, err := audit.Files(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Record
	if err := audit.Scan(files, audit.Filter{}, func(r audit.Record) error { out = append(out, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}
