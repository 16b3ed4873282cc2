package fake

import (
	"context"
	"fmt"
	"regexp"

	"github.com/knhk/knhk/shared"
)

// Parameter names a request may carry in KeyRef.Params (or
// ListKeysRequest.Params). The package documentation explains each.
const (
	ParamState = "state" // path of a JSON state file; default: process memory
	ParamSeed  = "seed"  // deterministic key generation

	ParamFaultLatency   = "fault_latency"    // delay before each call, e.g. "50ms"
	ParamFaultError     = "fault_error"      // error code to return, e.g. "unavailable"
	ParamFaultEvery     = "fault_every"      // fault every Nth call (N, 2N, ...)
	ParamFaultRate      = "fault_rate"       // fault this fraction of calls, 0..1
	ParamFaultCorrupt   = "fault_corrupt"    // "true": Sign returns signatures with a flipped bit
	ParamFaultExitAfter = "fault_exit_after" // serve N calls, then exit the process
	ParamFaultHangAfter = "fault_hang_after" // serve N calls, then never answer again
	ParamFaultOps       = "fault_ops"        // which operations count and fault; default all
	ParamFaultQuota     = "fault_quota"      // requests per second; beyond it calls fail throttled
)

// params is every parameter the fake accepts. Values the schema's kinds
// cannot express (the seed's length, a rate's range, the list of
// operations) are checked by resolve and faultsOf.
var params = shared.NewParamSchema(Name,
	shared.Param{Name: ParamState, Kind: shared.ParamPath, Doc: "JSON state file shared by processes, instead of process memory"},
	shared.Param{Name: ParamSeed, Doc: "seed that makes new keys deterministic"},
	shared.Param{Name: ParamFaultLatency, Kind: shared.ParamDuration, Doc: "delay before each call"},
	shared.Param{Name: ParamFaultError, Kind: shared.ParamEnum, Choices: faultErrorNames(), Doc: "error that faulted calls return"},
	shared.Param{Name: ParamFaultEvery, Kind: shared.ParamInt, Doc: "fault calls N, 2N, 3N, ..."},
	shared.Param{Name: ParamFaultRate, Doc: "fault each call with this probability, 0 to 1"},
	shared.Param{Name: ParamFaultCorrupt, Kind: shared.ParamBool, Doc: "faulted signatures get one bit flipped"},
	shared.Param{Name: ParamFaultExitAfter, Kind: shared.ParamInt, Doc: "exit the process after N calls"},
	shared.Param{Name: ParamFaultHangAfter, Kind: shared.ParamInt, Doc: "never answer after N calls"},
	shared.Param{Name: ParamFaultOps, Doc: "comma-separated operations that count and fault; default all"},
	shared.Param{Name: ParamFaultQuota, Doc: "request quota in requests per second; calls beyond it fail with shared.ErrThrottled"},
)

// maxSeedLen bounds the seed parameter; a longer value is refused.
const maxSeedLen = 1024

// keyNameRE is what a key id may look like: 1–128 characters, letters,
// digits, '.', '_', '-', '/', starting with a letter or digit.
var keyNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$`)

// checkKeyName refuses key ids the fake cannot store.
func checkKeyName(id string) error {
	if id == "" {
		return fmt.Errorf("%w: fake: key id is empty; name the key, e.g. \"demo\"", shared.ErrInvalidArgument)
	}
	if !keyNameRE.MatchString(id) {
		return fmt.Errorf("%w: fake: key id %s is not a valid name (1-128 of A-Z a-z 0-9 . _ - /, starting with a letter or digit)", shared.ErrInvalidArgument, shared.Quote(id))
	}
	return nil
}

// target is what resolve makes of a request: the key name, the checked
// parameters, the store they name, and whether faults ask for a corrupted
// signature.
type target struct {
	id      string // "" for ListKeys
	seed    string // "" when keys are random
	state   string // absolute path of the state file; "" for memory
	store   store
	corrupt bool
}

// resolve is where every operation starts: it checks the request's
// parameters and (except for ListKeys) its key name, runs the injected
// faults for op, and picks the store.
func (p *Provider) resolve(ctx context.Context, op string, ref shared.KeyRef) (target, error) {
	if err := ctx.Err(); err != nil {
		return target{}, err
	}
	ps, err := params.Parse(ref.Params)
	if err != nil {
		return target{}, err
	}
	t := target{id: ref.ID, seed: ps.String(ParamSeed), state: ps.String(ParamState)}
	// The seed is secret-ish: say how long it is, never what it is.
	if ps.Has(ParamSeed) && (t.seed == "" || len(t.seed) > maxSeedLen) {
		return target{}, fmt.Errorf("%w: fake: parameter %s must be a non-empty string of at most %d bytes (got %d bytes)", shared.ErrInvalidArgument, ParamSeed, maxSeedLen, len(t.seed))
	}
	fault, err := faultsOf(ps)
	if err != nil {
		return target{}, err
	}
	if op != OpListKeys {
		if err := checkKeyName(ref.ID); err != nil {
			return target{}, err
		}
	}
	if t.corrupt, err = p.faults.before(ctx, fault, op); err != nil {
		return target{}, err
	}
	if err := ctx.Err(); err != nil {
		return target{}, err
	}
	if t.store, err = p.storeFor(ctx, t.state); err != nil {
		return target{}, err
	}
	return t, nil
}
