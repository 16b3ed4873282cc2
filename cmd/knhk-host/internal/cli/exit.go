package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/knhk/knhk/client"
	"github.com/knhk/knhk/host"
	"github.com/knhk/knhk/shared"
)

// Exit statuses. They are part of the command line's contract: scripts
// branch on them.
const (
	// ExitOK: the command did what was asked (verify: the signature is valid).
	ExitOK = 0
	// ExitInvalid: verify: the signature does not verify; audit verify:
	// the log is not intact.
	ExitInvalid = 1
	// ExitUsage: the invocation is wrong and retrying it unchanged will not
	// help: unknown command or flag, missing or malformed value, malformed
	// key reference, unknown provider, unknown key type or algorithm,
	// unreadable input file, malformed config or lock file.
	ExitUsage = 2
	// ExitRuntime: the operation failed: a plugin was refused, did not start,
	// crashed or timed out; the key does not exist; the provider refused or
	// was unavailable; the sidecar (--server) could not be reached or its
	// policy refused; output could not be written.
	ExitRuntime = 3
)

// exitCodesHelp documents the exit statuses in --help.
const exitCodesHelp = `Exit status:
  0  success (verify: the signature is valid)
  1  verify: the signature is invalid; audit verify: the log is not intact
  2  usage error: unknown command or flag, missing or malformed value, bad key
     reference, unknown provider, key type or algorithm, unreadable input,
     malformed config or lock file
  3  runtime error: plugin refused, failed or timed out, key not found,
     provider error, sidecar unreachable or its policy refused, output not
     written`

// usageError marks an error in the invocation itself (exit status 2).
type usageError struct {
	err  error
	hint string
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef builds a usage error with a hint saying what to do.
func usagef(hint, format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...), hint: hint}
}

// errInvalidSignature is returned by verify for a signature that does not
// verify: exit status 1, and the verdict is already on stdout.
var errInvalidSignature = errors.New("signature is invalid")

// classify picks the exit status of an error and the hint that says what to
// do about it.
func classify(err error, cmdPath string) (code int, hint string) {
	var ue *usageError
	var unreachable *client.UnreachableError
	switch {
	case errors.Is(err, errInvalidSignature), errors.Is(err, errLogNotIntact):
		return ExitInvalid, ""
	case errors.As(err, &ue):
		if ue.hint == "" {
			return ExitUsage, fmt.Sprintf("run '%s --help' for usage", cmdPath)
		}
		return ExitUsage, ue.hint
	case errors.Is(err, errConfig):
		return ExitUsage, "fix the config file (HCL: plugin_dirs, lock_file, log_level, timeouts, key \"NAME\" { ref = ... })"
	case errors.Is(err, host.ErrMalformedRef):
		return ExitUsage, "fix --key, or pass a key name defined in --config"
	case errors.Is(err, host.ErrPluginNotFound):
		return ExitUsage, "check the provider name or --plugin-dir; 'knhk-host plugins' lists the plugins found"
	case errors.Is(err, host.ErrLockFile):
		if strings.HasSuffix(cmdPath, " plugins lock") {
			return ExitUsage, "check the --lock-file path and that its directory is writable"
		}
		return ExitUsage, "check the --lock-file path, or write the file with 'knhk-host plugins lock'"
	case errors.Is(err, shared.ErrUnsupportedAlgorithm):
		return ExitUsage, "choose an algorithm the key supports; 'knhk-host metadata --key REF' lists them"
	case errors.Is(err, shared.ErrInvalidArgument):
		return ExitUsage, fmt.Sprintf("check the arguments and key parameters; run '%s --help' for usage", cmdPath)
	case errors.Is(err, host.ErrPluginRefused):
		return ExitRuntime, refusedHint(err)
	case errors.Is(err, host.ErrHandshake):
		return ExitRuntime, "check that the file is a knhk plugin built for this host; rerun with --log-level debug to see its output"
	case errors.Is(err, shared.ErrKeyNotFound):
		return ExitRuntime, "check the key reference and its parameters, or create the key with 'knhk-host keys create'"
	case errors.Is(err, shared.ErrAlreadyExists):
		return ExitRuntime, "choose another key id, or use the existing key"
	case errors.Is(err, client.ErrPolicyDenied):
		return ExitRuntime, "the sidecar's policy does not allow this caller this operation on this key; ask the daemon's operator for a policy that does"
	case errors.Is(err, shared.ErrPermissionDenied):
		return ExitRuntime, "check the provider's credentials and their permissions on this key"
	case errors.Is(err, shared.ErrUnimplemented):
		return ExitRuntime, "this provider does not offer the operation; 'knhk-host plugins' lists its capabilities"
	case errors.Is(err, shared.ErrFailedPrecondition):
		return ExitRuntime, "check the key's state with 'knhk-host metadata --key REF'"
	case errors.Is(err, host.ErrVerifyAfterSign):
		return ExitRuntime, "the plugin is faulty or compromised; do not use its signatures and report it"
	case mayHaveHappened(err) && strings.HasSuffix(cmdPath, " keys create"):
		return ExitRuntime, "the key may have been created anyway: check with 'knhk-host metadata --key REF' (or 'knhk-host keys list') before creating it again"
	case mayHaveHappened(err) && strings.HasSuffix(cmdPath, " rotate"):
		return ExitRuntime, "the key may have been rotated anyway: check its current version with 'knhk-host metadata --key REF' before rotating again"
	case errors.As(err, &unreachable):
		return ExitRuntime, fmt.Sprintf("is knhk-host serve running at %s? start it, or point --server (or $%s) at its socket", unreachable.Target, serverEnv)
	case host.IsRetryable(err), errors.Is(err, context.DeadlineExceeded):
		return ExitRuntime, "retry later; rerun with --log-level debug to see the plugin's logs"
	case errors.Is(err, context.Canceled):
		return ExitRuntime, "the command was interrupted"
	}
	return ExitRuntime, "rerun with --log-level debug for details"
}

