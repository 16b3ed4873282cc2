package host

import (
	"errors"

	"github.com/knhk/knhk/audit"
	"github.com/knhk/knhk/shared"
)

// Host errors. Each error the host returns wraps one of these (or one of the
// shared sentinels a plugin returned), so callers branch with errors.Is.
// Where a host error has a natural shared counterpart it wraps that too:
// ErrMalformedRef is also shared.ErrInvalidArgument, ErrPluginCrashed and
// ErrCallTimeout are also shared.ErrUnavailable, ErrVerifyAfterSign is also
// shared.ErrBadSignature.
var (
	// ErrMalformedRef: a key reference is not PROVIDER:KEYID[?name=value&...].
	ErrMalformedRef = errors.New("malformed key reference")
	// ErrPluginNotFound: no knhk-plugin-<provider> in any plugin directory.
	ErrPluginNotFound = errors.New("plugin not found")
	// ErrPluginRefused: the plugin file is not safe to run (a symlink, not a
	// regular file, not executable, group- or world-writable, owned by
	// another user than the host's or root, in a directory that is group-
	// or world-writable or owned by another user, missing from the lock
	// file, or its SHA-256 differs from the lock file's). A refused plugin
	// is never executed.
	ErrPluginRefused = errors.New("plugin refused")
	// ErrHandshake: the plugin started but did not complete the go-plugin
	// handshake (not a plugin at all, wrong magic cookie, wrong protocol
	// version, output on stdout before the handshake, or no answer within
	// the start timeout), or it describes itself as another provider than
	// its file name says.
	ErrHandshake = errors.New("plugin handshake failed")
	// ErrPluginCrashed: the plugin process died during the call (and, for
	// idempotent calls, again on the one retry), or exited during
	// start-up, before its handshake (the message has its exit status and
	// last lines on stderr). Retryable: the host launches a fresh process
	// on the next call.
	ErrPluginCrashed = errors.New("plugin process died")
	// ErrCallTimeout: the plugin did not answer within Config.CallTimeout.
	// If it answered nothing else meanwhile, the host has killed it and
	// will launch a fresh process on the next call; every call waiting on
	// it gets this error.
	ErrCallTimeout = errors.New("plugin did not answer within the call timeout")
	// ErrVerifyAfterSign: the plugin returned a signature that does not
	// verify against the key's public key, even after refetching it. The
	// signature is never returned.
	ErrVerifyAfterSign = errors.New("plugin returned a signature that does not verify")
	// ErrClosed: the Host has been closed.
	ErrClosed = errors.New("host is closed")
	// ErrLockFile: the lock file cannot be read or is malformed.
	ErrLockFile = errors.New("bad lock file")
	// ErrAuditUnavailable: the audit log (Config.Audit) could not make
	// the operation's record durable, so its result was withheld. Also
	// shared.ErrUnavailable: retry once the log can be written (the disk
	// has room, the file is writable). It is audit.ErrUnavailable.
	ErrAuditUnavailable = audit.ErrUnavailable
)

// IsRetryable reports whether err is worth retrying later: the plugin or
// its backing service was unavailable, crashed, or timed out.
func IsRetryable(err error) bool {
	return errors.Is(err, shared.ErrUnavailable) || errors.Is(err, ErrCallTimeout) || errors.Is(err, ErrPluginCrashed)
}
