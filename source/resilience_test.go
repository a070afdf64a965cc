package source_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenhttp/tokenhttp/retry"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
	"github.com/tokenhttp/tokenhttp/source/storetest"
)

// The resilience tests: token-endpoint retries, the circuit breaker and
// stale-but-valid tokens, through source.New and the sourcetest
// emulators' fault knobs. Time-based cases run in a synctest bubble over
// an in-memory transport; the others over loopback sockets.

// maxAttempts is the attempts of fastRetry: the default.
const maxAttempts = retry.DefaultMaxAttempts

func TestResilienceBurstShorterThanAttempts(t *testing.T) {
	for _, status := range []int{500, 502, 503, 504, 429} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			leakCheck(t)
			emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
			src := newSource(t, standardConfig(emu.TokenURL))
			burst := maxAttempts - 1
			emu.FailNext(burst, status, "")

			tok, err := src.Token(context.Background())
			if err != nil {
				t.Fatalf("Token: got error %v, want a token after the burst", err)
			}
			if !tok.Valid() {
				t.Errorf("Token: got an invalid token")
			}
			if got, want := emu.TokenRequests(), burst+1; got != want {
				t.Errorf("token requests = %d, want %d", got, want)
			}
			if got, want := emu.Issued(), 1; got != want {
				t.Errorf("tokens issued = %d, want %d", got, want)
			}
		})
	}
}

// TestResilienceBurstLongerThanAttempts checks that the last reply of an
// exhausted fetch becomes the caller's *source.Error.
func TestResilienceBurstLongerThanAttempts(t *testing.T) {
	leakCheck(t)
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
	src := newSource(t, standardConfig(emu.TokenURL))
	emu.FailNext(maxAttempts, 503, "")

	_, err := src.Token(context.Background())
	te := tokenError(t, err)
	if got, want := te.StatusCode, 503; got != want {
		t.Errorf("StatusCode = %d, want %d", got, want)
	}
	if got, want := te.Code, source.CodeServerError; got != want {
		t.Errorf("Code = %q, want %q", got, want)
	}
	if !te.Temporary() {
		t.Errorf("Temporary: got false, want true for a 503")
	}
	if got, want := emu.TokenRequests(), maxAttempts; got != want {
		t.Errorf("token requests = %d, want %d", got, want)
	}
	if _, err := src.Token(context.Background()); err != nil {
		t.Errorf("Token after the burst: %v", err)
	}
}

func TestResilienceRetryAfter(t *testing.T) {
	leakCheck(t)
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})

	t.Run("1 s then success", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cfg := standardConfig(emu.TokenURL)
			cfg.HTTPClient = memClient(emu.Config.Handler)
			src := newSource(t, cfg)
			before := emu.TokenRequests()
			emu.FailNext(1, http.StatusTooManyRequests, "1")

			start := time.Now()
			tok, err := src.Token(context.Background())
			elapsed := time.Since(start)
			if err != nil {
				t.Fatalf("Token: got error %v, want a token after the Retry-After", err)
			}
			if !tok.Valid() {
				t.Errorf("Token: got an invalid token")
			}
			if elapsed < time.Second || elapsed > time.Second+50*time.Millisecond {
				t.Errorf("elapsed: got %v, want the 1s Retry-After", elapsed)
			}
			if got, want := emu.TokenRequests()-before, 2; got != want {
				t.Errorf("token requests = %d, want %d", got, want)
			}
		})
	})

	// fetchTimeout is set past the Retry-After, so that the cap, not
	// the fetch's deadline, is what stops the wait.
	absurd := func(t *testing.T, client *http.Client, fetchTimeout time.Duration) {
		cfg := standardConfig(emu.TokenURL)
		cfg.HTTPClient = client
		cfg.FetchTimeout = fetchTimeout
		src := newSource(t, cfg)
		before := emu.TokenRequests()
		emu.FailNext(1, http.StatusTooManyRequests, "3600")

		start := time.Now()
		_, err := src.Token(context.Background())
		elapsed := time.Since(start)
		if elapsed >= time.Second {
			t.Errorf("elapsed: got %v, want under 1s (an absurd Retry-After is not waited)", elapsed)
		}
		if got, want := emu.TokenRequests()-before, 1; got != want {
			t.Errorf("token requests = %d, want %d", got, want)
		}
		te := tokenError(t, err)
		if got, want := te.RetryAfter, 3600*time.Second; got != want {
			t.Errorf("RetryAfter = %v, want %v", got, want)
		}
		if got, want := te.StatusCode, http.StatusTooManyRequests; got != want {
			t.Errorf("StatusCode = %d, want %d", got, want)
		}
		if got, want := te.Code, source.CodeTemporarilyUnavailable; got != want {
			t.Errorf("Code = %q, want %q", got, want)
		}
	}
	t.Run("absurd 3600 fails fast", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) { absurd(t, memClient(emu.Config.Handler), 2*time.Hour) })
	})
	t.Run("absurd 3600 fails fast over sockets", func(t *testing.T) { absurd(t, nil, 0) })
}

