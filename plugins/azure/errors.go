package azure

import (
	"context"
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
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("azure: %s %s: %w", op, what, ctxErr(err))
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		if isCredentialError(err) {
			return fmt.Errorf("%w: azure: %s %s: could not get a token: %s; %s", shared.ErrPermissionDenied, op, what, p.redact(oneLine(err.Error())), credentialHint())
		}
		var ce *certError
		if errors.As(err, &ce) {
			return fmt.Errorf("%w: azure: %s %s: the vault's TLS certificate is not trusted (%s); if it is a private endpoint or test server, pass its CA with the ca_file parameter", shared.ErrUnavailable, op, what, p.redact(firstLine(err.Error())))
		}
		return fmt.Errorf("%w: azure: %s %s: %s", shared.ErrUnavailable, op, what, p.redact(firstLine(err.Error())))
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
		detail += ": " + firstLine(msg)
	}
	detail = p.redact(detail)
	lower := strings.ToLower(inner + " " + msg)
	switch s := re.StatusCode; {
	case s == http.StatusNotFound:
		return fmt.Errorf("%w: azure: %s %s: %s", shared.ErrKeyNotFound, op, what, detail)
	case s == http.StatusUnauthorized, s == http.StatusForbidden && !(strings.Contains(lower, "disabled") || strings.Contains(lower, "expired") || strings.Contains(lower, "not yet valid")):
		return fmt.Errorf("%w: azure: %s %s: %s; %s", shared.ErrPermissionDenied, op, what, detail, accessHint)
	case s == http.StatusForbidden, s == http.StatusConflict:
		return fmt.Errorf("%w: azure: %s %s: %s", shared.ErrFailedPrecondition, op, what, detail)
	case s == http.StatusTooManyRequests, s >= 500:
		return fmt.Errorf("%w: azure: %s %s: %s (after the SDK's retries; try again later)", shared.ErrUnavailable, op, what, detail)
	default:
		return fmt.Errorf("%w: azure: %s %s: %s", shared.ErrInvalidArgument, op, what, detail)
	}
}

// ctxErr finds the context error inside err so it survives wrapping.
func ctxErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return context.Canceled
}

// redact removes the static token from a message, in case anything echoed it.
func (p *Provider) redact(s string) string {
	if p.token != "" {
		s = strings.ReplaceAll(s, p.token, "[REDACTED]")
	}
	return s
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[:i])
	}
	return s
}

// rulers are the dashed separator lines of the SDK's error texts.
var rulers = regexp.MustCompile(`-{8,}`)

// oneLine joins a multi-line message (credential chains explain every
// credential they tried) into one line of bounded length.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(rulers.ReplaceAllString(s, " ")), " ")
	if len(s) > 1500 {
		s = s[:1500] + "..."
	}
	return s
}
