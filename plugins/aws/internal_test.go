package aws

import (
	"context"
	"errors"
	"slices"
	"testing"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"

	"github.com/knhk/knhk/shared"
)

// TestClientCache: one client per region, endpoint, profile and retry
// mode, reused across calls and key id forms.
func TestClientCache(t *testing.T) {
	p := New(Config{})
	ctx := context.Background()
	const ep = "http://127.0.0.1:9"
	steps := []struct {
		id     string
		params map[string]string
		want   int // cached clients after the step
		region string
		mode   awssdk.RetryMode
	}{
		{"alias/a", map[string]string{"region": "eu-west-1", "endpoint": ep}, 1, "eu-west-1", awssdk.RetryModeStandard},
		{"alias/b", map[string]string{"region": "eu-west-1", "endpoint": ep}, 1, "eu-west-1", awssdk.RetryModeStandard},
		{"arn:aws:kms:eu-west-1:111122223333:key/k", map[string]string{"endpoint": ep}, 1, "eu-west-1", awssdk.RetryModeStandard},
		{"alias/a", map[string]string{"region": "us-east-1", "endpoint": ep}, 2, "us-east-1", awssdk.RetryModeStandard},
		{"alias/a", map[string]string{"region": "us-east-1", "endpoint": ep, "retry_mode": "standard"}, 2, "us-east-1", awssdk.RetryModeStandard},
		{"alias/a", map[string]string{"region": "us-east-1", "endpoint": ep, "retry_mode": "adaptive"}, 3, "us-east-1", awssdk.RetryModeAdaptive},
		{"alias/a", map[string]string{"region": "us-east-1"}, 4, "us-east-1", awssdk.RetryModeStandard},
		{"arn:aws:kms:ap-south-1:111122223333:alias/x", nil, 5, "ap-south-1", awssdk.RetryModeStandard},
	}
	for _, s := range steps {
		tg, err := p.resolve(ctx, shared.KeyRef{ID: s.id, Params: s.params})
		if err != nil {
			t.Fatalf("%s %v: %v", s.id, s.params, err)
		}
		if got := p.clients.Len(); got != s.want {
			t.Fatalf("%s %v: %d cached clients, want %d", s.id, s.params, got, s.want)
		}
		o := tg.cl.Options()
		if o.Region != s.region || o.RetryMode != s.mode || awssdk.ToString(o.BaseEndpoint) != s.params["endpoint"] {
			t.Fatalf("%s %v: client region %q mode %q endpoint %q", s.id, s.params, o.Region, o.RetryMode, awssdk.ToString(o.BaseEndpoint))
		}
	}
}

// TestParseKeyID covers the four key id forms and malformed ids.
func TestParseKeyID(t *testing.T) {
	cases := []struct {
		in                string
		alias, id, region string
		bad               bool
	}{
		{in: "1234abcd-12ab-34cd-56ef-1234567890ab", id: "1234abcd-12ab-34cd-56ef-1234567890ab"},
		{in: "mrk-1234abcd12ab34cd56ef1234567890ab", id: "mrk-1234abcd12ab34cd56ef1234567890ab"},
		{in: "arn:aws:kms:us-east-2:111122223333:key/1234", id: "1234", region: "us-east-2"},
		{in: "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/1234", id: "1234", region: "us-gov-west-1"},
		{in: "alias/release", alias: "alias/release"},
		{in: "arn:aws:kms:eu-west-1:111122223333:alias/release", alias: "alias/release", region: "eu-west-1"},
		{in: "", bad: true},
		{in: "alias/", bad: true},
		{in: "arn:aws:kms:eu-west-1:111122223333:key/", bad: true},
		{in: "arn:aws:kms::111122223333:key/1234", bad: true},
		{in: "arn:aws:s3:eu-west-1:111122223333:key/1234", bad: true},
		{in: "arn:aws:kms:eu-west-1:111122223333:grant/1234", bad: true},
		{in: "release/v1", bad: true},
	}
	for _, c := range cases {
		k, err := parseKeyID(c.in)
		if c.bad {
			if !errors.Is(err, shared.ErrInvalidArgument) {
				t.Errorf("parseKeyID(%q) = %+v, %v; want ErrInvalidArgument", c.in, k, err)
			}
			continue
		}
		if err != nil || k.alias != c.alias || k.id != c.id || k.region != c.region || k.raw != c.in {
			t.Errorf("parseKeyID(%q) = %+v, %v", c.in, k, err)
		}
	}
}

// TestMapErrorCodes checks the code table for codes the emulator cannot
// produce.
func TestMapErrorCodes(t *testing.T) {
	cases := map[string]error{
		"NotFoundException":             shared.ErrKeyNotFound,
		"AccessDeniedException":         shared.ErrPermissionDenied,
		"ExpiredTokenException":         shared.ErrPermissionDenied,
		"DisabledException":             shared.ErrFailedPrecondition,
		"KMSInvalidStateException":      shared.ErrFailedPrecondition,
		"InvalidKeyUsageException":      shared.ErrUnsupportedAlgorithm,
		"ValidationException":           shared.ErrInvalidArgument,
		"InvalidArnException":           shared.ErrInvalidArgument,
		"AlreadyExistsException":        shared.ErrAlreadyExists,
		"ThrottlingException":           shared.ErrThrottled,
		"KMSInternalException":          shared.ErrUnavailable,
		"DependencyTimeoutException":    shared.ErrUnavailable,
		"KeyUnavailableException":       shared.ErrUnavailable,
		"SomethingNewInTheAPIException": shared.ErrInvalidArgument, // unknown 4xx-less code: the request's fault
	}
	for code, want := range cases {
		err := mapError("Sign", "alias/x", &smithy.GenericAPIError{Code: code, Message: "m"})
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", code, err, want)
		}
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != code {
			t.Errorf("%s: the SDK error is not kept for errors.As", code)
		}
	}
	if err := mapError("Sign", "k", context.Canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("context.Canceled mapped to %v", err)
	}
}

// TestQuotasDeclared: Describe declares the KMS request quotas, valid,
// scoped by region, with the documented defaults for signing.
func TestQuotasDeclared(t *testing.T) {
	d, err := New(Config{}).Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rates := map[string]float64{}
	for _, c := range d.Quotas {
		if err := c.Check(); err != nil {
			t.Error(err)
		}
		if c.Source == "" || !slices.Contains(c.Scope, ParamRegion) {
			t.Errorf("class %s: no source or not scoped by region", c.Name)
		}
		rates[c.Name] = c.Rate
	}
	for name, want := range map[string]float64{"sign-verify-rsa": 1000, "sign-verify-ecc": 1000, "public-key": 2000, "create-key": 5} {
		if rates[name] != want {
			t.Errorf("class %s: rate %v, want %v", name, rates[name], want)
		}
	}
	for _, c := range d.Quotas {
		if c.Counts(shared.OpSign, shared.ECP256) {
			if c.Name != "sign-verify-ecc" {
				t.Errorf("an ES256 signature counts in %s", c.Name)
			}
			break
		}
	}
}
