package audit

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Rotation: the active file is sealed with a checkpoint, and a new file
// continues the tree from it. The new file is made whole under
// Path+".new" (header written and fsynced), then the active file is
// renamed to Path+"."+its first seq and the new one to Path. A crash
// between the renames leaves no Path: Open then continues from the last
// rotated file.

// rotateRetry spaces rotation attempts after one failed.
const rotateRetry = time.Minute

// rotatedName is the name of the rotated file whose first seq is start.
func rotatedName(path string, start int64) string {
	return fmt.Sprintf("%s.%012d", path, start)
}

// rotatedFiles lists path's rotated files in log order.
func rotatedFiles(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		suffix, ok := strings.CutPrefix(e.Name(), base+".")
		if ok && len(suffix) == 12 && strings.Trim(suffix, "0123456789") == "" {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// maybeRotate rotates the active file when it is due: it has records,
// and has reached RotateSize bytes or its first record is
// RotateInterval old.
func (l *Log) maybeRotate(now time.Time) {
	w := &l.w
	if w.tree.size == w.start || !l.healthy.Load() || now.Before(w.rotateAt) {
		return
	}
	bySize := l.o.RotateSize > 0 && w.size >= l.o.RotateSize
	byAge := l.o.RotateInterval > 0 && !w.opened.IsZero() && now.Sub(w.opened) >= l.o.RotateInterval
	if !bySize && !byAge {
		return
	}
	if err := l.rotate(); err != nil {
		w.rotateAt = now.Add(rotateRetry)
		l.logger.Error("audit log not rotated; writing on in the current file", "path", w.curPath, "retry_in", rotateRetry, "error", err)
	}
}

// rotate seals the active file and continues the log in a new one at
// Path. A failure before the active file is renamed leaves it active; a
// failure after leaves it active under its rotated name.
func (l *Log) rotate() error {
	w := &l.w
	if err := l.seal(); err != nil {
		return err
	}
	frontier, err := w.tree.frontier()
	if err != nil {
		return fmt.Errorf("audit: tree frontier: %w", err)
	}
	last := w.tree.last
	h := header{Format: formatVersion, Origin: l.origin, Start: w.tree.size,
		Frontier: frontier, Last: &last, Checkpoint: w.ckptNote}
	f, size, err := createFile(l.path+".new", h)
	if err != nil {
		return err
	}
	// A rotated file being continued (see Open) keeps its name.
	if w.curPath == l.path {
		if err := renameNoReplace(l.path, rotatedName(l.path, w.start)); err != nil {
			f.Close()
			os.Remove(l.path + ".new")
			return err
		}
		w.curPath = rotatedName(l.path, w.start)
	}
	if err := os.Rename(l.path+".new", l.path); err != nil {
		f.Close()
		return fmt.Errorf("audit: rotate: %w", err)
	}
	if err := syncDir(l.path); err != nil {
		l.logger.Warn("audit log rotated, but its directory could not be fsynced: a crash now may undo the rename", "error", err)
	}
	if err := w.f.Close(); err != nil {
		l.logger.Warn("audit: close the rotated file", "path", w.curPath, "error", err)
	}
	w.f, w.curPath, w.start, w.size, w.dirty, w.opened = f, l.path, h.Start, size, false, time.Time{}
	return nil
}

// renameNoReplace renames from to to, refusing to replace a file.
func renameNoReplace(from, to string) error {
	if _, err := os.Lstat(to); err == nil {
		return fmt.Errorf("audit: rotate: %s exists already: move it away", to)
	} else if !os.IsNotExist(err) {
		return fmt.Errorf("audit: rotate: %w", err)
	}
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("audit: rotate: %w", err)
	}
	return nil
}

// createFile makes path (replacing a leftover) holding only the header
// h, fsynced, open for appending. It returns the file and its size.
func createFile(path string, h header) (*os.File, int64, error) {
	line, err := encodeLine(h)
	if err != nil {
		return nil, 0, fmt.Errorf("audit: encode a file header: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, 0, newUnavailable("creating", path, err)
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		os.Remove(path)
		return nil, 0, newUnavailable("writing", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, 0, newUnavailable("syncing", path, err)
	}
	return f, int64(len(line)), nil
}

// syncDir fsyncs the directory of path, making renames in it durable.
func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	serr := d.Sync()
	if cerr := d.Close(); serr == nil {
		serr = cerr
	}
	return serr
}
