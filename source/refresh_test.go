package source_test

// Long-running refresh-ahead checks: steady traffic across many
// token lifetimes never waits on a fetch, and a token is not refetched
// more than about once per lifetime.

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// raCall is one Token call seen by a caller.
type raCall struct {
	start, end time.Time
	tok        *source.Token
}

// TestRefreshAheadNoWait: 3 s tokens from a 400 ms endpoint, 8 goroutines
// calling Token every millisecond for 9 s. The renewals run in the
// background: no call waits on a fetch, none gets an expired token, the
// endpoint sees about one request per token lifetime, and nothing outlives
// Close.
func TestRefreshAheadNoWait(t *testing.T) {
	if testing.Short() {
		t.Skip("seconds of real time; the emulator's latency does not run in a synctest bubble")
	}
	leakCheck(t)
	const (
		lifetime = 3 * time.Second
		latency  = 400 * time.Millisecond
		run      = 9 * time.Second
		callers  = 8
		pause    = time.Millisecond // between one caller's calls: steady traffic, not a spin
		// A call that waited on a fetch takes up to the latency. Allow for
		// the race detector and a loaded machine, far below the latency.
		maxWait = 100 * time.Millisecond
	)
	srv := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{Lifetime: lifetime, Latency: latency})
	src := newSource(t, source.Config{
		TokenURL:     srv.TokenURL,
		ClientID:     sourcetest.DefaultClientID,
		ClientSecret: sourcetest.DefaultClientSecret,
		HTTPClient:   srv.Client(),
	})
	ctx := context.Background()

	if _, err := src.Token(ctx); err != nil { // the cold fetch waits, by design
		t.Fatalf("Token: %v", err)
	}

	calls := make([][]raCall, callers)
	errs := make([]error, callers)
	stop := time.Now().Add(run)
	var wg sync.WaitGroup
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log := make([]raCall, 0, int(run/pause)+1)
			for time.Now().Before(stop) {
				t0 := time.Now()
				tok, err := src.Token(ctx)
				t1 := time.Now()
				if err != nil {
					errs[g] = err
					break
				}
				log = append(log, raCall{t0, t1, tok})
				time.Sleep(pause)
			}
			calls[g] = log
		}()
	}
	wg.Wait()
	requests := srv.TokenRequests()
	if err := src.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}

	for g, err := range errs {
		if err != nil {
			t.Errorf("caller %d: Token: %v", g, err)
		}
	}
	var (
		durs      []time.Duration
		expired   int
		waited    int                             // calls that began before their token could exist
		firstSeen = map[*source.Token]time.Time{} // when a caller first got each token
	)
	for _, log := range calls {
		for _, c := range log {
			durs = append(durs, c.end.Sub(c.start))
			if !c.tok.Expiry.After(c.end) {
				expired++
			}
			// The source dates a token from when it sent the request, and
			// the endpoint answers no sooner than latency later: a call
			// that began before then and got this token was held until
			// its fetch ended, however short its measured wait.
			if c.start.Before(c.tok.Expiry.Add(-lifetime + latency)) {
				waited++
			}
			if f, ok := firstSeen[c.tok]; !ok || c.end.Before(f) {
				firstSeen[c.tok] = c.end
			}
		}
	}
	if len(durs) == 0 {
		t.Fatal("no Token call completed")
	}
	slices.Sort(durs)
	maxDur := durs[len(durs)-1]
	slow := 0 // calls over 5 ms: a wait, or the machine's noise
	if i := slices.IndexFunc(durs, func(d time.Duration) bool { return d > 5*time.Millisecond }); i >= 0 {
		slow = len(durs) - i
	}

	// How much life the old token had left when its successor first
	// reached a caller: above the source's guard, no caller had to wait.
	toks := make([]*source.Token, 0, len(firstSeen))
	for tok := range firstSeen {
		toks = append(toks, tok)
	}
	slices.SortFunc(toks, func(a, b *source.Token) int { return a.Expiry.Compare(b.Expiry) })
	var spare []time.Duration
	for i := 1; i < len(toks); i++ {
		spare = append(spare, toks[i-1].Expiry.Sub(firstSeen[toks[i]]).Round(time.Millisecond))
	}

	t.Logf("%d calls by %d callers over %v; %d token requests, %d tokens served; "+
		"call duration p50 %v, p99 %v, p99.9 %v, max %v; %d calls over 5 ms, %d held by a fetch; "+
		"life the old token had left when the new one arrived: %v",
		len(durs), callers, run, requests, len(toks),
		raPercentile(durs, 50), raPercentile(durs, 99), raPercentile(durs, 99.9), maxDur, slow, waited, spare)

	if maxDur >= maxWait {
		t.Errorf("the slowest Token call took %v, want < %v (the endpoint takes %v: a call waited on a fetch)",
			maxDur, maxWait, latency)
	}
	if waited != 0 {
		t.Errorf("%d calls began before the renewal that served them could have ended: they waited on a fetch", waited)
	}
	if expired != 0 {
		t.Errorf("%d calls returned a token that had already expired", expired)
	}
	// One cold fetch, then one renewal per lifetime less the margin:
	// 9 s of 3 s tokens is 4 or 5 requests.
	if requests < 3 || requests > 6 {
		t.Errorf("token requests = %d over %v of %v tokens, want 3 to 6 (about one per lifetime)", requests, run, lifetime)
	}
	if len(toks) < 3 {
		t.Errorf("callers saw %d distinct tokens over %v of %v tokens, want at least 3: renewals did not reach them",
			len(toks), run, lifetime)
	}
}

