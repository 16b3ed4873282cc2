package aws

import (
	"context"
	"fmt"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"go.opentelemetry.io/contrib/instrumentation/github.com/aws/aws-sdk-go-v2/otelaws"

	"github.com/knhk/knhk/shared"
)

// client returns the KMS client for checked parameters and the region the
// call goes to, with its cache key. One client per region, endpoint,
// profile and retry mode lets one plugin process serve many regions and
// accounts without reloading the AWS configuration on every call.
func (p *Provider) client(ctx context.Context, ps shared.Params, region string) (string, *kms.Client, error) {
	conn := ps.Key(ParamEndpoint, ParamProfile, ParamRetryMode) + ParamRegion + "=" + region
	cl, err := p.clients.Get(ctx, conn, func(ctx context.Context) (*kms.Client, error) {
		return p.newClient(ctx, ps, region)
	})
	return conn, cl, err
}

// newClient loads the AWS configuration (and credentials chain) for one
// region, endpoint, profile and retry mode.
func (p *Provider) newClient(ctx context.Context, ps shared.Params, region string) (*kms.Client, error) {
	profile, endpoint := ps.String(ParamProfile), ps.String(ParamEndpoint)
	opts := []func(*config.LoadOptions) error{}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(profile))
	}
	mode := awssdk.RetryModeStandard
	if ps.String(ParamRetryMode) == "adaptive" {
		mode = awssdk.RetryModeAdaptive
	}
	opts = append(opts, config.WithRetryMode(mode))
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: loading the AWS configuration (profile %s): %v", shared.ErrInvalidArgument, shared.Quote(profile), err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("%w: no AWS region: pass the region parameter, name the key by ARN, or set AWS_REGION", shared.ErrInvalidArgument)
	}
	// One client span per KMS call (named "KMS.<Operation>"), a child of
	// the span in the call's context: the plugin's gRPC server span. The
	// global providers are no-op unless the plugin's telemetry is set up.
	otelaws.AppendMiddlewares(&cfg.APIOptions)
	p.cfg.Logger.Debug("new KMS client", "region", cfg.Region, "endpoint", shared.RedactURL(endpoint), "profile", profile, "retry_mode", mode)
	return kms.NewFromConfig(cfg, func(o *kms.Options) {
		if endpoint != "" {
			o.BaseEndpoint = awssdk.String(endpoint)
		}
		if mode == awssdk.RetryModeStandard {
			o.Retryer = standardRetryer()
		}
	}), nil
}

// standardRetryer is the SDK's standard retryer (3 attempts, exponential
// backoff with jitter, the retry token bucket) less its retries of
// throttling errors: those reach the host at once as shared.ErrThrottled.
// The host keeps its callers under the KMS request quotas with its own
// token buckets and cuts a bucket's rate when KMS throttles anyway; an
// SDK retry would hide the throttling from it, add requests while the
// account is over its quota and sleep inside a call the host counts
// against the caller's deadline. 5xx, timeouts and connection errors are
// still retried. retry_mode=adaptive keeps the SDK's adaptive retryer
// whole (its own client-side rate limiter and throttling retries), for
// hosts that turn their quotas off.
func standardRetryer() awssdk.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.Retryables = []retry.IsErrorRetryable{
			retry.NoRetryCanceledError{},
			retry.RetryableError{},
			retry.RetryableConnectionError{},
			retry.RetryableHTTPStatusCode{Codes: retry.DefaultRetryableHTTPStatusCodes},
			retry.RetryableErrorCode{Codes: retry.DefaultRetryableErrorCodes},
		}
	})
}
