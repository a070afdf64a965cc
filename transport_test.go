package tokenhttp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
	"github.com/tokenhttp/tokenhttp/telemetry"
)

// countingSource serves one token and counts Invalidate calls.
type countingSource struct {
	tok           *source.Token
	invalidations atomic.Int64
}

func (s *countingSource) Token(context.Context) (*source.Token, error) { return s.tok, nil }

func (s *countingSource) Invalidate(*source.Token) bool { s.invalidations.Add(1); return false }

// closeRecorder is a request body that records whether it was closed.
type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error { c.closed.Store(true); return nil }

// recordingBase is a base double that records the requests it is given
// and answers 200.
type recordingBase struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (b *recordingBase) RoundTrip(req *http.Request) (*http.Response, error) {
	b.mu.Lock()
	b.reqs = append(b.reqs, req)
	b.mu.Unlock()
	if req.Body != nil {
		req.Body.Close()
	}
	return reply(req, http.StatusOK, "ok"), nil
}

func (b *recordingBase) calls() []*http.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.reqs)
}

// spySource is a source.New source that records what it is told to
// invalidate.
type spySource struct {
	*source.CachedSource

	mu          sync.Mutex // guards the fields below
	invalidated []string   // the AccessToken of every token passed to Invalidate
	dropped     int        // how many of those calls dropped the token
}

func (s *spySource) Invalidate(rejected *source.Token) bool {
	ok := s.CachedSource.Invalidate(rejected)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalidated = append(s.invalidated, rejected.AccessToken)
	if ok {
		s.dropped++
	}
	return ok
}

func (s *spySource) invalidations() (tokens []string, dropped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.invalidated), s.dropped
}

// prime has src fetch its first token and returns it.
func prime(t *testing.T, src source.TokenSource) *source.Token {
	t.Helper()
	tok, err := src.Token(context.Background())
	if err != nil {
		t.Fatalf("priming the source: %v", err)
	}
	return tok
}

// tokenNames returns a function that names the tokens emu issued, or the
// Authorization values that carry them, "tok-1", "tok-2", ... in the order
// they were issued; "" is "", anything else "unknown".
func tokenNames(emu *sourcetest.Server) func(toks ...string) []string {
	return func(toks ...string) []string {
		issued := emu.IssuedTokens()
		names := make([]string, len(toks))
		for i, tok := range toks {
			tok = strings.TrimPrefix(tok, "Bearer ")
			switch n := slices.Index(issued, tok); {
			case tok == "":
			case n < 0:
				names[i] = "unknown"
			default:
				names[i] = fmt.Sprintf("tok-%d", n+1)
			}
		}
		return names
	}
}

func TestTransportSetsHeaderOnCopy(t *testing.T) {
	tests := []struct {
		name       string
		tok        *source.Token
		callerAuth []string // Authorization the caller set, nil for none
		want       string
	}{
		{"bearer", &source.Token{AccessToken: "abc", TokenType: "Bearer"}, nil, "Bearer abc"},
		{"provider header value verbatim", &source.Token{AccessToken: "abc", Authorization: "VCSchema abc"}, nil, "VCSchema abc"},
		{"caller's Authorization replaced", &source.Token{AccessToken: "abc"}, []string{"Basic Y2FsbGVy", "Other x"}, "Bearer abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := &recordingBase{}
			tr := tokenhttp.NewTransport(staticSource(tt.tok), tokenhttp.WithBase(base))

			req, err := http.NewRequest(http.MethodPost, "https://api.example.invalid/v1?q=1", strings.NewReader("body"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Custom", "1")
			if tt.callerAuth != nil {
				req.Header["Authorization"] = slices.Clone(tt.callerAuth)
			}
			before := req.Header.Clone()
			beforeURL := req.URL.String()

			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatalf("RoundTrip: %v", err)
			}
			resp.Body.Close()

			calls := base.calls()
			if len(calls) != 1 {
				t.Fatalf("base called %d times, want 1", len(calls))
			}
			sent := calls[0]
			if sent == req {
				t.Errorf("base got the caller's *http.Request, want a copy")
			}
			if got, want := sent.Header.Values("Authorization"), []string{tt.want}; !slices.Equal(got, want) {
				t.Errorf("sent Authorization = %q, want %q", got, want)
			}
			if got, want := sent.Header.Get("X-Custom"), "1"; got != want {
				t.Errorf("sent X-Custom = %q, want %q", got, want)
			}
			if !maps.EqualFunc(req.Header, before, slices.Equal[[]string]) {
				t.Errorf("caller's header after RoundTrip = %v, want it unchanged: %v", req.Header, before)
			}
			if got, want := req.URL.String(), beforeURL; got != want {
				t.Errorf("caller's URL after RoundTrip = %q, want %q", got, want)
			}
			if got, want := sent.URL.String(), beforeURL; got != want {
				t.Errorf("sent URL = %q, want %q", got, want)
			}
		})
	}
}

