package fake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/knhk/knhk/shared"
)

// Storage kinds, shown in key metadata as attribute "storage".
const (
	storageMemory = "memory"
	storageFile   = "file"
)

// store holds keys. read gives fn a state it must not change; update gives
// fn a state to change and saves it when fn returns nil.
type store interface {
	kind() string
	read(fn func(*state) error) error
	update(fn func(*state) error) error
}

// memStore keeps keys in this process.
type memStore struct {
	mu sync.RWMutex
	s  *state
}

var _ store = (*memStore)(nil)

func newMemStore() *memStore { return &memStore{s: newState()} }

func (m *memStore) kind() string { return storageMemory }

func (m *memStore) read(fn func(*state) error) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return fn(m.s)
}

// update runs fn on the live state: fns check everything before changing
// anything, so a failed fn leaves the state as it was.
func (m *memStore) update(fn func(*state) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fn(m.s)
}

// storeFor returns the store a request names: this provider's memory, or
// the state file at path (absolute). There is one fileStore per file, so
// this process's goroutines share its lock and its copy of the parsed file.
func (p *Provider) storeFor(ctx context.Context, path string) (store, error) {
	if path == "" {
		return p.mem, nil
	}
	f, err := p.files.Get(ctx, path, func(context.Context) (*fileStore, error) {
		return &fileStore{path: path, cache: &p.signers}, nil
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// fileStore keeps keys in a JSON file shared by any number of processes. A
// sidecar lock file (path + ".lock") is flock'ed shared for reads and
// exclusive for read-modify-write; the state file is replaced atomically
// (temp file in the same directory, fsync, rename, fsync of the directory),
// so a reader never sees half a file.
type fileStore struct {
	path  string
	cache *signerCache

	// Lock order: mu, then the flock, then cacheMu. mu keeps this
	// process's goroutines from piling up in flock.
	mu      sync.RWMutex
	cacheMu sync.Mutex
	loaded  *state // last state read, valid while the file is unchanged
	stamp   fileStamp
}

var _ store = (*fileStore)(nil)

// fileStamp identifies one version of the state file: every write renames
// a new file into place, so the inode changes.
type fileStamp struct {
	dev, ino uint64
	size     int64
	mtimeNs  int64
}

func stampOf(fi fs.FileInfo) fileStamp {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileStamp{size: fi.Size(), mtimeNs: fi.ModTime().UnixNano()}
	}
	return fileStamp{dev: uint64(st.Dev), ino: st.Ino, size: fi.Size(), mtimeNs: fi.ModTime().UnixNano()}
}

func (f *fileStore) kind() string { return storageFile }

// stateError is the error for a state file that cannot be used; the file is
// left as it is.
func (f *fileStore) stateError(what string, err error) error {
	return fmt.Errorf("%w: fake: state file %s %s: %v; fix or remove it (it was left untouched)", shared.ErrFailedPrecondition, shared.Quote(f.path), what, err)
}

// lock takes the sidecar lock; how is unix.LOCK_SH or unix.LOCK_EX.
func (f *fileStore) lock(how int) (unlock func(), err error) {
	lf, err := os.OpenFile(f.path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: fake: cannot open lock file for state file %s: %v", shared.ErrFailedPrecondition, shared.Quote(f.path), err)
	}
	for {
		err = unix.Flock(int(lf.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		lf.Close()
		return nil, fmt.Errorf("%w: fake: cannot lock state file %s: %v", shared.ErrFailedPrecondition, shared.Quote(f.path), err)
	}
	return func() {
		_ = unix.Flock(int(lf.Fd()), unix.LOCK_UN)
		lf.Close()
	}, nil
}

// load reads and checks the state file; a missing or empty file is an
// empty state. useCache allows returning the cached state when the file
// has not changed since it was read.
func (f *fileStore) load(useCache bool) (*state, fileStamp, error) {
	fi, err := os.Stat(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return newState(), fileStamp{}, nil
	}
	if err != nil {
		return nil, fileStamp{}, f.stateError("cannot be read", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fileStamp{}, f.stateError("cannot be read", errors.New("not a regular file"))
	}
	stamp := stampOf(fi)
	if useCache && f.loaded != nil && f.stamp == stamp {
		return f.loaded, stamp, nil
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return nil, fileStamp{}, f.stateError("cannot be read", err)
	}
	s := newState()
	if len(bytes.TrimSpace(data)) > 0 {
		s = &state{}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(s); err != nil {
			return nil, fileStamp{}, f.stateError("is corrupt", err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, fileStamp{}, f.stateError("is corrupt", errors.New("data after the JSON object"))
		}
		if err := s.check(f.cache); err != nil {
			return nil, fileStamp{}, f.stateError("is corrupt", err)
		}
	}
	return s, stamp, nil
}

func (f *fileStore) read(fn func(*state) error) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	unlock, err := f.lock(unix.LOCK_SH)
	if err != nil {
		return err
	}
	f.cacheMu.Lock()
	s, stamp, err := f.load(true)
	if err == nil {
		f.loaded, f.stamp = s, stamp
	}
	f.cacheMu.Unlock()
	unlock()
	if err != nil {
		return err
	}
	return fn(s) // s is never changed once loaded
}

func (f *fileStore) update(fn func(*state) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	unlock, err := f.lock(unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	// Read afresh: fn changes the state, and a cached one is shared.
	s, _, err := f.load(false)
	if err != nil {
		return err
	}
	if err := fn(s); err != nil {
		return err
	}
	if err := f.write(s); err != nil {
		return err
	}
	if fi, err := os.Stat(f.path); err == nil {
		f.cacheMu.Lock()
		f.loaded, f.stamp = s, stampOf(fi)
		f.cacheMu.Unlock()
	}
	return nil
}

// write replaces the state file atomically with mode 0600.
func (f *fileStore) write(s *state) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("fake: encoding state: %w", err)
	}
	dir, base := filepath.Split(f.path)
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("%w: fake: cannot write state file %s: %v", shared.ErrFailedPrecondition, shared.Quote(f.path), err)
	}
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("%w: fake: cannot write state file %s: %v", shared.ErrFailedPrecondition, shared.Quote(f.path), err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("%w: fake: cannot replace state file %s: %v", shared.ErrFailedPrecondition, f.path, err)
	}
	// The rename is durable once the directory is synced.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
