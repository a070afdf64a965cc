package source_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenhttp/tokenhttp/retry"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

func TestCacheHitAllocatesNothing(t *testing.T) {
	leakCheck(t)
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
	var src source.TokenSource = newSource(t, standardConfig(emu.TokenURL))
	ctx := context.Background()
	want, err := src.Token(ctx)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	var bad atomic.Int64
	allocs := testing.AllocsPerRun(1000, func() {
		if tok, err := src.Token(ctx); tok != want || err != nil {
			bad.Add(1)
		}
	})
	if allocs != 0 {
		t.Errorf("allocations per cached Token call = %v, want 0", allocs)
	}
	if n := bad.Load(); n != 0 {
		t.Errorf("%d cached Token calls returned another token or an error", n)
	}
	if got := emu.TokenRequests(); got != 1 {
		t.Errorf("token requests = %d, want 1", got)
	}
}

func TestCacheNoExpiryIsReused(t *testing.T) {
	leakCheck(t)
	var requests atomic.Int64
	ts := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, fmt.Sprintf(`{"access_token":"tok-%d"}`, requests.Add(1)))
	})
	src := newSource(t, clientConfig(ts.URL))
	for i := 0; i < 100; i++ {
		tok, err := src.Token(context.Background())
		if err != nil || tok.AccessToken != "tok-1" {
			t.Fatalf("Token #%d = %v, %v, want tok-1", i, tok, err)
		}
	}
	if got := requests.Load(); got != 1 {
		t.Errorf("token requests = %d, want 1", got)
	}
}

func TestCacheConcurrentCallersShareOneFetch(t *testing.T) {
	leakCheck(t)
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{Latency: 50 * time.Millisecond})
	src := newSource(t, standardConfig(emu.TokenURL))
	const n = 500
	toks := make([]*source.Token, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			toks[i], errs[i] = src.Token(context.Background())
		})
	}
	close(start)
	wg.Wait()
	if got := emu.TokenRequests(); got != 1 {
		t.Errorf("token requests = %d, want 1", got)
	}
	first := emu.IssuedTokens()[0]
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if toks[i] != toks[0] || toks[i].AccessToken != first {
			t.Fatalf("caller %d got %v, want the same first issued token as caller 0 (%v)", i, toks[i], toks[0])
		}
	}
}

func TestCacheFailureShared(t *testing.T) {
	leakCheck(t)
	release := make(chan struct{})
	var requests atomic.Int64
	ts := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so that the request's context ends when the client leaves
		if requests.Add(1) == 1 {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			writeJSON(w, 401, `{"error":"invalid_client","error_description":"unknown client"}`)
			return
		}
		writeJSON(w, 200, tokenJSON("tok-2", 3600, ""))
	})
	src := newSource(t, clientConfig(ts.URL))
	const n = 100
	errs := make([]error, n)
	var ready, wg sync.WaitGroup
	ready.Add(n)
	for i := range n {
		wg.Go(func() {
			ready.Done()
			_, errs[i] = src.Token(context.Background())
		})
	}
	ready.Wait()
	waitFor(t, "the first token request", func() bool { return requests.Load() == 1 })
	time.Sleep(100 * time.Millisecond) // every caller is waiting on the fetch by now
	close(release)
	wg.Wait()
	if got := requests.Load(); got != 1 {
		t.Errorf("token requests = %d, want 1", got)
	}
	for i, err := range errs {
		var te *source.Error
		if !errors.As(err, &te) || te.Code != source.CodeInvalidClient || te.StatusCode != 401 {
			t.Fatalf("caller %d: error = %v, want the endpoint's *source.Error invalid_client 401", i, err)
		}
	}
	// The refusal is held for a second: a caller then gets it without a
	// token request; after that, the next caller fetches again.
	if _, err := src.Token(context.Background()); !errors.As(err, new(*source.Error)) || requests.Load() != 1 {
		t.Errorf("Token right after the refusal = %v with %d token requests, want the held *source.Error and 1", err, requests.Load())
	}
	time.Sleep(1100 * time.Millisecond)
	tok, err := src.Token(context.Background())
	if err != nil || tok.AccessToken != "tok-2" {
		t.Errorf("Token a second after the refusal = %v, %v, want tok-2", tok, err)
	}
}

