package instrument

import (
	"context"
	"errors"

	"github.com/tokenhttp/tokenhttp/telemetry"
)

// ErrorType names err's kind for telemetry.AttrErrorType: a code, never
// text. The first error in err's chain with a method ErrorType() string
// that returns a non-empty value names it (the source package's errors do:
// an OAuth2 code, telemetry.ErrorBreakerOpen, ...). Otherwise a context's
// deadline, or a net.Error timeout, is telemetry.ErrorTimeout, a
// cancellation telemetry.ErrorCanceled, and anything else
// telemetry.ErrorNetwork. A nil err is "".
func ErrorType(err error) string {
	if err == nil {
		return ""
	}
	for e := range chain(err) {
		if t, ok := e.(interface{ ErrorType() string }); ok {
			if s := t.ErrorType(); s != "" {
				return s
			}
		}
	}
	var tm interface{ Timeout() bool }
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &tm) && tm.Timeout():
		return telemetry.ErrorTimeout
	case errors.Is(err, context.Canceled):
		return telemetry.ErrorCanceled
	}
	return telemetry.ErrorNetwork
}

// chain yields err and every error it wraps, depth first, as errors.As
// visits them.
func chain(err error) func(yield func(error) bool) {
	return func(yield func(error) bool) {
		var walk func(error) bool
		walk = func(e error) bool {
			for e != nil {
				if !yield(e) {
					return false
				}
				switch u := e.(type) {
				case interface{ Unwrap() error }:
					e = u.Unwrap()
				case interface{ Unwrap() []error }:
					for _, w := range u.Unwrap() {
						if !walk(w) {
							return false
						}
					}
					return true
				default:
					return true
				}
			}
			return true
		}
		walk(err)
	}
}
