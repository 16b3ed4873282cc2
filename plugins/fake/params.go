package fake

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/knhk/knhk/shared"
)

// Parameter names a request may carry in KeyRef.Params (or
// ListKeysRequest.Params).
const (
	ParamState = "state" // path of a JSON state file; default: process memory
	ParamSeed  = "seed"  // deterministic key generation
)

// maxSeedLen bounds the seed parameter; a longer value is refused.
const maxSeedLen = 1024

// keyNameRE is what a key id may look like: 1–128 characters, letters,
// digits, '.', '_', '-', '/', starting with a letter or digit.
var keyNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$`)

// knownParams lists every parameter the fake accepts, for error messages.
func knownParams() []string {
	names := append([]string{ParamState, ParamSeed}, faultParams...)
	sort.Strings(names)
	return names
}

// params is a request's parameters, checked.
type params struct {
	state  string // absolute path, or "" for memory
	seed   string // "" when not set
	seeded bool
	fault  faultSpec
}

// parseParams checks every parameter of a request. An unknown name, an
// empty state path or a malformed seed is ErrInvalidArgument.
func parseParams(in map[string]string) (params, error) {
	var p params
	fault := map[string]string{}
	for k, v := range in {
		switch {
		case k == ParamState:
			if strings.TrimSpace(v) == "" {
				return params{}, fmt.Errorf("%w: fake: parameter %q is empty; give the path of a state file or leave it out to keep keys in memory", shared.ErrInvalidArgument, ParamState)
			}
			abs, err := filepath.Abs(v)
			if err != nil {
				return params{}, fmt.Errorf("%w: fake: state path %q: %v", shared.ErrInvalidArgument, v, err)
			}
			p.state = abs
		case k == ParamSeed:
			// The seed is secret-ish: never echo it.
			if v == "" || len(v) > maxSeedLen {
				return params{}, fmt.Errorf("%w: fake: parameter %q must be a non-empty string of at most %d bytes (got %d bytes)", shared.ErrInvalidArgument, ParamSeed, maxSeedLen, len(v))
			}
			p.seed, p.seeded = v, true
		case isFaultParam(k):
			fault[k] = v
		default:
			return params{}, fmt.Errorf("%w: fake: unknown parameter %q (known: %s)", shared.ErrInvalidArgument, k, strings.Join(knownParams(), ", "))
		}
	}
	f, err := parseFaults(fault)
	if err != nil {
		return params{}, err
	}
	p.fault = f
	return p, nil
}

// checkKeyName refuses key ids the fake cannot store.
func checkKeyName(id string) error {
	if id == "" {
		return fmt.Errorf("%w: fake: key id is empty; name the key, e.g. \"demo\"", shared.ErrInvalidArgument)
	}
	if !keyNameRE.MatchString(id) {
		shown := id
		if len(shown) > 140 {
			shown = shown[:140] + "..."
		}
		return fmt.Errorf("%w: fake: key id %q is not a valid name (1-128 of A-Z a-z 0-9 . _ - /, starting with a letter or digit)", shared.ErrInvalidArgument, shown)
	}
	return nil
}
