// Package hosttest gives tests of code that embeds the knhk host a real
// *host.Host with no plugin binary: the fake provider (package
// plugins/fake) is served inside the test process in go-plugin's test
// mode, and the host attaches to it (go-plugin's reattach mode, which the
// host offers to this package only). Every call still crosses gRPC and the
// host's machinery (timeouts, verify-after-sign, public-key cache), so
// what passes here passes against a plugin binary.
//
// Key references use provider "fake": fake:demo, fake:release?seed=x. See
// the fake package for its parameters (state=, seed=, fault_*=).
package hosttest
