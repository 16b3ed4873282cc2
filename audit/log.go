package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/mod/sumdb/tlog"
)

// ErrUnavailable is what Append returns when its record could not be
// made durable (and the log is not fail-open): the operation must fail,
// and may be retried once the log can be written again. Its errors also
// match shared.ErrUnavailable, and the cause (a syscall.Errno such as
// ENOSPC) when there is one.
var ErrUnavailable = errors.New("audit log unavailable")

// ErrAltered is what Open returns for a log that does not match its own
// checkpoints or hash chain: it was changed after it was written.
// `knhk-host audit verify` names what changed.
var ErrAltered = errors.New("audit log altered")

// Defaults of Options.
const (
	// DefaultCheckpointInterval is Options.CheckpointInterval's default.
	DefaultCheckpointInterval = 10 * time.Second
	// DefaultLockTimeout is Options.LockTimeout's default.
	DefaultLockTimeout = 10 * time.Second
)

// Options configure Open.
type Options struct {
	// Path is the active log file (required). Its directory is made
	// (0700) if missing; the log's files are made 0600. Rotated files
	// are Path + "." + the 12-digit seq of their first record; Open
	// locks Path + ".lock".
	Path string
	// Key signs the checkpoints (required); its Verifier checks the
	// log's last checkpoint when Open continues a log.
	Key *Key
	// Origin is the checkpoints' origin line, the log's name. Default:
	// an existing log's own origin, else Host + "/knhk-audit". Open
	// refuses an existing log whose origin differs from a set Origin.
	Origin string
	// Host is what records name as their Host; default os.Hostname().
	Host string
	// CheckpointInterval is how often a checkpoint is signed and
	// written, when records were added since the last one. Default
	// DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// RotateSize rotates the active file once it holds this many bytes;
	// 0: never.
	RotateSize int64
	// RotateInterval rotates the active file once its first record is
	// this old; 0: never.
	RotateInterval time.Duration
	// FailOpen makes Append return nil when its record cannot be
	// written: the record is dropped, logged as an error and counted
	// (Stats.Dropped, knhk.audit.records{knhk.audit.outcome=dropped}).
	// The default, false, fails the operation with ErrUnavailable.
	FailOpen bool
	// Logger gets warnings (a torn record dropped, a recovery
	// checkpoint) and errors (writes failing). Nil: warnings and errors
	// to stderr.
	Logger hclog.Logger
	// MeterProvider makes the writer's metrics; nil: the global one.
	MeterProvider metric.MeterProvider
	// LockTimeout is how long Open waits for another writer to release
	// the log's lock; default DefaultLockTimeout.
	LockTimeout time.Duration
}

// Stats count what a Log did since Open.
type Stats struct {
	// Records is the number of records written (durable).
	Records int64
	// Batches is the number of group commits of records, each one write
	// and one fsync: Records/Batches is records per fsync.
	Batches int64
	// Checkpoints is the number of signed checkpoints written.
	Checkpoints int64
	// Failures is the number of records that failed with
	// ErrUnavailable.
	Failures int64
	// Dropped is the number of records dropped unwritten (FailOpen).
	Dropped int64
}

// Log is an audit log's writer: it appends records, each durable before
// Append returns, and seals them with signed checkpoints. One process
// writes a log at a time (Open locks it). Its methods are safe for
// concurrent use.
type Log struct {
	path   string
	origin string
	host   string
	key    *Key
	o      Options
	logger hclog.Logger
	m      *metrics
	lock   *os.File

	// mu guards the queue: the batch callers are joining and closed.
	mu     sync.Mutex
	cur    *batch
	closed bool

	wake    chan struct{} // a batch has work (capacity 1)
	quit    chan struct{} // Close: drain and stop
	done    chan struct{} // the writer goroutine stopped
	signers sync.WaitGroup
	signing atomic.Bool // an interval checkpoint is being signed

	closeOnce sync.Once
	closeErr  error

	healthy atomic.Bool
	stats   struct {
		records, batches, checkpoints, failures, dropped atomic.Int64
	}

	// wmu guards the writer's state below. The writer goroutine holds it
	// while it commits a batch; Checkpoint, Ready and Close take it too.
	wmu sync.Mutex
	w   writer
}