func TestResilienceHungEndpoint(t *testing.T) {
	leakCheck(t)
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
	cfg := standardConfig(emu.TokenURL)
	cfg.FetchTimeout = 500 * time.Millisecond
	src := newSource(t, cfg)
	emu.HangNext(100)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := src.Token(ctx)
	if elapsed := time.Since(start); elapsed > 450*time.Millisecond {
		t.Errorf("caller with a 300ms deadline: returned after %v", elapsed)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("caller with a 300ms deadline: got %v, want its context's error", err)
	}

	// A caller without a deadline: the fetch ends by itself at FetchTimeout.
	start = time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := src.Token(context.Background())
		done <- err
	}()
	select {
	case err := <-done:
		if elapsed := time.Since(start); elapsed > 1200*time.Millisecond {
			t.Errorf("caller without a deadline: returned after %v, want within about FetchTimeout", elapsed)
		}
		if err == nil {
			t.Fatalf("caller without a deadline: got a token from a hung endpoint")
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("caller without a deadline: got %v, want the fetch's timeout (context.DeadlineExceeded)", err)
		}
		if errors.Is(err, source.ErrBreakerOpen) {
			t.Errorf("caller without a deadline: got %v, want a timeout, not the breaker", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("caller without a deadline: still waiting after 5s; FetchTimeout does not end a hung fetch")
	}

	emu.HangNext(0)
	if _, err := src.Token(context.Background()); err != nil {
		t.Errorf("Token once the endpoint answers: %v", err)
	}
}

func TestResilienceConnectionReset(t *testing.T) {
	for _, n := range []int{1, maxAttempts - 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			leakCheck(t)
			emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
			src := newSource(t, standardConfig(emu.TokenURL))
			emu.ResetNext(n)
			tok, err := src.Token(context.Background())
			if err != nil {
				t.Fatalf("Token: got %v, want the reset retried transparently", err)
			}
			if !tok.Valid() {
				t.Errorf("Token: got an invalid token")
			}
			if got, want := emu.TokenRequests(), n+1; got != want {
				t.Errorf("token requests = %d, want %d", got, want)
			}
		})
	}
	t.Run("longer than the attempts", func(t *testing.T) {
		leakCheck(t)
		emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
		src := newSource(t, standardConfig(emu.TokenURL))
		emu.ResetNext(maxAttempts)
		_, err := src.Token(context.Background())
		var fe *source.FetchError
		if !errors.As(err, &fe) {
			t.Fatalf("Token: got %v (%T), want a *source.FetchError", err, err)
		}
		if got, want := emu.TokenRequests(), maxAttempts; got != want {
			t.Errorf("token requests = %d, want %d", got, want)
		}
	})
}