// TestTransportEarlyReturnsCloseBody: a request that is not sent gets an
// error, no response, and its body closed. TestTransportCleartext checks
// the same for the cleartext refusal.
func TestTransportEarlyReturnsCloseBody(t *testing.T) {
	errNoToken := errors.New("no token today")
	tok := &source.Token{AccessToken: "abc"}
	tests := []struct {
		name    string
		src     source.TokenSource
		url     string // "" makes a request with a nil URL
		wantErr string // a substring of the error
	}{
		{"token error", errSource(errNoToken), "https://api.example.invalid/", "no token today"},
		{"nil URL", staticSource(tok), "", "URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var baseCalls atomic.Int64
			base := roundTripperFunc(func(r *http.Request) (*http.Response, error) {
				baseCalls.Add(1)
				return reply(r, http.StatusOK, ""), nil
			})
			body := &closeRecorder{Reader: strings.NewReader("payload")}
			req := &http.Request{Method: http.MethodPost, Header: http.Header{}, Body: body, ContentLength: 7}
			if tt.url != "" {
				u, err := url.Parse(tt.url)
				if err != nil {
					t.Fatal(err)
				}
				req.URL, req.Host = u, u.Host
			}

			resp, err := tokenhttp.NewTransport(tt.src, tokenhttp.WithBase(base)).RoundTrip(req)
			if resp != nil {
				t.Errorf("RoundTrip returned a response (status %d) with error %v, want no response", resp.StatusCode, err)
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("RoundTrip error = %v, want one containing %q", err, tt.wantErr)
			}
			if !body.closed.Load() {
				t.Errorf("request body not closed on the early return")
			}
			if got := baseCalls.Load(); got != 0 {
				t.Errorf("base called %d times, want 0", got)
			}
		})
	}
}

func TestTransportResponseOrError(t *testing.T) {
	errBase := errors.New("connection refused")
	tok := &source.Token{AccessToken: "abc"}
	tests := []struct {
		name       string
		base       roundTripperFunc
		wantErr    bool
		wantStatus int
	}{
		{"base error", func(*http.Request) (*http.Response, error) { return nil, errBase }, true, 0},
		{"base 200", func(r *http.Request) (*http.Response, error) { return reply(r, http.StatusOK, ""), nil }, false, http.StatusOK},
		{"base 401, no newer token", func(r *http.Request) (*http.Response, error) { return reply(r, http.StatusUnauthorized, ""), nil }, false, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "https://api.example.invalid/", nil)
			req.RequestURI = ""
			resp, err := tokenhttp.NewTransport(staticSource(tok), tokenhttp.WithBase(tt.base)).RoundTrip(req)
			if (err != nil) == (resp != nil) {
				t.Fatalf("RoundTrip = (%v, %v), want exactly one of a response and an error", resp, err)
			}
			if tt.wantErr {
				if !errors.Is(err, errBase) {
					t.Errorf("RoundTrip error = %v, want %v", err, errBase)
				}
				return
			}
			defer resp.Body.Close()
			if got, want := resp.StatusCode, tt.wantStatus; got != want {
				t.Errorf("status = %d, want %d", got, want)
			}
		})
	}
}

// TestTransport401 runs the 401 path against a real token endpoint and an
// API that accepts only the newest token. The source is primed with tok-1,
// then somebody else is issued tok-2, so tok-1 is rejected; the refetch

