// Package errtype names knhk's errors for the error.type attribute of
// spans and metrics. The sentinels live in packages that themselves use
// telemetry (shared, host, the sidecar's apierr), so telemetry cannot
// import them: each of those packages registers its sentinels here from
// an init function, and telemetry.ErrorType looks them up. An error can
// only wrap a sentinel whose package is linked in, and that package's init
// has then run, so the table is complete for every error a program can
// hold.
package errtype

import (
	"context"
	"errors"
	"sync"
)

// Tier orders the lookups: an error wrapping a host or sidecar sentinel
// usually wraps a shared one too (ErrCallTimeout errors are also
// shared.ErrUnavailable), and the more specific name must win.
type Tier int

const (
	// Specific is for sentinels that wrap, or travel with, a more general
	// one: the host's and the sidecar's.
	Specific Tier = iota
	// General is for the plugin SDK's sentinels.
	General
	numTiers
)

// Other is the error.type of an error that wraps no known sentinel, as
// OpenTelemetry's semantic conventions name it.
const Other = "_OTHER"

type kind struct {
	err  error
	name string
}

var (
	mu    sync.RWMutex
	tiers [numTiers][]kind
)

// Register names errors matching err (errors.Is) name. Call it from an
// init function; within a tier the first registration that matches wins.
func Register(t Tier, err error, name string) {
	if t < 0 || t >= numTiers || err == nil || name == "" {
		panic("errtype: bad registration")
	}
	mu.Lock()
	defer mu.Unlock()
	tiers[t] = append(tiers[t], kind{err, name})
}

// Of returns err's error.type: the name of the first registered sentinel
// it matches, tier by tier, then "canceled" or "deadline_exceeded" for the
// context errors, else Other. A nil error has none ("").
func Of(err error) string {
	if err == nil {
		return ""
	}
	mu.RLock()
	defer mu.RUnlock()
	for _, tier := range tiers {
		for _, k := range tier {
			if errors.Is(err, k.err) {
				return k.name
			}
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	}
	return Other
}
