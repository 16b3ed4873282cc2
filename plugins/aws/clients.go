package awskms

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/knhk/knhk/shared"
)

// clients caches one KMS client per region, endpoint, profile and retry
// mode, so one plugin process serves many regions and accounts without
// reloading the AWS configuration on every call.
type clients struct {
	mu sync.Mutex
	m  map[clientKey]*kms.Client
}

// get returns the cached client for ck, loading the AWS configuration (and
// credentials chain) the first time. Failures are not cached.
func (c *clients) get(ctx context.Context, ck clientKey) (*kms.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.m[ck]; ok {
		return cl, nil
	}
	opts := []func(*config.LoadOptions) error{}
	if ck.region != "" {
		opts = append(opts, config.WithRegion(ck.region))
	}
	if ck.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(ck.profile))
	}
	if ck.retryMode == "adaptive" {
		opts = append(opts, config.WithRetryMode(aws.RetryModeAdaptive))
	} else {
		opts = append(opts, config.WithRetryMode(aws.RetryModeStandard))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: loading the AWS configuration (profile %q): %v", shared.ErrInvalidArgument, ck.profile, err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("%w: no AWS region: pass the region parameter, name the key by ARN, or set AWS_REGION", shared.ErrInvalidArgument)
	}
	cl := kms.NewFromConfig(cfg, func(o *kms.Options) {
		if ck.endpoint != "" {
			o.BaseEndpoint = aws.String(ck.endpoint)
		}
	})
	if c.m == nil {
		c.m = map[clientKey]*kms.Client{}
	}
	c.m[ck] = cl
	return cl, nil
}

// len reports how many clients are cached.
func (c *clients) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