// TestTransport401 runs the 401 path against a token endpoint emulator and
// an API that accepts the tokens it issued but the first: the source is
// primed with tok-1, which is then revoked; the refetch gets tok-2.
func TestTransport401(t *testing.T) {
	const payload = "payload-123"
	tests := []struct {
		name        string
		method      string
		body        string // "" sends no body
		noGetBody   bool   // hide the body's GetBody
		api         string // "fresh": 401 for the revoked token only; "always401"; "always403"
		failRefetch bool   // the token endpoint refuses the refetch

		wantStatus  int
		wantBody    string
		wantAuths   []string // the token of each API hit, named by tokenNames
		wantBodies  []string // request body of each API hit
		wantFetches int64    // token requests, the priming one included
		wantInv     []string // tokens invalidated; nil: none
		skipInv     bool     // do not check wantInv
	}{
		{
			name: "stale token: one refetch, one retry", method: http.MethodGet, api: "fresh",
			wantStatus: 200, wantBody: "ok #2",
			wantAuths: []string{"tok-1", "tok-2"}, wantBodies: []string{"", ""},
			wantFetches: 2, wantInv: []string{"tok-1"},
		},
		{
			name: "second 401 returned as is", method: http.MethodGet, api: "always401",
			wantStatus: 401, wantBody: "rejected #2",
			wantAuths: []string{"tok-1", "tok-2"}, wantBodies: []string{"", ""},
			wantFetches: 2, wantInv: []string{"tok-1"},
		},
		{
			name: "POST with GetBody replayed with the same body", method: http.MethodPost, body: payload, api: "fresh",
			wantStatus: 200, wantBody: "ok #2",
			wantAuths: []string{"tok-1", "tok-2"}, wantBodies: []string{payload, payload},
			wantFetches: 2, wantInv: []string{"tok-1"},
		},
		{
			name: "POST without GetBody not retried", method: http.MethodPost, body: payload, noGetBody: true, api: "fresh",
			wantStatus: 401, wantBody: "rejected #1",
			wantAuths: []string{"tok-1"}, wantBodies: []string{payload},
			wantFetches: 1, skipInv: true,
		},
		{
			name: "403 does not refresh", method: http.MethodGet, api: "always403",
			wantStatus: 403, wantBody: "forbidden #1",
			wantAuths: []string{"tok-1"}, wantBodies: []string{""},
			wantFetches: 1, wantInv: nil,
		},
		{
			name: "source fails on the retry: the original 401", method: http.MethodGet, api: "fresh", failRefetch: true,
			wantStatus: 401, wantBody: "rejected #1",
			wantAuths: []string{"tok-1"}, wantBodies: []string{""},
			wantFetches: 2, wantInv: []string{"tok-1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu := newEmulator(t, sourcetest.Options{})
			src := &spySource{CachedSource: newSource(t, emu)}
			stale := prime(t, src)
			emu.RevokeAll()
			if tt.failRefetch {
				emu.FailNext(1, http.StatusBadRequest, "") // 4xx: final, no retry
			}
			name := tokenNames(emu)

			var (
				mu     sync.Mutex
				auths  []string
				bodies []string
			)
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				auths = append(auths, r.Header.Get("Authorization"))
				bodies = append(bodies, string(b))
				hit := len(auths)
				mu.Unlock()
				switch {
				case tt.api == "always403":
					w.WriteHeader(http.StatusForbidden)
					fmt.Fprintf(w, "forbidden #%d", hit)
				case tt.api == "always401" || r.Header.Get("Authorization") == stale.HeaderValue():
					w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
					w.WriteHeader(http.StatusUnauthorized)
					fmt.Fprintf(w, "rejected #%d", hit)
				default:
					fmt.Fprintf(w, "ok #%d", hit)
				}
			}))
			t.Cleanup(api.Close)

			var body io.Reader
			if tt.body != "" {
				body = bytes.NewReader([]byte(tt.body))
				if tt.noGetBody {
					body = io.NopCloser(body)
				}
			}
			req, err := http.NewRequest(tt.method, api.URL+"/v1/things", body)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := req.GetBody != nil, tt.body != "" && !tt.noGetBody; got != want {
				t.Fatalf("test setup: request has GetBody = %v, want %v", got, want)
			}

			// The base records the body it is handed before sending it on:
			// net/http rewinds a consumed body with GetBody on its own, which
			// would hide a retry that forgot to.
			var sent []string
			base := roundTripperFunc(func(r *http.Request) (*http.Response, error) {
				var b []byte
				if r.Body != nil {
					b, _ = io.ReadAll(r.Body)
					r.Body.Close()
				}
				mu.Lock()
				sent = append(sent, string(b))
				mu.Unlock()
				r2 := r.Clone(r.Context())
				r2.Body, r2.GetBody, r2.ContentLength = nil, nil, int64(len(b))
				if len(b) > 0 {
					r2.Body = io.NopCloser(bytes.NewReader(b))
				}
				return http.DefaultTransport.RoundTrip(r2)
			})

			resp, err := tokenhttp.NewTransport(src, tokenhttp.WithBase(base)).RoundTrip(req)
			if err != nil {
				t.Fatalf("RoundTrip: %v", err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("reading the response body: %v", err)
			}
			if got, want := resp.StatusCode, tt.wantStatus; got != want {
				t.Errorf("status = %d, want %d", got, want)
			}
			if got, want := string(got), tt.wantBody; got != want {
				t.Errorf("response body = %q, want %q", got, want)
			}
			mu.Lock()
			gotAuths, gotBodies, gotSent := slices.Clone(auths), slices.Clone(bodies), slices.Clone(sent)
			mu.Unlock()
			if got, want := gotSent, tt.wantBodies; !slices.Equal(got, want) {
				t.Errorf("base was handed bodies %q, want %q", got, want)
			}
			if got, want := name(gotAuths...), tt.wantAuths; !slices.Equal(got, want) {
				t.Errorf("API's Authorization = %q, want %q", got, want)
			}
			if got, want := gotBodies, tt.wantBodies; !slices.Equal(got, want) {
				t.Errorf("API's bodies = %q, want %q", got, want)
			}
			if got, want := int64(emu.TokenRequests()), tt.wantFetches; got != want {
				t.Errorf("token requests = %d, want %d", got, want)
			}
			if !tt.skipInv {
				if got, _ := src.invalidations(); !slices.Equal(name(got...), tt.wantInv) {
					t.Errorf("invalidated %q, want %q", name(got...), tt.wantInv)
				}
			}
			if got := req.Header.Get("Authorization"); got != "" {
				t.Errorf("caller's request has Authorization %q after RoundTrip, want none", got)
			}
		})
	}
}

