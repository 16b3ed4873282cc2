package aws

import (
	"errors"
	"fmt"
	"os"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/knhk/knhk/shared"
)

// kmsError is a KMS failure: a knhk sentinel for errors.Is across the
// plugin boundary, a message that keeps the AWS error code and request id,
// and the SDK's error for errors.As in process.
type kmsError struct {
	sentinel error
	msg      string
	cause    error
}

func (e *kmsError) Error() string   { return e.msg }
func (e *kmsError) Unwrap() []error { return []error{e.sentinel, e.cause} }

// errorCodes maps KMS error codes to knhk sentinels.
var errorCodes = map[string]error{
	"NotFoundException": shared.ErrKeyNotFound,

	"AccessDeniedException":       shared.ErrPermissionDenied,
	"NotAuthorizedException":      shared.ErrPermissionDenied,
	"UnrecognizedClientException": shared.ErrPermissionDenied,
	"InvalidClientTokenId":        shared.ErrPermissionDenied,
	"InvalidSignatureException":   shared.ErrPermissionDenied, // the request signature, i.e. the credentials
	"IncompleteSignature":         shared.ErrPermissionDenied,
	"ExpiredTokenException":       shared.ErrPermissionDenied,
	"MissingAuthenticationToken":  shared.ErrPermissionDenied,

	"DisabledException":        shared.ErrFailedPrecondition,
	"KMSInvalidStateException": shared.ErrFailedPrecondition,
	"LimitExceededException":   shared.ErrFailedPrecondition, // a resource quota, not a request rate

	"InvalidKeyUsageException":      shared.ErrUnsupportedAlgorithm,
	"UnsupportedOperationException": shared.ErrUnsupportedAlgorithm,

	"ValidationException":              shared.ErrInvalidArgument,
	"InvalidArnException":              shared.ErrInvalidArgument,
	"InvalidAliasNameException":        shared.ErrInvalidArgument,
	"MissingParameterException":        shared.ErrInvalidArgument,
	"InvalidMarkerException":           shared.ErrInvalidArgument,
	"MalformedPolicyDocumentException": shared.ErrInvalidArgument,
	"TagException":                     shared.ErrInvalidArgument,
	"SerializationException":           shared.ErrInvalidArgument,
	"KMSInvalidSignatureException":     shared.ErrInvalidArgument, // only outside Verify, which reads it as "invalid"

	"AlreadyExistsException": shared.ErrAlreadyExists,

	// The request rate quotas: the host's quota buckets adapt to these.
	"ThrottlingException":  shared.ErrThrottled,
	"Throttling":           shared.ErrThrottled,
	"RequestLimitExceeded": shared.ErrThrottled,

	"KMSInternalException":       shared.ErrUnavailable,
	"DependencyTimeoutException": shared.ErrUnavailable,
	"KeyUnavailableException":    shared.ErrUnavailable,
	"ServiceUnavailable":         shared.ErrUnavailable,
	"InternalFailure":            shared.ErrUnavailable,
}

// apiCode returns the KMS error code of err, or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// mapError turns an SDK error from operation op on key into a kmsError.
// The SDK has already retried what its retryer considers retryable (the
// standard one leaves throttling to the host; see newClient); what is
// left of 5xx and network errors is ErrUnavailable, throttling is
// ErrThrottled.
func mapError(op, key string, err error) error {
	if err == nil {
		return nil
	}
	where := "aws kms " + op
	if key != "" {
		where += " " + key
	}
	var reqID string
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		reqID = re.ServiceRequestID()
	}
	status := 0
	var hre *smithyhttp.ResponseError
	if errors.As(err, &hre) && hre.Response != nil {
		status = hre.HTTPStatusCode()
	}

	sentinel := shared.ContextError(err) // the caller gave up: the host must see it as such
	detail := err.Error()
	var ae smithy.APIError
	switch {
	case sentinel != nil:
	case errors.As(err, &ae):
		sentinel = errorCodes[ae.ErrorCode()]
		switch {
		case sentinel != nil:
		case status != 0:
			sentinel = shared.HTTPStatusError(status)
		default:
			sentinel = shared.ErrInvalidArgument // a code without a status: KMS refused the request
		}
		detail = ae.ErrorCode()
		if m := ae.ErrorMessage(); m != "" {
			detail += ": " + m
		}
	case strings.Contains(detail, "failed to retrieve credentials") || strings.Contains(detail, "failed to refresh cached credentials"):
		sentinel = shared.ErrPermissionDenied
		detail = "no usable AWS credentials from the standard chain (environment, shared files, SSO, web identity, container or instance role): " + detail
	default:
		// No response from KMS: connection refused, DNS, TLS, timeouts,
		// after the SDK's retries.
		sentinel = shared.ErrUnavailable
	}
	if status != 0 && !strings.Contains(detail, "StatusCode") {
		detail += fmt.Sprintf(" (HTTP %d)", status)
	}
	if reqID != "" {
		detail += " (request id " + reqID + ")"
	}
	msg := fmt.Sprintf("%v: %s: %s", sentinel, where, detail)
	return &kmsError{sentinel: sentinel, msg: shared.Redact(msg, envSecrets()...), cause: err}
}

// envSecrets are the credential values in the environment that could find
// their way into an SDK message. Defensive: the SDK does not print them,
// and neither does this plugin.
func envSecrets() []string {
	var out []string
	for _, v := range []string{"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"} {
		if s := os.Getenv(v); len(s) >= 8 {
			out = append(out, s)
		}
	}
	return out
}