// rsBreakerCycle takes a source's breaker through closed, open, a failed
// probe, open again, a good probe and closed. fast bounds a refusal.
func rsBreakerCycle(t *testing.T, emu *sourcetest.Server, client *http.Client, openFor, fast time.Duration) {
	const failures = 3
	cfg := standardConfig(emu.TokenURL)
	cfg.HTTPClient = client
	var mu sync.Mutex
	var changes []string
	cfg.Breaker = retry.BreakerSettings{Failures: failures, OpenFor: openFor,
		OnStateChange: func(from, to string) {
			mu.Lock()
			defer mu.Unlock()
			changes = append(changes, fmt.Sprintf("%v->%v", from, to))
		}}
	src := newSource(t, cfg)
	ctx := context.Background()
	emu.FailNext(1<<20, http.StatusInternalServerError, "")
	base := emu.TokenRequests()

	for i := 1; i <= failures; i++ {
		_, err := src.Token(ctx)
		if errors.Is(err, source.ErrBreakerOpen) {
			t.Fatalf("fetch %d: got %v, want the endpoint's error", i, err)
		}
		if got, want := tokenError(t, err).StatusCode, 500; got != want {
			t.Errorf("fetch %d: status %d, want %d", i, got, want)
		}
		if got, want := emu.TokenRequests()-base, i*maxAttempts; got != want {
			t.Errorf("token requests after fetch %d: got %d, want %d", i, got, want)
		}
	}
	wantOpen := func(what string) {
		t.Helper()
		before := emu.TokenRequests()
		start := time.Now()
		_, err := src.Token(ctx)
		if elapsed := time.Since(start); elapsed > fast {
			t.Errorf("%s: the refusal took %v, want under %v", what, elapsed, fast)
		}
		if !errors.Is(err, source.ErrBreakerOpen) {
			t.Fatalf("%s: got %v, want an error matching source.ErrBreakerOpen", what, err)
		}
		var oe *source.BreakerOpenError
		if !errors.As(err, &oe) {
			t.Fatalf("%s: got %T, want a *source.BreakerOpenError", what, err)
		}
		if now := time.Now(); oe.Until.Before(now) || oe.Until.After(now.Add(openFor)) {
			t.Errorf("%s: OpenError.Until %v, want within OpenFor (%v) from now", what, oe.Until, openFor)
		}
		if got := emu.TokenRequests() - before; got != 0 {
			t.Errorf("%s: the open breaker let %d token requests through", what, got)
		}
	}
	wantOpen("open")

	// After OpenFor: one probe, which fails and re-opens the breaker.
	time.Sleep(openFor + openFor/10)
	before := emu.TokenRequests()
	_, err := src.Token(ctx)
	if errors.Is(err, source.ErrBreakerOpen) {
		t.Fatalf("probe: got %v, want it let through", err)
	}
	tokenError(t, err)
	if got, want := emu.TokenRequests()-before, maxAttempts; got != want {
		t.Errorf("probe: %d token requests, want %d (one fetch)", got, want)
	}
	wantOpen("re-opened after a failed probe")

	// After OpenFor again, with the endpoint healed: the probe closes it.
	time.Sleep(openFor + openFor/10)
	emu.FailNext(0, 0, "")
	before = emu.TokenRequests()
	tok, err := src.Token(ctx)
	if err != nil {
		t.Fatalf("probe on a healed endpoint: %v", err)
	}
	if got, want := emu.TokenRequests()-before, 1; got != want {
		t.Errorf("probe on a healed endpoint: %d token requests, want %d", got, want)
	}
	if again, err := src.Token(ctx); err != nil || again != tok {
		t.Errorf("Token after the probe: got %v, %v; want the cached token", again, err)
	}
	if !source.Invalidator(src).Invalidate(tok) {
		t.Fatalf("Invalidate: got false for the current token")
	}
	before = emu.TokenRequests()
	if _, err := src.Token(ctx); err != nil {
		t.Fatalf("Token after closing: %v", err)
	}
	if got, want := emu.TokenRequests()-before, 1; got != want {
		t.Errorf("Token after closing: %d token requests, want %d", got, want)
	}

	mu.Lock()
	defer mu.Unlock()
	want := []string{"closed->open", "open->half-open", "half-open->open", "open->half-open", "half-open->closed"}
	if strings.Join(changes, " ") != strings.Join(want, " ") {
		t.Errorf("OnStateChange calls = %q, want %q", changes, want)
	}
}

func TestResilienceBreakerCycle(t *testing.T) {
	leakCheck(t)
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
	t.Run("synctest", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rsBreakerCycle(t, emu, memClient(emu.Config.Handler), retry.DefaultOpenFor, time.Nanosecond)
		})
	})
	t.Run("real clock", func(t *testing.T) {
		rsBreakerCycle(t, emu, nil, 200*time.Millisecond, 100*time.Millisecond)
	})
}

// TestResilienceBreakerShareProbe checks that callers who arrive during
// the half-open probe wait for it and share its result.
func TestResilienceBreakerShareProbe(t *testing.T) {
	leakCheck(t)
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
	cfg := standardConfig(emu.TokenURL)
	cfg.Retry.MaxAttempts = 1
	cfg.Breaker = retry.BreakerSettings{Failures: 1, OpenFor: 100 * time.Millisecond}
	src := newSource(t, cfg)
	emu.FailNext(1, 500, "")
	if _, err := src.Token(context.Background()); err == nil {
		t.Fatal("Token: got a token, want the injected 500")
	}
	time.Sleep(150 * time.Millisecond)
	emu.SetLatency(100 * time.Millisecond)

	var wg sync.WaitGroup
	toks := make([]*source.Token, 20)
	errs := make([]error, len(toks))
	for i := range toks {
		wg.Go(func() { toks[i], errs[i] = src.Token(context.Background()) })
		if i == 0 {
			time.Sleep(20 * time.Millisecond) // the first caller starts the probe
		}
	}
	wg.Wait()
	for i := range toks {
		if errs[i] != nil {
			t.Errorf("caller %d: got %v, want the probe's token", i, errs[i])
		} else if toks[i] != toks[0] {
			t.Errorf("caller %d: got another token than the probe's", i)
		}
	}
	if got, want := emu.TokenRequests(), 2; got != want {
		t.Errorf("token requests = %d, want %d (the failure and one probe)", got, want)
	}
}

