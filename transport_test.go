package tokenhttp

import (
	"bytes"
	"context"
	"encoding/json"
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

	"go.uber.org/goleak"

	"github.com/tokenhttp/tokenhttp/source"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// roundTripperFunc is a base RoundTripper double.
type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// sourceFunc is a TokenSource double.
type sourceFunc func(context.Context) (*source.Token, error)

func (f sourceFunc) Token(ctx context.Context) (*source.Token, error) { return f(ctx) }

func staticSource(tok *source.Token) sourceFunc {
	return func(context.Context) (*source.Token, error) { return tok, nil }
}

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

// reply builds a response a base double returns.
func reply(req *http.Request, status int, body string) *http.Response {
	return &http.Response{
		StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: req,
	}
}

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

const (
	clientID     = "client-id"
	clientSecret = "S3cr3t-client-7f2a"
	// providerText is in every error reply of tokenServer: it must not
	// reach a gateway's client.
	providerText = "provider-says-no-9c1e"
)

// tokenServer is an RFC 6749 token endpoint that issues "tok-1",
// "tok-2", ... to the client credentials clientID and clientSecret.
type tokenServer struct {
	*httptest.Server
	requests atomic.Int64 // token requests received
	issued   atomic.Int64 // the number of the newest token issued

	mu   sync.Mutex // guards fail
	fail string     // "" issues a token; otherwise the failure to act out
}

func newTokenServer(t *testing.T) *tokenServer {
	t.Helper()
	ts := &tokenServer{}
	ts.Server = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tokenServer) setFail(mode string) {
	ts.mu.Lock()
	ts.fail = mode
	ts.mu.Unlock()
}

// newest is the access token an API that accepts only the newest token
// accepts.
func (ts *tokenServer) newest() string { return fmt.Sprintf("tok-%d", ts.issued.Load()) }

// rotate issues a token to somebody else: the tokens issued before are no
// longer the newest.
func (ts *tokenServer) rotate() { ts.issued.Add(1) }

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	ts.requests.Add(1)
	// Read the request to the end, so that the server notices when the
	// client goes away (r.Context is done then).
	_, _ = io.Copy(io.Discard, r.Body)
	ts.mu.Lock()
	mode := ts.fail
	ts.mu.Unlock()
	if id, secret, _ := r.BasicAuth(); mode == "" && (id != clientID || secret != clientSecret) {
		mode = "invalid_client"
	}
	send := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	refusal := func(code string) map[string]string {
		// A careless provider echoes the secret in its description.
		return map[string]string{"error": code, "error_description": providerText + ": client_secret " + clientSecret}
	}
	switch mode {
	case "":
		n := ts.issued.Add(1)
		send(http.StatusOK, map[string]any{"access_token": fmt.Sprintf("tok-%d", n), "token_type": "bearer", "expires_in": 3600})
	case "invalid_client":
		send(http.StatusUnauthorized, refusal("invalid_client"))
	case "invalid_grant":
		send(http.StatusBadRequest, refusal("invalid_grant"))
	case "unavailable":
		w.Header().Set("Retry-After", "7")
		send(http.StatusServiceUnavailable, refusal("temporarily_unavailable"))
	case "server_error":
		send(http.StatusInternalServerError, refusal("server_error"))
	case "hang":
		<-r.Context().Done()
	default:
		panic("tokenServer: unknown mode " + mode)
	}
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

func newSource(t *testing.T, ts *tokenServer, mods ...func(*source.Config)) *spySource {
	t.Helper()
	cfg := source.Config{TokenURL: ts.URL + "/token", ClientID: clientID, ClientSecret: clientSecret}
	for _, mod := range mods {
		mod(&cfg)
	}
	src, err := source.New(cfg)
	if err != nil {
		t.Fatalf("source.New: %v", err)
	}
	t.Cleanup(func() { src.Close() })
	return &spySource{CachedSource: src}
}

// prime has src fetch its first token and checks it is want.
func prime(t *testing.T, src source.TokenSource, want string) *source.Token {
	t.Helper()
	tok, err := src.Token(context.Background())
	if err != nil {
		t.Fatalf("priming the source: %v", err)
	}
	if got := tok.AccessToken; got != want {
		t.Fatalf("primed token = %q, want %q", got, want)
	}
	return tok
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
			tr := NewTransport(staticSource(tt.tok), WithBase(base))

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

func TestTransportEarlyReturnsCloseBody(t *testing.T) {
	errNoToken := errors.New("no token today")
	tok := &source.Token{AccessToken: "abc"}
	tests := []struct {
		name    string
		src     source.TokenSource
		url     string // "" makes a request with a nil URL
		wantErr string // a substring of the error
	}{
		{"token error", sourceFunc(func(context.Context) (*source.Token, error) { return nil, errNoToken }), "https://api.example.invalid/", "no token today"},
		{"cleartext refusal", staticSource(tok), "http://example.invalid/", "https"},
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

			resp, err := NewTransport(tt.src, WithBase(base)).RoundTrip(req)
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
			resp, err := NewTransport(staticSource(tok), WithBase(tt.base)).RoundTrip(req)
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
// gets tok-3.
func TestTransport401(t *testing.T) {
	const payload = "payload-123"
	tests := []struct {
		name        string
		method      string
		body        string // "" sends no body
		noGetBody   bool   // hide the body's GetBody
		api         string // "newest": 401 unless the newest token; "always401"; "always403"
		failRefetch bool   // the token endpoint refuses after the first token

		wantStatus  int
		wantBody    string
		wantAuths   []string // Authorization of each API hit
		wantBodies  []string // request body of each API hit
		wantFetches int64    // token requests, the priming one included
		wantInv     []string // tokens invalidated; nil: none
		skipInv     bool     // do not check wantInv
	}{
		{
			name: "stale token: one refetch, one retry", method: http.MethodGet, api: "newest",
			wantStatus: 200, wantBody: "ok #2",
			wantAuths: []string{"Bearer tok-1", "Bearer tok-3"}, wantBodies: []string{"", ""},
			wantFetches: 2, wantInv: []string{"tok-1"},
		},
		{
			name: "second 401 returned as is", method: http.MethodGet, api: "always401",
			wantStatus: 401, wantBody: "rejected #2",
			wantAuths: []string{"Bearer tok-1", "Bearer tok-3"}, wantBodies: []string{"", ""},
			wantFetches: 2, wantInv: []string{"tok-1"},
		},
		{
			name: "POST with GetBody replayed with the same body", method: http.MethodPost, body: payload, api: "newest",
			wantStatus: 200, wantBody: "ok #2",
			wantAuths: []string{"Bearer tok-1", "Bearer tok-3"}, wantBodies: []string{payload, payload},
			wantFetches: 2, wantInv: []string{"tok-1"},
		},
		{
			name: "POST without GetBody not retried", method: http.MethodPost, body: payload, noGetBody: true, api: "newest",
			wantStatus: 401, wantBody: "rejected #1",
			wantAuths: []string{"Bearer tok-1"}, wantBodies: []string{payload},
			wantFetches: 1, skipInv: true,
		},
		{
			name: "403 does not refresh", method: http.MethodGet, api: "always403",
			wantStatus: 403, wantBody: "forbidden #1",
			wantAuths: []string{"Bearer tok-1"}, wantBodies: []string{""},
			wantFetches: 1, wantInv: nil,
		},
		{
			name: "source fails on the retry: the original 401", method: http.MethodGet, api: "newest", failRefetch: true,
			wantStatus: 401, wantBody: "rejected #1",
			wantAuths: []string{"Bearer tok-1"}, wantBodies: []string{""},
			wantFetches: 2, wantInv: []string{"tok-1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t)
			src := newSource(t, ts)
			prime(t, src, "tok-1")
			ts.rotate()
			if tt.failRefetch {
				ts.setFail("invalid_grant")
			}

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
				case tt.api == "always401" || r.Header.Get("Authorization") != "Bearer "+ts.newest():
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

			resp, err := NewTransport(src, WithBase(base)).RoundTrip(req)
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
			if got, want := gotAuths, tt.wantAuths; !slices.Equal(got, want) {
				t.Errorf("API saw Authorization %q, want %q", got, want)
			}
			if got, want := gotBodies, tt.wantBodies; !slices.Equal(got, want) {
				t.Errorf("API saw bodies %q, want %q", got, want)
			}
			if got, want := ts.requests.Load(), tt.wantFetches; got != want {
				t.Errorf("token requests = %d, want %d", got, want)
			}
			if !tt.skipInv {
				if got, _ := src.invalidations(); !slices.Equal(got, tt.wantInv) {
					t.Errorf("invalidated %q, want %q", got, tt.wantInv)
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
// cached: only invalidate-by-identity keeps the new one.
func TestTransportConcurrent401OneFetch(t *testing.T) {
	const n = 100
	for _, stagger := range []bool{false, true} {
		name := map[bool]string{false: "together", true: "staggered"}[stagger]
		t.Run(name, func(t *testing.T) {
			ts := newTokenServer(t)
			src := newSource(t, ts)
			prime(t, src, "tok-1")
			ts.rotate() // tok-2 goes to someone else: tok-1 is stale

			var (
				staleHits, freshHits atomic.Int64
				allStale             = make(chan struct{}) // closed when n requests carried tok-1
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
				switch r.Header.Get("Authorization") {
				case "Bearer tok-1":
					k := staleHits.Add(1)
					if k == n {
						close(allStale)
					}
					wait(r, allStale) // every request has the stale token
					if stagger && k != 1 {
						wait(r, freshSeen)
					}
					w.WriteHeader(http.StatusUnauthorized)
				case "Bearer " + ts.newest():
					freshHits.Add(1)
					freshOnce.Do(func() { close(freshSeen) })
					io.WriteString(w, "ok")
				default:
					w.WriteHeader(http.StatusUnauthorized)
				}
			}))
			t.Cleanup(api.Close)

			client := NewClient(src)
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
			if got, want := ts.requests.Load(), int64(2); got != want {
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
				if tok != "tok-1" {
					t.Errorf("Invalidate(%q), want only tok-1", tok)
					break
				}
			}
			if got, want := dropped, 1; got != want {
				t.Errorf("Invalidate dropped a token %d times, want %d", got, want)
			}
		})
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
			resp, err := NewClient(src).Get(a.URL + tt.path)
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
	resp, err := NewClient(staticSource(&source.Token{AccessToken: "abc"}), WithBase(base)).Get("https://api.example.invalid/start")
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
		opts     []Option
		wantSent bool
	}{
		{"http to a non-loopback host refused", "http://example.invalid/x", nil, false},
		{"http to a non-loopback IP refused", "http://192.0.2.1:8080/x", nil, false},
		{"http to 127.0.0.1", "http://127.0.0.1:8080/x", nil, true},
		{"http to localhost", "http://localhost/x", nil, true},
		{"http to ::1", "http://[::1]:8080/x", nil, true},
		{"https to a non-loopback host", "https://example.invalid/x", nil, true},
		{"http to a non-loopback host with WithInsecureHTTP", "http://example.invalid/x", []Option{WithInsecureHTTP()}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := &recordingBase{}
			tr := NewTransport(staticSource(tok), append([]Option{WithBase(base)}, tt.opts...)...)
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
	ts := newTokenServer(t)
	ts.setFail("invalid_client")
	src := newSource(t, ts)

	var apiHits atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { apiHits.Add(1) }))
	t.Cleanup(api.Close)

	resp, err := NewClient(src).Get(api.URL)
	if resp != nil {
		resp.Body.Close()
		t.Fatalf("got a response (status %d), want an error", resp.StatusCode)
	}
	if err == nil {
		t.Fatal("Get succeeded, want an error")
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
	if got, want := ts.requests.Load(), int64(1); got != want {
		t.Errorf("token requests = %d, want %d", got, want)
	}
	if got := apiHits.Load(); got != 0 {
		t.Errorf("API hits = %d, want 0", got)
	}
	for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", se)} {
		if strings.Contains(text, clientSecret) {
			t.Errorf("error text has the client secret: %s", text)
		}
	}
}

func TestWithBase(t *testing.T) {
	src := staticSource(&source.Token{AccessToken: "abc"})
	tests := []struct {
		name string
		opts []Option
	}{
		{"no option", nil},
		{"WithBase(nil)", []Option{WithBase(nil)}},
		{"nil Option", []Option{nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := NewTransport(src, tt.opts...).base, http.DefaultTransport; got != want {
				t.Errorf("base = %T %p, want http.DefaultTransport", got, got)
			}
		})
	}

	t.Run("WithBase(nil) sends", func(t *testing.T) {
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, r.Header.Get("Authorization"))
		}))
		t.Cleanup(api.Close)
		resp, err := NewClient(src, WithBase(nil)).Get(api.URL)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got, want := string(got), "Bearer abc"; got != want {
			t.Errorf("API saw Authorization %q, want %q", got, want)
		}
	})

	t.Run("NewClient uses the Transport over the base", func(t *testing.T) {
		base := &recordingBase{}
		c := NewClient(src, WithBase(base))
		if _, ok := c.Transport.(*Transport); !ok {
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

func TestMiddlewareReplacesAuthorization(t *testing.T) {
	tests := []struct {
		name       string
		clientAuth []string
	}{
		{"none sent", nil},
		{"client's replaced", []string{"Basic Y2xpZW50OnNlY3JldA=="}},
		{"two sent, one kept", []string{"Bearer client-chosen", "Basic eA=="}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t)
			src := newSource(t, ts)
			var got []string
			called := false
			h := Middleware(src)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called = true
				got = r.Header.Values("Authorization")
			}))
			req := httptest.NewRequest(http.MethodGet, "/upstream", nil)
			if tt.clientAuth != nil {
				req.Header["Authorization"] = slices.Clone(tt.clientAuth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if !called {
				t.Fatalf("next not called; status %d, body %q", rec.Code, rec.Body.String())
			}
			if want := []string{"Bearer tok-1"}; !slices.Equal(got, want) {
				t.Errorf("next saw Authorization %q, want %q", got, want)
			}
			if got, want := req.Header.Values("Authorization"), tt.clientAuth; !slices.Equal(got, want) {
				t.Errorf("incoming request's Authorization = %q after the middleware, want it unchanged %q", got, want)
			}
		})
	}
}

func TestMiddlewareTokenFailure(t *testing.T) {
	tests := []struct {
		name           string
		mode           string
		fetchTimeout   time.Duration
		wantStatus     int
		wantRetryAfter string
	}{
		{"refused client credentials", "invalid_client", 0, http.StatusBadGateway, ""},
		{"refused grant", "invalid_grant", 0, http.StatusBadGateway, ""},
		{"unavailable with Retry-After", "unavailable", 0, http.StatusServiceUnavailable, "7"},
		{"5xx", "server_error", 0, http.StatusServiceUnavailable, ""},
		{"deadline", "hang", 100 * time.Millisecond, http.StatusGatewayTimeout, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t)
			ts.setFail(tt.mode)
			src := newSource(t, ts, func(c *source.Config) { c.FetchTimeout = tt.fetchTimeout })
			called := false
			h := Middleware(src)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/upstream", nil))

			if called {
				t.Errorf("next called, want not")
			}
			if got, want := rec.Code, tt.wantStatus; got != want {
				t.Errorf("status = %d, want %d", got, want)
			}
			if got, want := rec.Header().Get("Content-Type"), "application/problem+json"; got != want {
				t.Errorf("Content-Type = %q, want %q", got, want)
			}
			if got, want := rec.Header().Get("Retry-After"), tt.wantRetryAfter; got != want {
				t.Errorf("Retry-After = %q, want %q", got, want)
			}
			body := rec.Body.String()
			var problem struct {
				Status int `json:"status"`
			}
			if err := json.Unmarshal([]byte(body), &problem); err != nil {
				t.Errorf("body %q is not JSON: %v", body, err)
			} else if got, want := problem.Status, tt.wantStatus; got != want {
				t.Errorf("problem status = %d, want %d", got, want)
			}
			for _, secret := range []string{clientSecret, providerText} {
				if strings.Contains(body, secret) {
					t.Errorf("reply body %q contains %q", body, secret)
				}
			}
		})
	}
}
