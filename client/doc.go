// Package client is the Go client of the knhk signing sidecar
// (knhk-host serve): it signs, verifies and manages keys that the daemon
// holds, over its gRPC API (package sidecar/proto/knhk/sidecar/v1).
//
//	c, err := client.Dial(ctx, "unix:///run/knhk/knhk.sock")
//	defer c.Close()
//	signer, err := c.Signer(ctx, "release") // crypto.Signer + crypto.MessageSigner
//
// # Connecting
//
// On the daemon's unix socket the daemon knows the caller by the socket
// peer's uid and gid; over TCP the daemon takes mutual TLS only, and the
// caller is its certificate (WithTLS) or its SPIFFE X.509-SVID from the
// Workload API (WithSPIFFE). Dial connects lazily and the
// connection is remade after it breaks. A call that cannot reach the
// daemon fails at once with an UnreachableError (also
// shared.ErrUnavailable) naming the target; it does not wait for the
// daemon to come up.
//
// # Keys
//
// A key is named as on the knhk-host command line: a key name from the
// daemon's config, or, when the daemon allows references, a reference
// PROVIDER:KEYID[?name=value&...]. Key has the methods of host.Key with the
// same types (host.SignOptions, host.Signature, host.PublicKey), and Signer
// those of host.Signer, so code written against an embedded host runs
// against the daemon by swapping the handle.
//
// # Version states and promotion
//
// For a key whose provider keeps version states, Key.RotatePending makes
// a pending version (published: PublicKey by version and the daemon's
// ExternalJWTSigner FetchKeys give it, but it does not sign),
// Key.Versions lists the versions with their states, Key.Approve has the
// daemon sign an approval with an approver key it holds, Key.Gates checks
// the key's promotion gates, Key.Promote makes the version active (a
// refusal is a *host.GatesError listing the unmet gates) and Key.Retire
// retires a version. Each is an operation of the daemon's policy:
// "rotate", "versions" (Versions and Gates), "approve" (and "sign" on the
// approver's key), "promote", "retire".
//
// # Concurrent signing
//
// By default a Client carries its signatures over one SignStream, opened
// on the first signature: each is an item with an id, a single sender
// sends every item queued at that moment in one request (nothing waits
// when the client is idle; under load, concurrent signatures travel
// together, up to 256 or 1 MiB a request), and results come back as each
// is ready, in any order. A caller whose context ends stops waiting at
// once; its result, if it comes, is dropped. If the stream breaks, the
// signatures in flight on it fail with the mapped error and the next
// signature opens a new stream. A digest or message over 64 KiB, and every
// signature with WithoutStream, goes in a unary Sign call of its own.
//
// # Errors
//
// Every error the daemon returns matches, with errors.Is, the sentinel it
// matched on the daemon's side: shared.ErrKeyNotFound,
// shared.ErrPermissionDenied, host.ErrCallTimeout, host.ErrMalformedRef,
// ..., and the sidecar's own ErrPolicyDenied, ErrTooManyCalls and
// ErrDraining; a promotion refused by its gates is also a
// *host.GatesError for errors.As. A call on a closed Client fails with
// ErrClosed.
package client
