package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrLocked is what Open returns when another process (or another Log
// in this one) writes the log: two writers would fork its tree.
var ErrLocked = errors.New("audit log in use by another writer")

// lockPollInterval is how often Open retries a lock another process holds.
const lockPollInterval = 50 * time.Millisecond

// lockFile takes an exclusive flock on path (made if missing), retrying
// until timeout or ctx ends. The lock file holds the owner's pid, which
// the error names when another process holds it. The lock lasts while
// the returned file is open.
func lockFile(ctx context.Context, path string, timeout time.Duration) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open the log's lock file: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("audit: lock %s: %w", path, err)
		}
		if !time.Now().Before(deadline) {
			holder := ""
			if b, rerr := os.ReadFile(path); rerr == nil {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
					holder = " (pid " + strconv.Itoa(pid) + ")"
				}
			}
			f.Close()
			return nil, fmt.Errorf("%w: another process%s holds the lock file %s (waited %s); stop it or give this one another log path",
				ErrLocked, holder, path, timeout)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("audit: waiting for the lock file %s: %w", path, ctx.Err())
		case <-time.After(lockPollInterval):
		}
	}
	// The pid only helps the error above; failing to write it is harmless.
	if f.Truncate(0) == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// unlockFile releases a lock taken by lockFile.
func unlockFile(f *os.File) error {
	uerr := unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return errors.Join(uerr, f.Close())
}