func TestCacheCancelledCallerLeaves(t *testing.T) {
	tests := []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		cancel  bool // the test cancels ctx once the fetch has started
		wantErr error
	}{
		{"cancelled", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			true, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}, false, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			release := make(chan struct{})
			var requests atomic.Int64
			ts := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body) // so that the request's context ends when the client leaves
				n := requests.Add(1)
				select {
				case <-release:
				case <-r.Context().Done(): // the fetch was cancelled: the test fails below
					return
				}
				writeJSON(w, 200, tokenJSON(fmt.Sprintf("tok-%d", n), 3600, ""))
			})
			src := newSource(t, clientConfig(ts.URL))
			ctx, cancel := tt.ctx()
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				_, err := src.Token(ctx)
				errc <- err
			}()
			waitFor(t, "the token request", func() bool { return requests.Load() == 1 })
			start := time.Now()
			if tt.cancel {
				cancel()
			}
			select {
			case err := <-errc:
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("Token = %v, want an error wrapping %v", err, tt.wantErr)
				}
				if d := time.Since(start); d > 500*time.Millisecond {
					t.Errorf("Token returned %v after its context ended, want promptly", d)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Token did not return after its context ended")
			}
			// The fetch goes on for the next caller.
			close(release)
			tok, err := src.Token(context.Background())
			if err != nil || tok.AccessToken != "tok-1" {
				t.Errorf("next Token = %v, %v, want tok-1 from the first fetch", tok, err)
			}
			if got := requests.Load(); got != 1 {
				t.Errorf("token requests = %d, want 1", got)
			}
		})
	}
}

// TestCacheRefreshAhead: a 4-second token is not refetched on every call,
// and is renewed in the background before it expires while callers keep
// getting it without waiting. It runs in a synctest bubble, on fake time.
func TestCacheRefreshAhead(t *testing.T) {
	leakCheck(t)
	synctest.Test(t, func(t *testing.T) {
		const renewDelay = 100 * time.Millisecond
		var requests atomic.Int64
		cfg := standardConfig("https://token.example/oauth/token")
		cfg.HTTPClient = memClient(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := requests.Add(1)
			if n > 1 {
				time.Sleep(renewDelay)
			}
			writeJSON(w, 200, tokenJSON(fmt.Sprintf("tok-%d", n), 4, ""))
		}))
		src := newSource(t, cfg)
		ctx := context.Background()
		tok1, err := src.Token(ctx)
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		if tok1.Expiry.IsZero() {
			t.Fatal("Expiry is zero, want 4 s from now")
		}

		// ~200 calls over ~1.5 s, well before any sane refresh point.
		calls := 0
		for i := 0; i < 200 && time.Until(tok1.Expiry) > 2*time.Second; i++ {
			tok, err := src.Token(ctx)
			if err != nil || tok != tok1 {
				t.Fatalf("Token call %d = %v, %v, want the cached tok-1", i, tok, err)
			}
			calls++
			time.Sleep(7500 * time.Microsecond)
		}
		if calls < 100 {
			t.Fatalf("made only %d calls before the token had 2 s left; machine too slow", calls)
		}
		if got := int(requests.Load()); got != 1 {
			t.Fatalf("token requests after %d calls = %d, want 1: a 4 s token must not be refetched on every call", calls, got)
		}

		// Past the adaptive refresh point (a tenth of the life, plus up to a
		// tenth of that), before the guard (a twentieth): the caller gets
		// the current token at once and a renewal starts.
		time.Sleep(time.Until(tok1.Expiry.Add(-350 * time.Millisecond)))
		start := time.Now()
		tok, err := src.Token(ctx)
		if d := time.Since(start); d > renewDelay/2 {
			t.Errorf("Token took %v while a renewal ran, want no wait", d)
		}
		if err != nil || tok != tok1 {
			t.Errorf("Token during renewal = %v, %v, want the current tok-1", tok, err)
		}
		waitFor(t, "the background renewal", func() bool { return int(requests.Load()) >= 2 })

		// The renewed token arrives before tok-1 expires.
		for {
			now := time.Now()
			tok, err := src.Token(ctx)
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if tok != tok1 {
				if got, want := tok.AccessToken, "tok-2"; got != want {
					t.Errorf("renewed AccessToken = %q, want %q", got, want)
				}
				break
			}
			if !now.Before(tok1.Expiry) {
				t.Fatalf("still serving tok-1 at its expiry %v", tok1.Expiry)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if time.Now().After(tok1.Expiry) {
			t.Errorf("the renewed token arrived after tok-1 expired")
		}
		if got := int(requests.Load()); got != 2 {
			t.Errorf("token requests = %d, want 2", got)
		}
	})
}

