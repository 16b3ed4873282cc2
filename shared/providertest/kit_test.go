package providertest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/knhk/knhk/internal/contract"
	"github.com/knhk/knhk/shared"
)

// TestMain doubles as a plugin: launched by go-plugin (the handshake's
// cookie is set), the test binary serves the soft provider instead of
// running tests, so the kit's binary path is tested without another
// module's plugin.
func TestMain(m *testing.M) {
	if os.Getenv(contract.Handshake.MagicCookieKey) == contract.Handshake.MagicCookieValue {
		if err := shared.Serve(newSoft()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(runTests(m))
}

// pluginDir holds this test binary under plugin names (symbolic links).
var pluginDir string

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "knhk-kit-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	pluginDir = dir
	return m.Run()
}

// selfBinary is this test binary, which serves the soft provider when
// launched as a plugin, as knhk-plugin-soft.
func selfBinary(t *testing.T) string {
	t.Helper()
	return selfBinaryAs(t, "knhk-plugin-soft")
}

// selfBinaryAs is this test binary under the file name name.
func selfBinaryAs(t *testing.T, name string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("finding the test binary: %v", err)
	}
	link := filepath.Join(pluginDir, name)
	if err := os.Symlink(exe, link); err != nil && !errors.Is(err, fs.ErrExist) {
		t.Fatalf("linking the test binary as %s: %v", name, err)
	}
	return link
}

// TestRunInProcess runs the whole kit, as a plugin author would, against
// the correct in-process provider: every check must pass.
func TestRunInProcess(t *testing.T) {
	Run(t, Config{Provider: newSoft()})
}

// TestRunBinary runs the kit against a plugin binary over go-plugin gRPC,
// exactly as the host launches one (two key types: TestEveryCheckRuns and
// TestRunInProcess cover the rest).
func TestRunBinary(t *testing.T) {
	Run(t, Config{Binary: selfBinary(t), Params: map[string]string{"region": "test"},
		KeyTypes: []shared.KeyType{shared.ECP256, shared.Ed25519}})
}

// TestEveryCheckRuns proves the kit does not pass by skipping: against a
// provider claiming everything, every check for every key type and
// algorithm runs, in process and through the binary, and none fails.
func TestEveryCheckRuns(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"in-process", Config{Provider: newSoft(), KeyTypes: []shared.KeyType{shared.RSA2048, shared.ECP384, shared.Ed25519}}},
		{"binary", Config{Binary: selfBinary(t), KeyTypes: []shared.KeyType{shared.RSA2048, shared.ECP384, shared.Ed25519}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runRecorded(tc.cfg)
			if f := res.failing(); len(f) > 0 {
				t.Fatalf("correct provider failed %v:%s", f, res)
			}
			want := []string{"Describe", "Scope", "UnknownKey/PublicKey", "UnknownKey/Sign", "UnknownKey/KeyMetadata",
				"UnknownKey/Verify", "UnknownKey/RotateKey"}
			for _, kt := range tc.cfg.KeyTypes {
				p := string(kt) + "/"
				want = append(want, p+"Key", p+"PublicKey", p+"Metadata", p+"ListKeys", p+"WrongDigestLength",
					p+"MismatchedAlgorithm", p+"SignBatch", p+"Concurrent", p+"Cancelled", p+"DeadlineExceeded",
					p+"Rotation", p+"Rotation/Metadata")
				for _, a := range kt.Algorithms() {
					want = append(want, p+"Sign/"+string(a)+"/message", p+"Verify/"+string(a))
					if a != shared.EdDSA {
						want = append(want, p+"Sign/"+string(a)+"/digest")
					}
				}
			}
			for _, name := range want {
				if !res.didRun(name) {
					t.Errorf("check %s did not run", name)
				}
			}
		})
	}
}

