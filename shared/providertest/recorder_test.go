package providertest

import (
	"fmt"
	"path"
	"runtime"
	"slices"
	"sync"
)

// recorder is a reporter that records which checks failed instead of
// failing the test, so tests can run the kit against broken providers.
type recorder struct {
	name string
	res  *results

	mu       sync.Mutex
	failed   bool
	cleanups []func()
}

// results maps each check's path ("ec-p256/Sign/ES256/digest"; "" for the
// top level) to what it reported.
type results struct {
	mu       sync.Mutex
	ran      []string
	failures map[string][]string
	skips    map[string]string // why a check was skipped
}

var _ reporter = (*recorder)(nil)

// runRecorded runs the kit against cfg and returns what each check reported.
func runRecorded(cfg Config) *results {
	res := &results{failures: map[string][]string{}, skips: map[string]string{}}
	root := &recorder{res: res}
	root.do(func() { run(root, cfg) })
	return res
}

// do runs f like a test body: in its own goroutine, so Fatalf can end it,
// followed by the cleanups.
func (r *recorder) do(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer r.runCleanups()
		f()
	}()
	<-done
}

func (r *recorder) Helper()                   {}
func (r *recorder) Logf(string, ...any)       {}
func (r *recorder) Errorf(f string, a ...any) { r.fail(fmt.Sprintf(f, a...)) }

func (r *recorder) Fatalf(f string, a ...any) {
	r.fail(fmt.Sprintf(f, a...))
	runtime.Goexit()
}

func (r *recorder) Skipf(f string, a ...any) {
	r.res.mu.Lock()
	r.res.skips[r.name] = fmt.Sprintf(f, a...)
	r.res.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) fail(msg string) {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
	r.res.mu.Lock()
	r.res.failures[r.name] = append(r.res.failures[r.name], msg)
	r.res.mu.Unlock()
}

func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

func (r *recorder) Cleanup(f func()) {
	r.mu.Lock()
	r.cleanups = append(r.cleanups, f)
	r.mu.Unlock()
}

func (r *recorder) runCleanups() {
	r.mu.Lock()
	fs := r.cleanups
	r.cleanups = nil
	r.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// Run runs a sub-check; like testing, its failure fails the parent.
func (r *recorder) Run(name string, f func(reporter)) bool {
	c := &recorder{name: path.Join(r.name, name), res: r.res}
	r.res.mu.Lock()
	r.res.ran = append(r.res.ran, c.name)
	r.res.mu.Unlock()
	c.do(func() { f(c) })
	if c.Failed() {
		r.mu.Lock()
		r.failed = true
		r.mu.Unlock()
	}
	return !c.Failed()
}

// failing lists the checks that reported a failure themselves.
func (res *results) failing() []string {
	res.mu.Lock()
	defer res.mu.Unlock()
	var out []string
	for name := range res.failures {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

func (res *results) didRun(name string) bool {
	res.mu.Lock()
	defer res.mu.Unlock()
	return slices.Contains(res.ran, name)
}

func (res *results) failed(name string) bool {
	res.mu.Lock()
	defer res.mu.Unlock()
	return len(res.failures[name]) > 0
}

// skipped returns why a check was skipped, or "" when it was not.
func (res *results) skipped(name string) string {
	res.mu.Lock()
	defer res.mu.Unlock()
	return res.skips[name]
}

func (res *results) String() string {
	res.mu.Lock()
	defer res.mu.Unlock()
	s := ""
	for name, msgs := range res.failures {
		for _, m := range msgs {
			s += fmt.Sprintf("\n  %s: %s", name, m)
		}
	}
	return s
}