// mayHaveHappened reports whether err leaves it unknown if the provider
// did what was asked: the answer was lost (the provider was unavailable,
// the plugin crashed or timed out, the command was interrupted). Create
// and rotate are not idempotent, so the hint is to look, never to retry.
func mayHaveHappened(err error) bool {
	return host.IsRetryable(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// refusedHint says what to do about a refused plugin without repeating the
// host's message. The host names the fix for an unsafe file (chmod go-w,
// chmod u+x, a copy instead of a symlink) and for a plugin missing from the
// lock file; a plugin that no longer matches the lock file was updated on
// purpose or tampered with, and only the user knows which.
func refusedHint(err error) string {
	msg := err.Error()
	if strings.Contains(msg, "changed since it was locked") || strings.Contains(msg, "changed after it was checked") {
		return "if the plugin was updated on purpose, run 'knhk-host plugins lock' to pin it again; otherwise reinstall it"
	}
	return "'knhk-host plugins' lists every plugin found and why any is refused"
}

// maxErrorLine bounds an error message, in bytes: one that echoes a huge
// input is cut there with an ellipsis.
const maxErrorLine = 2048

// oneLine makes an error message one line that is safe on a terminal and
// in a log, whoever wrote it (the host, a plugin, a library): white space
// runs become one space, so no stack traces or multi-line dumps; other
// control and non-printing characters (ESC, NUL, C1 controls, direction
// overrides) and invalid UTF-8 become Go escapes such as \x1b; URL user
// info and secret-looking query values are redacted; and it is cut at
// maxErrorLine bytes.
func oneLine(s string) string {
	s = shared.Redact(strings.Join(strings.Fields(s), " "))
	var b strings.Builder
	for len(s) > 0 {
		if b.Len() >= maxErrorLine {
			b.WriteString("…")
			break
		}
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case unicode.IsPrint(r):
			b.WriteString(s[:n])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		s = s[n:]
	}
	return b.String()
}

// errorReport is an error as -o json prints it on stderr.
type errorReport struct {
	Error    string `json:"error"`
	Hint     string `json:"hint,omitempty"`
	Command  string `json:"command"`
	ExitCode int    `json:"exit_code"`
}

// renderError writes err to stderr, as one line of text or one JSON object,
// and returns the exit status.
func renderError(w io.Writer, err error, cmdPath string, jsonOut bool) int {
	code, hint := classify(err, cmdPath)
	if code == ExitInvalid {
		return code // verify has printed its verdict
	}
	msg := oneLine(err.Error())
	if jsonOut {
		out, _ := json.Marshal(errorReport{Error: msg, Hint: hint, Command: cmdPath, ExitCode: code})
		fmt.Fprintf(w, "%s\n", out)
		return code
	}
	line := cmdPath + ": " + msg
	if hint != "" {
		line += " (" + hint + ")"
	}
	fmt.Fprintln(w, line)
	return code
}