func TestResilienceBreakerNotTrippedBy4xx(t *testing.T) {
	tests := []struct {
		name       string
		fault      func(emu *sourcetest.Server)
		wantStatus int
		wantCode   string
	}{
		{"wrong client secret", func(emu *sourcetest.Server) {
			emu.SetCredentials(sourcetest.Options{ClientSecret: "another-client-secret"})
		}, 401, source.CodeInvalidClient},
		{"400", func(emu *sourcetest.Server) { emu.FailNext(1<<20, 400, "") }, 400, source.CodeInvalidRequest},
		{"403", func(emu *sourcetest.Server) { emu.FailNext(1<<20, 403, "") }, 403, "access_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
			tt.fault(emu)
			// On fake time: each call comes after the refusal hold (at most
			// a minute), so each reaches the endpoint.
			synctest.Test(t, func(t *testing.T) {
				cfg := standardConfig(emu.TokenURL)
				cfg.HTTPClient = memClient(emu.Config.Handler)
				cfg.Breaker = retry.BreakerSettings{Failures: 3, OpenFor: time.Minute}
				src := newSource(t, cfg)
				for i := 1; i <= 20; i++ {
					_, err := src.Token(context.Background())
					if errors.Is(err, source.ErrBreakerOpen) {
						t.Fatalf("call %d: got %v; a 4xx must not trip the breaker", i, err)
					}
					te := tokenError(t, err)
					if te.StatusCode != tt.wantStatus || te.Code != tt.wantCode {
						t.Errorf("call %d: got %d %q, want %d %q", i, te.StatusCode, te.Code, tt.wantStatus, tt.wantCode)
					}
					if got, want := emu.TokenRequests(), i; got != want {
						t.Fatalf("token requests after call %d: got %d, want %d (a 4xx is not retried)", i, got, want)
					}
					time.Sleep(time.Minute + time.Millisecond)
				}
			})
		})
	}
}

