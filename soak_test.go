package tokenhttp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/retry"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// The soak: dozens of goroutines call an API through a Transport over a
// source whose endpoint (a sourcetest emulator with 1 s tokens) suffers
// revocations, 5xx bursts, slow replies, resets and a full outage on a
// fixed schedule, then heals. Once it is healthy no call may fail; while
// it is not, the only failures allowed are the ones the fault explains;
// token fetches stay near one per lifetime; and nothing (goroutines, heap)
// is left behind.

// Soak settings. The run lasts soakChaos+soakTail, 19 s.
const (
	soakLifetime = time.Second      // the emulator's token lifetime
	soakCallers  = 32               // goroutines calling the API
	soakChaos    = 14 * time.Second // faults are injected during this
	soakTail     = 5 * time.Second  // then none: soakSettle+soakRejectHold, then the strict tail
	// soakSettle is how long a fault's effects may outlive it: a fetch in
	// flight finishing its retries, the breaker's OpenFor and probe. A
	// failure is explained by a fault active (or settling) when the call
	// ran; faults are spaced by at least soakSettle, so each failure has
	// one fault to blame.
	soakSettle = 700 * time.Millisecond
	// soakRejectHold is how much longer a 401 may outlive its fault. When
	// the token that replaced a rejected one is rejected too (RevokeAll
	// racing a renewal in flight), the source takes the API for one that
	// rejects every token and keeps that token for its reject backoff, 1 s
	// after it was obtained (source.CachedSource.Invalidate): until then
	// every call that carries it gets the API's 401.
	soakRejectHold  = time.Second
	soakCallTimeout = 5 * time.Second
	soakOpenFor     = 300 * time.Millisecond
	soakSeed1       = 0x70c3_11e7 // PCG seeds: the schedule is the same on every run
	soakSeed2       = 0x5eed_0010
)

// Fault kinds.
const (
	soakRevoke    = "revoke"     // Revoke the newest token
	soakRevokeAll = "revoke-all" // RevokeAll
	soakFail      = "5xx"        // FailNext(2..3, 503), held then cleared
	soakSlow      = "slow"       // SetLatency(100..300ms), held then cleared
	soakReset     = "reset"      // ResetNext(1..2), held then cleared
	// soakRevokeFail revokes the newest token during a 5xx burst that
	// outlasts a fetch's attempts: callers holding the token get a 401
	// whose refresh fails.
	soakRevokeFail = "revoke+5xx"
	// soakOutage revokes every token and fails every token request for a
	// second: fetches fail until the breaker opens.
	soakOutage = "outage"
)

// soakExplains says which failures a fault explains. A single revocation
// or slow replies explain none: the Transport's retry after a 401 and the
// cache must absorb them. A 401 reaches the caller only when the refresh
// it triggers fails (an endpoint fault) or brings a token that was revoked
// too (RevokeAll racing a renewal in flight); then the source holds that
// token, and the 401s go on, for up to soakRejectHold more.
var soakExplains = map[string][]string{
	kindTokenError: {soakFail, soakReset, soakRevokeFail, soakOutage},
	kindFetchError: {soakFail, soakReset, soakRevokeFail, soakOutage},
	kindBreaker:    {soakOutage},
	kind401:        {soakRevokeAll, soakFail, soakReset, soakRevokeFail, soakOutage},
}

// soakStep is one fault of the schedule.
type soakStep struct {
	at      time.Duration // from the start of the run
	kind    string
	n       int           // FailNext / ResetNext count
	latency time.Duration // SetLatency
	hold    time.Duration // how long the fault stays before it is cleared
}

// soakWindow is when a fault was active, as it happened.
type soakWindow struct {
	kind       string
	start, end time.Time
	latency    time.Duration // soakSlow: the delay
	consumed   int           // the injected failures that token requests met
	failures   int           // calls it explained
}

// soakFailure is one call that did not get a 200.
type soakFailure struct {
	start, end time.Time
	kind       string
	detail     string
}

// Failure kinds of a call.
const (
	kindTokenError = "token endpoint refused (*source.Error)"
	kindFetchError = "token endpoint unreachable (*source.FetchError)"
	kindBreaker    = "breaker open (ErrBreakerOpen)"
	kind401        = "401 reached the caller"
	kindOther      = "other error"
	kindStatus     = "unexpected status"
)

