package host

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/knhk/knhk/shared"
)

// RefForm is the one string form of a key reference, shown in every
// malformed-reference error.
const RefForm = "PROVIDER:KEYID[?name=value&...]"

// providerRE is what a provider name may look like; it becomes part of the
// plugin's file name, knhk-plugin-<provider>.
var providerRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Ref is a parsed key reference: the provider (which selects the plugin
// knhk-plugin-<Provider>), the provider's own key id, and parameters passed
// to the plugin with every request.
type Ref struct {
	Provider string
	KeyID    string
	Params   map[string]string
}

// ParseRef parses PROVIDER:KEYID[?name=value&...], for example
//
//	fake:demo?state=/tmp/keys.json
//	aws:alias/release?region=eu-west-1
//	aws:arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab
//	azure:https://myvault.vault.azure.net/keys/release
//	vault:transit/release?addr=https://vault:8200
//
// Rules, chosen so that cloud key ids need no escaping:
//   - The provider ends at the FIRST ':'; it is 1-64 of a-z 0-9 _ - and
//     starts with a letter or digit. Everything after that ':' belongs to
//     the key id, so ids containing ':' and '/' (ARNs, URLs) are fine.
//   - The key id ends at the FIRST '?'. A key id therefore cannot contain
//     '?' (no supported service uses one); it is taken literally (no
//     percent-decoding), must be non-empty valid UTF-8 without control
//     characters, at most shared.MaxKeyIDLen bytes.
//   - Parameters are name=value pairs separated by '&'; names and values
//     are query-unescaped ('%XX', '+' for space), so a value may contain
//     '&' or '=' as %26 and %3D, and may contain a literal '?' or ':'.
//     Every pair needs '=' and a non-empty name; a name may appear once.
//
// Errors wrap ErrMalformedRef and shared.ErrInvalidArgument and show the
// expected form. They never echo parameter values, which may be sensitive;
// what they echo of the reference is escaped and cut short (shared.Quote),
// with any URL's user info removed, so the message is one safe line.
func ParseRef(s string) (Ref, error) {
	head, query, hasQuery := strings.Cut(s, "?")
	provider, keyID, ok := strings.Cut(head, ":")
	bad := func(why string) (Ref, error) {
		return Ref{}, fmt.Errorf("%w: %s: %s; want %s, e.g. fake:demo?state=/tmp/keys.json: %w",
			ErrMalformedRef, shared.Quote(shared.Redact(head)), why, RefForm, shared.ErrInvalidArgument)
	}
	switch {
	case s == "":
		return bad("the reference is empty")
	case !ok:
		return bad("no ':' between provider and key id")
	case provider == "":
		return bad("the provider is empty")
	case !providerRE.MatchString(provider):
		return bad("the provider must be 1-64 of a-z 0-9 _ - starting with a letter or digit")
	case keyID == "":
		return bad("the key id is empty")
	case len(keyID) > shared.MaxKeyIDLen:
		return bad(fmt.Sprintf("the key id is %d bytes; the limit is %d", len(keyID), shared.MaxKeyIDLen))
	case !utf8.ValidString(keyID):
		return bad("the key id is not valid UTF-8")
	case strings.IndexFunc(keyID, unicode.IsControl) >= 0:
		return bad("the key id contains a control character")
	}
	r := Ref{Provider: provider, KeyID: keyID}
	if !hasQuery {
		return r, nil
	}
	if query == "" {
		return bad("nothing after '?'; leave the '?' out when there are no parameters")
	}
	r.Params = map[string]string{}
	for i, pair := range strings.Split(query, "&") {
		rawName, rawValue, ok := strings.Cut(pair, "=")
		if !ok {
			return bad(fmt.Sprintf("parameter %d has no '='", i+1))
		}
		name, err := url.QueryUnescape(rawName)
		if err != nil || name == "" {
			return bad(fmt.Sprintf("parameter %d has an empty or badly escaped name", i+1))
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return bad(fmt.Sprintf("parameter %s has a badly escaped value", shared.Quote(name)))
		}
		if !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0 {
			return bad(fmt.Sprintf("parameter %d has a name with a control character or invalid UTF-8", i+1))
		}
		if _, dup := r.Params[name]; dup {
			return bad(fmt.Sprintf("parameter %s appears twice", shared.Quote(name)))
		}
		r.Params[name] = value
	}
	return r, nil
}

// String formats the reference in the form ParseRef reads, parameters
// sorted by name; ParseRef(r.String()) gives r back.
func (r Ref) String() string {
	var b strings.Builder
	b.WriteString(r.Provider)
	b.WriteByte(':')
	b.WriteString(r.KeyID)
	names := make([]string, 0, len(r.Params))
	for n := range r.Params {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(n))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(r.Params[n]))
	}
	return b.String()
}

// keyRef is the part of the reference the plugin sees.
func (r Ref) keyRef() shared.KeyRef { return shared.KeyRef{ID: r.KeyID, Params: r.Params} }
