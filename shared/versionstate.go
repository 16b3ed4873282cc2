package shared

import (
	"context"
	"fmt"
	"time"
)

// VersionState is where a key version stands in its life when its key
// has version states (see CapVersionStates): pending (published, does not
// sign yet), active (the one version that signs), retiring (published and
// verifies, no longer signs), retired (neither).
type VersionState string

// The version states, in life order.
const (
	VersionPending  VersionState = "pending"
	VersionActive   VersionState = "active"
	VersionRetiring VersionState = "retiring"
	VersionRetired  VersionState = "retired"
)

// VersionStateNames lists every version state, in life order.
var VersionStateNames = []VersionState{VersionPending, VersionActive, VersionRetiring, VersionRetired}

// ParseVersionState checks a version state name.
func ParseVersionState(s string) (VersionState, error) {
	for _, v := range VersionStateNames {
		if string(v) == s {
			return v, nil
		}
	}
	return "", fmt.Errorf("%w: unknown version state %s (want one of %v)", ErrInvalidArgument, Quote(s), VersionStateNames)
}

// Signs reports whether a version in this state may sign: only active.
func (s VersionState) Signs() bool { return s == VersionActive }

// Verifies reports whether signatures made by a version in this state
// still verify: active and retiring. A pending version has signed nothing.
func (s VersionState) Verifies() bool { return s == VersionActive || s == VersionRetiring }

// Published reports whether a version in this state has its public key
// published to verifiers: every state but retired.
func (s VersionState) Published() bool { return s != VersionRetired && s != "" }

// CheckVersionTransition says whether SetVersionState may move a version
// from one state to another: pending to active (a promotion, which moves
// the active version to retiring in the same change), pending to retired
// (a pending version abandoned) and retiring to retired. Setting the
// state a version already has is allowed (a no-op, so that a retried
// request succeeds). Anything else is ErrFailedPrecondition.
func CheckVersionTransition(version string, from, to VersionState) error {
	switch {
	case from == to,
		from == VersionPending && to == VersionActive,
		from == VersionPending && to == VersionRetired,
		from == VersionRetiring && to == VersionRetired:
		return nil
	case from == VersionActive && to == VersionRetiring:
		return fmt.Errorf("%w: version %s is active: promote another version, which moves it to retiring (a key keeps exactly one active version)", ErrFailedPrecondition, Quote(version))
	case from == VersionActive:
		return fmt.Errorf("%w: version %s is active: promote another version first, then retire this one (a key keeps exactly one active version)", ErrFailedPrecondition, Quote(version))
	}
	return fmt.Errorf("%w: version %s cannot go from %s to %s (pending → active → retiring → retired; a pending version may also be retired)", ErrFailedPrecondition, Quote(version), from, to)
}

// VersionStateEntry is one version's state.
type VersionStateEntry struct {
	Version string
	State   VersionState
	// Since is when the version entered its state; zero when the
	// provider does not know. Promotion's soak gate measures how long a
	// version has been pending from it.
	Since time.Time
}

// VersionStates are the states of a key's versions, oldest first. A key
// without version states has none: it behaves as keys always have (its
// current version signs).
type VersionStates struct {
	Versions []VersionStateEntry
}

// Has reports whether the key has version states.
func (vs VersionStates) Has() bool { return len(vs.Versions) > 0 }

// State is a version's state, and whether the version has one.
func (vs VersionStates) State(version string) (VersionState, bool) {
	e, ok := vs.Entry(version)
	return e.State, ok
}

// Entry is a version's entry, and whether the version has one.
func (vs VersionStates) Entry(version string) (VersionStateEntry, bool) {
	for _, e := range vs.Versions {
		if e.Version == version {
			return e, true
		}
	}
	return VersionStateEntry{}, false
}

// Active is the active version, "" when there is none.
func (vs VersionStates) Active() string {
	for _, e := range vs.Versions {
		if e.State == VersionActive {
			return e.Version
		}
	}
	return ""
}

// Check reports states that break the rules: a version twice, an unknown
// state, or (when there are states) not exactly one active version.
func (vs VersionStates) Check() error {
	if !vs.Has() {
		return nil
	}
	seen := make(map[string]bool, len(vs.Versions))
	active := 0
	for _, e := range vs.Versions {
		if seen[e.Version] {
			return fmt.Errorf("%w: version %s has two states", ErrFailedPrecondition, Quote(e.Version))
		}
		seen[e.Version] = true
		if _, err := ParseVersionState(string(e.State)); err != nil {
			return fmt.Errorf("%w: version %s: %w", ErrFailedPrecondition, Quote(e.Version), err)
		}
		if e.State == VersionActive {
			active++
		}
	}
	if active != 1 {
		return fmt.Errorf("%w: the key's version states have %d active versions; there must be exactly one", ErrFailedPrecondition, active)
	}
	return nil
}

// GetVersionStatesRequest names the key whose version states to read.
type GetVersionStatesRequest struct {
	Key KeyRef
}

// SetVersionStateRequest moves one version of a key to a state. Setting
// a version active moves the active version to retiring in the same
// change (see CheckVersionTransition for the moves allowed).
type SetVersionStateRequest struct {
	Key     KeyRef
	Version string
	State   VersionState
}

// VersionStater is implemented by providers that claim CapVersionStates:
// they keep version states with the key, so that every host sharing the
// key agrees on them. Providers without it (or without the claim) answer
// both operations with ErrUnimplemented, which the SDK does for them.
//
// A key gets states when it is first rotated with RotateKeyRequest.Pending:
// the version that was current becomes active (older ones retiring) and
// the new one pending.
type VersionStater interface {
	// GetVersionStates returns the key's version states, oldest first;
	// none for a key without states.
	GetVersionStates(ctx context.Context, req GetVersionStatesRequest) (VersionStates, error)
	// SetVersionState moves a version to a state, checking the move with
	// CheckVersionTransition, and returns the key's states after it.
	// ErrFailedPrecondition for a key without states or a move not allowed.
	SetVersionState(ctx context.Context, req SetVersionStateRequest) (VersionStates, error)
}