// soakSchedule builds the fault schedule from a seeded PCG: the kinds in
// shuffled rounds (so each occurs), each fault followed by a quiet gap of
// at least soakSettle, until soakChaos.
func soakSchedule() []soakStep {
	rng := rand.New(rand.NewPCG(soakSeed1, soakSeed2))
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo)+1)) }
	kinds := []string{soakRevoke, soakRevokeAll, soakFail, soakSlow, soakReset, soakRevokeFail, soakOutage}
	var steps []soakStep
	at := 700 * time.Millisecond // let the first token land
	for round := 0; ; round++ {
		rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
		for _, kind := range kinds {
			s := soakStep{at: at, kind: kind}
			switch kind {
			case soakFail:
				s.n, s.hold = 2+rng.IntN(2), 300*time.Millisecond
			case soakReset:
				s.n, s.hold = 1+rng.IntN(2), 300*time.Millisecond
			case soakRevokeFail:
				s.n, s.hold = 3, 300*time.Millisecond
			case soakOutage:
				s.n, s.hold = 1000, time.Second
			case soakSlow:
				s.latency, s.hold = between(100*time.Millisecond, 300*time.Millisecond), between(500*time.Millisecond, 1500*time.Millisecond)
			}
			if s.at+s.hold > soakChaos {
				return steps
			}
			steps = append(steps, s)
			at += s.hold + between(soakSettle+100*time.Millisecond, soakSettle+500*time.Millisecond)
		}
	}
}

// soakFetchBound is the most tokens the run can explain being issued,
// and the most token requests, from the faults as they happened.
//
// A token fetched at t is renewed at t + lifetime - margin. The automatic
// margin is a tenth of the lifetime plus a jitter of up to a tenth of
// that (110 ms at most here), raised to guard (lifetime/20) +
// 2×(the fetch's duration), and capped at half the lifetime. So in quiet
// times a token is issued every ≥ 700 ms (allowing fetches of up to
// 100 ms on a loaded machine: a 250 ms margin, with room to spare), and
// while replies are slowed by 100 ms or more, and for one lifetime after,
// every ≥ 500 ms (the cap). On top,
// every other fault may cost one token: a revocation the token that
// replaces the rejected one, a burst of failures the shorter next cycle
// after a slow, retried fetch. Then the first token, and a little slack
// (a RevokeAll racing a renewal in flight costs one more).
//
// Token requests are the tokens issued plus the injected failures the
// requests met, which are counted as they happened.
func soakFetchBound(windows []soakWindow, total time.Duration) (issued, requests int, explain string) {
	const (
		quietCycle = 700 * time.Millisecond
		slowCycle  = soakLifetime / 2
		slack      = 3
	)
	var slow time.Duration
	faults, failed := 0, 0
	for _, w := range windows {
		if w.kind == soakSlow {
			slow += w.end.Sub(w.start) + soakLifetime
		} else {
			faults++
		}
		failed += w.consumed
	}
	slow = min(slow, total)
	quiet := total - slow
	ceilDiv := func(a, b time.Duration) int { return int((a + b - 1) / b) }
	renewals := ceilDiv(quiet, quietCycle) + ceilDiv(slow, slowCycle)
	issued = 1 + renewals + faults + slack
	requests = issued + failed
	explain = fmt.Sprintf("1 first + %d renewals (%v quiet at ≥%v, %v slow at ≥%v) + %d faults + %d slack; plus %d injected failures met",
		renewals, quiet.Round(time.Millisecond), quietCycle, slow.Round(time.Millisecond), slowCycle, faults, slack, failed)
	return issued, requests, explain
}

// soakHeap is the live heap after a full collection.
func soakHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// soakClassify says what kind of failure a call's outcome is; "" is a
// success.
func soakClassify(resp *http.Response, err error) (kind, detail string) {
	if err != nil {
		var te *source.Error
		var fe *source.FetchError
		switch {
		case errors.Is(err, source.ErrBreakerOpen):
			return kindBreaker, ""
		case errors.As(err, &te):
			return kindTokenError, te.Code
		case errors.As(err, &fe):
			return kindFetchError, ""
		}
		return kindOther, err.Error()
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return "", ""
	case http.StatusUnauthorized:
		return kind401, resp.Header.Get("Www-Authenticate")
	}
	return kindStatus, resp.Status
}

