// Package pluginrpc is the host's side of the plugin contract: the gRPC
// client that turns a plugin connection back into a shared.Provider, the
// mapping from gRPC status codes to the SDK's sentinel errors, and the
// go-plugin client configuration the host and the conformance kit launch
// plugins with. Plugin authors never need it; it is internal so that the
// SDK (package shared) shows only what they do need.
package pluginrpc
