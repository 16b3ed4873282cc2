package audit

import (
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// TestTreeFrontier checks that a writer's frontier-only tree has the same
// roots as a full one, and that a tree resumed from its frontier goes on
// to the same roots.
func TestTreeFrontier(t *testing.T) {
	full, pruned := newTree(true), newTree(false)
	var resumed *tree
	for i := range 300 {
		leaf := tlog.RecordHash(fmt.Appendf(nil, "record %d", i))
		for _, tr := range []*tree{full, pruned, resumed} {
			if tr != nil {
				if err := tr.append(leaf); err != nil {
					t.Fatal(err)
				}
			}
		}
		want, err := full.root()
		if err != nil {
			t.Fatal(err)
		}
		for name, tr := range map[string]*tree{"pruned": pruned, "resumed": resumed} {
			if tr == nil {
				continue
			}
			got, err := tr.root()
			if err != nil {
				t.Fatalf("%s at %d: %v", name, tr.size, err)
			}
			if got != want {
				t.Fatalf("%s root at %d = %v, want %v", name, tr.size, got, want)
			}
		}
		if len(pruned.hashes) > 63 {
			t.Fatalf("pruned tree holds %d hashes at size %d", len(pruned.hashes), pruned.size)
		}
		if i == 77 {
			f, err := pruned.frontier()
			if err != nil {
				t.Fatal(err)
			}
			if resumed, err = resumeTree(pruned.size, f, pruned.last, false); err != nil {
				t.Fatal(err)
			}
		}
	}
}
