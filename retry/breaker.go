package retry

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

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
	// OnStateChange, if set, is called after each change of state, outside
	// the breaker's lock (it may call State). A panic in it is recovered
	// and dropped.
	OnStateChange func(from, to State)
}

// Validate reports settings that make no sense (negative values).
func (s BreakerSettings) Validate() error {
	if s.Failures < 0 || s.OpenFor < 0 {
		return errors.New("retry.BreakerSettings fields must not be negative")
	}
	return nil
}

// State is a breaker state.
type State = gobreaker.State

// The breaker states.
const (
	StateClosed   = gobreaker.StateClosed
	StateHalfOpen = gobreaker.StateHalfOpen
	StateOpen     = gobreaker.StateOpen
)

// ErrOpen is matched (errors.Is) by the error a source returns while its
// breaker is open and it has no valid token to serve.
var ErrOpen = errors.New("circuit breaker open")

// OpenError is the error of a fetch the breaker refused: no request was
// sent. It matches ErrOpen.
type OpenError struct {
	Name  string    // the breaker's (the provider's) name
	Until time.Time // when the next try (a probe) will be let through
}

// Error says that the endpoint is failing and when the next try will be.
func (e *OpenError) Error() string {
	wait := time.Until(e.Until).Round(time.Second)
	if wait < 0 {
		wait = 0
	}
	return fmt.Sprintf("source: the %s token endpoint is failing; the circuit breaker is open and sent no request; the next try will be in %s (at %s)",
		e.Name, wait, e.Until.Format(time.TimeOnly))
}

// Is matches ErrOpen.
func (e *OpenError) Is(target error) bool { return target == ErrOpen }

// Breaker is a circuit breaker over token fetches. A nil *Breaker lets
// everything through. It is safe for concurrent use; it is meant to run
// inside the single flight, so that waiters share a probe's result.
type Breaker struct {
	name      string
	cb        *gobreaker.CircuitBreaker[any]
	openFor   time.Duration
	until     atomic.Int64 // unix nanos the open state ends; set under gobreaker's lock
	notify    func(from, to State)
	pending   atomic.Bool // changes wait in queue
	reporting atomic.Bool // a report is running
	qmu       sync.Mutex  // guards queue; taken under gobreaker's lock, never calls into it
	queue     []change    // state changes not yet reported
}

type change struct{ from, to State }

// NewBreaker returns a breaker named name (for errors). isFailure
// classifies a fetch error: true counts toward opening, false counts as a
// success (a 4xx: the endpoint is up); excluded errors (the fetch was
// cancelled by its owner, a user hook failed) count as neither. It
// returns nil if s.Disabled.
func NewBreaker(name string, s BreakerSettings, isFailure, excluded func(error) bool) *Breaker {
	if s.Disabled {
		return nil
	}
	if s.Failures <= 0 {
		s.Failures = DefaultFailures
	}
	if s.OpenFor <= 0 {
		s.OpenFor = DefaultOpenFor
	}
	b := &Breaker{name: name, openFor: s.OpenFor, notify: s.OnStateChange}
	failures := uint32(s.Failures)
	b.cb = gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
		Name:        name,
		MaxRequests: 1, // one probe, whose success closes it
		Interval:    0, // counts are cleared by a success, not by time
		Timeout:     s.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		IsSuccessful: func(err error) bool {
			return err == nil || !isFailure(err)
		},
		IsExcluded: excluded,
		// Runs under gobreaker's lock: only atomics here, nothing that
		// calls back into the breaker.
		OnStateChange: func(_ string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				b.until.Store(time.Now().Add(b.openFor).UnixNano())
			}
			b.qmu.Lock()
			b.queue = append(b.queue, change{from, to})
			b.qmu.Unlock()
			b.pending.Store(true)
		},
	})
	return b
}

// Do runs f unless the breaker is open, in which case it returns an
// *OpenError at once. changed, if not nil, is called (after
// OnStateChange) for each change of state this call caused or saw.
func (b *Breaker) Do(f func() (any, error), changed func(from, to State)) (any, error) {
	if b == nil {
		return f()
	}
	v, err := b.cb.Execute(f)
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		err = &OpenError{Name: b.name, Until: time.Unix(0, b.until.Load())}
	}
	b.report(changed)
	return v, err
}

// State returns the breaker's state; StateClosed for a nil Breaker.
func (b *Breaker) State() State {
	if b == nil {
		return StateClosed
	}
	s := b.cb.State()
	b.report(nil)
	return s
}

// Current returns the state without reporting changes: for a metrics
// callback, so that the changes it makes (open to half-open once OpenFor
// has passed) are still reported by the next Do, on that fetch's span.
func (b *Breaker) Current() State {
	if b == nil {
		return StateClosed
	}
	return b.cb.State()
}

// report calls OnStateChange and changed, outside gobreaker's lock and
// outside any lock of ours, for every change since the last report, in
// order. One goroutine reports at a time; a report asked for meanwhile
// (by a callback that calls State, say) is delivered by the one running.
func (b *Breaker) report(changed func(from, to State)) {
	for b.pending.Load() {
		if !b.reporting.CompareAndSwap(false, true) {
			return
		}
		b.qmu.Lock()
		q := b.queue
		b.queue = nil
		b.pending.Store(false)
		b.qmu.Unlock()
		for _, c := range q {
			call(b.notify, c)
			call(changed, c)
		}
		b.reporting.Store(false)
	}
}

// call runs a state-change callback; a panic in it is dropped, so that
// one bad callback neither stops later reports nor fails the fetch.
func call(f func(from, to State), c change) {
	if f == nil {
		return
	}
	defer func() { _ = recover() }()
	f(c.from, c.to)
}
