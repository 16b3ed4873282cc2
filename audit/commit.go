package audit

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sys/unix"

	"github.com/knhk/knhk/shared"
)

// Group commit: callers encode their record (in parallel), join the
// batch being filled and wait on its done channel; the one writer
// goroutine takes the whole batch at once, numbers and chains its
// records, writes them with one write and one fsync, and closes done.
// A batch that fails is cut back out of the file and out of the tree,
// so the log stays gap-free.

// logFile is what the writer needs of the active file (tests inject
// failures through it).
type logFile interface {
	io.Writer
	Sync() error
	Truncate(size int64) error
	Close() error
}

// batch is one group commit: its records, any checkpoints to write
// after them, and its outcome.
type batch struct {
	recs  []*encoded
	ckpts []signedCheckpoint
	done  chan struct{} // closed once err is set
	err   error
}

func newBatch(recs []*encoded) *batch {
	return &batch{recs: recs[:0], done: make(chan struct{})}
}

// signedCheckpoint is a checkpoint of the first size records.
type signedCheckpoint struct {
	size int64
	note []byte
}

// encoded is a record encoded by its caller, without the fields the
// writer sets (seq and prev): mid is what lies between `{"seq":N,` and
// `,"prev":"..."}`. The buffers are pooled: the writer returns them.
type encoded struct {
	rec Record // what is encoded: a copy here spares the caller's escaping
	buf bytes.Buffer
	enc *json.Encoder
	mid []byte
}

var encPool = sync.Pool{New: func() any {
	e := &encoded{}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false) // as encodeLine
	return e
}}

// maxPooled bounds the buffers kept for reuse: an outsized record's is
// left to the garbage collector.
const maxPooled = 64 << 10

// The encoded record with Seq 0 and no Prev starts with seqZero and ends
// with "}\n": Seq is Record's first field and Prev (omitempty) its last.
var seqZero = []byte(`{"seq":0,`)

// encode encodes r (in the caller's goroutine) as the writer will
// write it, less seq and prev.
func (l *Log) encode(r *Record) (*encoded, error) {
	e := encPool.Get().(*encoded)
	e.rec = *r
	e.rec.Seq, e.rec.Prev, e.rec.Host = 0, "", l.host
	if e.rec.Time.IsZero() {
		e.rec.Time = time.Now()
	}
	e.rec.Time = e.rec.Time.UTC()
	e.buf.Reset()
	err := e.enc.Encode(&e.rec)
	e.rec = Record{} // hold no caller data in the pool
	if err != nil {
		encPool.Put(e)
		return nil, fmt.Errorf("audit: encode the record: %w", err)
	}
	b := e.buf.Bytes()
	if !bytes.HasPrefix(b, seqZero) || !bytes.HasSuffix(b, []byte("}\n")) {
		encPool.Put(e)
		return nil, errors.New("audit: a record does not encode with seq first and prev last (Record's fields were reordered)")
	}
	e.mid = b[len(seqZero) : len(b)-2]
	return e, nil
}

// kick wakes the writer.
func (l *Log) kick() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// enqueueCheckpoint queues a signed checkpoint for the next batch.
func (l *Log) enqueueCheckpoint(c signedCheckpoint) (*batch, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, l.closedError()
	}
	b := l.cur
	b.ckpts = append(b.ckpts, c)
	first := len(b.recs) == 0 && len(b.ckpts) == 1
	l.mu.Unlock()
	if first {
		l.kick()
	}
	return b, nil
}

// run is the writer goroutine.
func (l *Log) run() {
	defer close(l.done)
	tick := time.NewTicker(l.o.CheckpointInterval)
	defer tick.Stop()
	for {
		select {
		case <-l.wake:
			l.flush()
		case now := <-tick.C:
			l.interval(now)
		case <-l.quit:
			l.flush()
			return
		}
	}
}

// flush commits the batch being filled, if it has anything, and
// rotates the file when it is due.
func (l *Log) flush() {
	l.mu.Lock()
	b := l.cur
	if len(b.recs) == 0 && len(b.ckpts) == 0 {
		l.mu.Unlock()
		return
	}
	l.cur = newBatch(l.w.spare) // spare is the writer's alone: no wmu needed
	l.mu.Unlock()

	l.wmu.Lock()
	b.err = l.commit(b)
	for i, e := range b.recs {
		if e.buf.Cap() <= maxPooled {
			encPool.Put(e)
		}
		b.recs[i] = nil
	}
	l.w.spare = b.recs[:0]
	close(b.done)
	if b.err == nil {
		l.maybeRotate(time.Now())
	}
	l.wmu.Unlock()
}

