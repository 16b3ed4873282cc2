package providertest

import "testing"

// reporter is the part of *testing.T the checks use. Run adapts a
// *testing.T to it; the kit's own tests use a recorder, so they can run the
// checks against broken providers and see which ones fail.
type reporter interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	// Fatalf reports and stops the current check (runtime.Goexit).
	Fatalf(format string, args ...any)
	// Skipf says why the current check cannot run and stops it without
	// failing it.
	Skipf(format string, args ...any)
	Cleanup(func())
	Failed() bool
	// Run runs f as a named sub-check and reports whether it passed.
	Run(name string, f func(r reporter)) bool
}

// testingReporter adapts a *testing.T.
type testingReporter struct{ *testing.T }

var _ reporter = testingReporter{}

// Run runs f as a subtest.
func (r testingReporter) Run(name string, f func(reporter)) bool {
	return r.T.Run(name, func(t *testing.T) { f(testingReporter{t}) })
}