func TestCacheInvalidateByIdentity(t *testing.T) {
	leakCheck(t)
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
	src := newSource(t, standardConfig(emu.TokenURL))
	ctx := context.Background()
	tok1, err := src.Token(ctx)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if src.Invalidate(nil) {
		t.Errorf("Invalidate(nil) = true, want false")
	}
	clone := *tok1
	if src.Invalidate(&clone) {
		t.Errorf("Invalidate(copy of the current token) = true, want false: identity, not equality")
	}
	if tok, _ := src.Token(ctx); tok != tok1 {
		t.Errorf("Token after Invalidate(copy) = %v, want tok-1 kept", tok)
	}
	if !src.Invalidate(tok1) {
		t.Fatalf("Invalidate(current) = false, want true")
	}
	if src.Invalidate(tok1) {
		t.Errorf("second Invalidate(tok-1) = true, want false")
	}
	tok2, err := src.Token(ctx)
	if err != nil || emu.Issued() != 2 || tok2.AccessToken != emu.IssuedTokens()[1] {
		t.Fatalf("Token after Invalidate = %v, %v, want a new tok-2", tok2, err)
	}
	// A late 401 for the old token must not drop the newer one.
	if src.Invalidate(tok1) {
		t.Errorf("Invalidate(old) with a newer current token = true, want false")
	}
	if tok, _ := src.Token(ctx); tok != tok2 {
		t.Errorf("Token after Invalidate(old) = %v, want tok-2 kept", tok)
	}
	if got := emu.TokenRequests(); got != 2 {
		t.Errorf("token requests = %d, want 2", got)
	}

	// Many goroutines told that tok-2 was rejected: one drops it.
	var dropped atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if src.Invalidate(tok2) {
				dropped.Add(1)
			}
		})
	}
	wg.Wait()
	if got := dropped.Load(); got != 1 {
		t.Errorf("concurrent Invalidate(tok-2) returned true %d times, want 1", got)
	}
	if tok, err := src.Token(ctx); err != nil || emu.Issued() != 3 || tok.AccessToken != emu.IssuedTokens()[2] {
		t.Errorf("Token = %v, %v, want tok-3", tok, err)
	}
}

func TestCacheRefreshTokenRotation(t *testing.T) {
	leakCheck(t)
	var mu sync.Mutex
	var forms []url.Values // the fields of each token request, in order
	var auths []string     // the Authorization of each token request
	ts := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := requestFields(r.Header.Get("Content-Type"), body)
		mu.Lock()
		forms = append(forms, form)
		auths = append(auths, r.Header.Get("Authorization"))
		n := len(forms)
		mu.Unlock()
		refresh := map[int]string{1: "rt-1", 2: "rt-2"}[n] // the third reply does not rotate
		writeJSON(w, 200, tokenJSON(fmt.Sprintf("tok-%d", n), 3600, refresh))
	})
	cfg := clientConfig(ts.URL)
	cfg.Scopes = []string{"read"}
	src := newSource(t, cfg)
	for i := 1; i <= 4; i++ {
		tok, err := src.Token(context.Background())
		if err != nil {
			t.Fatalf("Token #%d: %v", i, err)
		}
		if got, want := tok.AccessToken, fmt.Sprintf("tok-%d", i); got != want {
			t.Fatalf("Token #%d = %q, want %q", i, got, want)
		}
		src.Invalidate(tok)
	}
	want := []struct{ grant, refresh string }{
		{"client_credentials", ""},
		{"refresh_token", "rt-1"},
		{"refresh_token", "rt-2"}, // rotated
		{"refresh_token", "rt-2"}, // not rotated by reply 3: kept
	}
	mu.Lock()
	defer mu.Unlock()
	if len(forms) != len(want) {
		t.Fatalf("token requests = %d, want %d", len(forms), len(want))
	}
	for i, w := range want {
		if got := forms[i].Get("grant_type"); got != w.grant {
			t.Errorf("request %d grant_type = %q, want %q", i+1, got, w.grant)
		}
		if got := forms[i].Get("refresh_token"); got != w.refresh {
			t.Errorf("request %d refresh_token = %q, want %q", i+1, got, w.refresh)
		}
		if got := auths[i]; got == "" {
			t.Errorf("request %d has no client authentication", i+1)
		}
	}
}

