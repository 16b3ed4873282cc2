package kvtest

import (
	"maps"
	"net/http"
	"strings"
	"testing"
)

// tagsOf is the "tags" object of an answer, nil when left out.
func tagsOf(m map[string]any) map[string]string {
	raw, ok := m["tags"].(map[string]any)
	if !ok {
		return nil
	}
	out := map[string]string{}
	for k, v := range raw {
		out[k], _ = v.(string)
	}
	return out
}

// versionOf is the version at the end of an answer's kid.
func versionOf(m map[string]any) string {
	kid, _ := m["key"].(map[string]any)["kid"].(string)
	return kid[strings.LastIndex(kid, "/")+1:]
}

// TestTagsPerVersion checks tags as Key Vault keeps them: per version, set
// by create, copied by rotate, replaced by a versioned update without
// touching other versions, returned by get and by both lists.
func TestTagsPerVersion(t *testing.T) {
	c := newClient(t)
	st, _, m := c.do("POST", "/keys/tg/create"+api, map[string]any{"kty": "EC", "tags": map[string]string{"team": "a", "knhk-version-state": "active"}})
	if st != http.StatusOK {
		t.Fatalf("create: %d %v", st, m)
	}
	v1 := versionOf(m)
	if got := tagsOf(m); !maps.Equal(got, map[string]string{"team": "a", "knhk-version-state": "active"}) {
		t.Errorf("create answered tags %v", got)
	}
	_, _, m = c.do("POST", "/keys/tg/rotate"+api, nil)
	v2 := versionOf(m)
	if got := tagsOf(m); v2 == v1 || !maps.Equal(got, map[string]string{"team": "a", "knhk-version-state": "active"}) {
		t.Errorf("rotate answered version %s tags %v, want a new version with the current one's tags", v2, got)
	}
	// Replace v2's tags; v1 keeps its own.
	st, _, m = c.do("PATCH", "/keys/tg/"+v2+api, map[string]any{"tags": map[string]string{"knhk-version-state": "pending"}})
	if st != http.StatusOK || !maps.Equal(tagsOf(m), map[string]string{"knhk-version-state": "pending"}) {
		t.Fatalf("update v2 tags: %d %v", st, m)
	}
	if _, _, m := c.do("GET", "/keys/tg/"+v1+api, nil); !maps.Equal(tagsOf(m), map[string]string{"team": "a", "knhk-version-state": "active"}) {
		t.Errorf("v1 tags after updating v2 = %v, want unchanged", tagsOf(m))
	}
	// An update without tags leaves them; an empty object removes them.
	if _, _, m := c.do("PATCH", "/keys/tg/"+v1+api, map[string]any{"attributes": map[string]any{"enabled": true}}); tagsOf(m) == nil {
		t.Errorf("update without tags dropped them: %v", m)
	}
	if _, _, m := c.do("PATCH", "/keys/tg/"+v1+api, map[string]any{"tags": map[string]string{}}); tagsOf(m) != nil {
		t.Errorf("update with empty tags left %v", tagsOf(m))
	}
	_, _, m = c.do("GET", "/keys/tg/versions"+api, nil)
	items, _ := m["value"].([]any)
	if len(items) != 2 {
		t.Fatalf("versions: %v", m)
	}
	if got := tagsOf(items[0].(map[string]any)); got != nil {
		t.Errorf("listed v1 tags = %v, want none", got)
	}
	if got := tagsOf(items[1].(map[string]any)); !maps.Equal(got, map[string]string{"knhk-version-state": "pending"}) {
		t.Errorf("listed v2 tags = %v", got)
	}
	_, _, m = c.do("GET", "/keys"+api, nil)
	keys, _ := m["value"].([]any)
	if len(keys) != 1 || !maps.Equal(tagsOf(keys[0].(map[string]any)), map[string]string{"knhk-version-state": "pending"}) {
		t.Errorf("key list = %v, want the current version's tags", keys)
	}
	// Key Vault's limits: 15 tags, 256-character names and values.
	many := map[string]string{}
	for i := 0; i < 16; i++ {
		many[string(rune('a'+i))] = "x"
	}
	for _, tags := range []map[string]string{many, {strings.Repeat("n", 257): "x"}, {"n": strings.Repeat("v", 257)}} {
		if st, _, m := c.do("PATCH", "/keys/tg/"+v1+api, map[string]any{"tags": tags}); st != http.StatusBadRequest || errCode(m) != "BadParameter" {
			t.Errorf("update with %d tags (longest name %d): %d %v, want 400 BadParameter", len(tags), longest(tags), st, m)
		}
	}
	if st, _, m := c.do("PATCH", "/keys/tg/"+v1+api, map[string]any{"tags": map[string]string{strings.Repeat("n", 256): strings.Repeat("v", 256)}}); st != http.StatusOK {
		t.Errorf("update with a 256-character tag: %d %v, want 200", st, m)
	}
}

func longest(m map[string]string) int {
	n := 0
	for k := range m {
		n = max(n, len(k))
	}
	return n
}