// commit writes b's records and the newest of its checkpoints (and any
// held from a failed batch) with one write and one fsync. On failure it
// rolls the tree back; writeSync has cut the file back.
func (l *Log) commit(b *batch) error {
	w := &l.w
	// The newest checkpoint, if not older than one written (or than the
	// file: rotation writes one), goes after the records.
	ck := w.held
	for i := range b.ckpts {
		if c := &b.ckpts[i]; ck == nil || c.size > ck.size {
			ck = c
		}
	}
	var ckLine []byte
	if ck != nil && ck.size <= w.ckptSize {
		ck = nil
	}
	if ck != nil {
		var err error
		if ckLine, err = encodeLine(checkpointLine{Checkpoint: string(ck.note)}); err != nil {
			return fmt.Errorf("audit: encode a checkpoint: %w", err)
		}
	}
	var saved *tree
	if len(b.recs) > 0 {
		saved = w.tree.clone()
	}
	buf := w.buf[:0]
	for _, e := range b.recs {
		start := len(buf)
		buf = append(buf, `{"seq":`...)
		buf = strconv.AppendInt(buf, w.tree.size, 10)
		buf = append(buf, ',')
		buf = append(buf, e.mid...)
		if w.tree.size > 0 {
			buf = append(buf, `,"prev":"`...)
			buf = base64.StdEncoding.AppendEncode(buf, w.tree.last[:])
			buf = append(buf, '"')
		}
		buf = append(buf, '}')
		if err := w.tree.append(leafHash(buf[start:])); err != nil {
			w.tree = saved
			return l.fail(len(b.recs), &unavailableError{msg: fmt.Sprintf("%v: adding a record to the tree: %v", ErrUnavailable, err), cause: err})
		}
		buf = append(buf, '\n')
	}
	if ckLine != nil {
		buf = append(buf, ckLine...)
	}
	if cap(buf) <= 1<<20 {
		w.buf = buf // keep it for the next batch, unless outsized
	}
	if len(buf) == 0 {
		return nil
	}
	if err := l.writeSync(buf); err != nil {
		if saved != nil {
			w.tree = saved
		}
		if ck != nil {
			held := *ck
			w.held = &held
		}
		return l.fail(len(b.recs), err)
	}
	n := len(b.recs)
	l.m.batch(context.Background(), n)
	if n > 0 {
		l.stats.records.Add(int64(n))
		l.stats.batches.Add(1)
		if w.opened.IsZero() {
			w.opened = time.Now()
		}
	}
	if ck != nil {
		l.wroteCheckpoint(ck.size, ck.note)
	}
	w.held = nil
	return nil
}

// wroteCheckpoint notes a checkpoint made durable.
func (l *Log) wroteCheckpoint(size int64, msg []byte) {
	l.w.ckptSize, l.w.ckptNote = size, string(msg)
	l.stats.checkpoints.Add(1)
	l.m.checkpoints.Add(context.Background(), 1)
}

// fail counts n records failed (or dropped, when fail-open) by err.
func (l *Log) fail(n int, err error) error {
	if n == 0 {
		return err
	}
	if l.o.FailOpen {
		l.stats.dropped.Add(int64(n))
		l.m.records.Add(context.Background(), int64(n), l.m.dropped)
	} else {
		l.stats.failures.Add(int64(n))
		l.m.records.Add(context.Background(), int64(n), l.m.failed)
	}
	l.w.failedN += int64(n)
	if now := time.Now(); now.Sub(l.w.failLog) >= failLogInterval {
		l.w.failLog = now
		what := "failed their operations"
		if l.o.FailOpen {
			what = "were DROPPED: their operations went ahead unrecorded (fail_open)"
		}
		l.logger.Error("audit records could not be written and "+what, "records", l.w.failedN, "error", err)
	}
	return err
}

// failLogInterval spaces the error logs of a log that keeps failing.
const failLogInterval = 10 * time.Second

// writeSync appends buf to the file and fsyncs it. On failure the file
// is cut back to its last durable byte (or marked to be, when that fails
// too) and the log is unhealthy; on success it is healthy again.
func (l *Log) writeSync(buf []byte) error {
	w := &l.w
	if err := l.repair(); err != nil {
		return l.unhealthy("cutting back a failed write in", err)
	}
	w.dirty = true
	if _, err := w.f.Write(buf); err != nil {
		_ = l.repair()
		return l.unhealthy("writing", err)
	}
	if err := syncData(w.f); err != nil {
		_ = l.repair()
		return l.unhealthy("syncing", err)
	}
	w.dirty = false
	w.size += int64(len(buf))
	if !l.healthy.Load() {
		l.logger.Warn("audit log is writable again", "path", w.curPath, "records_lost", w.failedN)
		w.failedN = 0
		l.healthy.Store(true)
	}
	return nil
}

// syncData makes what was written to f durable: fdatasync for a file
// (the data and the size that finds it, without the inode times fsync
// also writes: what a write-ahead log needs, at a fifth less kernel time
// per call here), Sync otherwise.
func syncData(f logFile) error {
	if osf, ok := f.(*os.File); ok {
		for {
			err := unix.Fdatasync(int(osf.Fd()))
			if err != unix.EINTR {
				if err != nil {
					return &os.PathError{Op: "fdatasync", Path: osf.Name(), Err: err}
				}
				return nil
			}
		}
	}
	return f.Sync()
}

// repair cuts the file back to its durable size after a failed write.
func (l *Log) repair() error {
	w := &l.w
	if !w.dirty {
		return nil
	}
	if err := w.f.Truncate(w.size); err != nil {
		return err
	}
	if err := w.f.Sync(); err != nil {
		return err
	}
	w.dirty = false
	return nil
}