// TestResilienceRefusalHeld: after the endpoint refuses (a 4xx), the
// source does not ask it again for 1 s, doubling with each refusal in a
// row up to 1 min; callers meanwhile get the refusal at once. A token
// resets the hold. On fake time.
func TestResilienceRefusalHeld(t *testing.T) {
	leakCheck(t)
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
	emu.SetCredentials(sourcetest.Options{ClientSecret: "another-client-secret"})
	synctest.Test(t, func(t *testing.T) {
		cfg := standardConfig(emu.TokenURL)
		cfg.HTTPClient = memClient(emu.Config.Handler)
		src := newSource(t, cfg)
		start := time.Now()
		var sent []time.Duration // when each token request went, from start
		for time.Since(start) < 3*time.Minute {
			before := emu.TokenRequests()
			_, err := src.Token(context.Background())
			if te := tokenError(t, err); te.Code != source.CodeInvalidClient {
				t.Fatalf("Token at %v: %v, want invalid_client", time.Since(start), err)
			}
			if emu.TokenRequests() > before {
				sent = append(sent, time.Since(start))
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Holds of 1, 2, 4, 8, 16, 32, 60, 60 s: requests at 0, 1, 3, 7, 15,
		// 31, 63, 123 s (each rounded up to the next 100 ms call).
		want := []int{0, 1, 3, 7, 15, 31, 63, 123} // s
		if len(sent) != len(want) {
			t.Fatalf("%d token requests in 3 min (the first ones at %v), want %d, at about %v s", len(sent), sent[:min(len(sent), 8)], len(want), want)
		}
		for i, at := range sent {
			lo := time.Duration(want[i]) * time.Second
			if hi := lo + time.Duration(i+1)*100*time.Millisecond; at < lo || at > hi {
				t.Errorf("token request %d at %v, want between %v and %v", i+1, at, lo, hi)
			}
		}

		// Credentials fixed at the provider: the next request after the
		// hold gets a token, and the hold is gone.
		emu.SetCredentials(sourcetest.Options{ClientSecret: sourcetest.DefaultClientSecret})
		time.Sleep(time.Minute)
		tok, err := src.Token(context.Background())
		if err != nil {
			t.Fatalf("Token after the hold: %v", err)
		}
		if !src.Invalidate(tok) {
			t.Fatal("Invalidate: the current token was not dropped")
		}
		emu.SetCredentials(sourcetest.Options{ClientSecret: "another-client-secret"})
		before := emu.TokenRequests()
		_, _ = src.Token(context.Background())
		time.Sleep(1100 * time.Millisecond)
		_, _ = src.Token(context.Background())
		if got := emu.TokenRequests() - before; got != 2 {
			t.Errorf("token requests 1.1 s apart after a token = %d, want 2: the hold starts again at 1 s", got)
		}
	})
}

// TestResilienceStaleButValid: while background renewals fail, the
// current token is served until it nearly expires, never after; then
// callers get a fast, typed error.
func TestResilienceStaleButValid(t *testing.T) {
	leakCheck(t)
	const life = 2 * time.Second
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{Lifetime: life})
	synctest.Test(t, func(t *testing.T) {
		const failures = 2
		cfg := standardConfig(emu.TokenURL)
		cfg.HTTPClient = memClient(emu.Config.Handler)
		cfg.RefreshAhead = 1500 * time.Millisecond
		cfg.Breaker = retry.BreakerSettings{Failures: failures}
		src := newSource(t, cfg)
		ctx := context.Background()

		tok, err := src.Token(ctx)
		if err != nil {
			t.Fatalf("first Token: %v", err)
		}
		if got, want := tok.Expiry, time.Now().Add(life); !got.Equal(want) {
			t.Fatalf("Expiry = %v, want %v", got, want)
		}
		emu.FailNext(1<<20, 500, "")

		var lastServed, firstErr time.Time
		for now := time.Now(); now.Before(tok.Expiry.Add(500 * time.Millisecond)); now = time.Now() {
			got, err := src.Token(ctx)
			if time.Since(now) != 0 {
				t.Fatalf("at %v before expiry: Token waited %v", tok.Expiry.Sub(now), time.Since(now))
			}
			switch {
			case err == nil:
				if !got.Expiry.After(time.Now()) {
					t.Fatalf("at %v before expiry: got a token that expired at %v", tok.Expiry.Sub(now), got.Expiry)
				}
				if got != tok {
					t.Fatalf("at %v before expiry: got another token; every renewal failed", tok.Expiry.Sub(now))
				}
				if !firstErr.IsZero() {
					t.Fatalf("at %v before expiry: got the token again after an error at %v", tok.Expiry.Sub(now), tok.Expiry.Sub(firstErr))
				}
				lastServed = now
			default:
				if firstErr.IsZero() {
					firstErr = now
				}
				if !errors.Is(err, source.ErrBreakerOpen) {
					t.Fatalf("at %v before expiry: got %v, want the open breaker's error", tok.Expiry.Sub(now), err)
				}
			}
			time.Sleep(10 * time.Millisecond)
		}

		if lastServed.IsZero() || tok.Expiry.Sub(lastServed) > 250*time.Millisecond {
			t.Errorf("the token was served until %v before expiry, want until about 200ms before", tok.Expiry.Sub(lastServed))
		}
		if firstErr.IsZero() || firstErr.After(tok.Expiry) {
			t.Errorf("first error: at %v before expiry, want one by expiry", tok.Expiry.Sub(firstErr))
		}
		// Renewals were tried, each with its retries, until the breaker opened.
		if got, want := emu.TokenRequests(), 1+failures*maxAttempts; got != want {
			t.Errorf("token requests = %d, want %d (the first, then %d failed renewals of %d attempts)", got, want, failures, maxAttempts)
		}
	})
}

// TestResilienceOutage: many callers during an outage; the endpoint never
// sees two requests at once, and the callers of one fetch share its error.
func TestResilienceOutage(t *testing.T) {
	leakCheck(t)
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
	emu.SetLatency(30 * time.Millisecond)
	emu.FailNext(1<<20, http.StatusInternalServerError, "")

	var inFlight, maxInFlight atomic.Int32
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	cfg := standardConfig(emu.TokenURL)
	cfg.Breaker = retry.BreakerSettings{Failures: 1000}
	cfg.HTTPClient = &http.Client{Transport: roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := maxInFlight.Load(); n > m && !maxInFlight.CompareAndSwap(m, n); m = maxInFlight.Load() {
		}
		return tr.RoundTrip(r)
	})}
	src := newSource(t, cfg)

	const callers, waves = 200, 3
	errs := make([]error, 0, callers*waves)
	var mu sync.Mutex
	for range waves {
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				<-start
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				tok, err := src.Token(ctx)
				if tok != nil {
					t.Errorf("Token: got a token during an outage")
				}
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
	}

	if got, want := maxInFlight.Load(), int32(1); got != want {
		t.Errorf("token requests in flight at once: got at most %d, want %d", got, want)
	}
	requests := emu.TokenRequests()
	if requests%maxAttempts != 0 {
		t.Errorf("token requests: got %d, want a multiple of %d attempts", requests, maxAttempts)
	}
	flights := requests / maxAttempts
	if flights < waves || flights > 2*waves {
		t.Errorf("fetches: got %d for %d waves of %d callers, want about one a wave", flights, waves, callers)
	}
	distinct := map[error]int{}
	for i, err := range errs {
		if err == nil {
			t.Fatalf("caller %d: got no error during an outage", i)
		}
		if te := tokenError(t, err); te.StatusCode != 500 {
			t.Errorf("caller %d: status %d, want 500", i, te.StatusCode)
		}
		distinct[err]++
	}
	if len(distinct) > flights {
		t.Errorf("distinct errors: got %d for %d fetches, want the callers of a fetch to share its error", len(distinct), flights)
	}
}