// TestSoakUnderFaults: see the top of the file.
func TestSoakUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: skipped with -short")
	}
	leakOpt := goleak.IgnoreCurrent()
	goroutinesBefore := runtime.NumGoroutine()
	heapBefore := soakHeap()

	emu := newEmulator(t, sourcetest.Options{Lifetime: soakLifetime})
	tokenTr, apiTr := &http.Transport{}, &http.Transport{}
	src := newSource(t, emu, func(c *source.Config) {
		c.HTTPClient = &http.Client{Transport: tokenTr}
		c.FetchTimeout = 2 * time.Second
		c.Retry = retry.Policy{MinWait: 20 * time.Millisecond, MaxWait: 100 * time.Millisecond}
		c.Breaker = retry.BreakerSettings{Failures: 5, OpenFor: soakOpenFor}
	})
	// Shut down before the leak and heap checks; the cleanups close again.
	shutdown := sync.OnceFunc(func() {
		src.Close()
		emu.Close()
		tokenTr.CloseIdleConnections()
		apiTr.CloseIdleConnections()
	})
	t.Cleanup(shutdown)
	client := tokenhttp.NewClient(src, tokenhttp.WithBase(apiTr))

	steps := soakSchedule()
	start := time.Now()
	chaosEnd := start.Add(soakChaos)
	strictStart := chaosEnd.Add(soakSettle + soakRejectHold)
	end := chaosEnd.Add(soakTail)

	// The chaos goroutine runs the schedule.
	var (
		windows     []soakWindow // written by chaos, read after it ends
		revocations int
		chaosDone   = make(chan struct{})
	)
	go func() {
		defer close(chaosDone)
		sleepUntil := func(at time.Time) { time.Sleep(time.Until(at)) }
		for _, s := range steps {
			sleepUntil(start.Add(s.at))
			w := soakWindow{kind: s.kind, start: time.Now(), latency: s.latency}
			before := emu.TokenRequests()
			switch s.kind {
			case soakRevoke:
				if issued := emu.IssuedTokens(); len(issued) > 0 {
					emu.Revoke(issued[len(issued)-1])
				}
				revocations++
			case soakRevokeAll:
				emu.RevokeAll()
				revocations++
			case soakFail:
				emu.FailNext(s.n, http.StatusServiceUnavailable, "")
			case soakRevokeFail:
				emu.FailNext(s.n, http.StatusServiceUnavailable, "")
				if issued := emu.IssuedTokens(); len(issued) > 0 {
					emu.Revoke(issued[len(issued)-1])
				}
				revocations++
			case soakOutage:
				emu.FailNext(s.n, http.StatusServiceUnavailable, "")
				emu.RevokeAll()
				revocations++
			case soakReset:
				emu.ResetNext(s.n)
			case soakSlow:
				emu.SetLatency(s.latency)
			}
			sleepUntil(w.start.Add(s.hold))
			// Clear whatever was not consumed, so no fault outlives its window.
			emu.FailNext(0, http.StatusServiceUnavailable, "")
			emu.ResetNext(0)
			emu.SetLatency(0)
			w.end = time.Now()
			if s.n > 0 {
				w.consumed = min(s.n, emu.TokenRequests()-before)
			}
			windows = append(windows, w)
		}
	}()

	// The callers.
	var (
		calls    atomic.Int64
		mu       sync.Mutex
		failures []soakFailure
		wg       sync.WaitGroup
	)
	for range soakCallers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []soakFailure
			for time.Now().Before(end) {
				ctx, cancel := context.WithTimeout(context.Background(), soakCallTimeout)
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, emu.ResourceURL, nil)
				began := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				cancel()
				calls.Add(1)
				if kind, detail := soakClassify(resp, err); kind != "" {
					mine = append(mine, soakFailure{start: began, end: time.Now(), kind: kind, detail: detail})
				}
			}
			mu.Lock()
			failures = append(failures, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	<-chaosDone
	elapsed := time.Since(start)

	tokenRequests, issued := emu.TokenRequests(), emu.Issued()
	apiRequests := emu.ResourceRequests()
	shutdown()

	// Judge each failure: it must be of a kind that a fault active (or
	// settling) while the call ran explains (soakExplains), and not in the
	// healthy tail.
	explained := func(f soakFailure) bool {
		settle := soakSettle
		if f.kind == kind401 {
			settle += soakRejectHold
		}
		for i := len(windows) - 1; i >= 0; i-- { // the latest fault first
			w := &windows[i]
			if slices.Contains(soakExplains[f.kind], w.kind) && f.start.Before(w.end.Add(settle)) && f.end.After(w.start) {
				w.failures++
				return true
			}
		}
		return false
	}
	byKind := map[string]int{}
	var tailFailures, unexplained int
	for _, f := range failures {
		byKind[f.kind]++
		off := f.start.Sub(start).Round(time.Millisecond)
		if !f.start.Before(strictStart) {
			tailFailures++
			if tailFailures <= 5 {
				t.Errorf("healthy tail: a call at +%v failed: %s %s", off, f.kind, f.detail)
			}
			continue
		}
		if explained(f) {
			continue
		}
		unexplained++
		if unexplained <= 5 {
			t.Errorf("a call at +%v failed with no fault active to explain it: %s %s", off, f.kind, f.detail)
		}
	}
	if tailFailures > 0 {
		t.Errorf("failed calls in the healthy tail (%v from +%v) = %d, want 0", end.Sub(strictStart).Round(time.Millisecond),
			strictStart.Sub(start).Round(time.Millisecond), tailFailures)
	}
	if unexplained > 0 {
		t.Errorf("got %d failures not explained by an active fault, want 0", unexplained)
	}

	issuedBound, requestBound, explain := soakFetchBound(windows, elapsed)
	if issued > issuedBound {
		t.Errorf("tokens issued = %d, want at most %d (%s)", issued, issuedBound, explain)
	}
	if tokenRequests > requestBound {
		t.Errorf("token requests = %d, want at most %d (%s)", tokenRequests, requestBound, explain)
	}
	if calls.Load() < int64(soakCallers) {
		t.Errorf("calls = %d, want at least one per caller", calls.Load())
	}

	// Nothing left behind. The failure records are the test's own: drop
	// them before the heap is measured.
	nFailures := len(failures)
	failures = nil
	goleak.VerifyNone(t, leakOpt)
	goroutinesAfter := runtime.NumGoroutine()
	heapAfter := soakHeap()
	const heapSlack = 2 << 20
	growth := int64(heapAfter) - int64(heapBefore)
	t.Logf("goroutines: %d at the start, %d at the end", goroutinesBefore, goroutinesAfter)
	t.Logf("live heap: %d KiB at the start, %d KiB at the end (%+d KiB)", heapBefore>>10, heapAfter>>10, growth>>10)
	if growth > heapSlack {
		t.Errorf("live heap grew by %d KiB over the soak, want under %d KiB", growth>>10, heapSlack>>10)
	}

	// The summary.
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var fb strings.Builder
	for _, k := range kinds {
		fmt.Fprintf(&fb, "\n    %-50s %d", k, byKind[k])
	}
	var wb strings.Builder
	for _, w := range windows {
		fmt.Fprintf(&wb, "\n    +%-7v %-11s for %-7v", w.start.Sub(start).Round(time.Millisecond), w.kind, w.end.Sub(w.start).Round(time.Millisecond))
		if w.latency > 0 {
			fmt.Fprintf(&wb, " latency %v", w.latency.Round(time.Millisecond))
		}
		if w.consumed > 0 {
			fmt.Fprintf(&wb, " %d failed token requests", w.consumed)
		}
		fmt.Fprintf(&wb, " -> %d failed calls", w.failures)
	}
	t.Logf("soak: %v, %d callers, %d faults, %d revocations; strict tail from +%v:%s", elapsed.Round(time.Millisecond),
		soakCallers, len(windows), revocations, strictStart.Sub(start).Round(time.Millisecond), wb.String())
	t.Logf("calls: %d (%.0f/s), API requests %d (retries after a 401 included), failed %d:%s",
		calls.Load(), float64(calls.Load())/elapsed.Seconds(), apiRequests, nFailures, fb.String())
	t.Logf("tokens issued: %d (bound %d), %.2f per lifetime; token requests: %d (bound %d); bounds: %s",
		issued, issuedBound, float64(issued)/(elapsed.Seconds()/soakLifetime.Seconds()), tokenRequests, requestBound, explain)
}