// TestTransportConcurrent401OneFetch sends n requests that all carry the
// same stale token and all get 401: the source must fetch one new token,
// not one per request. "together" answers the n 401s at once (one shared
// fetch); "staggered" answers one first and the others only once the new
// token is in use, so they invalidate the old token after the new one is

// A 401 whose Bearer challenge says the scope is insufficient (or the
// request is malformed) is not fixed by a new token: no refresh, no retry.
func TestTransport401ChallengeDecidesRefresh(t *testing.T) {
	tests := []struct {
		challenge     string
		wantAPIHits   int32
		wantTokenReqs int
	}{
		{`Bearer realm="api", error="insufficient_scope", scope="orders:write"`, 1, 1},
		{`Bearer error="invalid_request"`, 1, 1},
		{`Bearer realm="api", error="invalid_token"`, 2, 2},
		{``, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.challenge, func(t *testing.T) {
			checkLeaks(t)
			idp := newEmulator(t, sourcetest.Options{})
			var hits atomic.Int32
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				if tt.challenge != "" {
					w.Header().Set("WWW-Authenticate", tt.challenge)
				}
				w.WriteHeader(http.StatusUnauthorized)
			}))
			t.Cleanup(api.Close)
			src := newSource(t, idp)
			resp, err := tokenhttp.NewClient(src).Get(api.URL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got, want := resp.StatusCode, http.StatusUnauthorized; got != want {
				t.Errorf("status = %d, want %d", got, want)
			}
			if got := hits.Load(); got != tt.wantAPIHits {
				t.Errorf("API hits = %d, want %d", got, tt.wantAPIHits)
			}
			if got := idp.TokenRequests(); got != tt.wantTokenReqs {
				t.Errorf("token requests = %d, want %d", got, tt.wantTokenReqs)
			}
			api.CloseClientConnections()
			http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		})
	}
}

// TestTransportConcurrent401OneFetch sends n requests that all carry the
// same stale token and all get 401: the source must fetch one new token,
// not one per request. "together" answers the n 401s at once (one shared
// fetch); "staggered" answers one first and the others only once the new
// token is in use, so they invalidate the old token after the new one is
// cached: only invalidate-by-identity keeps the new one.
func TestTransportConcurrent401OneFetch(t *testing.T) {
	const n = 100
	for _, stagger := range []bool{false, true} {
		name := map[bool]string{false: "together", true: "staggered"}[stagger]
		t.Run(name, func(t *testing.T) {
			emu := newEmulator(t, sourcetest.Options{})
			src := &spySource{CachedSource: newSource(t, emu)}
			stale := prime(t, src)
			emu.RevokeAll() // tok-1 is stale

			var (
				staleHits, freshHits atomic.Int64
				allStale             = make(chan struct{}) // closed when n requests carried the stale token
				freshSeen            = make(chan struct{}) // closed when the new token first arrives
				freshOnce            sync.Once
			)
			wait := func(r *http.Request, ch <-chan struct{}) {
				select {
				case <-ch:
				case <-time.After(10 * time.Second):
				case <-r.Context().Done():
				}
			}
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch auth := r.Header.Get("Authorization"); {
				case auth == stale.HeaderValue():
					k := staleHits.Add(1)
					if k == n {
						close(allStale)
					}
					wait(r, allStale) // every request has the stale token
					if stagger && k != 1 {
						wait(r, freshSeen)
					}
					w.WriteHeader(http.StatusUnauthorized)
				case slices.Contains(emu.IssuedTokens(), strings.TrimPrefix(auth, "Bearer ")):
					freshHits.Add(1)
					freshOnce.Do(func() { close(freshSeen) })
					io.WriteString(w, "ok")
				default:
					w.WriteHeader(http.StatusUnauthorized)
				}
			}))
			t.Cleanup(api.Close)

			client := tokenhttp.NewClient(src)
			statuses := make([]int, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					resp, err := client.Get(api.URL)
					if err != nil {
						errs[i] = err
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					statuses[i] = resp.StatusCode
				})
			}
			wg.Wait()

			bad := 0
			for i := range n {
				if errs[i] != nil || statuses[i] != http.StatusOK {
					if bad++; bad <= 3 {
						t.Errorf("request %d: status %d, error %v; want status 200", i, statuses[i], errs[i])
					}
				}
			}
			if got, want := emu.TokenRequests(), 2; got != want {
				t.Errorf("token requests = %d, want %d (the priming one and ONE refetch)", got, want)
			}
			if got, want := staleHits.Load(), int64(n); got != want {
				t.Errorf("API hits with the stale token = %d, want %d", got, want)
			}
			if got, want := freshHits.Load(), int64(n); got != want {
				t.Errorf("API hits with the new token = %d, want %d", got, want)
			}
			inv, dropped := src.invalidations()
			if got, want := len(inv), n; got != want {
				t.Errorf("Invalidate called %d times, want %d", got, want)
			}
			for _, tok := range inv {
				if tok != stale.AccessToken {
					t.Errorf("Invalidate got another token than the stale one")
					break
				}
			}
			if got, want := dropped, 1; got != want {
				t.Errorf("Invalidate dropped a token %d times, want %d", got, want)
			}
		})
	}
}