// TestRefreshAheadMargin: the automatic margin adapts to the lifetime. A
// 4 s token is not refetched by 2 s of steady calls, and its renewal
// starts about a tenth of its life (plus up to a tenth of that in
// jitter) before it expires, not on every call and not at the last
// moment (the guard, a twentieth). The emulator has no latency, so the test runs in a synctest
// bubble, on fake time.
func TestRefreshAheadMargin(t *testing.T) {
	leakCheck(t)
	const lifetime = 4 * time.Second
	srv := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{Lifetime: lifetime})
	synctest.Test(t, func(t *testing.T) {
		src := newSource(t, source.Config{
			TokenURL:     srv.TokenURL,
			ClientID:     sourcetest.DefaultClientID,
			ClientSecret: sourcetest.DefaultClientSecret,
			HTTPClient:   memClient(srv.Config.Handler),
		})
		ctx := context.Background()

		first, err := src.Token(ctx)
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		call := func() *source.Token {
			tok, err := src.Token(ctx)
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			return tok
		}

		for until := time.Now().Add(2 * time.Second); time.Now().Before(until); {
			if tok := call(); tok != first {
				t.Fatalf("Token returned a new token with %v of the first one's life left; want the first for 2 s of a %v token",
					time.Until(first.Expiry).Round(time.Millisecond), lifetime)
			}
			time.Sleep(time.Millisecond)
		}
		if n := srv.TokenRequests(); n != 1 {
			t.Fatalf("token requests after 2 s of calls = %d, want 1", n)
		}

		// Keep calling until the renewal is sent; note how much life the
		// first token had left then.
		var left time.Duration
		for deadline := first.Expiry; ; time.Sleep(time.Millisecond) {
			if tok := call(); tok != first && tok.Expiry.Before(first.Expiry) {
				t.Fatalf("Token returned an older token")
			}
			if srv.TokenRequests() > 1 {
				left = time.Until(first.Expiry)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no renewal before the token expired")
			}
		}
		// The margin is a tenth of the life the token had on arrival, plus
		// up to a tenth of that; the time is fake, so the bounds are tight,
		// and the latest is still before the guard (lifetime/20).
		const (
			earliest = lifetime/10 + lifetime/100 + 10*time.Millisecond
			latest   = lifetime/10 - 10*time.Millisecond
		)
		t.Logf("a %v token was renewed with %v of its life left", lifetime, left.Round(time.Millisecond))
		if left > earliest || left < latest {
			t.Errorf("the renewal was sent with %v of the token's life left, want between %v and %v",
				left.Round(time.Millisecond), latest, earliest)
		}
		if n := srv.TokenRequests(); n != 2 {
			t.Errorf("token requests = %d, want 2", n)
		}
	})
}

// raPercentile returns the p-th percentile (0..100) of sorted durations.
func raPercentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(float64(len(sorted)-1)*p/100)]
}

// TestFleetTokenRequestsPerLifetime: four sources sharing a Store, each
// called every 5 ms for 30 s of 3 s tokens, cost the fleet at most 1.2
// token requests per token lifetime with the automatic margin: one fetch
// for all, and each token serving about 90% of its life. (A quarter-life
// margin cost 14 requests here.) It runs on fake time.
func TestFleetTokenRequestsPerLifetime(t *testing.T) {
	leakCheck(t)
	const (
		replicas = 4
		lifetime = 3 * time.Second
		run      = 30 * time.Second
	)
	srv := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{Lifetime: lifetime})
	synctest.Test(t, func(t *testing.T) {
		store := source.NewMemoryStore()
		var wg sync.WaitGroup
		for range replicas {
			cfg := standardConfig(srv.TokenURL)
			cfg.HTTPClient, cfg.Store = memClient(srv.Config.Handler), store
			src := newSource(t, cfg)
			wg.Go(func() {
				for end := time.Now().Add(run); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
					if _, err := src.Token(context.Background()); err != nil {
						t.Errorf("Token: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		n := srv.TokenRequests()
		perLifetime := float64(n) / float64(run/lifetime)
		t.Logf("%d replicas, %v of %v tokens: %d token requests, %.2f per lifetime", replicas, run, lifetime, n, perLifetime)
		if perLifetime > 1.2 {
			t.Errorf("token requests per lifetime = %.2f (%d in %v), want at most 1.2", perLifetime, n, run)
		}
	})
}

// TestRefreshAheadBelowGuard: a Config.RefreshAhead shorter than the
// guard plus the fetch's duration is raised to it, so the renewal still
// lands before the token stops being served: no caller waits for it and
// none gets a token inside the guard. On fake time, with 1 s tokens and
// 50 ms fetches.
func TestRefreshAheadBelowGuard(t *testing.T) {
	leakCheck(t)
	const (
		lifetime = time.Second
		latency  = 50 * time.Millisecond
		guard    = lifetime / 20
	)
	srv := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{Lifetime: lifetime})
	synctest.Test(t, func(t *testing.T) {
		slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { // the emulator's Latency waits outside the bubble
			time.Sleep(latency)
			srv.Config.Handler.ServeHTTP(w, r)
		})
		cfg := standardConfig(srv.TokenURL)
		cfg.HTTPClient, cfg.RefreshAhead = memClient(slow), 10*time.Millisecond
		src := newSource(t, cfg)
		if _, err := src.Token(context.Background()); err != nil {
			t.Fatal(err)
		}
		waited, least := 0, lifetime
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
			start := time.Now()
			tok, err := src.Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if time.Since(start) > 0 {
				waited++
			}
			least = min(least, time.Until(tok.Expiry))
		}
		if waited > 0 {
			t.Errorf("%d Token calls waited for a renewal, want none", waited)
		}
		if least < guard {
			t.Errorf("a token was served with %v left, want at least the guard %v", least, guard)
		}
	})
}