// TestKitCatchesBugs runs the kit against deliberately broken providers and
// asserts that exactly the checks for each bug fail, that checks which need
// what the bug breaks are skipped, saying why, and that checks the bug does
// not touch still pass.
func TestKitCatchesBugs(t *testing.T) {
	ec := "ec-p256/"
	for _, tc := range []struct {
		name     string
		bugs     bugs
		mustFail []string // exactly the failing checks
		mustSkip []string // skipped because signing failed
		mustPass []string
	}{
		{"bad signature", bugs{badSignature: true},
			[]string{ec + "Sign/ES256/digest", ec + "Sign/ES256/message"},
			[]string{ec + "Verify/ES256", ec + "SignBatch", ec + "Concurrent", ec + "Rotation"},
			[]string{"Describe", ec + "PublicKey", ec + "Metadata", ec + "WrongDigestLength", ec + "MismatchedAlgorithm", ec + "Cancelled"}},
		{"unknown key without ErrKeyNotFound", bugs{plainNotFound: true},
			[]string{"UnknownKey/PublicKey", "UnknownKey/Sign", "UnknownKey/KeyMetadata", "UnknownKey/Verify", "UnknownKey/RotateKey", ec + "SignBatch"},
			nil,
			[]string{ec + "Sign/ES256/digest", ec + "Rotation"}},
		{"named version ignored", bugs{ignoreVersion: true},
			[]string{ec + "Rotation"},
			nil,
			[]string{ec + "Sign/ES256/digest", ec + "PublicKey", "UnknownKey/Sign"}},
		{"context ignored", bugs{ignoreContext: true},
			[]string{ec + "Cancelled", ec + "DeadlineExceeded"},
			nil,
			[]string{ec + "Sign/ES256/digest", ec + "Concurrent"}},
		// The SDK's Validate checks digest lengths before the provider.
		{"digest length unchecked by the provider", bugs{noDigestCheck: true},
			nil,
			nil,
			[]string{ec + "WrongDigestLength", ec + "SignBatch", ec + "Sign/ES256/digest"}},
		{"algorithm unchecked", bugs{noAlgorithmCheck: true},
			[]string{ec + "MismatchedAlgorithm", ec + "SignBatch"},
			nil,
			[]string{ec + "Sign/ES256/digest", ec + "WrongDigestLength"}},
		{"verify accepts anything", bugs{verifyAll: true},
			[]string{ec + "Verify/ES256"},
			nil,
			[]string{ec + "Sign/ES256/digest", ec + "Rotation"}},
		{"metadata wrong type", bugs{metadataType: true},
			[]string{ec + "Metadata", ec + "Rotation/Metadata"},
			nil,
			[]string{ec + "PublicKey", ec + "Sign/ES256/digest"}},
		{"rotation keeps the key", bugs{rotateSameKey: true},
			[]string{ec + "Rotation"},
			nil,
			[]string{ec + "Rotation/Metadata", ec + "Sign/ES256/digest"}},
		{"wrong protocol version", bugs{protocolVersion: true},
			[]string{"", "Describe"},
			nil,
			nil},
		{"batch loses a result", bugs{shortBatch: true},
			[]string{ec + "SignBatch"},
			nil,
			[]string{ec + "Concurrent"}},
		{"message signing hangs", bugs{hang: make(chan struct{})},
			[]string{ec + "Sign/ES256/message", ec + "MismatchedAlgorithm"}, // EdDSA signs a message
			[]string{ec + "Verify/ES256"},
			[]string{ec + "Sign/ES256/digest", ec + "Rotation", ec + "Cancelled", ec + "Concurrent"}},
		{"sign names no version", bugs{noVersion: true},
			[]string{ec + "Sign/ES256/digest", ec + "Sign/ES256/message"},
			[]string{ec + "Verify/ES256", ec + "SignBatch", ec + "Concurrent", ec + "Rotation"},
			[]string{ec + "PublicKey", ec + "Metadata"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newSoft()
			p.bugs = tc.bugs
			timeout := 10 * time.Second
			if tc.bugs.hang != nil {
				t.Cleanup(func() { close(tc.bugs.hang) })
				timeout = 2 * time.Second // each hung call (two) waits this long
			}
			res := runRecorded(Config{Provider: p, KeyTypes: []shared.KeyType{shared.ECP256}, Concurrency: 8, Timeout: timeout})
			if got, want := res.failing(), slices.Sorted(slices.Values(tc.mustFail)); !slices.Equal(got, want) {
				t.Errorf("failing checks %q, want exactly %q:%s", got, want, res)
			}
			for _, name := range tc.mustSkip {
				if why := res.skipped(name); !strings.HasPrefix(why, "skipped: signing failed") {
					t.Errorf("check %q: skipped %q; want it skipped because signing failed (failing: %v)", name, why, res.failing())
				}
			}
			for _, name := range tc.mustPass {
				if !res.didRun(name) || res.failed(name) || res.skipped(name) != "" {
					t.Errorf("check %q did not run and pass; the bug does not touch it:%s", name, res)
				}
			}
		})
	}
}

// TestMessagesNameErrors: a wrong error is reported with the sentinels
// named as the plugin author writes them in Go.
func TestMessagesNameErrors(t *testing.T) {
	for _, tc := range []struct {
		bugs  bugs
		check string
		want  string
	}{
		{bugs{plainNotFound: true}, "UnknownKey/Sign", "which wraps no sentinel; want an error wrapping shared.ErrKeyNotFound"},
		{bugs{noAlgorithmCheck: true}, "ec-p256/MismatchedAlgorithm", "succeeded, want an error wrapping shared.ErrUnsupportedAlgorithm or shared.ErrInvalidArgument"},
	} {
		p := newSoft()
		p.bugs = tc.bugs
		res := runRecorded(Config{Provider: p, KeyTypes: []shared.KeyType{shared.ECP256}, Concurrency: 2})
		if msgs := strings.Join(res.failures[tc.check], "\n"); !strings.Contains(msgs, tc.want) {
			t.Errorf("check %s reported %q; want it to say %q", tc.check, msgs, tc.want)
		}
	}
}

