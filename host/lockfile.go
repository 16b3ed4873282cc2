package host

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// LockHeader starts every lock file WriteLockFile writes.
const LockHeader = `# knhk plugin lock file: the SHA-256 of every plugin binary the host may run.
# Written by "knhk-host plugins lock"; a plugin missing here or with another
# hash is refused. One line per plugin: <file name> sha256:<hex>.
`

// Lock is a parsed lock file: plugin file name (knhk-plugin-<provider>) to
// lowercase hex SHA-256.
type Lock struct {
	Path string
	Sums map[string]string
}

// ReadLockFile parses a lock file. Blank lines and lines starting with '#'
// are ignored; every other line is "<file name> sha256:<64 hex digits>".
// Errors wrap ErrLockFile (and the os error, so errors.Is(err,
// os.ErrNotExist) tells a missing file) and name the file and line.
func ReadLockFile(path string) (*Lock, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLockFile, err) // keeps os.ErrNotExist visible
	}
	l := &Lock{Path: path, Sums: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		bad := func(why string) error {
			return fmt.Errorf("%w: %s:%d: %s; want \"knhk-plugin-<provider> sha256:<64 hex digits>\"", ErrLockFile, path, n, why)
		}
		if len(fields) != 2 {
			return nil, bad("want two fields")
		}
		name, sum := fields[0], fields[1]
		if !strings.HasPrefix(name, PluginPrefix) || !providerRE.MatchString(strings.TrimPrefix(name, PluginPrefix)) {
			return nil, bad(fmt.Sprintf("%q is not a plugin file name", name))
		}
		hexSum, ok := strings.CutPrefix(sum, "sha256:")
		if b, err := hex.DecodeString(hexSum); !ok || err != nil || len(b) != 32 {
			return nil, bad("the hash is not sha256:<64 hex digits>")
		}
		if _, dup := l.Sums[name]; dup {
			return nil, bad(fmt.Sprintf("%s is listed twice", name))
		}
		l.Sums[name] = strings.ToLower(hexSum)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrLockFile, path, err)
	}
	return l, nil
}

// WriteLockFile writes a lock file pinning the given plugins (Name and
// SHA256 are used), sorted by name, replacing path atomically. A plugin
// without a SHA-256 (for example one Discover refused) is an error.
func WriteLockFile(path string, plugins []PluginInfo) error {
	lines := make([]string, 0, len(plugins))
	seen := map[string]bool{}
	for _, p := range plugins {
		b, err := hex.DecodeString(p.SHA256)
		if err != nil || len(b) != 32 {
			return fmt.Errorf("%w: plugin %q has no valid SHA-256 (was it refused? %v)", ErrLockFile, p.Name, p.Err)
		}
		if !providerRE.MatchString(p.Name) || seen[p.Name] {
			return fmt.Errorf("%w: plugin name %q is invalid or listed twice", ErrLockFile, p.Name)
		}
		seen[p.Name] = true
		lines = append(lines, fmt.Sprintf("%s%s sha256:%s\n", PluginPrefix, p.Name, strings.ToLower(p.SHA256)))
	}
	sort.Strings(lines)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".knhk-lock-*")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrLockFile, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	_, err = tmp.WriteString(LockHeader + strings.Join(lines, ""))
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("%w: writing %s: %v", ErrLockFile, path, err)
	}
	return nil
}

// check says whether the file whose SHA-256 is sum may run under this lock.
func (l *Lock) check(fileName, sum string) error {
	want, ok := l.Sums[fileName]
	if !ok {
		return fmt.Errorf("%w: %s is not in lock file %s (its sha256:%s); run \"knhk-host plugins lock\" if you trust it",
			ErrPluginRefused, fileName, l.Path, sum)
	}
	if want != sum {
		return fmt.Errorf("%w: %s has sha256:%s but lock file %s pins sha256:%s; the binary changed since it was locked",
			ErrPluginRefused, fileName, sum, l.Path, want)
	}
	return nil
}
