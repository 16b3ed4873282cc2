package telemetry

import "github.com/knhk/knhk/internal/errtype"

// ErrorType is the error.type of err: the short name, in lower snake
// case, of the most specific knhk sentinel it wraps (errors.Is), the
// sidecar's and the host's before the plugin SDK's: key_not_found,
// invalid_argument, unsupported_algorithm, permission_denied,
// unavailable, failed_precondition, unimplemented, already_exists,
// bad_signature, malformed_ref, plugin_not_found, plugin_refused,
// handshake, plugin_crashed, call_timeout, verify_after_sign, closed,
// policy_denied, too_many_calls, draining; then canceled or
// deadline_exceeded for the context errors; else "_OTHER". A nil error
// has none: "".
func ErrorType(err error) string { return errtype.Of(err) }
