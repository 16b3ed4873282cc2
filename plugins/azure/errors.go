package azure

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/knhk/knhk/shared"
)

// kvError is Key Vault's error body: {"error":{"code","message","innererror":{"code"}}}.
type kvError struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError *struct {
			Code string `json:"code"`
		} `json:"innererror"`
	} `json:"error"`
}

const accessHint = "check the vault's access policies or Azure RBAC role assignments (e.g. Key Vault Crypto User) for this identity"

// mapError turns an azkeys or credential error into a knhk error wrapping
// the right sentinel. The message names the operation, the key and Key
// Vault's error code; it never carries a token.
func (p *Provider) mapError(op, what string, err error) error {
	if err == nil {
		return nil
	}
	return shared.RedactError(p.classify(op, what, err), p.secrets()...)
}

// classify picks the sentinel and message for mapError.
func (p *Provider) classify(op, what string, err error) error {
	if cerr := shared.ContextError(err); cerr != nil {
		return fmt.Errorf("azure: %s %s: %w", op, what, cerr)
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		var ce *certError
		switch {
		case isCredentialError(err):
			return fmt.Errorf("%w: azure: %s %s: could not get a token: %s; %s", shared.ErrPermissionDenied, op, what, p.redact(oneLine(err.Error())), credentialHint())
		case errors.As(err, &ce):
			return fmt.Errorf("%w: azure: %s %s: the vault's TLS certificate is not trusted (%s); if it is a private endpoint or test server, pass its CA with the ca_file parameter", shared.ErrUnavailable, op, what, shared.Quote(p.redact(err.Error())))
		}
		return fmt.Errorf("%w: azure: %s %s: %s", shared.ErrUnavailable, op, what, shared.Quote(p.redact(err.Error())))
	}
	code, inner, msg := re.ErrorCode, "", ""
	if re.RawResponse != nil {
		if body, berr := runtime.Payload(re.RawResponse); berr == nil {
			var kv kvError
			if json.Unmarshal(body, &kv) == nil {
				if kv.Error.Code != "" {
					code = kv.Error.Code
				}
				msg = kv.Error.Message
				if kv.Error.InnerError != nil {
					inner = kv.Error.InnerError.Code
				}
			}
		}
	}
	detail := fmt.Sprintf("Key Vault answered HTTP %d", re.StatusCode)
	if code != "" {
		detail += " " + code
		if inner != "" {
			detail += "/" + inner
		}
	}
	if msg != "" {
		// The service's own words, scrubbed before Quote may cut a token
		// in half.
		detail += ": " + shared.Quote(p.redact(msg))
	}
	s := re.StatusCode
	sentinel := shared.HTTPStatusError(s)
	lower := strings.ToLower(inner + " " + msg)
	switch {
	case s == http.StatusForbidden && (strings.Contains(lower, "disabled") || strings.Contains(lower, "expired") || strings.Contains(lower, "not yet valid")):
		// Key Vault says 403 for a key that cannot sign now: the
		// identity is allowed, the key's state is the problem.
		sentinel = shared.ErrFailedPrecondition
	case sentinel == shared.ErrUnavailable && s < 500 && s != http.StatusTooManyRequests:
		// Key Vault's other 4xx answers say the request is wrong; a
		// retry would fail the same way.
		sentinel = shared.ErrInvalidArgument
	}
	switch sentinel {
	case shared.ErrPermissionDenied:
		return fmt.Errorf("%w: azure: %s %s: %s; %s", sentinel, op, what, detail, accessHint)
	case shared.ErrUnavailable:
		return fmt.Errorf("%w: azure: %s %s: %s (after the SDK's retries; try again later)", sentinel, op, what, detail)
	case shared.ErrThrottled:
		// The vault's request quota, still exceeded after the SDK's
		// retries (which honour Retry-After): the host's quota for the
		// vault adapts to it.
		return fmt.Errorf("%w: azure: %s %s: %s (after the SDK's retries; the vault's request quota is exceeded)", sentinel, op, what, detail)
	}
	return fmt.Errorf("%w: azure: %s %s: %s", sentinel, op, what, detail)
}

// secrets are what redaction removes: the static token and every token
// the provider's credentials handed out.
func (p *Provider) secrets() []string { return append(p.tokens.list(), p.token) }

// redact removes the provider's tokens from a message, in case anything
// echoed one.
func (p *Provider) redact(s string) string { return shared.Redact(s, p.secrets()...) }

// rulers are the dashed separator lines of the Azure SDK's error texts.
var rulers = regexp.MustCompile(`-{8,}`)

// oneLine joins a multi-line Azure SDK message (credential chains explain
// every credential they tried, between dashed rulers) into one line of
// bounded length.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(rulers.ReplaceAllString(s, " ")), " ")
	if len(s) > 1500 {
		s = s[:1500] + "..."
	}
	return s
}