// TestResilienceOTPNotRetried: a one-time password is never sent twice,
// whatever the failure.
func TestResilienceOTPNotRetried(t *testing.T) {
	tests := []struct {
		name  string
		fault func(emu *sourcetest.Server)
	}{
		{"503", func(emu *sourcetest.Server) { emu.FailNext(1, 503, "") }},
		{"500", func(emu *sourcetest.Server) { emu.FailNext(1, 500, "") }},
		{"429 Retry-After 1", func(emu *sourcetest.Server) { emu.FailNext(1, 429, "1") }},
		{"connection reset", func(emu *sourcetest.Server) { emu.ResetNext(1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			emu := newEmulator(t, sourcetest.NewVaultID, sourcetest.Options{})
			var calls atomic.Int32
			var mu sync.Mutex
			var otps []string
			src := newSource(t, source.Config{
				Provider:     source.VaultID,
				TokenURL:     emu.TokenURL,
				ClientID:     sourcetest.DefaultClientID,
				ClientSecret: sourcetest.DefaultClientSecret,
				Username:     sourcetest.DefaultVaultIDUsername,
				Cloud:        "cloud-1",
				Retry:        fastRetry,
				PasswordFunc: func(context.Context) (string, error) {
					n := calls.Add(1)
					otp := fmt.Sprintf("%06d", 100000+n)
					mu.Lock()
					otps = append(otps, otp)
					mu.Unlock()
					return otp, nil
				},
			})
			tt.fault(emu)

			start := time.Now()
			_, err := src.Token(context.Background())
			elapsed := time.Since(start)
			if got, want := emu.TokenRequests(), 1; got != want {
				t.Errorf("token requests = %d, want %d (an OTP is sent once)", got, want)
			}
			if got, want := calls.Load(), int32(1); got != want {
				t.Errorf("PasswordFunc calls = %d, want %d", got, want)
			}
			if err == nil {
				t.Fatalf("Token: got a token, want the injected failure")
			}
			if elapsed > 500*time.Millisecond {
				t.Errorf("Token took %v; nothing should have been waited for", elapsed)
			}

			tok, err := src.Token(context.Background())
			if err != nil {
				t.Fatalf("Token with a fresh OTP: %v", err)
			}
			if !strings.HasPrefix(tok.HeaderValue(), "VCSchema ") {
				t.Errorf("HeaderValue: got a value without the VCSchema scheme")
			}
			if got, want := emu.TokenRequests(), 2; got != want {
				t.Errorf("token requests = %d, want %d", got, want)
			}
			if got, want := calls.Load(), int32(2); got != want {
				t.Errorf("PasswordFunc calls = %d, want %d", got, want)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(otps) == 2 && otps[0] == otps[1] {
				t.Errorf("the same OTP was used twice")
			}
		})
	}
}

// TestResilienceRefreshNotRetried: a refresh token that may have reached
// the server is not sent again, neither by a retry nor by the next fetch
// (which uses the grant instead); a 429 or 503 (the server did not act) is
// retried.
func TestResilienceRefreshNotRetried(t *testing.T) {
	providers := []struct {
		name string
		emu  func() *sourcetest.Server
		cfg  func(emu *sourcetest.Server) source.Config
	}{
		{"standard", func() *sourcetest.Server {
			return sourcetest.NewStandard(sourcetest.Options{RefreshTokens: true})
		}, func(emu *sourcetest.Server) source.Config {
			cfg := standardConfig(emu.TokenURL)
			cfg.GrantType = source.Password
			cfg.Username, cfg.Password = sourcetest.DefaultUsername, sourcetest.DefaultPassword
			return cfg
		}},
		{"gestaoplus", func() *sourcetest.Server {
			return sourcetest.NewGestaoPlus(sourcetest.Options{})
		}, func(emu *sourcetest.Server) source.Config {
			return source.Config{
				Provider: source.GestaoPlus, TokenURL: emu.TokenURL, Retry: fastRetry,
				Username: sourcetest.DefaultUsername, Password: sourcetest.DefaultPassword,
			}
		}},
	}
	faults := []struct {
		name         string
		fault        func(emu *sourcetest.Server)
		wantRefresh  int // refresh requests for the Token call
		wantErr      bool
		wantFetchErr bool // a *source.FetchError rather than a *source.Error
	}{
		{"500 is not retried", func(emu *sourcetest.Server) { emu.FailNext(1, 500, "") }, 1, true, false},
		{"502 is not retried", func(emu *sourcetest.Server) { emu.FailNext(1, 502, "") }, 1, true, false},
		{"504 is not retried", func(emu *sourcetest.Server) { emu.FailNext(1, 504, "") }, 1, true, false},
		{"reset is not retried", func(emu *sourcetest.Server) { emu.ResetNext(1) }, 1, true, true},
		{"503 is retried", func(emu *sourcetest.Server) { emu.FailNext(1, 503, "") }, 2, false, false},
		{"429 is retried", func(emu *sourcetest.Server) { emu.FailNext(1, 429, "") }, 2, false, false},
	}
	for _, p := range providers {
		for _, f := range faults {
			t.Run(p.name+"/"+f.name, func(t *testing.T) {
				leakCheck(t)
				emu := p.emu()
				t.Cleanup(emu.Close)
				src := newSource(t, p.cfg(emu))
				ctx := context.Background()
				tok, err := src.Token(ctx)
				if err != nil {
					t.Fatalf("first Token: %v", err)
				}
				if tok.RefreshToken == "" {
					t.Fatalf("first Token: no refresh token issued")
				}
				if !source.Invalidator(src).Invalidate(tok) {
					t.Fatalf("Invalidate: got false for the current token")
				}
				f.fault(emu)

				_, err = src.Token(ctx)
				if got, want := emu.Requests("refresh_token"), f.wantRefresh; got != want {
					t.Errorf("refresh_token requests = %d, want %d", got, want)
				}
				if got, want := emu.Requests("password"), 1; got != want {
					t.Errorf("password requests = %d, want %d (no fallback when the endpoint fails)", got, want)
				}
				switch {
				case !f.wantErr && err != nil:
					t.Fatalf("Token: got %v, want a refreshed token", err)
				case f.wantErr && err == nil:
					t.Fatalf("Token: got a token, want the failure")
				case f.wantFetchErr:
					var fe *source.FetchError
					if !errors.As(err, &fe) {
						t.Errorf("Token: got %v (%T), want a *source.FetchError", err, err)
					}
				case f.wantErr:
					if te := tokenError(t, err); !te.Temporary() {
						t.Errorf("Token: got %v, want a temporary error", err)
					}
				}
				if !f.wantErr {
					return
				}
				// After a 5xx or a reset the server may have rotated the
				// refresh token: it is never sent again, and the next call
				// uses the password grant.
				if _, err := src.Token(ctx); err != nil {
					t.Fatalf("Token after the failure: %v", err)
				}
				wantRefresh, wantPassword := f.wantRefresh, 2
				if got := emu.Requests("refresh_token"); got != wantRefresh {
					t.Errorf("refresh_token requests after recovery = %d, want %d", got, wantRefresh)
				}
				if got := emu.Requests("password"); got != wantPassword {
					t.Errorf("password requests after recovery = %d, want %d", got, wantPassword)
				}
			})
		}
	}
}

// TestResilienceLifetimeFromAnsweredAttempt: a token's lifetime counts
// from the start of the attempt that got the reply, not from the first
// attempt: after a 429 with Retry-After: 1, a token issued with expires_in
// 3 has 3 s left, and the store records when that attempt started.
func TestResilienceLifetimeFromAnsweredAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		var answered time.Time
		client := &http.Client{Transport: roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			rec := httptest.NewRecorder()
			rec.Header().Set("Content-Type", "application/json")
			if n.Add(1) == 1 {
				rec.Header().Set("Retry-After", "1")
				rec.WriteHeader(http.StatusTooManyRequests)
				fmt.Fprint(rec, `{"error":"slow_down"}`)
				return rec.Result(), nil
			}
			answered = time.Now()
			time.Sleep(100 * time.Millisecond) // the endpoint's latency
			fmt.Fprint(rec, `{"access_token":"tok","token_type":"bearer","expires_in":3}`)
			return rec.Result(), nil
		})}
		store := &rsSavingStore{Store: source.NewMemoryStore()}
		src := newSource(t, source.Config{TokenURL: "https://auth.example/token", ClientID: "id", ClientSecret: "secret",
			HTTPClient: client, Store: store})
		start := time.Now()
		tok, err := src.Token(context.Background())
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		if got, want := answered.Sub(start), time.Second; got != want {
			t.Fatalf("second attempt after %v, want %v", got, want)
		}
		if got, want := tok.Expiry, answered.Add(3*time.Second); !got.Equal(want) {
			t.Errorf("Expiry: got %v after the answered attempt, want 3s", got.Sub(answered))
		}
		synctest.Wait() // the store is written after the token is handed out
		if got := store.savedTokens(); len(got) != 1 || !got[0].Obtained.Equal(answered) {
			t.Errorf("stored: got %v, want one token obtained when the answered attempt started", got)
		}
	})
}

