package instrument_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/tokenhttp/tokenhttp/internal/instrument"
	"github.com/tokenhttp/tokenhttp/telemetry"
)

// typed is an error that names its own error.type, as source's errors do.
type typed struct {
	typ string
	err error
}

func (e typed) Error() string     { return "typed" }
func (e typed) ErrorType() string { return e.typ }
func (e typed) Unwrap() error     { return e.err }

func TestErrorType(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"own type", typed{typ: "invalid_client"}, "invalid_client"},
		{"own type, wrapped", fmt.Errorf("x: %w", typed{typ: telemetry.ErrorBreakerOpen}), telemetry.ErrorBreakerOpen},
		{"no opinion over a deadline", typed{err: context.DeadlineExceeded}, telemetry.ErrorTimeout},
		{"no opinion over a cancellation", typed{err: context.Canceled}, telemetry.ErrorCanceled},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), telemetry.ErrorTimeout},
		{"joined", errors.Join(errors.New("a"), typed{typ: telemetry.ErrorHook}), telemetry.ErrorHook},
		{"anything else", errors.New("boom"), telemetry.ErrorNetwork},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := instrument.ErrorType(tt.err); got != tt.want {
				t.Errorf("ErrorType(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}
