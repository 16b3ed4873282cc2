package providertest

import (
	"path/filepath"
	"slices"
	"strings"

	"github.com/knhk/knhk/shared"
)

var knownCapabilities = []shared.Capability{
	shared.CapCreateKey, shared.CapListKeys, shared.CapRotateKey,
	shared.CapVerify, shared.CapSignMessage, shared.CapSignBatch,
	shared.CapReplicateKey, shared.CapVersionStates,
}

// pluginPrefix starts the file name of every plugin binary the host runs.
const pluginPrefix = "knhk-plugin-"

// checkDescribe checks that Describe is consistent: a name (for a binary,
// the one its file name says), the protocol version, known key types and
// algorithms, and every algorithm usable by some claimed key type.
func (k *kit) checkDescribe(r reporter) {
	d, err := call(k, k.p.Describe)
	if err != nil {
		r.Fatalf("Describe: %v", err)
	}
	k.desc = d
	r.Logf("provider %q version %q, protocol %d, capabilities %v, key types %v, algorithms %v",
		d.Name, d.Version, d.ProtocolVersion, d.Capabilities, d.KeyTypes, d.Algorithms)
	if d.Name == "" {
		r.Errorf("Describe: empty plugin name")
	}
	if k.viaHost {
		k.checkName(r, d.Name)
	}
	// An in-process provider leaves the protocol version to the SDK.
	if d.ProtocolVersion != shared.ProtocolVersion && (k.viaHost || d.ProtocolVersion != 0) {
		r.Errorf("Describe: protocol version %d, want %d", d.ProtocolVersion, shared.ProtocolVersion)
	}
	if len(d.KeyTypes) == 0 {
		r.Errorf("Describe: no key types")
	}
	if len(d.Algorithms) == 0 {
		r.Errorf("Describe: no algorithms")
	}
	for i, kt := range d.KeyTypes {
		if _, err := shared.ParseKeyType(string(kt)); err != nil {
			r.Errorf("Describe: %v", err)
			continue
		}
		if slices.Contains(d.KeyTypes[:i], kt) {
			r.Errorf("Describe: key type %s listed twice", kt)
		}
		if !slices.ContainsFunc(d.Algorithms, kt.Supports) {
			r.Errorf("Describe: key type %s has none of its algorithms %v among the claimed %v", kt, kt.Algorithms(), d.Algorithms)
		}
	}
	for i, a := range d.Algorithms {
		if _, err := shared.ParseAlgorithm(string(a)); err != nil {
			r.Errorf("Describe: %v", err)
			continue
		}
		if slices.Contains(d.Algorithms[:i], a) {
			r.Errorf("Describe: algorithm %s listed twice", a)
		}
		if !slices.ContainsFunc(d.KeyTypes, func(kt shared.KeyType) bool { return kt.Supports(a) }) {
			r.Errorf("Describe: algorithm %s belongs to none of the claimed key types %v", a, d.KeyTypes)
		}
	}
	for _, c := range d.Capabilities {
		if !slices.Contains(knownCapabilities, c) {
			// A newer SDK may know more; not an error.
			r.Logf("Describe: capability %q is unknown to this kit", c)
		}
	}
	// Only an in-process provider can be asked: the SDK serves SignBatch
	// for every plugin binary, and shared.Validate for every provider.
	if _, ok := k.cfg.Provider.(shared.BatchSigner); k.cfg.Provider != nil && d.Has(shared.CapSignBatch) && !ok {
		r.Errorf("Describe: claims %s, but the provider does not implement shared.BatchSigner", shared.CapSignBatch)
	}
}

// checkName checks that the binary is named knhk-plugin-<name>, name being
// what Describe reports: the host finds a provider's plugin by that file
// name and refuses one that calls itself something else.
func (k *kit) checkName(r reporter, name string) {
	file := filepath.Base(k.cfg.Binary)
	want, ok := strings.CutPrefix(file, pluginPrefix)
	switch {
	case !ok:
		r.Errorf("Describe: the binary %s is not named %s<name>, so the host would not find it; name it %s%s", file, pluginPrefix, pluginPrefix, name)
	case name != want:
		r.Errorf("Describe().Name is %q, but the binary %s is named for provider %q, and the host refuses the mismatch: rename the binary %s%s or return Name %q", name, file, want, pluginPrefix, name, want)
	}
}
