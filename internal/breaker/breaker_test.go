package breaker_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/breaker"
	"github.com/tokenhttp/tokenhttp/retry"
)

var (
	errDown      = errors.New("endpoint down")            // a failure
	errRefused   = errors.New("endpoint said no")         // not a failure: the endpoint is up
	errCancelled = errors.New("the fetch was called off") // excluded
)

const (
	testFailures = 3
	testOpenFor  = 200 * time.Millisecond
)

func isFailure(err error) bool { return !errors.Is(err, errRefused) }
func excluded(err error) bool  { return errors.Is(err, errCancelled) }

func newTestBreaker(onChange func(from, to string)) *breaker.Breaker {
	return breaker.New("test", retry.BreakerSettings{
		Failures: testFailures, OpenFor: testOpenFor, OnStateChange: onChange,
	}, isFailure, excluded)
}

// counter is a fetch that returns err and counts its calls.
type counter struct {
	calls atomic.Int32
	err   error
}

func (c *counter) f() (any, error) {
	c.calls.Add(1)
	if c.err != nil {
		return nil, c.err
	}
	return "token", nil
}

// trip opens b with testFailures failures.
func trip(t *testing.T, b *breaker.Breaker) {
	t.Helper()
	down := &counter{err: errDown}
	for i := range testFailures {
		if got, want := b.State(), breaker.StateClosed; got != want {
			t.Fatalf("state before failure %d: got %v, want %v", i+1, got, want)
		}
		if _, err := b.Do(down.f, nil); err != errDown {
			t.Fatalf("failure %d: got error %v, want %v", i+1, err, errDown)
		}
	}
	if got, want := down.calls.Load(), int32(testFailures); got != want {
		t.Fatalf("calls while closed = %d, want %d", got, want)
	}
	if got, want := b.State(), breaker.StateOpen; got != want {
		t.Fatalf("state after %d failures: got %v, want %v", testFailures, got, want)
	}
}

// failTimes makes n calls through b that fail.
func failTimes(b *breaker.Breaker, n int) {
	down := &counter{err: errDown}
	for range n {
		b.Do(down.f, nil)
	}
}

// changeLog records OnStateChange calls as "from->to". It is safe for
// concurrent use.
type changeLog struct {
	mu  sync.Mutex
	got []string
}

func (l *changeLog) add(from, to string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, fmt.Sprintf("%v->%v", from, to))
}

// check fails t unless the calls recorded so far are want.
func (l *changeLog) check(t *testing.T, want ...string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !slices.Equal(l.got, want) {
		t.Errorf("OnStateChange calls = %q, want %q", l.got, want)
	}
}

// wantOpenError checks that err is the breaker's fast refusal.
func wantOpenError(t *testing.T, err error, until time.Time) {
	t.Helper()
	var oe *breaker.OpenError
	if !errors.As(err, &oe) {
		t.Fatalf("error: got %T, want *breaker.OpenError", err)
	}
	if !until.IsZero() && !oe.Until.Equal(until) {
		t.Errorf("OpenError.Until = %v, want %v", oe.Until, until)
	}
}

func TestBreakerOpensAfterFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newTestBreaker(nil)
		trip(t, b)
		openedAt := time.Now()

		probe := &counter{}
		for range 5 {
			_, err := b.Do(probe.f, nil)
			wantOpenError(t, err, openedAt.Add(testOpenFor))
		}
		if got := probe.calls.Load(); got != 0 {
			t.Errorf("calls while open: got %d, want 0", got)
		}

		time.Sleep(testOpenFor / 2)
		if _, err := b.Do(probe.f, nil); !errors.As(err, new(*breaker.OpenError)) {
			t.Errorf("halfway through OpenFor: got %v, want an OpenError", err)
		}
		time.Sleep(testOpenFor/2 + time.Millisecond)
		if got, want := b.State(), breaker.StateHalfOpen; got != want {
			t.Errorf("state after OpenFor = %v, want %v", got, want)
		}
	})
}

func TestBreakerHalfOpenLetsOneProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newTestBreaker(nil)
		trip(t, b)
		time.Sleep(testOpenFor + time.Millisecond)

		release := make(chan struct{})
		var probeCalls atomic.Int32
		probeErr := make(chan error, 1)
		go func() {
			_, err := b.Do(func() (any, error) {
				probeCalls.Add(1)
				<-release
				return "token", nil
			}, nil)
			probeErr <- err
		}()
		synctest.Wait() // the probe is running

		if got, want := b.State(), breaker.StateHalfOpen; got != want {
			t.Errorf("state during the probe = %v, want %v", got, want)
		}
		other := &counter{}
		var wg sync.WaitGroup
		errs := make([]error, 10)
		for i := range errs {
			wg.Go(func() { _, errs[i] = b.Do(other.f, nil) })
		}
		wg.Wait()
		for i, err := range errs {
			if !errors.As(err, new(*breaker.OpenError)) {
				t.Errorf("caller %d during the probe: got %v, want an OpenError", i, err)
			}
		}
		if got := other.calls.Load(); got != 0 {
			t.Errorf("calls during the probe: got %d, want 0", got)
		}

		close(release)
		if err := <-probeErr; err != nil {
			t.Fatalf("probe: got error %v, want success", err)
		}
		if got, want := probeCalls.Load(), int32(1); got != want {
			t.Errorf("probe calls = %d, want %d", got, want)
		}
		if got, want := b.State(), breaker.StateClosed; got != want {
			t.Errorf("state after a successful probe = %v, want %v", got, want)
		}
		ok := &counter{}
		if _, err := b.Do(ok.f, nil); err != nil || ok.calls.Load() != 1 {
			t.Errorf("after closing: got error %v and %d calls, want success and 1 call", err, ok.calls.Load())
		}
	})
}

func TestBreakerProbeFailureReopens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newTestBreaker(nil)
		trip(t, b)
		time.Sleep(testOpenFor + time.Millisecond)

		down := &counter{err: errDown}
		if _, err := b.Do(down.f, nil); err != errDown {
			t.Fatalf("probe = %v, want %v", err, errDown)
		}
		if got, want := down.calls.Load(), int32(1); got != want {
			t.Errorf("probe calls = %d, want %d", got, want)
		}
		if got, want := b.State(), breaker.StateOpen; got != want {
			t.Fatalf("state after a failed probe = %v, want %v", got, want)
		}
		reopened := time.Now()
		_, err := b.Do(down.f, nil)
		wantOpenError(t, err, reopened.Add(testOpenFor))
		if got, want := down.calls.Load(), int32(1); got != want {
			t.Errorf("calls after re-opening = %d, want %d", got, want)
		}

		time.Sleep(testOpenFor + time.Millisecond)
		ok := &counter{}
		if _, err := b.Do(ok.f, nil); err != nil {
			t.Fatalf("second probe: %v", err)
		}
		if got, want := b.State(), breaker.StateClosed; got != want {
			t.Errorf("state after a successful probe = %v, want %v", got, want)
		}
	})
}

func TestBreakerNonFailures(t *testing.T) {
	t.Run("never trip it", func(t *testing.T) {
		b := newTestBreaker(nil)
		refused := &counter{err: errRefused}
		for i := range 20 {
			if _, err := b.Do(refused.f, nil); err != errRefused {
				t.Fatalf("call %d: got %v, want %v", i+1, err, errRefused)
			}
		}
		if got, want := refused.calls.Load(), int32(20); got != want {
			t.Errorf("calls = %d, want %d", got, want)
		}
		if got, want := b.State(), breaker.StateClosed; got != want {
			t.Errorf("state = %v, want %v", got, want)
		}
	})
	t.Run("reset the consecutive failures", func(t *testing.T) {
		b := newTestBreaker(nil)
		down, refused := &counter{err: errDown}, &counter{err: errRefused}
		for _, f := range []func() (any, error){down.f, down.f, refused.f, down.f, down.f} {
			b.Do(f, nil)
		}
		if got, want := b.State(), breaker.StateClosed; got != want {
			t.Fatalf("state after 2 failures, a 4xx, 2 failures = %v, want %v", got, want)
		}
		b.Do(down.f, nil)
		if got, want := b.State(), breaker.StateOpen; got != want {
			t.Errorf("state after 3 consecutive failures = %v, want %v", got, want)
		}
	})
}