// writer is the state of the file being written and the tree.
type writer struct {
	f       logFile
	curPath string    // Path, or a rotated file Open continues from
	start   int64     // the file's first seq (its header's start)
	size    int64     // bytes durable in the file: where a failed write is cut back to
	dirty   bool      // bytes past size may be in the file
	opened  time.Time // when the file got its first record (zero: none yet)
	tree    *tree     // over the durable records only

	ckptSize int64             // tree size of the last checkpoint written
	ckptNote string            // that checkpoint, a signed note
	held     *signedCheckpoint // one whose batch failed: written with the next

	spare    []*encoded // the last batch's record slice, for reuse
	buf      []byte     // the write buffer, reused
	failedN  int64      // records failed or dropped since it became unhealthy
	failLog  time.Time  // when a failure was last logged
	rotateAt time.Time  // no rotation attempt before (after one failed)
}

// Open opens the log at o.Path for appending, creating it if missing.
// An existing log is continued: a record torn by a crash at its end is
// dropped, its tree is rebuilt and checked against its last checkpoint
// (a log that does not match is refused with ErrAltered), and records
// after that checkpoint are sealed with a new one at once.
func Open(ctx context.Context, o Options) (*Log, error) {
	if o.Path == "" {
		return nil, errors.New("audit: Options.Path is required")
	}
	if o.Key == nil || o.Key.Signer == nil || o.Key.Verifier == nil {
		return nil, errors.New("audit: Options.Key with a Signer and a Verifier is required")
	}
	if o.Key.Signer.Name() != o.Key.Verifier.Name() || o.Key.Signer.KeyHash() != o.Key.Verifier.KeyHash() {
		return nil, fmt.Errorf("audit: the checkpoint key's signer (%s+%08x) and verifier (%s+%08x) are different keys",
			o.Key.Signer.Name(), o.Key.Signer.KeyHash(), o.Key.Verifier.Name(), o.Key.Verifier.KeyHash())
	}
	if o.CheckpointInterval < 0 || o.RotateSize < 0 || o.RotateInterval < 0 || o.LockTimeout < 0 {
		return nil, errors.New("audit: Options has a negative interval, size or timeout")
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = DefaultCheckpointInterval
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.Logger == nil {
		o.Logger = hclog.New(&hclog.LoggerOptions{Name: "knhk.audit", Level: hclog.Warn, Output: os.Stderr})
	}
	if o.Host == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("audit: Options.Host is not set and the host name is unknown: %w", err)
		}
		o.Host = h
	}
	if strings.ContainsAny(o.Origin, "\n") {
		return nil, errors.New("audit: Options.Origin has a newline")
	}
	path := filepath.Clean(o.Path)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: make the log's directory: %w", err)
	}
	lock, err := lockFile(ctx, path+".lock", o.LockTimeout)
	if err != nil {
		return nil, err
	}
	l := &Log{
		path:   path,
		origin: o.Origin,
		host:   o.Host,
		key:    o.Key,
		o:      o,
		logger: o.Logger,
		m:      newMetrics(o.MeterProvider),
		lock:   lock,
		cur:    newBatch(nil),
		wake:   make(chan struct{}, 1),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	l.healthy.Store(true) // until a write fails
	if err := l.recover(); err != nil {
		if l.w.f != nil {
			l.w.f.Close()
		}
		_ = unlockFile(lock)
		return nil, err
	}
	if o.FailOpen {
		l.logger.Warn("audit log is fail-open: when a record cannot be written the operation goes ahead without it (fail_open)", "path", path)
	}
	go l.run()
	return l, nil
}