// rsSavingStore records what is saved.
type rsSavingStore struct {
	source.Store
	mu    sync.Mutex
	saved []source.StoredToken
}

func (s *rsSavingStore) Save(ctx context.Context, key string, t source.StoredToken) error {
	s.mu.Lock()
	s.saved = append(s.saved, t)
	s.mu.Unlock()
	return s.Store.Save(ctx, key, t)
}

func (s *rsSavingStore) savedTokens() []source.StoredToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.saved)
}

// TestResilienceExpiredOnArrival: an endpoint that takes 1.2 s to issue a
// 1 s token: Token returns no expired token but an *ExpiredError that says
// so, and the Transport-facing contract "valid now, or an error" holds for
// every caller that waited on the fetch.
func TestResilienceExpiredOnArrival(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := &http.Client{Transport: roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			time.Sleep(1200 * time.Millisecond)
			rec := httptest.NewRecorder()
			rec.Header().Set("Content-Type", "application/json")
			fmt.Fprint(rec, `{"access_token":"tok-late","token_type":"bearer","expires_in":1}`)
			return rec.Result(), nil
		})}
		src := newSource(t, source.Config{TokenURL: "https://auth.example/token", ClientID: "id", ClientSecret: "secret",
			HTTPClient: client})
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				tok, err := src.Token(context.Background())
				if err == nil {
					t.Errorf("Token: got %v (valid now: %v), want an error", tok, tok.Valid())
					return
				}
				var ee *source.ExpiredError
				if !errors.As(err, &ee) {
					t.Fatalf("Token: got %v (%T), want a *source.ExpiredError", err, err)
				}
				if ee.Lifetime != time.Second || ee.Took != 1200*time.Millisecond {
					t.Errorf("ExpiredError: got lifetime %v, took %v; want 1s, 1.2s", ee.Lifetime, ee.Took)
				}
				for _, want := range []string{"expired before it arrived", "lifetime"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				if strings.Contains(err.Error(), "tok-late") {
					t.Errorf("error %q shows the token", err)
				}
			})
		}
		wg.Wait()
	})
}

