package awskms

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/knhk/knhk/shared"
)

// Parameters a key reference or a ListKeys call may carry.
const (
	ParamRegion    = "region"     // AWS region, e.g. eu-west-1; default: the key ARN's region, then the standard chain (AWS_REGION, profile)
	ParamEndpoint  = "endpoint"   // custom KMS endpoint URL (emulator, VPC or FIPS endpoint); default: the SDK's
	ParamProfile   = "profile"    // shared config profile; default: the standard chain (AWS_PROFILE, "default")
	ParamRetryMode = "retry_mode" // "standard" (default) or "adaptive"
)

var knownParams = map[string]bool{ParamRegion: true, ParamEndpoint: true, ParamProfile: true, ParamRetryMode: true}

// clientKey names one cached KMS client: one per region, endpoint, profile
// and retry mode.
type clientKey struct {
	region, endpoint, profile, retryMode string
}

// checkParams refuses unknown or malformed parameters. Credentials are
// never parameters: they come from the standard AWS chain.
func checkParams(params map[string]string) (clientKey, error) {
	var unknown []string
	for k := range params {
		if !knownParams[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return clientKey{}, fmt.Errorf("%w: unknown parameter(s) %s for the aws provider (known: region, endpoint, profile, retry_mode; credentials come from the standard AWS chain, never from parameters)",
			shared.ErrInvalidArgument, strings.Join(unknown, ", "))
	}
	ck := clientKey{region: params[ParamRegion], endpoint: params[ParamEndpoint], profile: params[ParamProfile], retryMode: params[ParamRetryMode]}
	if ck.endpoint != "" {
		u, err := url.Parse(ck.endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return clientKey{}, fmt.Errorf("%w: endpoint %q is not an http(s) URL without user info", shared.ErrInvalidArgument, redactURL(ck.endpoint))
		}
	}
	switch ck.retryMode {
	case "":
		ck.retryMode = "standard" // one cached client for both spellings
	case "standard", "adaptive":
	default:
		return clientKey{}, fmt.Errorf("%w: retry_mode %q is not \"standard\" or \"adaptive\"", shared.ErrInvalidArgument, ck.retryMode)
	}
	return ck, nil
}

// redactURL keeps user info (which could hold a secret) out of messages.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		u.User = url.User("REDACTED")
		return u.String()
	}
	if i := strings.Index(s, "@"); i >= 0 {
		return "REDACTED" + s[i:]
	}
	return s
}

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
			return keyID{}, fmt.Errorf("%w: %q is not a KMS key or alias ARN (arn:aws:kms:REGION:ACCOUNT:key/ID or .../alias/NAME)", shared.ErrInvalidArgument, s)
		}
		res := parts[5]
		switch {
		case strings.HasPrefix(res, "alias/") && len(res) > len("alias/"):
			return keyID{raw: s, alias: res, region: parts[3]}, nil
		case strings.HasPrefix(res, "key/") && len(res) > len("key/"):
			return keyID{raw: s, id: strings.TrimPrefix(res, "key/"), region: parts[3]}, nil
		}
		return keyID{}, fmt.Errorf("%w: %q is not a KMS key or alias ARN (resource must be key/ID or alias/NAME)", shared.ErrInvalidArgument, s)
	}
	if strings.HasPrefix(s, "alias/") {
		if len(s) == len("alias/") {
			return keyID{}, fmt.Errorf("%w: alias name is empty in %q", shared.ErrInvalidArgument, s)
		}
		return keyID{raw: s, alias: s}, nil
	}
	if strings.ContainsAny(s, ":/") {
		return keyID{}, fmt.Errorf("%w: %q is not a key id, key ARN, alias/NAME or alias ARN", shared.ErrInvalidArgument, s)
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

// resolveRegion combines the region parameter with an ARN's region.
func resolveRegion(ck clientKey, k keyID) (clientKey, error) {
	if k.region == "" {
		return ck, nil
	}
	if ck.region != "" && ck.region != k.region {
		return clientKey{}, fmt.Errorf("%w: region parameter %q contradicts the region %q in %s", shared.ErrInvalidArgument, ck.region, k.region, k.raw)
	}
	ck.region = k.region
	return ck, nil
}
