// Package providertest is knhk's conformance kit for provider plugins.
//
// A plugin author runs it from an ordinary Go test against the plugin
// binary, launched through go-plugin exactly as the host launches it. A
// complete conformance test, in a _test.go file at the root of the
// plugin's module (whose main package is ./cmd/knhk-plugin-mykms):
//
//	package mykms
//
//	import (
//		"fmt"
//		"os"
//		"testing"
//
//		"github.com/knhk/knhk/shared/providertest"
//	)
//
//	// pluginBin is the plugin binary TestMain builds, named
//	// knhk-plugin-mykms as the host expects.
//	var pluginBin string
//
//	func TestMain(m *testing.M) {
//		bin, remove, err := providertest.BuildTemp("./cmd/knhk-plugin-mykms")
//		if err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//		pluginBin = bin
//		code := m.Run()
//		remove()
//		os.Exit(code)
//	}
//
//	func TestConformance(t *testing.T) {
//		providertest.Run(t, providertest.Config{
//			Binary: pluginBin,
//			Params: map[string]string{"endpoint": "https://127.0.0.1:8443"}, // what your provider needs
//		})
//	}
//
// Run it with the race detector:
//
//	go test -race -run TestConformance ./...
//
// Under -race, BuildTemp (and Build) build the plugin with -race too, and
// the kit fails the test when the plugin reports a data race on stderr.
// A Config.Provider runs the kit in process instead, through
// shared.Validate as Serve applies it.
//
// Every check is a named subtest (for example "ec-p256/Sign/ES256/digest"),
// so -run can pick one and a failure names what is wrong. Checks that
// need good signatures from the provider (Verify, SignBatch, Concurrent,
// Rotation) are skipped with "skipped: signing failed" when a Sign check
// they build on failed, so a signing bug fails the Sign checks only.
//
// # What it checks
//
// For every key type and algorithm the provider's Describe claims (or the
// subset Config.KeyTypes and Config.Algorithms name):
//
//   - Describe: a plugin name (for a binary, the one its file name
//     knhk-plugin-<name> says, as the host refuses a mismatch), protocol
//     version shared.ProtocolVersion (an in-process provider may leave it
//     zero for the SDK to fill), only key types and algorithms knhk knows,
//     no duplicates, every algorithm usable by some claimed key type and
//     every key type by some claimed algorithm, and (in process) a
//     shared.BatchSigner behind a sign_batch claim.
//   - Key: a key is created per key type when Describe claims create_key, or
//     taken from Config.Keys. The kit uses the id CreateKey returns.
//   - PublicKey: DER SubjectPublicKeyInfo that shared.ParsePublicKey accepts,
//     of the right type, naming its version; the same key when that version
//     is asked for by name.
//   - Metadata: type, current version (enabled, listed), and algorithms that
//     the key type can use and that include every tested one. ListKeys (if
//     claimed) lists the key by id or alias.
//   - Sign: for every algorithm, digest mode (not EdDSA) and message mode
//     (EdDSA, and every algorithm when sign_message is claimed); the
//     response names the current version, and the signature verifies with
//     the standard library against the public key (RSA-PSS with any salt
//     length, as some services use the maximum).
//   - Verify (if claimed): a good signature is valid; a tampered one and one
//     over other data are not (Valid false, or shared.ErrInvalidArgument).
//   - Bad input: a digest of the wrong length (or any digest for EdDSA)
//     fails with shared.ErrInvalidArgument; every operation on a key that
//     does not exist fails with shared.ErrKeyNotFound; signing with an
//     algorithm the key type cannot use fails with
//     shared.ErrUnsupportedAlgorithm or shared.ErrInvalidArgument.
//   - SignBatch (when the Provider is a shared.BatchSigner, as every plugin
//     binary is): a batch of good and bad items gets one result per item,
//     good ones verifying and bad ones carrying the right error.
//   - Concurrent: Config.Concurrency (64) goroutines sign at once and every
//     signature verifies.
//   - Cancelled and DeadlineExceeded: Sign with a cancelled context or a
//     deadline already passed returns (within Config.Timeout) an error for
//     which errors.Is(err, context.Canceled) or
//     errors.Is(err, context.DeadlineExceeded) holds.
//   - Rotation (if claimed): a new version, different from the old and with
//     a new public key, that signs and says so; the old version's public key
//     unchanged and its signatures still verifying (also with the provider's
//     Verify); signing with the old version named works and reports it; the
//     metadata lists both versions, oldest first.
//
// # What it needs
//
// A provider to talk to: in-process (Config.Provider), or a binary
// (Config.Binary, see also Launch). Whatever backs it must be reachable
// with Config.Params: an emulator, a test server or a disposable account.
// A provider that cannot create keys needs one existing key per key type
// in Config.Keys. The kit creates keys named Config.KeyID (unique per run
// by default) and rotates the keys it tests, supplied ones too; it deletes
// nothing, since the contract has no delete. The not-found checks use
// Config.MissingKeyID; set it when the provider's ids have a fixed shape (an
// ARN, a UUID). Every call is bounded by Config.Timeout (one minute by
// default), so a hung provider fails a check rather than hanging the test.
//
// An in-process Provider gets the same input checks as a binary (the kit
// wraps it in shared.Validate), but not the gRPC boundary: running the kit
// against the built binary tests exactly what the host sees.
package providertest
