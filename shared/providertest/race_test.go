package providertest

import (
	"slices"
	"strings"
	"testing"

	"github.com/knhk/knhk/shared"
)

// TestRaceInPluginFailsTheKit: under -race, BuildTemp builds a plugin with
// the race detector, and a data race inside it fails the kit in binary
// mode, with the detector's report in the message. Nothing else fails:
// the provider is otherwise correct.
func TestRaceInPluginFailsTheKit(t *testing.T) {
	if !raceEnabled {
		t.Skip("needs -race (go test -race): without the race detector a plugin's data races cannot be seen")
	}
	bin, remove, err := BuildTemp("./testdata/knhk-plugin-racy")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(remove)
	res := runRecorded(Config{Binary: bin, Keys: map[shared.KeyType]string{shared.ECP256: "demo"}, Concurrency: 16})
	if got := res.failing(); !slices.Equal(got, []string{""}) {
		t.Errorf("failing checks %q; want only the run as a whole (the race):%s", got, res)
	}
	msgs := strings.Join(res.failures[""], "\n")
	t.Logf("the kit reported: %s", msgs)
	for _, want := range []string{"plugin " + bin + " reported a data race", "WARNING: DATA RACE", "main.(*provider).Sign"} {
		if !strings.Contains(msgs, want) {
			t.Errorf("the kit reported %q; want it to mention %q", msgs, want)
		}
	}
	if !res.didRun("ec-p256/Concurrent") {
		t.Errorf("the concurrency check did not run")
	}
}
