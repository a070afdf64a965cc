// Package breaker is the circuit breaker over a source's token fetches, on
// github.com/sony/gobreaker/v2, configured by a retry.BreakerSettings.
package breaker

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/tokenhttp/tokenhttp/retry"
)

// State is a breaker state.
type State = gobreaker.State

// The breaker states.
const (
	StateClosed   = gobreaker.StateClosed
	StateHalfOpen = gobreaker.StateHalfOpen
	StateOpen     = gobreaker.StateOpen
)

// OpenError is the error of a fetch the breaker refused: no request was
// sent. The source package converts it to its public error.
type OpenError struct {
	Until time.Time // when the next try (a probe) will be let through
}

func (e *OpenError) Error() string { return "breaker: open" }

// Breaker is a circuit breaker over token fetches. A nil *Breaker lets
// everything through. It is safe for concurrent use; it is meant to run
// inside the single flight, so that waiters share a probe's result.
type Breaker struct {
	cb        *gobreaker.CircuitBreaker[any]
	openFor   time.Duration
	until     atomic.Int64 // unix nanos the open state ends; set under gobreaker's lock
	notify    func(from, to string)
	pending   atomic.Bool // changes wait in queue
	reporting atomic.Bool // a report is running
	qmu       sync.Mutex  // guards queue; taken under gobreaker's lock, never calls into it
	queue     []change    // state changes not yet reported
}

type change struct{ from, to State }

// New returns a breaker named name. isFailure
// classifies a fetch error: true counts toward opening, false counts as a
// success (a 4xx: the endpoint is up); excluded errors (the fetch was
// cancelled by its owner, a user hook failed) count as neither. It
// returns nil if s.Disabled.
func New(name string, s retry.BreakerSettings, isFailure, excluded func(error) bool) *Breaker {
	if s.Disabled {
		return nil
	}
	if s.Failures <= 0 {
		s.Failures = retry.DefaultFailures
	}
	if s.OpenFor <= 0 {
		s.OpenFor = retry.DefaultOpenFor
	}
	b := &Breaker{openFor: s.OpenFor, notify: s.OnStateChange}
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
		err = &OpenError{Until: time.Unix(0, b.until.Load())}
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
			if b.notify != nil {
				call(func(from, to State) { b.notify(from.String(), to.String()) }, c)
			}
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