func TestCacheRefreshRefusedFallsBackOnce(t *testing.T) {
	for _, grant := range []string{source.ClientCredentials, source.Password} {
		t.Run(grant, func(t *testing.T) {
			leakCheck(t)
			var mu sync.Mutex
			var forms []url.Values // the fields of each token request, in order
			ts := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				form, _ := requestFields(r.Header.Get("Content-Type"), body)
				mu.Lock()
				forms = append(forms, form)
				n := len(forms)
				mu.Unlock()
				switch n {
				case 1:
					writeJSON(w, 200, tokenJSON("tok-1", 3600, "rt-1"))
				case 2:
					writeJSON(w, 400, `{"error":"invalid_grant","error_description":"refresh token revoked"}`)
				default:
					writeJSON(w, 200, tokenJSON(fmt.Sprintf("tok-%d", n), 3600, ""))
				}
			})
			cfg := clientConfig(ts.URL)
			var otps atomic.Int64
			if grant == source.Password {
				cfg = passwordConfig(ts.URL)
				cfg.Password = ""
				cfg.PasswordFunc = func(context.Context) (string, error) {
					return fmt.Sprintf("otp-%d", otps.Add(1)), nil
				}
			}
			src := newSource(t, cfg)
			tok1, err := src.Token(context.Background())
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			src.Invalidate(tok1)
			tok, err := src.Token(context.Background())
			if err != nil {
				t.Fatalf("Token after a refused refresh = %v, want the original grant's token", err)
			}
			if got, want := tok.AccessToken, "tok-3"; got != want {
				t.Errorf("AccessToken = %q, want %q", got, want)
			}
			src.Invalidate(tok)
			if _, err := src.Token(context.Background()); err != nil {
				t.Fatalf("Token: %v", err)
			}
			wantGrants := []string{grant, "refresh_token", grant, grant}
			mu.Lock()
			defer mu.Unlock()
			if len(forms) != len(wantGrants) {
				t.Fatalf("token requests = %d, want %d", len(forms), len(wantGrants))
			}
			for i, w := range wantGrants {
				if got := forms[i].Get("grant_type"); got != w {
					t.Errorf("request %d grant_type = %q, want %q", i+1, got, w)
				}
			}
			if grant == source.Password {
				if got := otps.Load(); got != 3 {
					t.Errorf("PasswordFunc calls = %d, want 3 (one per password request)", got)
				}
				if got, want := forms[2].Get("password"), "otp-2"; got != want {
					t.Errorf("fallback password = %q, want %q", got, want)
				}
			}
		})
	}
}

func TestCacheRefreshAndGrantRefused(t *testing.T) {
	leakCheck(t)
	var requests atomic.Int64
	ts := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			writeJSON(w, 200, tokenJSON("tok-1", 3600, "rt-1"))
			return
		}
		writeJSON(w, 400, `{"error":"invalid_grant"}`)
	})
	src := newSource(t, passwordConfig(ts.URL))
	tok1, err := src.Token(context.Background())
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	src.Invalidate(tok1)
	_, err = src.Token(context.Background())
	if te := tokenError(t, err); te.Code != source.CodeInvalidGrant {
		t.Errorf("Code = %q, want %q", te.Code, source.CodeInvalidGrant)
	}
	if got := requests.Load(); got != 3 {
		t.Errorf("token requests = %d, want 3 (grant, refresh, one fallback)", got)
	}
}

