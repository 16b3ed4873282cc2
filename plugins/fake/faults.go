package fake

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/time/rate"

	"github.com/knhk/knhk/shared"
)

// ExitCode is the status the plugin process exits with when
// fault_exit_after fires.
const ExitCode = 3

// faultParams are the parameters that make a fault spec.
var faultParams = []string{
	ParamFaultLatency, ParamFaultError, ParamFaultEvery, ParamFaultRate,
	ParamFaultCorrupt, ParamFaultExitAfter, ParamFaultHangAfter, ParamFaultOps,
	ParamFaultQuota,
}

// Operation names, as fault_ops takes them.
const (
	OpCreateKey   = "create_key"
	OpListKeys    = "list_keys"
	OpPublicKey   = "public_key"
	OpSign        = "sign"
	OpVerify      = "verify"
	OpRotateKey   = "rotate_key"
	OpKeyMetadata = "key_metadata"
	// OpVersionStates is GetVersionStates and SetVersionState.
	OpVersionStates = "version_states"
)

// allOps lists the operations fault_ops names, in the order an error lists them.
var allOps = []string{OpCreateKey, OpListKeys, OpPublicKey, OpSign, OpVerify, OpRotateKey, OpKeyMetadata, OpVersionStates}

// errUnknownFault is what fault_error=unknown returns: an error that wraps
// no sentinel, so it crosses the wire as codes.Unknown.
var errUnknownFault = errors.New("unknown error")

// faultErrors maps fault_error values to the errors returned.
var faultErrors = map[string]error{
	"invalid_argument":      shared.ErrInvalidArgument,
	"not_found":             shared.ErrKeyNotFound,
	"unsupported_algorithm": shared.ErrUnsupportedAlgorithm,
	"permission_denied":     shared.ErrPermissionDenied,
	"unavailable":           shared.ErrUnavailable,
	"throttled":             shared.ErrThrottled,
	"failed_precondition":   shared.ErrFailedPrecondition,
	"unimplemented":         shared.ErrUnimplemented,
	"already_exists":        shared.ErrAlreadyExists,
	"deadline_exceeded":     context.DeadlineExceeded,
	"unknown":               errUnknownFault,
}