func TestBreakerExcluded(t *testing.T) {
	t.Run("neither count nor reset", func(t *testing.T) {
		b := newTestBreaker(nil)
		down, cancelled := &counter{err: errDown}, &counter{err: errCancelled}
		b.Do(down.f, nil)
		b.Do(down.f, nil)
		for i := range 20 {
			if _, err := b.Do(cancelled.f, nil); err != errCancelled {
				t.Fatalf("excluded call %d: got %v, want %v", i+1, err, errCancelled)
			}
		}
		if got, want := b.State(), breaker.StateClosed; got != want {
			t.Fatalf("state after 2 failures and 20 excluded = %v, want %v", got, want)
		}
		b.Do(down.f, nil)
		if got, want := b.State(), breaker.StateOpen; got != want {
			t.Errorf("state after a third failure = %v, want %v (excluded errors must not reset the count)", got, want)
		}
	})
	t.Run("an excluded probe leaves it half-open", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newTestBreaker(nil)
			trip(t, b)
			time.Sleep(testOpenFor + time.Millisecond)
			cancelled := &counter{err: errCancelled}
			if _, err := b.Do(cancelled.f, nil); err != errCancelled {
				t.Fatalf("excluded probe = %v, want %v", err, errCancelled)
			}
			if got, want := b.State(), breaker.StateHalfOpen; got != want {
				t.Errorf("state after an excluded probe = %v, want %v", got, want)
			}
			ok := &counter{}
			if _, err := b.Do(ok.f, nil); err != nil {
				t.Fatalf("next probe: got %v, want it let through", err)
			}
			if got, want := b.State(), breaker.StateClosed; got != want {
				t.Errorf("state after a successful probe = %v, want %v", got, want)
			}
		})
	})
}

// TestBreakerOnStateChange runs on the real clock: a callback that
// deadlocks on a lock would hang a synctest bubble instead of failing.
func TestBreakerOnStateChange(t *testing.T) {
	var (
		log changeLog
		b   *breaker.Breaker
	)
	b = newTestBreaker(func(from, to string) {
		b.State() // must not deadlock: the callback runs outside the breaker's lock
		log.add(from, to)
	})

	withTimeout(t, 5*time.Second, func() {
		failTimes(b, testFailures)
		time.Sleep(testOpenFor + 50*time.Millisecond)
		ok := &counter{}
		b.Do(ok.f, nil)
		b.Do(ok.f, nil)
	})

	log.check(t, "closed->open", "open->half-open", "half-open->closed")
}

// TestBreakerOnStateChangeCallsStateAfterAChange covers a callback that
// calls State when another change is waiting to be reported: here the
// callback for closed->open takes longer than OpenFor, so its State call
// moves the breaker to half-open.
func TestBreakerOnStateChangeCallsStateAfterAChange(t *testing.T) {
	var (
		log changeLog
		b   *breaker.Breaker
	)
	b = newTestBreaker(func(from, to string) {
		if to == "open" {
			time.Sleep(testOpenFor + 20*time.Millisecond) // a slow callback: a remote log, say
		}
		b.State()
		log.add(from, to)
	})
	withTimeout(t, 5*time.Second, func() { failTimes(b, testFailures) })
	log.check(t, "closed->open", "open->half-open")
}

// withTimeout runs f and fails the test if it has not returned after d
// (f is left running: it is deadlocked).
func withTimeout(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("deadlock: the breaker did not return in %v (an OnStateChange callback that calls State)", d)
	}
}

// TestBreakerOnStateChangeReopen checks the callbacks of a failed probe.
func TestBreakerOnStateChangeReopen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log changeLog
		b := newTestBreaker(log.add)
		trip(t, b)
		time.Sleep(testOpenFor + time.Millisecond)
		failTimes(b, 1)
		log.check(t, "closed->open", "open->half-open", "half-open->open")
	})
}

func TestBreakerDefaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := breaker.New("test", retry.BreakerSettings{}, isFailure, excluded)
		down := &counter{err: errDown}
		failTimes(b, retry.DefaultFailures-1)
		if got, want := b.State(), breaker.StateClosed; got != want {
			t.Fatalf("state after %d failures: got %v, want %v", retry.DefaultFailures-1, got, want)
		}
		b.Do(down.f, nil)
		if got, want := b.State(), breaker.StateOpen; got != want {
			t.Fatalf("state after %d failures: got %v, want %v", retry.DefaultFailures, got, want)
		}
		_, err := b.Do(down.f, nil)
		wantOpenError(t, err, time.Now().Add(retry.DefaultOpenFor))
		time.Sleep(retry.DefaultOpenFor - time.Millisecond)
		if got, want := b.State(), breaker.StateOpen; got != want {
			t.Errorf("state just before DefaultOpenFor = %v, want %v", got, want)
		}
		time.Sleep(2 * time.Millisecond)
		if got, want := b.State(), breaker.StateHalfOpen; got != want {
			t.Errorf("state after DefaultOpenFor = %v, want %v", got, want)
		}
	})
}