// TestCacheRefreshFailureDoesNotFallBack: when the endpoint fails a
// refresh, the source does not fall back to the password grant in that
// fetch. It keeps the refresh token for the next try only when the server
// surely did not act on the request (a 429 or a 503 says so); after any
// reply or failure from which the server may have acted on it (a 500, 502,
// 504, a 2xx the source cannot use — which certainly rotated it — or a
// connection dropped after the request was written) it never sends that
// token again, and the next fetch uses the password grant. The endpoint
// keeps failing refreshes while failing is set, so the test holds whatever
// the retry policy does.
func TestCacheRefreshFailureDoesNotFallBack(t *testing.T) {
	wantStatus := func(status int, code string) func(t *testing.T, err error) {
		return func(t *testing.T, err error) {
			if te := tokenError(t, err); te.StatusCode != status || te.Code != code {
				t.Errorf("error = %v, want HTTP %d %s", err, status, code)
			}
		}
	}
	tests := []struct {
		name  string
		keep  bool // the refresh token is tried again by the next fetch
		reply func(w http.ResponseWriter)
		check func(t *testing.T, err error)
	}{
		{"503", true, func(w http.ResponseWriter) {
			writeJSON(w, 503, `{"error":"temporarily_unavailable"}`)
		}, wantStatus(503, source.CodeTemporarilyUnavailable)},
		{"429", true, func(w http.ResponseWriter) {
			writeJSON(w, 429, `{"error":"slow_down"}`)
		}, wantStatus(429, source.CodeTemporarilyUnavailable)},
		{"500 HTML", false, func(w http.ResponseWriter) {
			writeReply(w, 500, "text/html", "<h1>Internal Server Error</h1>")
		}, wantStatus(500, source.CodeServerError)},
		{"502", false, func(w http.ResponseWriter) {
			writeReply(w, 502, "text/plain", "bad gateway")
		}, wantStatus(502, source.CodeServerError)},
		{"504", false, func(w http.ResponseWriter) {
			writeReply(w, 504, "text/plain", "gateway timeout")
		}, wantStatus(504, source.CodeServerError)},
		{"200 unsafe token", false, func(w http.ResponseWriter) {
			writeJSON(w, 200, `{"access_token":"tok\r\nX: 1","token_type":"bearer","expires_in":3600,"refresh_token":"rt-2"}`)
		}, wantStatus(200, source.CodeServerError)},
		{"200 expires_in soon", false, func(w http.ResponseWriter) {
			writeJSON(w, 200, `{"access_token":"tok-x","token_type":"bearer","expires_in":"soon","refresh_token":"rt-2"}`)
		}, wantStatus(200, source.CodeServerError)},
		{"connection dropped", false, func(w http.ResponseWriter) {
			panic(http.ErrAbortHandler)
		}, func(t *testing.T, err error) {
			var fe *source.FetchError
			if !errors.As(err, &fe) {
				t.Errorf("error = %v (%T), want a *source.FetchError", err, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			var failing atomic.Bool
			var passwords atomic.Int64
			var mu sync.Mutex
			var last url.Values // the fields of the last token request
			ts := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				form, _ := requestFields(r.Header.Get("Content-Type"), body)
				mu.Lock()
				last = form
				mu.Unlock()
				switch {
				case form.Get("grant_type") == source.Password:
					writeJSON(w, 200, tokenJSON(fmt.Sprintf("tok-%d", passwords.Add(1)), 3600, "rt-1"))
				case failing.Load():
					tt.reply(w)
				default:
					writeJSON(w, 200, tokenJSON("tok-refreshed", 3600, "rt-2"))
				}
			})
			cfg := passwordConfig(ts.URL)
			cfg.Retry = retry.Policy{MinWait: time.Millisecond, MaxWait: 2 * time.Millisecond}
			src := newSource(t, cfg)
			tok1, err := src.Token(context.Background())
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			failing.Store(true)
			src.Invalidate(tok1)
			_, err = src.Token(context.Background())
			tt.check(t, err)
			if got := passwords.Load(); got != 1 {
				t.Fatalf("password grant requests = %d, want 1: a failed refresh must not fall back to the password grant", got)
			}
			failing.Store(false)
			tok, err := src.Token(context.Background())
			mu.Lock()
			r := last
			mu.Unlock()
			if !tt.keep {
				// The server may have rotated the refresh token: it is
				// never sent again; the next fetch uses the password grant.
				if err != nil || tok.AccessToken != "tok-2" {
					t.Fatalf("Token = %v, %v, want tok-2 from the password grant", tok, err)
				}
				if got, want := r.Get("grant_type"), source.Password; got != want {
					t.Errorf("last request grant = %q, want %q", got, want)
				}
				return
			}
			// The server did not act on it: the next fetch tries it again.
			if err != nil || tok.AccessToken != "tok-refreshed" {
				t.Fatalf("Token = %v, %v, want tok-refreshed", tok, err)
			}
			if got, want := r.Get("grant_type")+" "+r.Get("refresh_token"), "refresh_token rt-1"; got != want {
				t.Errorf("last request = %q, want %q", got, want)
			}
		})
	}
}