// A password from PasswordFunc may be one-time: the password grant is not
// retried with it, whatever the provider.
func TestPasswordFuncNotRetried(t *testing.T) {
	leakCheck(t)
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
	emu.FailNext(2, http.StatusServiceUnavailable, "")
	var asked atomic.Int32
	src := storetest.NewSource(t, emu, nil, func(c *source.Config) {
		c.GrantType, c.Username = source.Password, sourcetest.DefaultUsername
		c.PasswordFunc = func(context.Context) (string, error) { asked.Add(1); return sourcetest.DefaultPassword, nil }
	})
	if _, err := src.Token(context.Background()); err == nil {
		t.Fatal("Token: got a token, want the 503")
	}
	if got, want := emu.Requests("password"), 1; got != want {
		t.Errorf("password requests = %d, want %d", got, want)
	}
	if got, want := asked.Load(), int32(1); got != want {
		t.Errorf("PasswordFunc calls = %d, want %d", got, want)
	}
}

// A failing user hook says nothing about the endpoint: it never opens the
// breaker, and a 4xx never does either, whatever its body says.
func TestBreakerIgnoresHooksAnd4xx(t *testing.T) {
	leakCheck(t)
	t.Run("empty one-time password", func(t *testing.T) {
		emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
		src := storetest.NewSource(t, emu, nil, func(c *source.Config) {
			c.GrantType, c.Username = source.Password, sourcetest.DefaultUsername
			c.PasswordFunc = func(context.Context) (string, error) { return "", nil }
			c.Breaker = retry.BreakerSettings{Failures: 2, OpenFor: time.Minute}
		})
		for range 5 {
			_, err := src.Token(context.Background())
			var he *source.HookError
			if !errors.As(err, &he) {
				t.Fatalf("Token: %v, want a *source.HookError", err)
			}
		}
	})
	t.Run("400 temporarily_unavailable", func(t *testing.T) {
		emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
		synctest.Test(t, func(t *testing.T) { // on fake time, past each refusal hold
			src := storetest.NewSource(t, emu, nil, func(c *source.Config) {
				c.HTTPClient = memClient(emu.Config.Handler)
				c.Breaker = retry.BreakerSettings{Failures: 2, OpenFor: time.Minute}
				c.ClientSecret = "wrong"
			})
			for i := range 5 {
				_, err := src.Token(context.Background())
				if errors.Is(err, source.ErrBreakerOpen) {
					t.Fatalf("call %d: the breaker opened on a 4xx", i)
				}
				time.Sleep(time.Minute + time.Millisecond)
			}
		})
		te := &source.Error{StatusCode: 400, Code: source.CodeTemporarilyUnavailable}
		if te.Temporary() {
			t.Error("a 400 with temporarily_unavailable is Temporary")
		}
		if got, want := emu.TokenRequests(), 5; got != want {
			t.Errorf("token requests = %d, want %d", got, want)
		}
	})
}
