// Package apierr carries knhk's errors across the sidecar's API: the
// daemon turns an error into a gRPC status (or an HTTP status and JSON
// body) whose reason names knhk's sentinel, and the client turns it back
// into an error that matches the same sentinels with errors.Is as the
// embedded host's would.
package apierr
