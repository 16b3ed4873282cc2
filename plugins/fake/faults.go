package fake

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/knhk/knhk/shared"
)

// Fault-injection parameters (see the package documentation for the table).
const (
	ParamFaultLatency   = "fault_latency"    // delay before each call, e.g. "50ms"
	ParamFaultError     = "fault_error"      // error code to return, e.g. "unavailable"
	ParamFaultEvery     = "fault_every"      // fault every Nth call (N, 2N, ...)
	ParamFaultRate      = "fault_rate"       // fault this fraction of calls, 0..1
	ParamFaultCorrupt   = "fault_corrupt"    // "true": Sign returns signatures with a flipped bit
	ParamFaultExitAfter = "fault_exit_after" // serve N calls, then exit the process
	ParamFaultHangAfter = "fault_hang_after" // serve N calls, then never answer again
	ParamFaultOps       = "fault_ops"        // which operations count and fault; default all
)

// ExitCode is the status the plugin process exits with when
// fault_exit_after fires.
const ExitCode = 3

var faultParams = []string{
	ParamFaultLatency, ParamFaultError, ParamFaultEvery, ParamFaultRate,
	ParamFaultCorrupt, ParamFaultExitAfter, ParamFaultHangAfter, ParamFaultOps,
}

func isFaultParam(k string) bool {
	for _, f := range faultParams {
		if f == k {
			return true
		}
	}
	return false
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
)

var allOps = []string{OpCreateKey, OpListKeys, OpPublicKey, OpSign, OpVerify, OpRotateKey, OpKeyMetadata}

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
	"failed_precondition":   shared.ErrFailedPrecondition,
	"unimplemented":         shared.ErrUnimplemented,
	"already_exists":        shared.ErrAlreadyExists,
	"deadline_exceeded":     context.DeadlineExceeded,
	"unknown":               errUnknownFault,
}

func faultErrorNames() string {
	names := make([]string, 0, len(faultErrors))
	for n := range faultErrors {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
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
}

func badFault(name, value, want string) error {
	return fmt.Errorf("%w: fake: parameter %s=%q: %s", shared.ErrInvalidArgument, name, value, want)
}

// parseFaults checks the fault_* parameters.
func parseFaults(in map[string]string) (faultSpec, error) {
	f := faultSpec{exitAfter: -1, hangAfter: -1}
	if len(in) == 0 {
		return f, nil
	}
	keys := make([]string, 0, len(in))
	for k, v := range in {
		keys = append(keys, k+"="+v)
	}
	sort.Strings(keys)
	f.key = strings.Join(keys, ";")

	count := func(name string) (int, error) {
		n, err := strconv.Atoi(in[name])
		if err != nil || n < 0 {
			return 0, badFault(name, in[name], "want a whole number >= 0")
		}
		return n, nil
	}
	var err error
	for name, v := range in {
		switch name {
		case ParamFaultLatency:
			if f.latency, err = time.ParseDuration(v); err != nil || f.latency < 0 {
				return f, badFault(name, v, "want a non-negative Go duration such as 50ms or 2s")
			}
		case ParamFaultError:
			e, ok := faultErrors[v]
			if !ok {
				return f, badFault(name, v, "want one of "+faultErrorNames())
			}
			f.errName, f.err = v, e
		case ParamFaultEvery:
			if f.every, err = count(name); err != nil || f.every == 0 {
				return f, badFault(name, v, "want a whole number >= 1")
			}
		case ParamFaultRate:
			if f.rate, err = strconv.ParseFloat(v, 64); err != nil || !(f.rate >= 0 && f.rate <= 1) {
				return f, badFault(name, v, "want a fraction between 0 and 1, e.g. 0.25")
			}
			f.hasRate = true
		case ParamFaultCorrupt:
			if f.corrupt, err = strconv.ParseBool(v); err != nil {
				return f, badFault(name, v, "want true or false")
			}
		case ParamFaultExitAfter:
			if f.exitAfter, err = count(name); err != nil {
				return f, err
			}
		case ParamFaultHangAfter:
			if f.hangAfter, err = count(name); err != nil {
				return f, err
			}
		case ParamFaultOps:
			f.ops = map[string]bool{}
			for _, op := range strings.Split(v, ",") {
				op = strings.TrimSpace(op)
				if !isOp(op) {
					return f, badFault(name, v, "want a comma-separated list of "+strings.Join(allOps, ", "))
				}
				f.ops[op] = true
			}
		}
	}
	if f.every > 0 && f.hasRate {
		return f, fmt.Errorf("%w: fake: set %s or %s, not both", shared.ErrInvalidArgument, ParamFaultEvery, ParamFaultRate)
	}
	if (f.every > 0 || f.hasRate) && f.err == nil && !f.corrupt {
		return f, fmt.Errorf("%w: fake: %s and %s choose which calls fail; also set %s or %s=true", shared.ErrInvalidArgument, ParamFaultEvery, ParamFaultRate, ParamFaultError, ParamFaultCorrupt)
	}
	return f, nil
}

func isOp(s string) bool {
	for _, op := range allOps {
		if op == s {
			return true
		}
	}
	return false
}

// faults holds the per-process call counters, one per fault spec.
type faults struct {
	log   hclog.Logger
	exit  func(code int) // os.Exit in the plugin
	mu    sync.Mutex
	calls map[string]int
}

func newFaults(log hclog.Logger) *faults {
	return &faults{log: log, exit: os.Exit, calls: map[string]int{}}
}

// before runs the faults of spec for one call of op. It returns an error
// to send instead of doing the call, or whether the call's signature must
// be corrupted. It may also sleep, exit the process or never return.
func (fs *faults) before(ctx context.Context, spec faultSpec, op string) (corrupt bool, err error) {
	if spec.key == "" || (spec.ops != nil && !spec.ops[op]) {
		return false, nil
	}
	fs.mu.Lock()
	fs.calls[spec.key]++
	n := fs.calls[spec.key]
	fs.mu.Unlock()

	if spec.exitAfter >= 0 && n > spec.exitAfter {
		fs.log.Warn("injected fault: exiting", "param", ParamFaultExitAfter, "after", spec.exitAfter, "op", op, "code", ExitCode)
		fs.exit(ExitCode)
	}
	if spec.hangAfter >= 0 && n > spec.hangAfter {
		fs.log.Warn("injected fault: hanging forever", "param", ParamFaultHangAfter, "after", spec.hangAfter, "op", op)
		select {} // on purpose: ignore the context, as a stuck plugin would
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
