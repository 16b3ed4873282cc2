// Package cli is the knhk-host command line: the cobra command tree, the
// --config file, output formats (text and JSON), public-key encodings and
// the mapping of errors to one-line messages and exit statuses (ExitOK,
// ExitInvalid, ExitUsage, ExitRuntime). The main package only calls Run.
package cli