// TestTransport401StormBounded: an API that rejects every token (401 with
// invalid_token) is not rejecting the token. 1000 calls from 10 goroutines
// get the API's 401 every time, but the source fetches at most 5 tokens:
// once a freshly fetched token is rejected too, it stops dropping tokens
// and backs off, and counts the suppressed invalidations.
func TestTransport401StormBounded(t *testing.T) {
	const goroutines, calls = 10, 100
	emu := newEmulator(t, sourcetest.Options{})
	_, reader, tel := telemetrySDK(t)
	src := newSource(t, emu, func(c *source.Config) { c.Telemetry = tel })
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(api.Close)
	client := tokenhttp.NewClient(src)
	t.Cleanup(client.CloseIdleConnections)

	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for range goroutines {
		wg.Go(func() {
			for range calls {
				resp, err := client.Get(api.URL)
				if err != nil {
					t.Errorf("Get: %v", err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				statuses[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if got, want := statuses[http.StatusUnauthorized], goroutines*calls; got != want {
		t.Errorf("401s returned = %d (statuses %v), want %d: the API's 401 comes back", got, statuses, want)
	}
	t.Logf("%d calls, %d token requests", goroutines*calls, emu.TokenRequests())
	if got := emu.TokenRequests(); got > 5 {
		t.Errorf("token requests = %d, want at most 5 for %d calls that all get 401", got, goroutines*calls)
	}

	var suppressed int64
	for _, n := range metricPoints(t, reader, telemetry.MetricSuppressedInvalidations) {
		suppressed += n
	}
	if suppressed == 0 {
		t.Errorf("%s = 0, want the suppressed invalidations counted", telemetry.MetricSuppressedInvalidations)
	}
}

// TestTransport401RevokedReplacedAtOnce: a token the API revoked is
// replaced at once (one extra fetch), and so is its replacement when the
// API accepted it and then revoked it too: the backoff is for tokens
// rejected before any API accepted them.
func TestTransport401RevokedReplacedAtOnce(t *testing.T) {
	emu := newEmulator(t, sourcetest.Options{})
	src := newSource(t, emu)
	client := tokenhttp.NewClient(src)
	t.Cleanup(client.CloseIdleConnections)
	get := func(what string) {
		t.Helper()
		resp, err := client.Get(emu.ResourceURL)
		if err != nil {
			t.Fatalf("%s: Get: %v", what, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d, want 200", what, resp.StatusCode)
		}
	}
	get("first call")
	for i, want := range []int64{2, 3, 4} {
		emu.RevokeAll() // the current token is revoked
		get("after revocation")
		get("again")
		if got := int64(emu.TokenRequests()); got != want {
			t.Errorf("revocation %d: token requests = %d, want %d (one extra fetch per revocation)", i+1, got, want)
		}
	}
}

func TestTransportRedirectOrigin(t *testing.T) {
	tok := &source.Token{AccessToken: "abc"}

	type hit struct{ server, auth string }
	var (
		mu   sync.Mutex
		hits []hit
	)
	record := func(server string, r *http.Request) {
		mu.Lock()
		hits = append(hits, hit{server, r.Header.Get("Authorization")})
		mu.Unlock()
	}
	var aURL string
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/back":
			http.Redirect(w, r, aURL+"/final", http.StatusFound)
			return
		case "/unauthorized":
			record("B", r)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		record("B", r)
	}))
	t.Cleanup(b.Close)
	bu, err := url.Parse(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	bPort := bu.Port()

	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/same":
			http.Redirect(w, r, "/final", http.StatusFound)
		case "/other-port":
			http.Redirect(w, r, "http://127.0.0.1:"+bPort+"/final", http.StatusFound)
		case "/other-host":
			http.Redirect(w, r, "http://localhost:"+bPort+"/final", http.StatusTemporaryRedirect)
		case "/bounce":
			http.Redirect(w, r, b.URL+"/back", http.StatusFound)
		case "/other-401":
			http.Redirect(w, r, b.URL+"/unauthorized", http.StatusFound)
		default:
			record("A", r)
		}
	}))
	t.Cleanup(a.Close)
	aURL = a.URL

	tests := []struct {
		name       string
		path       string
		want       hit
		wantStatus int
	}{
		{"same origin keeps the token", "/same", hit{"A", "Bearer abc"}, http.StatusOK},
		{"same host other port gets none", "/other-port", hit{"B", ""}, http.StatusOK},
		{"other host gets none", "/other-host", hit{"B", ""}, http.StatusOK},
		{"back to the origin keeps the token", "/bounce", hit{"A", "Bearer abc"}, http.StatusOK},
		// Another origin's 401 says nothing about our token.
		{"401 from another origin drops no token", "/other-401", hit{"B", ""}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			hits = nil
			mu.Unlock()
			src := &countingSource{tok: tok}
			resp, err := tokenhttp.NewClient(src).Get(a.URL + tt.path)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			resp.Body.Close()
			if got, want := resp.StatusCode, tt.wantStatus; got != want {
				t.Errorf("status = %d, want %d", got, want)
			}
			if got := src.invalidations.Load(); got != 0 {
				t.Errorf("Invalidate called %d times, want 0", got)
			}
			mu.Lock()
			got := slices.Clone(hits)
			mu.Unlock()
			if want := []hit{tt.want}; !slices.Equal(got, want) {
				t.Errorf("final hits = %+v, want %+v", got, want)
			}
		})
	}
}

// TestTransportRedirectBaseWithoutResponseRequest: http.Client does not
// fill Response.Request; a base that leaves it nil (a stub, a cache, a
// recording proxy) must not make a redirect to another host look like the
// first request: when the chain cannot be walked back, no token.
func TestTransportRedirectBaseWithoutResponseRequest(t *testing.T) {
	var (
		mu   sync.Mutex
		sent = map[string]string{} // host: Authorization
	)
	base := roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		sent[r.URL.Host] = r.Header.Get("Authorization")
		mu.Unlock()
		resp := reply(nil, http.StatusOK, "ok") // Request left nil
		if r.URL.Host == "api.example.invalid" {
			resp = reply(nil, http.StatusFound, "")
			resp.Header.Set("Location", "https://evil.example.invalid/steal")
		}
		return resp, nil
	})
	resp, err := tokenhttp.NewClient(staticSource(&source.Token{AccessToken: "abc"}), tokenhttp.WithBase(base)).Get("https://api.example.invalid/start")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if got, want := sent["api.example.invalid"], "Bearer abc"; got != want {
		t.Errorf("first request Authorization = %q, want %q", got, want)
	}
	if got, ok := sent["evil.example.invalid"]; !ok || got != "" {
		t.Errorf("redirect to another host: sent = %v, Authorization %q; want it sent without a token", ok, got)
	}
}