func TestCacheClose(t *testing.T) {
	t.Run("cancels a hung fetch", func(t *testing.T) {
		leakCheck(t)
		ended := make(chan struct{})
		var requests atomic.Int64
		ts := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // so that the request's context ends when the client leaves
			requests.Add(1)
			<-r.Context().Done() // until the client gives up
			close(ended)
		})
		src := newSource(t, clientConfig(ts.URL))
		errc := make(chan error, 1)
		go func() {
			_, err := src.Token(context.Background())
			errc <- err
		}()
		waitFor(t, "the token request", func() bool { return requests.Load() == 1 })
		start := time.Now()
		if err := src.Close(); err != nil {
			t.Errorf("Close = %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Close took %v, want it to cancel the fetch at once", d)
		}
		select {
		case <-ended: // the endpoint saw its request cancelled
		case <-time.After(2 * time.Second):
			t.Error("the hung request was not cancelled by Close")
		}
		select {
		case err := <-errc:
			if !errors.Is(err, source.ErrClosed) && !errors.Is(err, context.Canceled) {
				t.Errorf("Token waiting on the fetch Close cancelled = %v, want an error matching ErrClosed or context.Canceled", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Token waiting on the fetch did not return after Close")
		}
		_, err := src.Token(context.Background())
		if !errors.Is(err, source.ErrClosed) {
			t.Errorf("Token after Close = %v, want ErrClosed", err)
		}
		if got := requests.Load(); got != 1 {
			t.Errorf("token requests = %d, want 1 (none after Close)", got)
		}
		if err := src.Close(); err != nil {
			t.Errorf("second Close = %v, want nil", err)
		}
	})

	t.Run("serves the cached token", func(t *testing.T) {
		leakCheck(t)
		emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
		src := newSource(t, standardConfig(emu.TokenURL))
		tok1, err := src.Token(context.Background())
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		_ = src.Close()
		if tok, err := src.Token(context.Background()); err != nil || tok != tok1 {
			t.Errorf("Token after Close = %v, %v, want the cached token", tok, err)
		}
		src.Invalidate(tok1)
		if _, err := src.Token(context.Background()); !errors.Is(err, source.ErrClosed) {
			t.Errorf("Token after Close with no token = %v, want ErrClosed", err)
		}
		if got := emu.TokenRequests(); got != 1 {
			t.Errorf("token requests = %d, want 1", got)
		}
	})
}

func TestCacheFetchTimeout(t *testing.T) {
	leakCheck(t)
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
	emu.HangNext(1 << 20) // every request
	cfg := standardConfig(emu.TokenURL)
	cfg.FetchTimeout = 200 * time.Millisecond
	src := newSource(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // the test's own bound
	defer cancel()
	start := time.Now()
	_, err := src.Token(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Token = %v, want an error wrapping context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Token took %v, want about FetchTimeout", d)
	}
}

// TestCacheConcurrentUse mixes Token and Invalidate from many goroutines;
// run with -race.
func TestCacheConcurrentUse(t *testing.T) {
	leakCheck(t)
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
	src := newSource(t, standardConfig(emu.TokenURL))
	var invalidated atomic.Int64
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 200 {
				tok, err := src.Token(context.Background())
				if err != nil || !tok.Valid() {
					t.Errorf("Token = %v, %v, want a valid token", tok, err)
					return
				}
				if (g+i)%50 == 0 && src.Invalidate(tok) {
					invalidated.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got, limit := emu.TokenRequests(), int(invalidated.Load())+1; got > limit {
		t.Errorf("token requests = %d, want at most %d (one per dropped token, plus the first)", got, limit)
	}
}
