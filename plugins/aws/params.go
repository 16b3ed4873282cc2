package aws

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/knhk/knhk/shared"
)

// Parameters a key reference or a ListKeys call may carry. Credentials are
// never parameters: they come from the standard AWS chain.
const (
	ParamRegion    = "region"
	ParamEndpoint  = "endpoint"
	ParamProfile   = "profile"
	ParamRetryMode = "retry_mode"
)

// params is the provider's parameter schema.
var params = shared.NewParamSchema(Name,
	shared.Param{Name: ParamRegion,
		Doc: "AWS region, e.g. eu-west-1; default: the key ARN's region, then the standard chain (AWS_REGION, profile)"},
	shared.Param{Name: ParamEndpoint, Kind: shared.ParamURL,
		Doc: "KMS endpoint URL (emulator, VPC or FIPS endpoint); default: the SDK's"},
	shared.Param{Name: ParamProfile,
		Doc: "shared config profile; default: the standard chain (AWS_PROFILE, default)"},
	shared.Param{Name: ParamRetryMode, Kind: shared.ParamEnum, Choices: []string{"standard", "adaptive"}, Default: "standard",
		Doc: "the SDK's retryer"},
)

// keyID is a parsed KMS key reference.
type keyID struct {
	raw    string // as the caller wrote it; what KMS is sent
	alias  string // "alias/NAME" when the reference is an alias name or ARN
	region string // from an ARN; empty otherwise
	id     string // the key id (UUID or mrk-...) when the reference names a key
}

// isAlias reports whether the reference names an alias.
func (k keyID) isAlias() bool { return k.alias != "" }

// parseKeyID reads a key id, key ARN, alias name or alias ARN.
func parseKeyID(s string) (keyID, error) {
	if s == "" {
		return keyID{}, fmt.Errorf("%w: key id is empty (want a key id, key ARN, alias/NAME or alias ARN)", shared.ErrInvalidArgument)
	}
	if strings.HasPrefix(s, "arn:") {
		// arn:PARTITION:kms:REGION:ACCOUNT:key/ID or .../alias/NAME
		parts := strings.SplitN(s, ":", 6)
		if len(parts) != 6 || parts[2] != "kms" || parts[3] == "" || parts[4] == "" {
			return keyID{}, fmt.Errorf("%w: %s is not a KMS key or alias ARN (arn:aws:kms:REGION:ACCOUNT:key/ID or .../alias/NAME)", shared.ErrInvalidArgument, shared.Quote(s))
		}
		res := parts[5]
		switch {
		case strings.HasPrefix(res, "alias/") && len(res) > len("alias/"):
			return keyID{raw: s, alias: res, region: parts[3]}, nil
		case strings.HasPrefix(res, "key/") && len(res) > len("key/"):
			return keyID{raw: s, id: strings.TrimPrefix(res, "key/"), region: parts[3]}, nil
		}
		return keyID{}, fmt.Errorf("%w: %s is not a KMS key or alias ARN (resource must be key/ID or alias/NAME)", shared.ErrInvalidArgument, shared.Quote(s))
	}
	if strings.HasPrefix(s, "alias/") {
		if len(s) == len("alias/") {
			return keyID{}, fmt.Errorf("%w: alias name is empty in %s", shared.ErrInvalidArgument, shared.Quote(s))
		}
		return keyID{raw: s, alias: s}, nil
	}
	if strings.ContainsAny(s, ":/") {
		return keyID{}, fmt.Errorf("%w: %s is not a key id, key ARN, alias/NAME or alias ARN", shared.ErrInvalidArgument, shared.Quote(s))
	}
	return keyID{raw: s, id: s}, nil
}

// idFromARN returns the key id in a key ARN (or the argument when it is
// already an id).
func idFromARN(arn string) string {
	if i := strings.LastIndex(arn, "key/"); strings.HasPrefix(arn, "arn:") && i >= 0 {
		return arn[i+len("key/"):]
	}
	return arn
}

// region is the region a call goes to: an ARN's region, which the region
// parameter must not contradict, else the parameter (empty: the standard
// chain decides).
func region(ps shared.Params, k keyID) (string, error) {
	r := ps.String(ParamRegion)
	if k.region == "" {
		return r, nil
	}
	if r != "" && r != k.region {
		return "", fmt.Errorf("%w: region parameter %s contradicts the region %s in %s", shared.ErrInvalidArgument, shared.Quote(r), shared.Quote(k.region), shared.Quote(k.raw))
	}
	return k.region, nil
}

// target is a key reference resolved to its client.
type target struct {
	conn string // the client's cache key: equal for equal connection settings
	cl   *kms.Client
	key  keyID // zero when the reference has no key id
}

// resolve checks a key reference's parameters, parses its key id and picks
// (or makes) its client. An empty key id (CreateKey letting KMS pick one,
// ListKeys) resolves to the client alone.
func (p *Provider) resolve(ctx context.Context, ref shared.KeyRef) (target, error) {
	var k keyID
	if ref.ID != "" {
		var err error
		if k, err = parseKeyID(ref.ID); err != nil {
			return target{}, err
		}
	}
	ps, err := params.Parse(ref.Params)
	if err != nil {
		return target{}, err
	}
	r, err := region(ps, k)
	if err != nil {
		return target{}, err
	}
	conn, cl, err := p.client(ctx, ps, r)
	if err != nil {
		return target{}, err
	}
	return target{conn: conn, cl: cl, key: k}, nil
}