func TestTransportCleartext(t *testing.T) {
	tok := &source.Token{AccessToken: "abc"}
	tests := []struct {
		name     string
		url      string
		opts     []tokenhttp.Option
		wantSent bool
	}{
		{"http to a non-loopback host refused", "http://example.invalid/x", nil, false},
		{"http to a non-loopback IP refused", "http://192.0.2.1:8080/x", nil, false},
		{"http to 127.0.0.1", "http://127.0.0.1:8080/x", nil, true},
		{"http to localhost", "http://localhost/x", nil, true},
		{"http to ::1", "http://[::1]:8080/x", nil, true},
		{"https to a non-loopback host", "https://example.invalid/x", nil, true},
		{"http to a non-loopback host with WithInsecureHTTP", "http://example.invalid/x", []tokenhttp.Option{tokenhttp.WithInsecureHTTP()}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := &recordingBase{}
			tr := tokenhttp.NewTransport(staticSource(tok), append([]tokenhttp.Option{tokenhttp.WithBase(base)}, tt.opts...)...)
			body := &closeRecorder{Reader: strings.NewReader("x")}
			req, err := http.NewRequest(http.MethodPut, tt.url, body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := tr.RoundTrip(req)
			calls := base.calls()
			if !tt.wantSent {
				if resp != nil {
					resp.Body.Close()
					t.Errorf("got a response (status %d), want none", resp.StatusCode)
				}
				if err == nil || !strings.Contains(err.Error(), "https") || !strings.Contains(err.Error(), "WithInsecureHTTP") {
					t.Errorf("error = %v, want one that mentions https and WithInsecureHTTP", err)
				}
				if got := len(calls); got != 0 {
					t.Errorf("base called %d times, want 0", got)
				}
				if !body.closed.Load() {
					t.Errorf("request body not closed")
				}
				return
			}
			if err != nil {
				t.Fatalf("RoundTrip: %v", err)
			}
			resp.Body.Close()
			if got := len(calls); got != 1 {
				t.Fatalf("base called %d times, want 1", got)
			}
			if got, want := calls[0].Header.Get("Authorization"), "Bearer abc"; got != want {
				t.Errorf("sent Authorization = %q, want %q", got, want)
			}
		})
	}
}

