package host

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/knhk/knhk/shared"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		in     string
		want   Ref
		errHas string // non-empty: ParseRef must fail with this in the message
	}{
		{in: "fake:demo", want: Ref{Provider: "fake", KeyID: "demo"}},
		{in: "fake:demo?state=/tmp/keys.json", want: Ref{Provider: "fake", KeyID: "demo", Params: map[string]string{"state": "/tmp/keys.json"}}},
		{in: "aws:alias/release?region=eu-west-1", want: Ref{Provider: "aws", KeyID: "alias/release", Params: map[string]string{"region": "eu-west-1"}}},
		{in: "aws:arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab", want: Ref{Provider: "aws", KeyID: "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab"}},
		{in: "azure:https://myvault.vault.azure.net/keys/release", want: Ref{Provider: "azure", KeyID: "https://myvault.vault.azure.net/keys/release"}},
		{in: "azure:https://myvault.vault.azure.net/keys/release/abc123?api=7.4", want: Ref{Provider: "azure", KeyID: "https://myvault.vault.azure.net/keys/release/abc123", Params: map[string]string{"api": "7.4"}}},
		{in: "vault:transit/release?addr=https://vault:8200", want: Ref{Provider: "vault", KeyID: "transit/release", Params: map[string]string{"addr": "https://vault:8200"}}},
		{in: "fake:k?a=1&b=x%26y%3Dz&c=", want: Ref{Provider: "fake", KeyID: "k", Params: map[string]string{"a": "1", "b": "x&y=z", "c": ""}}},
		{in: "fake:k?q=what?now", want: Ref{Provider: "fake", KeyID: "k", Params: map[string]string{"q": "what?now"}}},
		{in: "fake:k?sp=a+b", want: Ref{Provider: "fake", KeyID: "k", Params: map[string]string{"sp": "a b"}}},
		{in: "", errHas: "empty"},
		{in: "demo", errHas: "no ':'"},
		{in: ":demo", errHas: "provider is empty"},
		{in: "Fake:demo", errHas: "provider must be"},
		{in: "fa/ke:demo", errHas: "provider must be"},
		{in: "fake:", errHas: "key id is empty"},
		{in: "fake:?a=b", errHas: "key id is empty"},
		{in: "fake:de\x01mo", errHas: "control character"},
		{in: "fake:demo?", errHas: "nothing after '?'"},
		{in: "fake:demo?a", errHas: "no '='"},
		{in: "fake:demo?=1", errHas: "empty or badly escaped name"},
		{in: "fake:demo?a=%zz", errHas: "badly escaped value"},
		{in: "fake:demo?a=1&a=2", errHas: "appears twice"},
		{in: "fake:demo?a=1&&b=2", errHas: "no '='"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRef(tt.in)
			if tt.errHas != "" {
				if err == nil {
					t.Fatalf("ParseRef(%q) = %+v, want an error", tt.in, got)
				}
				if !errors.Is(err, ErrMalformedRef) || !errors.Is(err, shared.ErrInvalidArgument) {
					t.Errorf("error %v does not wrap ErrMalformedRef and shared.ErrInvalidArgument", err)
				}
				if !strings.Contains(err.Error(), tt.errHas) || !strings.Contains(err.Error(), RefForm) {
					t.Errorf("error %q should contain %q and the form %q", err, tt.errHas, RefForm)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRef(%q): %v", tt.in, err)
			}
			if got.Provider != tt.want.Provider || got.KeyID != tt.want.KeyID || !maps.Equal(got.Params, tt.want.Params) {
				t.Fatalf("ParseRef(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			again, err := ParseRef(got.String())
			if err != nil || again.KeyID != got.KeyID || !maps.Equal(again.Params, got.Params) {
				t.Fatalf("round trip of %q via %q: %+v, %v", tt.in, got.String(), again, err)
			}
		})
	}
}

func TestParseRefNeverEchoesParamValues(t *testing.T) {
	_, err := ParseRef("fake:demo?token=s3cr3t-value&token=s3cr3t-value")
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error %v must exist and not contain the parameter value", err)
	}
}

// TestParseRefErrorsAreSafeLines: what a malformed reference's error
// echoes is escaped (no raw ESC or NUL reaches a terminal or a log), cut
// short (a 1 MB key id does not make a 1 MB message), free of URL user
// info, and never includes a parameter value.
func TestParseRefErrorsAreSafeLines(t *testing.T) {
	huge := "fake:" + strings.Repeat("a", 1<<20)
	for _, tc := range []struct {
		name, in string
		want     []string // in the message
		never    []string // nowhere in the message
	}{
		{"control characters in the key id", "fake:a\x1b[2Jb\x00c", []string{`\x1b[2J`, `\x00`}, []string{"\x1b", "\x00"}},
		{"control characters in the provider", "fa\x1bke:demo", []string{`\x1b`}, []string{"\x1b"}},
		{"control characters in a parameter value", "fake:demo?seed=x%1B[2J%00y&seed=z", []string{`"seed" appears twice`}, []string{"\x1b", "\x00", "[2J"}},
		{"control characters in a parameter name", "fake:demo?a%1B[2J=1", []string{"control character"}, []string{"\x1b", "[2J"}},
		{"huge key id", huge, []string{"1048576 bytes", "the limit is 2048", "…"}, nil},
		{"huge key id with parameters", huge + "?seed=s3cr3t", []string{"the limit is 2048"}, []string{"s3cr3t"}},
		{"password in a URL parameter", "vault:transit/k?addr=http://admin:pw@127.0.0.1:1&addr=x", []string{`"addr" appears twice`}, []string{"admin", "pw@"}},
		{"password in a URL key id", "Vault:http://admin:pw@127.0.0.1:1/k", []string{"provider must be"}, []string{"admin:pw", "pw@"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRef(tc.in)
			if err == nil {
				t.Fatalf("ParseRef accepted %q", tc.in)
			}
			msg := err.Error()
			if len(msg) > 1024 {
				t.Fatalf("error is %d bytes, want under 1 KB: %.300q", len(msg), msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			for _, n := range tc.never {
				if strings.Contains(msg, n) {
					t.Errorf("error %q contains %q", msg, n)
				}
			}
			if strings.ContainsFunc(msg, func(r rune) bool { return r < ' ' || r == 0x7f }) {
				t.Errorf("error %q contains a raw control character", msg)
			}
		})
	}
}

// FuzzParseRef checks that ParseRef never panics, that every error is a
// typed malformed-reference error showing the form, and that a parsed
// reference survives String and ParseRef unchanged.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{
		"fake:demo", "fake:demo?state=/tmp/keys.json", "aws:arn:aws:kms:eu-west-1:1:key/x",
		"azure:https://v.vault.azure.net/keys/k", "vault:transit/k?addr=https://vault:8200",
		"x:y?a=%26&b=+", "", ":", "a:?", "a:b?=", "a:b?a=1&a=2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedRef) || !strings.Contains(err.Error(), RefForm) {
				t.Fatalf("ParseRef(%q): untyped error %v", s, err)
			}
			return
		}
		if r.Provider == "" || r.KeyID == "" || strings.Contains(r.KeyID, "?") {
			t.Fatalf("ParseRef(%q) = %+v: empty part or '?' in key id", s, r)
		}
		again, err := ParseRef(r.String())
		if err != nil {
			t.Fatalf("ParseRef(%q).String() = %q does not parse: %v", s, r.String(), err)
		}
		if again.Provider != r.Provider || again.KeyID != r.KeyID || !maps.Equal(again.Params, r.Params) {
			t.Fatalf("round trip of %q: %+v != %+v", s, again, r)
		}
	})
}