func TestBreakerNil(t *testing.T) {
	var b *breaker.Breaker
	for _, err := range []error{nil, errDown} {
		for range 10 {
			c := &counter{err: err}
			v, gotErr := b.Do(c.f, nil)
			if gotErr != err {
				t.Errorf("nil Breaker: got error %v, want %v", gotErr, err)
			}
			if err == nil && v != "token" {
				t.Errorf("nil Breaker: got value %v, want %q", v, "token")
			}
			if got := c.calls.Load(); got != 1 {
				t.Errorf("nil Breaker: got %d calls, want 1", got)
			}
		}
	}
	if got, want := b.State(), breaker.StateClosed; got != want {
		t.Errorf("nil Breaker state = %v, want %v", got, want)
	}
}

func TestBreakerDisabled(t *testing.T) {
	if b := breaker.New("test", retry.BreakerSettings{Disabled: true, Failures: 1}, isFailure, excluded); b != nil {
		t.Errorf("NewBreaker with Disabled: got %p, want nil", b)
	}
}

func TestBreakerValue(t *testing.T) {
	b := newTestBreaker(nil)
	v, err := b.Do(func() (any, error) { return 42, nil }, nil)
	if v != 42 || err != nil {
		t.Errorf("Do: got %v, %v; want 42, <nil>", v, err)
	}
}

// TestBreakerConcurrent hammers one breaker from many goroutines, for the
// race detector, with a callback that reads the state.
func TestBreakerConcurrent(t *testing.T) {
	var b *breaker.Breaker
	var changes atomic.Int32
	b = breaker.New("test", retry.BreakerSettings{Failures: 2, OpenFor: time.Millisecond,
		OnStateChange: func(from, to string) {
			if from == to {
				t.Errorf("OnStateChange(%v, %v): not a change", from, to)
			}
			b.State()
			changes.Add(1)
		}}, isFailure, excluded)
	errs := []error{nil, errDown, errRefused, errCancelled}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 300 {
				err := errs[(g+i)%len(errs)]
				b.Do(func() (any, error) { return nil, err }, nil)
				if i%50 == 0 {
					time.Sleep(2 * time.Millisecond)
				}
			}
		})
	}
	withTimeout(t, 10*time.Second, wg.Wait)
	if changes.Load() == 0 {
		t.Errorf("no state change seen in 4800 calls, a quarter of them failures")
	}
}

// TestBreakerDoChanged checks Do's per-call callback: it sees the changes
// this call caused, after OnStateChange.
func TestBreakerDoChanged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log []string
		b := newTestBreaker(func(from, to string) { log = append(log, fmt.Sprintf("notify %v->%v", from, to)) })
		changed := func(from, to breaker.State) { log = append(log, fmt.Sprintf("changed %v->%v", from, to)) }
		down, ok := &counter{err: errDown}, &counter{}
		for range testFailures {
			b.Do(down.f, changed)
		}
		time.Sleep(testOpenFor + time.Millisecond)
		b.Do(ok.f, changed)
		b.Do(ok.f, changed)
		want := []string{
			"notify closed->open", "changed closed->open",
			"notify open->half-open", "changed open->half-open",
			"notify half-open->closed", "changed half-open->closed",
		}
		if strings.Join(log, ", ") != strings.Join(want, ", ") {
			t.Errorf("callbacks:\ngot  %q\nwant %q", log, want)
		}
	})
}

// A panic in OnStateChange is dropped: later changes are still reported.
func TestBreakerOnStateChangePanics(t *testing.T) {
	var calls atomic.Int32
	b := breaker.New("p", retry.BreakerSettings{Failures: 1, OpenFor: 20 * time.Millisecond,
		OnStateChange: func(from, to string) {
			if calls.Add(1) == 1 {
				panic("callback bug")
			}
		}}, func(error) bool { return true }, nil)
	fail := func() (any, error) { return nil, errors.New("down") }
	ok := func() (any, error) { return 1, nil }
	b.Do(fail, nil) // closed -> open: the callback panics
	time.Sleep(30 * time.Millisecond)
	b.Do(ok, nil) // open -> half-open -> closed
	if got, want := calls.Load(), int32(3); got != want {
		t.Errorf("OnStateChange calls = %d, want %d", got, want)
	}
}