// TestTransportTokenEndpointError: when the token endpoint refuses the
// client, the API is not called and the *source.Error comes through
// http.Client.Do, without the client secret in the text.
func TestTransportTokenEndpointError(t *testing.T) {
	const wrongSecret = "S3cr3t-client-7f2a"
	emu := newEmulator(t, sourcetest.Options{})
	src := newSource(t, emu, func(c *source.Config) { c.ClientSecret = wrongSecret })

	var apiHits atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { apiHits.Add(1) }))
	t.Cleanup(api.Close)

	resp, err := tokenhttp.NewClient(src).Get(api.URL)
	if resp != nil {
		resp.Body.Close()
		t.Fatalf("got a response (status %d), want an error", resp.StatusCode)
	}
	var se *source.Error
	if !errors.As(err, &se) {
		t.Fatalf("errors.As(%v, *source.Error) = false, want true", err)
	}
	if got, want := se.Code, source.CodeInvalidClient; got != want {
		t.Errorf("Code = %q, want %q", got, want)
	}
	if got, want := se.StatusCode, http.StatusUnauthorized; got != want {
		t.Errorf("StatusCode = %d, want %d", got, want)
	}
	if got, want := emu.TokenRequests(), 1; got != want {
		t.Errorf("token requests = %d, want %d", got, want)
	}
	if got := apiHits.Load(); got != 0 {
		t.Errorf("API hits = %d, want 0", got)
	}
	for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", se)} {
		if strings.Contains(text, wrongSecret) {
			t.Errorf("error text has the client secret: %s", text)
		}
	}
}

func TestWithBase(t *testing.T) {
	src := staticSource(&source.Token{AccessToken: "abc"})
	tests := []struct {
		name string
		opts []tokenhttp.Option
	}{
		{"no option", nil},
		{"WithBase(nil)", []tokenhttp.Option{tokenhttp.WithBase(nil)}},
		{"nil Option", []tokenhttp.Option{nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := tokenhttp.TransportBase(tokenhttp.NewTransport(src, tt.opts...)), http.DefaultTransport; got != want {
				t.Errorf("base = %T %p, want http.DefaultTransport", got, got)
			}
		})
	}

	t.Run("WithBase(nil) sends", func(t *testing.T) {
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, r.Header.Get("Authorization"))
		}))
		t.Cleanup(api.Close)
		resp, err := tokenhttp.NewClient(src, tokenhttp.WithBase(nil)).Get(api.URL)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got, want := string(got), "Bearer abc"; got != want {
			t.Errorf("API's Authorization = %q, want %q", got, want)
		}
	})

	t.Run("NewClient uses the Transport over the base", func(t *testing.T) {
		base := &recordingBase{}
		c := tokenhttp.NewClient(src, tokenhttp.WithBase(base))
		if _, ok := c.Transport.(*tokenhttp.Transport); !ok {
			t.Errorf("NewClient's Transport is %T, want *Transport", c.Transport)
		}
		resp, err := c.Get("https://api.example.invalid/")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		resp.Body.Close()
		calls := base.calls()
		if got := len(calls); got != 1 {
			t.Fatalf("base called %d times, want 1", got)
		}
		if got, want := calls[0].Header.Get("Authorization"), "Bearer abc"; got != want {
			t.Errorf("sent Authorization = %q, want %q", got, want)
		}
	})
}

// TestTelemetryUnauthorizedRetry checks that the Transport's retry after a
// 401 is an event on the request's span and counts once, and that the
// fetch it causes is a child of that span.
func TestTelemetryUnauthorizedRetry(t *testing.T) {
	tests := []struct {
		name        string
		revoke      bool
		wantEvents  int
		wantRetries map[string]int64
		wantReasons []string // of the fetch spans, in order
	}{
		{"token accepted", false, 0, map[string]int64{}, []string{telemetry.ReasonCold}},
		{"token revoked", true, 1, map[string]int64{"": 1}, []string{telemetry.ReasonCold, telemetry.ReasonRejected}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			idp := newEmulator(t, sourcetest.Options{})
			rec, reader, tel := telemetrySDK(t)
			src := newSource(t, idp, func(c *source.Config) { c.Telemetry = tel })
			if _, err := src.Token(context.Background()); err != nil {
				t.Fatalf("Token: %v", err)
			}
			if tt.revoke {
				idp.RevokeAll()
			}
			client := &http.Client{Transport: tokenhttp.NewTransport(src,
				tokenhttp.WithTelemetry(tel), tokenhttp.WithBase(idp.Client().Transport))}

			ctx, parent := tel.TracerProvider.Tracer("test").Start(context.Background(), "request")
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, idp.ResourceURL, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			parent.End()
			if got, want := resp.StatusCode, http.StatusOK; got != want {
				t.Errorf("status = %d, want %d", got, want)
			}

			var reasons []string
			var events int
			for _, sp := range rec.Ended() {
				switch sp.Name() {
				case telemetry.SpanFetch:
					for _, kv := range sp.Attributes() {
						if kv.Key == telemetry.AttrRefreshReason {
							reasons = append(reasons, kv.Value.AsString())
						}
					}
					if tt.revoke && len(reasons) == 2 {
						if got, want := sp.Parent().SpanID(), parent.SpanContext().SpanID(); got != want {
							t.Errorf("the rejected fetch's parent = %v, want the request's span %v", got, want)
						}
					}
				case "request":
					for _, ev := range sp.Events() {
						if ev.Name == telemetry.EventUnauthorizedRetry {
							events++
						}
					}
				}
			}
			if !slices.Equal(reasons, tt.wantReasons) {
				t.Errorf("fetch reasons = %q, want %q", reasons, tt.wantReasons)
			}
			if events != tt.wantEvents {
				t.Errorf("%s events on the request's span = %d, want %d", telemetry.EventUnauthorizedRetry, events, tt.wantEvents)
			}
			got := metricPoints(t, reader, telemetry.MetricUnauthorizedRetries)
			if len(got) != len(tt.wantRetries) {
				t.Errorf("%s = %v, want %v", telemetry.MetricUnauthorizedRetries, got, tt.wantRetries)
			}
			for k, w := range tt.wantRetries {
				if got[k] != w {
					t.Errorf("%s{%s} = %d, want %d", telemetry.MetricUnauthorizedRetries, k, got[k], w)
				}
			}
		})
	}
}

