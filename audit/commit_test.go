package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/knhk/knhk/shared"
)

// faultyFile fails writes (after writing half, as a full disk may) or
// fsyncs on demand.
type faultyFile struct {
	*os.File
	mu       sync.Mutex
	writeErr error
	syncErr  error
}

func (f *faultyFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	err := f.writeErr
	f.mu.Unlock()
	if err == nil {
		return f.File.Write(p)
	}
	n, _ := f.File.Write(p[:len(p)/2])
	return n, &os.PathError{Op: "write", Path: f.Name(), Err: err}
}

func (f *faultyFile) Sync() error {
	f.mu.Lock()
	err := f.syncErr
	f.mu.Unlock()
	if err != nil {
		return &os.PathError{Op: "sync", Path: f.Name(), Err: err}
	}
	return f.File.Sync()
}

func (f *faultyFile) fail(writeErr, syncErr error) {
	f.mu.Lock()
	f.writeErr, f.syncErr = writeErr, syncErr
	f.mu.Unlock()
}

// inject puts a faultyFile under l's writer.
func inject(l *Log) *faultyFile {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	f := &faultyFile{File: l.w.f.(*os.File)}
	l.w.f = f
	return f
}

// appendAll appends one record per principal concurrently and returns
// each Append's error by principal.
func appendAll(l *Log, principals ...string) map[string]error {
	var mu sync.Mutex
	out := map[string]error{}
	var wg sync.WaitGroup
	for _, p := range principals {
		wg.Go(func() {
			err := l.Append(context.Background(), record(p))
			mu.Lock()
			out[p] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

func names(prefix string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

// checkUnavailable checks an error from a log that cannot write.
func checkUnavailable(t *testing.T, err error, cause error, advice string) {
	t.Helper()
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, shared.ErrUnavailable) || !errors.Is(err, cause) {
		t.Fatalf("error %v: want ErrUnavailable, shared.ErrUnavailable and %v", err, cause)
	}
	if !strings.Contains(err.Error(), advice) {
		t.Fatalf("error %q does not say %q", err, advice)
	}
	if strings.Contains(err.Error(), "ES256") || strings.Contains(err.Error(), "fake:k1") {
		t.Fatalf("error %q holds record data", err)
	}
}

func TestFailClosed(t *testing.T) {
	for name, tc := range map[string]struct {
		writeErr, syncErr error
		advice            string
	}{
		"full disk":       {writeErr: syscall.ENOSPC, advice: "free space"},
		"fsync I/O error": {syncErr: syscall.EIO, advice: "I/O error"},
	} {
		t.Run(name, func(t *testing.T) {
			key := writerKey(t, "test.example/audit")
			o, logs := testOptions(t, t.TempDir(), key)
			l := mustOpen(t, o)
			appendN(t, l, "a", 5)
			good, _ := os.ReadFile(o.Path)
			f := inject(l)
			f.fail(tc.writeErr, tc.syncErr)

			for p, err := range appendAll(l, names("x", 8)...) {
				if err == nil {
					t.Fatalf("%s: Append returned nil on a failing log", p)
				}
				cause := tc.writeErr
				if cause == nil {
					cause = tc.syncErr
				}
				checkUnavailable(t, err, cause, tc.advice)
			}
			if st := l.Stats(); st.Failures != 8 || st.Records != 5 {
				t.Fatalf("stats %+v", st)
			}
			if got, _ := os.ReadFile(o.Path); string(got) != string(good) {
				t.Fatalf("the failed writes were not cut back:\n%q", got[len(good):])
			}
			if err := l.Checkpoint(context.Background()); err == nil {
				t.Fatal("Checkpoint on a failing log returned nil")
			}
			if tc.writeErr != nil {
				if err := l.Ready(); !errors.Is(err, ErrUnavailable) {
					t.Fatalf("Ready on a full disk: %v", err)
				}
			}
			if !strings.Contains(logs.String(), "cannot be written") {
				t.Fatalf("no error logged:\n%s", logs)
			}

			f.fail(nil, nil)
			if err := l.Ready(); err != nil {
				t.Fatalf("Ready after the disk recovered: %v", err)
			}
			appendN(t, l, "b", 3)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			c := checkLog(t, o.Path, key)
			var got []string
			for _, r := range c.records {
				got = append(got, r.Principal)
			}
			if fmt.Sprint(got) != "[a0 a1 a2 a3 a4 b0 b1 b2]" {
				t.Fatalf("records %v", got)
			}
			// The checkpoint that failed is written with the next batch.
			if fmt.Sprint(c.checkpoints) != "[5 8]" {
				t.Fatalf("checkpoints %v", c.checkpoints)
			}
		})
	}
}

func TestFailOpen(t *testing.T) {
	key := writerKey(t, "test.example/audit")
	o, logs := testOptions(t, t.TempDir(), key)
	o.FailOpen = true
	reader := sdkmetric.NewManualReader()
	o.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	l := mustOpen(t, o)
	if !l.FailOpen() || !strings.Contains(logs.String(), "fail-open") {
		t.Fatalf("FailOpen %v; logs:\n%s", l.FailOpen(), logs)
	}
	appendN(t, l, "a", 2)
	f := inject(l)
	f.fail(syscall.ENOSPC, nil)
	for p, err := range appendAll(l, names("x", 6)...) {
		if err != nil {
			t.Fatalf("%s: fail-open Append: %v", p, err)
		}
	}
	if st := l.Stats(); st.Dropped != 6 || st.Failures != 0 {
		t.Fatalf("stats %+v", st)
	}
	if !strings.Contains(logs.String(), "DROPPED") {
		t.Fatalf("drops not logged loudly:\n%s", logs)
	}
	f.fail(nil, nil)
	appendN(t, l, "b", 2)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c := checkLog(t, o.Path, key)
	if len(c.records) != 4 || c.records[2].Principal != "b0" {
		t.Fatalf("%d records", len(c.records))
	}
	m := collect(t, reader)
	if m.records["dropped"] != 6 || m.records["written"] != 4 {
		t.Fatalf("records metric %v", m.records)
	}
}

// collected are the writer's metrics.
type collected struct {
	records              map[string]int64 // by outcome
	fsyncs, checkpoints  int64
	batchCount, batchSum int64
	batchMin, batchMax   int64
	scopes               []string
}

func collect(t *testing.T, r *sdkmetric.ManualReader) collected {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	c := collected{records: map[string]int64{}}
	for _, sm := range rm.ScopeMetrics {
		c.scopes = append(c.scopes, sm.Scope.Name)
		for _, m := range sm.Metrics {
			switch m.Name {
			case metricRecords:
				for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
					v, _ := p.Attributes.Value(attrOutcome)
					c.records[v.AsString()] += p.Value
				}
			case metricFsyncs:
				for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
					c.fsyncs += p.Value
				}
			case metricCheckpoints:
				for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
					c.checkpoints += p.Value
				}
			case metricBatchSize:
				for _, p := range m.Data.(metricdata.Histogram[int64]).DataPoints {
					c.batchCount += int64(p.Count)
					c.batchSum += p.Sum
					c.batchMin, _ = p.Min.Value()
					c.batchMax, _ = p.Max.Value()
				}
			}
		}
	}
	return c
}

func TestMetrics(t *testing.T) {
	key := writerKey(t, "test.example/audit")
	o, _ := testOptions(t, t.TempDir(), key)
	reader := sdkmetric.NewManualReader()
	o.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	l := mustOpen(t, o)
	for p, err := range appendAll(l, names("x", 50)...) {
		if err != nil {
			t.Fatal(p, err)
		}
	}
	f := inject(l)
	f.fail(syscall.ENOSPC, nil)
	appendAll(l, "bad")
	f.fail(nil, nil)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	m := collect(t, reader)
	if fmt.Sprint(m.scopes) != "[github.com/knhk/knhk]" {
		t.Fatalf("scopes %v", m.scopes)
	}
	if m.records["written"] != 50 || m.records["failed"] != 1 || st.Records != 50 {
		t.Fatalf("records %v, stats %+v", m.records, st)
	}
	if m.batchCount != st.Batches || m.batchSum != 50 || m.batchMin < 1 || m.batchMax > 50 {
		t.Fatalf("batch sizes: %d batches of %d..%d summing to %d; stats %+v", m.batchCount, m.batchMin, m.batchMax, m.batchSum, st)
	}
	// Every batch and the final checkpoint were fsynced.
	if m.checkpoints != 1 || m.fsyncs != st.Batches+1 {
		t.Fatalf("%d checkpoints, %d fsyncs; stats %+v", m.checkpoints, m.fsyncs, st)
	}
}

// TestFailClosedFullDisk fills a real (tiny tmpfs) file system.
func TestFailClosedFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting a tiny tmpfs (mount -t tmpfs -o size=64k) needs root; TestFailClosed covers the same path with injected ENOSPC")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot mount a tmpfs at %s (%v: %s); TestFailClosed covers the same path with injected ENOSPC", dir, err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	key := writerKey(t, "test.example/audit")
	o, _ := testOptions(t, dir, key)
	l := mustOpen(t, o)
	appendN(t, l, "a", 3)

	// Fill the file system, then append until the log's file cannot grow.
	filler := filepath.Join(dir, "filler")
	fill, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := fill.Write(make([]byte, 1024)); err != nil {
			break
		}
	}
	fill.Close()
	ok := []string{"a0", "a1", "a2"}
	var failed error
	for i := 0; i < 200 && failed == nil; i++ {
		p := fmt.Sprintf("b%d", i)
		if failed = l.Append(context.Background(), record(p)); failed == nil {
			ok = append(ok, p)
		}
	}
	if failed == nil {
		t.Fatal("appends kept succeeding on a full tmpfs")
	}
	checkUnavailable(t, failed, syscall.ENOSPC, "free space")
	if err := l.Ready(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ready on a full disk: %v", err)
	}
	if err := l.Append(context.Background(), record("still-full")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append on a full disk: %v", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := l.Ready(); err != nil {
		t.Fatalf("Ready after freeing space: %v", err)
	}
	for i := range 5 {
		p := fmt.Sprintf("c%d", i)
		if err := l.Append(context.Background(), record(p)); err != nil {
			t.Fatal(err)
		}
		ok = append(ok, p)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c := checkLog(t, o.Path, key)
	var got []string
	for _, r := range c.records {
		got = append(got, r.Principal)
	}
	if fmt.Sprint(got) != fmt.Sprint(ok) {
		t.Fatalf("records %v\nwant the acknowledged %v", got, ok)
	}
}

// TestTreePrunedHoldsFrontier: the writer's tree holds exactly the
// frontier hashes, whatever the size.
func TestTreePrunedHoldsFrontier(t *testing.T) {
	tr := newTree(false)
	for i := range 1100 {
		if err := tr.append(tlog.RecordHash(fmt.Appendf(nil, "r%d", i))); err != nil {
			t.Fatal(err)
		}
		want := frontierIndexes(tr.size)
		if len(tr.hashes) != len(want) {
			t.Fatalf("size %d: %d hashes held, frontier has %d", tr.size, len(tr.hashes), len(want))
		}
		for _, x := range want {
			if _, ok := tr.hashes[x]; !ok {
				t.Fatalf("size %d: frontier hash %d not held", tr.size, x)
			}
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, callers := range []int{1, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			key := writerKey(b, "bench.example/audit")
			o, _ := testOptions(b, b.TempDir(), key)
			l := mustOpen(b, o)
			b.SetParallelism((callers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := record("bench")
				for pb.Next() {
					if err := l.Append(context.Background(), r); err != nil {
						b.Error(err)
						return
					}
				}
			})
			st := l.Stats()
			b.ReportMetric(float64(st.Records)/float64(st.Batches), "records/fsync")
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