// faultErrorNames lists the values fault_error takes, sorted.
func faultErrorNames() []string {
	names := make([]string, 0, len(faultErrors))
	for n := range faultErrors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// faultSpec is one request's fault parameters, checked. The zero value
// injects nothing.
type faultSpec struct {
	key       string // canonical form: the counter's identity; "" = no faults
	latency   time.Duration
	errName   string
	err       error
	every     int
	rate      float64
	hasRate   bool
	corrupt   bool
	exitAfter int // -1: off
	hangAfter int // -1: off
	ops       map[string]bool
	quota     float64 // requests per second; 0: none
}

// badFault is the error for a fault parameter with a value out of range.
func badFault(name, value, want string) error {
	return fmt.Errorf("%w: fake: parameter %s=%s: %s", shared.ErrInvalidArgument, name, shared.Quote(value), want)
}

// faultsOf reads the fault_* parameters the schema has checked, and checks
// what the schema's kinds cannot say: ranges, the list of operations, and
// which parameters go together.
func faultsOf(ps shared.Params) (faultSpec, error) {
	f := faultSpec{exitAfter: -1, hangAfter: -1}
	on := false
	for _, name := range faultParams {
		on = on || ps.Has(name)
	}
	if !on {
		return f, nil
	}
	f.key = ps.Key(faultParams...)
	f.latency = ps.Duration(ParamFaultLatency)
	if f.errName = ps.String(ParamFaultError); f.errName != "" {
		f.err = faultErrors[f.errName]
	}
	f.corrupt = ps.Bool(ParamFaultCorrupt)
	for _, c := range []struct {
		name  string
		least int
	}{{ParamFaultEvery, 1}, {ParamFaultExitAfter, 0}, {ParamFaultHangAfter, 0}} {
		if n := ps.Int(c.name); ps.Has(c.name) && n < c.least {
			return f, badFault(c.name, strconv.Itoa(n), fmt.Sprintf("want a whole number >= %d", c.least))
		}
	}
	f.every = ps.Int(ParamFaultEvery)
	if ps.Has(ParamFaultExitAfter) {
		f.exitAfter = ps.Int(ParamFaultExitAfter)
	}
	if ps.Has(ParamFaultHangAfter) {
		f.hangAfter = ps.Int(ParamFaultHangAfter)
	}
	if ps.Has(ParamFaultRate) {
		v := ps.String(ParamFaultRate)
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || !(r >= 0 && r <= 1) {
			return f, badFault(ParamFaultRate, v, "want a fraction between 0 and 1, e.g. 0.25")
		}
		f.rate, f.hasRate = r, true
	}
	if ps.Has(ParamFaultOps) {
		v := ps.String(ParamFaultOps)
		f.ops = map[string]bool{}
		for _, op := range strings.Split(v, ",") {
			op = strings.TrimSpace(op)
			if !slices.Contains(allOps, op) {
				return f, badFault(ParamFaultOps, v, "want a comma-separated list of "+strings.Join(allOps, ", "))
			}
			f.ops[op] = true
		}
	}
	if ps.Has(ParamFaultQuota) {
		v := ps.String(ParamFaultQuota)
		q, err := strconv.ParseFloat(v, 64)
		if err != nil || !(q > 0 && q <= 1e6) {
			return f, badFault(ParamFaultQuota, v, "want requests per second, more than 0, e.g. 100")
		}
		f.quota = q
	}
	if f.every > 0 && f.hasRate {
		return f, fmt.Errorf("%w: fake: set %s or %s, not both", shared.ErrInvalidArgument, ParamFaultEvery, ParamFaultRate)
	}
	if (f.every > 0 || f.hasRate) && f.err == nil && !f.corrupt {
		return f, fmt.Errorf("%w: fake: %s and %s choose which calls fail; also set %s or %s=true", shared.ErrInvalidArgument, ParamFaultEvery, ParamFaultRate, ParamFaultError, ParamFaultCorrupt)
	}
	return f, nil
}

// faults holds the per-process call counters, one per fault spec.
type faults struct {
	log    hclog.Logger
	exit   func(code int) // os.Exit in the plugin
	mu     sync.Mutex
	calls  map[string]int
	quotas map[string]*rate.Limiter // fault_quota's buckets, per fault spec
}

func newFaults(log hclog.Logger) *faults {
	return &faults{log: log, exit: os.Exit, calls: map[string]int{}, quotas: map[string]*rate.Limiter{}}
}

// before runs the faults of spec for one call of op. It returns an error
// to send instead of doing the call, or whether the call's signature must
// be corrupted. It may also sleep, exit the process or never return.
func (fs *faults) before(ctx context.Context, spec faultSpec, op string) (corrupt bool, err error) {
	if spec.key == "" || (spec.ops != nil && !spec.ops[op]) || (spec.ops == nil && op == OpVersionStates) {
		// Version states count only when fault_ops names them: hosts
		// read them besides other calls, which would shift the counts
		// of faults written before they existed.
		return false, nil
	}
	fs.mu.Lock()
	fs.calls[spec.key]++
	n := fs.calls[spec.key]
	var quota *rate.Limiter
	if spec.quota > 0 {
		if quota = fs.quotas[spec.key]; quota == nil {
			// A quota of N a second, counted like a service that
			// counts each second: up to N at once.
			quota = rate.NewLimiter(rate.Limit(spec.quota), max(1, int(spec.quota)))
			fs.quotas[spec.key] = quota
		}
	}
	fs.mu.Unlock()

	if spec.exitAfter >= 0 && n > spec.exitAfter {
		fs.log.Warn("injected fault: exiting", "param", ParamFaultExitAfter, "after", spec.exitAfter, "op", op, "code", ExitCode)
		fs.exit(ExitCode)
	}
	if spec.hangAfter >= 0 && n > spec.hangAfter {
		fs.log.Warn("injected fault: hanging forever", "param", ParamFaultHangAfter, "after", spec.hangAfter, "op", op)
		select {} // on purpose: ignore the context, as a stuck plugin would
	}
	if quota != nil && !quota.Allow() {
		// As a service does: refused on arrival, before any work.
		return false, fmt.Errorf("fake: request quota %s=%s exceeded on %s call %d; slow down: %w",
			ParamFaultQuota, strconv.FormatFloat(spec.quota, 'g', -1, 64), op, n, shared.ErrThrottled)
	}
	if spec.latency > 0 {
		t := time.NewTimer(spec.latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		}
	}
	hit := true
	switch {
	case spec.every > 0:
		hit = n%spec.every == 0
	case spec.hasRate:
		hit = rand.Float64() < spec.rate
	}
	if !hit {
		return false, nil
	}
	if spec.err != nil {
		return false, fmt.Errorf("fake: injected fault %s=%s on %s call %d: %w", ParamFaultError, spec.errName, op, n, spec.err)
	}
	return spec.corrupt, nil
}