// TestTransport401RenewedTokenRevokedToo: a RevokeAll that lands while a
// renewal is in flight revokes the old token and its replacement. The
// request that carried the old token is retried with the replacement and
// gets 401 again, so the source takes the API for one that rejects every
// token and keeps the replacement for its reject backoff (1 s): the 401s
// reach callers until then, and the next call after it gets a new token.
// The soak's soakRejectHold is this backoff.
func TestTransport401RenewedTokenRevokedToo(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the source's 1 s reject backoff")
	}
	emu := newEmulator(t, sourcetest.Options{})
	src := newSource(t, emu)
	old := prime(t, src)
	var raced atomic.Bool
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if raced.CompareAndSwap(false, true) {
			// While this request is in flight, a renewal replaces the
			// old token, and then every token is revoked.
			src.Invalidate(old)
			if _, err := src.Token(r.Context()); err != nil {
				t.Errorf("the renewal: %v", err)
			}
			emu.RevokeAll()
		}
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, emu.ResourceURL, nil)
		req.Header.Set("Authorization", r.Header.Get("Authorization"))
		resp, err := emu.Client().Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		w.Header().Set("WWW-Authenticate", resp.Header.Get("WWW-Authenticate"))
		w.WriteHeader(resp.StatusCode)
	}))
	t.Cleanup(api.Close)
	client := tokenhttp.NewClient(src)
	t.Cleanup(client.CloseIdleConnections)

	start := time.Now()
	var first, recovered time.Duration
	for n := 0; time.Since(start) < 3*time.Second; n++ {
		resp, err := client.Get(api.URL)
		if err != nil {
			t.Fatalf("call %d: %v", n, err)
		}
		resp.Body.Close()
		if n == 0 {
			first = time.Since(start)
			if got, want := resp.StatusCode, http.StatusUnauthorized; got != want {
				t.Fatalf("the raced call's status = %d, want %d", got, want)
			}
		}
		if resp.StatusCode == http.StatusOK {
			recovered = time.Since(start)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if recovered == 0 {
		t.Fatalf("no call got 200 within 3 s of the race, want one after the 1 s backoff")
	}
	t.Logf("the raced call answered at +%v; the first 200 at +%v", first.Round(time.Millisecond), recovered.Round(time.Millisecond))
	if recovered > 1500*time.Millisecond {
		t.Errorf("first 200 at +%v, want within the 1 s reject backoff (and a call)", recovered.Round(time.Millisecond))
	}
	if got, want := emu.TokenRequests(), 3; got != want {
		t.Errorf("token requests = %d, want %d (the old token, its replacement, one after the backoff)", got, want)
	}
}

// TestTransportEmptyToken: a token with neither an AccessToken nor an
// Authorization is an error and nothing is sent (a bare "Bearer " went
// out), as a nil token is.
func TestTransportEmptyToken(t *testing.T) {
	for _, tok := range []*source.Token{nil, {TokenType: "Bearer"}} {
		sent := false
		tr := tokenhttp.NewTransport(staticSource(tok), tokenhttp.WithBase(roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			sent = true
			return reply(r, 200, ""), nil
		})))
		req := httptest.NewRequest(http.MethodGet, "https://api.example/x", nil)
		resp, err := tr.RoundTrip(req)
		if err == nil || sent {
			if resp != nil {
				resp.Body.Close()
			}
			t.Errorf("RoundTrip with the token %v = %v, sent %v; want an error and nothing sent", tok, err, sent)
		}
	}
}
