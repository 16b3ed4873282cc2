// Package sidecar is the signing daemon behind `knhk-host serve`: one
// host.Host (so batching, the public-key cache, verify-after-sign and
// plugin supervision serve every caller) behind
//
//   - a unix socket, where the kernel names the caller (SO_PEERCRED:
//     principals "unix:uid=N" and "unix:gid=N");
//   - optionally gRPC on TCP with mutual TLS, where the client certificate
//     names the caller (its SPIFFE ID "spiffe://…" when it has one, and
//     "x509:" and its subject);
//   - optionally HTTP/JSON on TCP with mutual TLS;
//   - with Config.SPIFFE, TCP listeners that serve with the daemon's own
//     X.509-SVID from the SPIFFE Workload API and know callers by the
//     SPIFFE ID of their X.509-SVID (or, on HTTP/JSON, JWT-SVID), SVIDs
//     and bundles rotating without a restart;
//   - optionally plain /healthz, /readyz and Prometheus /metrics
//     (Config.MetricsHandler) on their own address.
//
// On the gRPC listeners it speaks its own API (knhk.sidecar.v1.Signer,
// see proto/knhk/sidecar/v1/sidecar.proto), Kubernetes' ExternalJWTSigner
// (k8s.io/externaljwt, v1 and v1alpha1: kube-apiserver started with
// --service-account-signing-endpoint=<socket> signs service-account tokens
// here) and grpc.health.v1.
//
// Besides signing and key management, the API carries the version
// states and promotion gates of the host (Rotate with pending, Versions,
// Gates, Approve, Promote, Retire; see versions.go): a promotion refused
// by its gates is FAILED_PRECONDITION with a GatesNotMet detail (on
// HTTP/JSON, "unmet_gates"), and the ExternalJWTSigner publishes a key's
// pending, active and retiring versions and signs with the active one.
//
// Every call names a key (a name from Config.Keys, or a reference when
// Config.AllowReferences) and is checked against the Policies for the
// caller and the operation: deny by default. A denial is
// ErrPolicyDenied, names the principal and the operation, and is logged at
// debug like every decision. Errors keep the host's sentinels across the
// wire: package client gives them back for errors.Is.
//
// Incoming calls continue the caller's W3C trace context (gRPC and
// HTTP/JSON): the host's spans for a call are children of its server
// span. The daemon counts requests by principal and policy denials
// (knhk.sidecar.requests, knhk.sidecar.denials; see package telemetry).
//
// Serve drains on its context's end (new calls get ErrDraining, calls in
// flight get Config.DrainTimeout); Reload swaps keys, policy and limits
// atomically. The CLI wires both to SIGTERM and SIGHUP.
package sidecar