// TestBatchClaimNeedsBatchSigner: an in-process provider that claims
// sign_batch without implementing shared.BatchSigner fails Describe.
func TestBatchClaimNeedsBatchSigner(t *testing.T) {
	noBatch := struct{ shared.Provider }{newSoft()} // claims sign_batch, hides SignBatch
	res := runRecorded(Config{Provider: noBatch, KeyTypes: []shared.KeyType{shared.ECP256}})
	if msgs := strings.Join(res.failures["Describe"], "\n"); !strings.Contains(msgs, "does not implement shared.BatchSigner") {
		t.Errorf("Describe reported %q; want the unbacked sign_batch claim", msgs)
	}
}

// TestSuppliedKeys covers a provider that cannot create keys: the kit tests
// the supplied keys and only their key types, and refuses a key type it
// has no key for.
func TestSuppliedKeys(t *testing.T) {
	p := newSoft()
	p.noCreate = true
	keys := map[shared.KeyType]string{shared.ECP256: "team-ec", shared.Ed25519: "team-ed"}
	for kt, id := range keys {
		if _, err := p.create(id, kt); err != nil {
			t.Fatal(err)
		}
	}
	res := runRecorded(Config{Provider: p, Keys: keys, Concurrency: 4})
	if f := res.failing(); len(f) > 0 {
		t.Fatalf("supplied keys failed %v:%s", f, res)
	}
	for _, name := range []string{"ec-p256/Key", "ec-p256/Rotation", "ed25519/Sign/EdDSA/message"} {
		if !res.didRun(name) {
			t.Errorf("check %s did not run", name)
		}
	}
	if res.didRun("rsa-2048") {
		t.Errorf("rsa-2048 was tested, but no key was supplied for it")
	}

	res = runRecorded(Config{Provider: p, Keys: keys, KeyTypes: []shared.KeyType{shared.ECP256, shared.ECP384}})
	if !res.failed("Scope") || res.didRun("ec-p256") {
		t.Errorf("ec-p384 without a supplied key: want Scope to fail and nothing else to run; failing %v", res.failing())
	}
}

// TestConfigMistakes checks that a bad Config fails the run with a clear
// message instead of testing nothing.
func TestConfigMistakes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		check string
		want  string
	}{
		{"nothing to test", Config{}, "", "set Config.Provider or Config.Binary"},
		{"both", Config{Provider: newSoft(), Binary: "x"}, "", "not both"},
		{"missing binary", Config{Binary: "/nonexistent/knhk-plugin-none"}, "", "starting plugin"},
		{"binary that is no plugin", Config{Binary: "/bin/true"}, "", "starting plugin"},
		{"binary named for another provider", Config{Binary: selfBinaryAs(t, "knhk-plugin-other")}, "Describe",
			`Describe().Name is "soft", but the binary knhk-plugin-other is named for provider "other"`},
		{"binary not named as a plugin", Config{Binary: selfBinaryAs(t, "soft-plugin")}, "Describe",
			"the binary soft-plugin is not named knhk-plugin-<name>"},
		{"unclaimed key type", Config{Provider: newSoft(), KeyTypes: []shared.KeyType{"dsa-1024"}}, "Scope", "does not claim"},
		{"unclaimed algorithm", Config{Provider: newSoft(), Algorithms: []shared.Algorithm{"HS256"}}, "Scope", "does not claim"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runRecorded(tc.cfg)
			msgs := strings.Join(res.failures[tc.check], "\n")
			if !strings.Contains(msgs, tc.want) {
				t.Errorf("check %q reported %q; want it to mention %q", tc.check, msgs, tc.want)
			}
			if slices.ContainsFunc(res.ran, func(n string) bool { return strings.Contains(n, "/Sign/") }) {
				t.Errorf("signing checks ran despite the bad config")
			}
		})
	}
}

// TestLaunch starts the plugin binary with Launch and talks to it.
func TestLaunch(t *testing.T) {
	p := Launch(t, selfBinary(t))
	d, err := p.Describe(context.Background())
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if d.Name != "soft" || d.ProtocolVersion != shared.ProtocolVersion {
		t.Errorf("Describe = %q protocol %d, want \"soft\" protocol %d", d.Name, d.ProtocolVersion, shared.ProtocolVersion)
	}
	if _, ok := p.(shared.BatchSigner); !ok {
		t.Errorf("Launch returned %T, which is not a shared.BatchSigner", p)
	}
}