// probeSize is a readiness probe's write: at least one new block.
const probeSize = 4096

// probe checks an unhealthy log: it repairs the file, writes probeSize
// bytes past its end (a full disk refuses them), cuts them off and
// fsyncs. A crash midway leaves spaces without a newline at the end,
// which Open drops as a torn line.
func (l *Log) probe() error {
	w := &l.w
	if err := l.repair(); err != nil {
		return l.unhealthy("cutting back a failed write in", err)
	}
	w.dirty = true
	if _, err := w.f.Write(bytes.Repeat([]byte{' '}, probeSize)); err != nil {
		_ = l.repair()
		return l.unhealthy("writing", err)
	}
	if err := l.repair(); err != nil {
		return l.unhealthy("cutting back the readiness probe in", err)
	}
	l.logger.Warn("audit log is writable again", "path", w.curPath, "records_lost", w.failedN)
	w.failedN = 0
	l.healthy.Store(true)
	return nil
}

// unhealthy marks the log unhealthy because doing failed with cause, and
// returns the ErrUnavailable error callers get.
func (l *Log) unhealthy(doing string, cause error) error {
	err := newUnavailable(doing, l.w.curPath, cause)
	if l.healthy.Load() {
		l.logger.Error("audit log cannot be written", "error", err)
	}
	l.healthy.Store(false)
	return err
}

// unavailableError is an ErrUnavailable with what failed and what to do.
type unavailableError struct {
	msg   string
	cause error
}

func (e *unavailableError) Error() string { return e.msg }

func (e *unavailableError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrUnavailable, shared.ErrUnavailable}
	}
	return []error{ErrUnavailable, shared.ErrUnavailable, e.cause}
}

// newUnavailable says what failed, why, and what to do about it; never
// what the records hold.
func newUnavailable(doing, path string, cause error) error {
	why := cause
	var pe *os.PathError
	if errors.As(cause, &pe) {
		why = pe.Err // the path is said once
	}
	var advice string
	switch {
	case errors.Is(cause, syscall.ENOSPC), errors.Is(cause, syscall.EDQUOT):
		advice = "free space on its file system"
	case errors.Is(cause, syscall.EROFS):
		advice = "its file system is read-only: remount it read-write"
	case errors.Is(cause, syscall.EACCES), errors.Is(cause, syscall.EPERM):
		advice = "fix the permissions of the file and its directory"
	case errors.Is(cause, syscall.EIO):
		advice = "the disk reported an I/O error: check it and the kernel log"
	default:
		advice = "check the disk and the file"
	}
	return &unavailableError{
		msg:   fmt.Sprintf("%v: %s %s: %v; %s, then retry", ErrUnavailable, doing, path, why, advice),
		cause: cause,
	}
}

// interval is the writer's timer: it starts signing a checkpoint when
// records were added since the last one, and rotates a file that is due.
func (l *Log) interval(now time.Time) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	w := &l.w
	if l.healthy.Load() && !l.signing.Load() && w.held == nil && w.tree.size > w.ckptSize {
		root, err := w.tree.root()
		if err != nil {
			l.logger.Error("audit checkpoint: tree root", "error", err)
			return
		}
		l.signing.Store(true)
		l.signers.Add(1)
		go l.signAsync(w.tree.size, root)
	}
	l.maybeRotate(now)
}

// signAsync signs a checkpoint off the write path (a KMS may take a
// while) and queues it for the next batch.
func (l *Log) signAsync(size int64, root tlog.Hash) {
	defer l.signers.Done()
	defer l.signing.Store(false)
	msg, err := l.sign(size, root)
	if err != nil {
		l.logger.Error("audit checkpoint not signed: the records since the last checkpoint stay unsealed until one is", "error", err)
		return
	}
	// After Close the final checkpoint covers it.
	_, _ = l.enqueueCheckpoint(signedCheckpoint{size: size, note: msg})
}

// seal signs and writes a checkpoint of every record written, now, in
// the write path (Close and rotation), unless the last one covers them.
func (l *Log) seal() error {
	w := &l.w
	if w.tree.size == w.ckptSize {
		return nil
	}
	root, err := w.tree.root()
	if err != nil {
		return fmt.Errorf("audit: tree root: %w", err)
	}
	msg, err := l.sign(w.tree.size, root)
	if err != nil {
		return err
	}
	line, err := encodeLine(checkpointLine{Checkpoint: string(msg)})
	if err != nil {
		return fmt.Errorf("audit: encode a checkpoint: %w", err)
	}
	if err := l.writeSync(line); err != nil {
		return err
	}
	l.m.batch(context.Background(), 0)
	l.wroteCheckpoint(w.tree.size, msg)
	w.held = nil
	return nil
}

// signCheckpoint signs a C2SP checkpoint of size records with root.
func signCheckpoint(k *Key, origin string, size int64, root tlog.Hash) ([]byte, error) {
	return note.Sign(&note.Note{Text: checkpointText(origin, size, root)}, k.Signer)
}
