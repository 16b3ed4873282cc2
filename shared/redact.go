package shared

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// secretWords are what a parameter, query or field name that holds a
// secret usually contains.
var secretWords = []string{"token", "secret", "password", "passwd", "pwd", "credential", "signature", "sig", "apikey", "api_key", "access_key", "private", "auth", "code"}

// LooksSecret reports whether a parameter, query or field name looks like
// it holds a secret (token, password, secret, signature, ...).
func LooksSecret(name string) bool {
	n := strings.ToLower(name)
	for _, w := range secretWords {
		if n == w || strings.Contains(n, w) && len(w) > 4 {
			return true
		}
	}
	return false
}

// RedactURL returns s with the secrets a URL can carry removed: the user
// info (user:password@) and the values of query parameters whose names
// look secret. A string that does not parse as a URL is returned with
// anything before an '@' replaced, in case it is a malformed URL with user
// info.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if i := strings.LastIndex(s, "@"); i >= 0 {
			return "[REDACTED]" + s[i:]
		}
		return s
	}
	changed := false
	if u.User != nil {
		u.User = url.User("REDACTED")
		changed = true
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			if LooksSecret(k) {
				q[k] = []string{"REDACTED"}
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	if !changed {
		return s
	}
	return u.String()
}

// urlRE finds URLs with a scheme inside a longer text.
var urlRE = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]+`)

// redactURLs applies RedactURL to every URL in s.
func redactURLs(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlRE.ReplaceAllStringFunc(s, RedactURL)
}

// MaxQuoted is how many bytes of a caller's string Quote shows.
const MaxQuoted = 200

// Quote makes a caller-supplied string (a key id, a parameter value)
// safe to put in an error or log line: quoted with Go's escapes, so a
// control character (ESC, NUL, a newline) cannot rewrite a terminal or
// forge a log line, and cut to MaxQuoted bytes with an ellipsis and the
// full length, so a huge value cannot make a huge message.
func Quote(s string) string {
	if len(s) <= MaxQuoted {
		return strconv.Quote(s)
	}
	cut := MaxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "… (" + strconv.Itoa(len(s)) + " bytes)"
}
