package providertest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/knhk/knhk/shared"
)

// TestMain doubles as a plugin: launched by go-plugin (the handshake's
// cookie is set), the test binary serves the soft provider instead of
// running tests, so the kit's binary path is tested without another
// module's plugin.
func TestMain(m *testing.M) {
	if os.Getenv(shared.Handshake.MagicCookieKey) == shared.Handshake.MagicCookieValue {
		if err := shared.Serve(newSoft()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// selfBinary is this test binary, which serves the soft provider when
// launched as a plugin.
func selfBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("finding the test binary: %v", err)
	}
	return exe
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
// asserts that the check for each bug fails, and that checks the bug does
// not touch still pass.
func TestKitCatchesBugs(t *testing.T) {
	ec := "ec-p256/"
	for _, tc := range []struct {
		name     string
		bugs     bugs
		mustFail []string
		mustPass []string
	}{
		{"bad signature", bugs{badSignature: true},
			[]string{ec + "Sign/ES256/digest", ec + "Sign/ES256/message", ec + "Concurrent", ec + "SignBatch", ec + "Rotation"},
			[]string{"Describe", ec + "PublicKey", ec + "WrongDigestLength"}},
		{"unknown key without ErrKeyNotFound", bugs{plainNotFound: true},
			[]string{"UnknownKey/PublicKey", "UnknownKey/Sign", "UnknownKey/KeyMetadata", "UnknownKey/Verify", "UnknownKey/RotateKey", ec + "SignBatch"},
			[]string{ec + "Sign/ES256/digest", ec + "Rotation"}},
		{"named version ignored", bugs{ignoreVersion: true},
			[]string{ec + "Rotation"},
			[]string{ec + "Sign/ES256/digest", ec + "PublicKey", "UnknownKey/Sign"}},
		{"context ignored", bugs{ignoreContext: true},
			[]string{ec + "Cancelled", ec + "DeadlineExceeded"},
			[]string{ec + "Sign/ES256/digest", ec + "Concurrent"}},
		{"digest length unchecked", bugs{noDigestCheck: true},
			[]string{ec + "WrongDigestLength", ec + "SignBatch"},
			[]string{ec + "Sign/ES256/digest", ec + "MismatchedAlgorithm"}},
		{"algorithm unchecked", bugs{noAlgorithmCheck: true},
			[]string{ec + "MismatchedAlgorithm", ec + "SignBatch"},
			[]string{ec + "Sign/ES256/digest", ec + "WrongDigestLength"}},
		{"verify accepts anything", bugs{verifyAll: true},
			[]string{ec + "Verify/ES256"},
			[]string{ec + "Sign/ES256/digest", ec + "Rotation"}},
		{"metadata wrong type", bugs{metadataType: true},
			[]string{ec + "Metadata", ec + "Rotation/Metadata"},
			[]string{ec + "PublicKey", ec + "Sign/ES256/digest"}},
		{"rotation keeps the key", bugs{rotateSameKey: true},
			[]string{ec + "Rotation"},
			[]string{ec + "Rotation/Metadata", ec + "Sign/ES256/digest"}},
		{"wrong protocol version", bugs{protocolVersion: true},
			[]string{"Describe", ""},
			nil},
		{"batch loses a result", bugs{shortBatch: true},
			[]string{ec + "SignBatch"},
			[]string{ec + "Concurrent"}},
		{"message signing hangs", bugs{hang: make(chan struct{})},
			[]string{ec + "Sign/ES256/message", ec + "Verify/ES256"},
			[]string{ec + "Sign/ES256/digest", ec + "Rotation", ec + "Cancelled"}},
		{"sign names no version", bugs{noVersion: true},
			[]string{ec + "Sign/ES256/digest", ec + "Concurrent", ec + "Rotation"},
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
			for _, name := range tc.mustFail {
				if !res.failed(name) {
					t.Errorf("check %q passed; want it to catch the bug (failing: %v)", name, res.failing())
				}
			}
			for _, name := range tc.mustPass {
				if !res.didRun(name) || res.failed(name) {
					t.Errorf("check %q did not run and pass; the bug does not touch it:%s", name, res)
				}
			}
		})
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
