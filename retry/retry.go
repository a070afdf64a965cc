// Package retry holds the settings of a token source's resilience: how
// token requests are retried (Policy) and when its circuit breaker opens
// (BreakerSettings). In both, a zero field means the documented default.
//
// Network errors, 5xx (but 501) and 429 are retried with exponential
// backoff and full jitter, or after the reply's Retry-After; any other
// status is final. The circuit breaker counts
// fetches that failed after their retries; a 4xx says the endpoint is up
// and counts as a success.
package retry

import (
	"errors"
	"time"
)

// Defaults of Policy. With them a dead endpoint (refused connections, or
// 5xx) fails a fetch after 3 attempts in well under a second of waiting.
const (
	DefaultMaxAttempts   = 3
	DefaultMinWait       = 100 * time.Millisecond
	DefaultMaxWait       = 2 * time.Second
	DefaultMaxRetryAfter = 5 * time.Second
)

// Policy says how token requests are retried. The zero Policy is the
// defaults above.
//
// Retried: network errors, 5xx (but 501) and 429. Never retried: any
// other status, a cancelled or expired context, TLS certificate and
// redirect errors. A request that must not reach the server twice (a
// rotating refresh token) is retried only when the server surely did not
// act on it: a refused connection, a 429 or a 503. The wait is
// exponential with full jitter between MinWait and MaxWait; a Retry-After
// of up to MaxRetryAfter is honored instead, and a longer one ends the
// retries. No wait runs past the context's deadline: when the next wait
// would, the last reply is returned at once.
type Policy struct {
	// MaxAttempts is the number of attempts, the first included. 1
	// disables retries. Zero means DefaultMaxAttempts.
	MaxAttempts int
	// MinWait and MaxWait bound the backoff. Zero means DefaultMinWait
	// and DefaultMaxWait.
	MinWait, MaxWait time.Duration
	// MaxRetryAfter is the longest Retry-After honored. Zero means
	// DefaultMaxRetryAfter.
	MaxRetryAfter time.Duration
}

// Validate reports a Policy that makes no sense (negative values).
func (p Policy) Validate() error {
	if p.MaxAttempts < 0 || p.MinWait < 0 || p.MaxWait < 0 || p.MaxRetryAfter < 0 {
		return errors.New("retry: Policy fields must not be negative")
	}
	return nil
}

// Breaker defaults.
const (
	DefaultFailures = 5
	DefaultOpenFor  = 30 * time.Second
)

// BreakerSettings configures a token source's circuit breaker. The zero
// value is the defaults: DefaultFailures consecutive failed fetches open
// it for DefaultOpenFor; then one probe is let through (half-open), and
// its success closes it.
type BreakerSettings struct {
	// Failures is how many consecutive failed fetches (each after its
	// retries) open the breaker. Zero means DefaultFailures.
	Failures int
	// OpenFor is how long it stays open before a probe. Zero means
	// DefaultOpenFor.
	OpenFor time.Duration
	// Disabled turns the breaker off.
	Disabled bool
	// OnStateChange, if set, is called after each change of state with
	// the states' names: "closed", "half-open" or "open". It runs outside
	// the breaker's lock; a panic in it is recovered and dropped.
	OnStateChange func(from, to string)
}

// Validate reports settings that make no sense (negative values).
func (s BreakerSettings) Validate() error {
	if s.Failures < 0 || s.OpenFor < 0 {
		return errors.New("retry: BreakerSettings fields must not be negative")
	}
	return nil
}
