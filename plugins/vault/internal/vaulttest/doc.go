// Package vaulttest runs a real HashiCorp Vault server (v1.21.0, dev mode,
// bound to 127.0.0.1) for the vault plugin's tests. The server binary is
// built once per machine from the Go module proxy by ../../testdeps.sh into
// $KNHK_CACHE (default ~/.cache/knhk); Binary builds it when missing.
package vaulttest