// Append appends r, setting its Seq, Host, Prev and (when zero) Time;
// Time is made UTC. It returns once the record is durable: written and
// fsynced, together with the records of the other callers waiting then
// (group commit). When the record cannot be written it returns an error
// that is ErrUnavailable (and shared.ErrUnavailable), or nil with
// Options.FailOpen. Once queued, a record is written whatever becomes of
// ctx, and Append waits for the outcome: an operation that happened is
// recorded, and its caller learns whether it was.
func (l *Log) Append(ctx context.Context, r Record) error {
	e, err := l.encode(&r)
	if err != nil {
		return err
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		encPool.Put(e)
		return l.closedError()
	}
	b := l.cur
	b.recs = append(b.recs, e)
	first := len(b.recs) == 1 && len(b.ckpts) == 0
	l.mu.Unlock()
	if first {
		l.kick()
	}
	<-b.done
	if b.err != nil && !l.o.FailOpen {
		return b.err
	}
	return nil
}

// Ready reports whether the log can take records: nil when it can. When
// a write failed, it retries the repair (cutting the file back to its
// last durable record) and a probe write, and returns the failure, an
// ErrUnavailable, while they fail. When the log is healthy it does no
// I/O.
func (l *Log) Ready() error {
	if l.healthy.Load() {
		return nil
	}
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return l.closedError()
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.healthy.Load() {
		return nil
	}
	return l.probe()
}

// Checkpoint signs a checkpoint of the records written so far and writes
// it, if records were added since the last one. It returns once the
// checkpoint is durable, or when ctx ends (the checkpoint is written
// anyway).
func (l *Log) Checkpoint(ctx context.Context) error {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return l.closedError()
	}
	l.wmu.Lock()
	size := l.w.tree.size
	if size <= l.w.ckptSize {
		l.wmu.Unlock()
		return nil
	}
	root, err := l.w.tree.root()
	l.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("audit: tree root: %w", err)
	}
	msg, err := l.sign(size, root)
	if err != nil {
		return err
	}
	b, err := l.enqueueCheckpoint(signedCheckpoint{size: size, note: msg})
	if err != nil {
		return err
	}
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes what is queued, seals the log with a final checkpoint,
// and releases the file and its lock. Appends after Close fail with
// ErrUnavailable. Calling Close again returns the first call's result.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		close(l.quit)
		<-l.done
		l.signers.Wait()

		l.wmu.Lock()
		defer l.wmu.Unlock()
		var errs []error
		if err := l.seal(); err != nil {
			errs = append(errs, fmt.Errorf("final checkpoint (the records since the last one are sealed when the log is next opened): %w", err))
		}
		if err := l.w.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("audit: close %s: %w", l.w.curPath, err))
		}
		if err := unlockFile(l.lock); err != nil {
			errs = append(errs, fmt.Errorf("audit: release the lock: %w", err))
		}
		l.closeErr = errors.Join(errs...)
		l.healthy.Store(false) // Ready now says closed
	})
	return l.closeErr
}

// Stats returns the log's counts so far.
func (l *Log) Stats() Stats {
	return Stats{
		Records:     l.stats.records.Load(),
		Batches:     l.stats.batches.Load(),
		Checkpoints: l.stats.checkpoints.Load(),
		Failures:    l.stats.failures.Load(),
		Dropped:     l.stats.dropped.Load(),
	}
}

// FailOpen reports whether the log drops records it cannot write
// (Options.FailOpen) instead of failing their operations.
func (l *Log) FailOpen() bool { return l.o.FailOpen }

// closedError is Append's error after Close.
func (l *Log) closedError() error {
	return &unavailableError{msg: fmt.Sprintf("%v: %s is closed", ErrUnavailable, l.path)}
}

// sign signs a checkpoint of size records with root.
func (l *Log) sign(size int64, root tlog.Hash) ([]byte, error) {
	msg, err := signCheckpoint(l.key, l.origin, size, root)
	if err != nil {
		return nil, fmt.Errorf("audit: sign a checkpoint with key %s: %w", l.key.Signer.Name(), err)
	}
	return msg, nil
}
