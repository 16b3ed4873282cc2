package errtype

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestTiers: a Specific sentinel names an error that also wraps a General
// one, whichever was registered first; then the context errors; else
// Other.
func TestTiers(t *testing.T) {
	general := errors.New("general")
	specific := errors.New("specific")
	Register(General, general, "general_name")
	Register(Specific, specific, "specific_name")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{fmt.Errorf("x: %w", general), "general_name"},
		{fmt.Errorf("%w: %w", general, specific), "specific_name"},
		{fmt.Errorf("%w: %w", general, context.Canceled), "general_name"},
		{fmt.Errorf("x: %w", context.Canceled), "canceled"},
		{context.DeadlineExceeded, "deadline_exceeded"},
		{errors.New("unknown"), Other},
	} {
		if got := Of(tc.err); got != tc.want {
			t.Errorf("Of(%v) = %q; want %q", tc.err, got, tc.want)
		}
	}
}

// TestBadRegistration: a registration that could never match panics at
// init, where it is written.
func TestBadRegistration(t *testing.T) {
	for _, reg := range []func(){
		func() { Register(General, nil, "x") },
		func() { Register(General, errors.New("x"), "") },
		func() { Register(Tier(7), errors.New("x"), "x") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("a bad registration did not panic")
				}
			}()
			reg()
		}()
	}
}
