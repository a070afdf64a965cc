package tokenhttp_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/retry"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
	"github.com/tokenhttp/tokenhttp/telemetry"
)

// gwEnv is an API gateway end to end, shut down when the test ends:
//
//	client -> gw: outer(middleware(mux)) -> ReverseProxy -> upstream -> idp.ResourceURL
//
// The upstream checks each request's Authorization against the sourcetest
// emulator idp (the emulator's protected resource) and answers with the
// status it got. The mux behind the middleware serves /healthz and
// /status/ itself, proxies /public/ and /plain/ with a plain
// http.Transport (what the upstream gets is what the middleware set), and
// proxies the rest with a tokenhttp.Transport over the gateway's source
// (which sets the header again, and handles a 401).
type gwEnv struct {
	idp      *sourcetest.Server
	src      *gwRecordingSource
	upstream *httptest.Server
	gw       *httptest.Server
	client   *http.Client

	trs []*http.Transport // closed at the end: no keep-alive goroutine outlives the test

	nextCalls atomic.Int64 // requests that reached the handler behind the middleware

	mu       sync.Mutex    // guards the fields below
	nextAuth [][]string    // the Authorization values of the requests next got
	upSeen   []http.Header // headers of the requests that reached the upstream
	localHdr []http.Header // headers of the requests /healthz and /status/ served
	localTok []bool        // whether TokenFromContext had a token for them
}

// gwSetup configures a gwEnv.
type gwSetup struct {
	idp   sourcetest.Options
	cfg   func(*source.Config)                                         // source tweaks
	mw    func(src source.TokenSource) func(http.Handler) http.Handler // nil: Middleware(src)
	outer func(http.Handler) http.Handler                              // in front of the middleware
}

// gwSecret is a client secret the token endpoint does not accept.
const gwSecret = "gw-wrong-secret-Qm27Zx"

func newGatewayEnv(t *testing.T, s gwSetup) *gwEnv {
	t.Helper()
	e := &gwEnv{idp: newEmulator(t, s.idp)}
	t.Cleanup(func() {
		for _, tr := range e.trs {
			tr.CloseIdleConnections()
		}
	})
	newTr := func() *http.Transport {
		tr := &http.Transport{}
		e.trs = append(e.trs, tr)
		return tr
	}
	var mods []func(*source.Config)
	if s.cfg != nil {
		mods = append(mods, s.cfg)
	}
	e.src = &gwRecordingSource{CachedSource: newSource(t, e.idp, mods...)}

	check := &http.Client{Transport: newTr()}
	e.upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.upSeen = append(e.upSeen, r.Header.Clone())
		e.mu.Unlock()
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, e.idp.ResourceURL, nil)
		req.Header["Authorization"] = r.Header.Values("Authorization")
		resp, err := check.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if v := resp.Header.Get("WWW-Authenticate"); v != "" {
			w.Header().Set("WWW-Authenticate", v)
		}
		w.WriteHeader(resp.StatusCode)
		fmt.Fprintf(w, "upstream %s", r.URL.Path)
	}))
	t.Cleanup(e.upstream.Close)
	target, _ := url.Parse(e.upstream.URL)
	quiet := log.New(io.Discard, "", 0)
	proxy := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: tokenhttp.NewTransport(e.src, tokenhttp.WithBase(newTr())),
		ErrorLog:  quiet,
	}
	plain := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: newTr(),
		ErrorLog:  quiet,
	}
	local := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, ok := tokenhttp.TokenFromContext(r.Context())
		e.mu.Lock()
		e.localHdr = append(e.localHdr, r.Header.Clone())
		e.localTok = append(e.localTok, ok)
		e.mu.Unlock()
		io.WriteString(w, "ok")
	})
	mux := http.NewServeMux()
	mux.Handle("/", proxy)
	mux.Handle("/public/", plain)
	mux.Handle("/plain/", plain)
	mux.Handle("/healthz", local)
	mux.Handle("/status/", local)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.nextCalls.Add(1)
		e.mu.Lock()
		e.nextAuth = append(e.nextAuth, r.Header.Values("Authorization"))
		e.mu.Unlock()
		mux.ServeHTTP(w, r)
	})
	mw := s.mw
	if mw == nil {
		mw = func(src source.TokenSource) func(http.Handler) http.Handler { return tokenhttp.Middleware(src) }
	}
	h := mw(e.src)(next)
	if s.outer != nil {
		h = s.outer(h)
	}
	e.gw = httptest.NewServer(h)
	t.Cleanup(e.gw.Close) // first: the cleanups run last to first
	e.client = &http.Client{Transport: newTr()}
	return e
}

// do sends a request to the gateway with hdr and returns the reply.
func (e *gwEnv) do(t *testing.T, method, path string, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.gw.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = slices.Clone(v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading the reply to %s %s: %v", method, path, err)
	}
	return resp, body
}

func (e *gwEnv) upstreamSeen() []http.Header {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.upSeen)
}

func (e *gwEnv) nextSeen() [][]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.nextAuth)
}

func (e *gwEnv) localSeen() ([]http.Header, []bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.localHdr), slices.Clone(e.localTok)
}

// gatewayToken is the token the gateway's source holds now.
func (e *gwEnv) gatewayToken(t *testing.T) *source.Token {
	t.Helper()
	tok, err := e.src.CachedSource.Token(context.Background())
	if err != nil {
		t.Fatalf("the gateway's source: %v", err)
	}
	return tok
}

// gwRecordingSource is a CachedSource that keeps the errors its Token
// returned, so that tests can check none of their text reaches a client.
// Invalidate is the CachedSource's.
type gwRecordingSource struct {
	*source.CachedSource

	mu   sync.Mutex // guards errs
	errs []error
}

func (s *gwRecordingSource) Token(ctx context.Context) (*source.Token, error) {
	tok, err := s.CachedSource.Token(ctx)
	if err != nil {
		s.mu.Lock()
		s.errs = append(s.errs, err)
		s.mu.Unlock()
	}
	return tok, err
}

func (s *gwRecordingSource) errors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.errs)
}

// gwProblem is an RFC 9457 reply with exactly the members the middleware
// writes.
type gwProblem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// checkProblem checks that a reply is the middleware's problem+json for
// status, and returns it.
func checkProblem(t *testing.T, h http.Header, body []byte, status int) gwProblem {
	t.Helper()
	if got, want := h.Get("Content-Type"), "application/problem+json"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	if got, want := h.Get("Cache-Control"), "no-store"; got != want {
		t.Errorf("Cache-Control = %q, want %q", got, want)
	}
	var p gwProblem
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("body %q is not the problem object: %v", body, err)
	}
	want := gwProblem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: p.Detail}
	if p != want {
		t.Errorf("problem = %+v, want %+v", p, want)
	}
	if p.Detail == "" {
		t.Errorf("problem has no detail")
	}
	return p
}

// checkNoSecrets checks that text shows none of secrets, none of the text
// of errs (what the token endpoint said, and our own error strings), and
// no token idp issued.
func checkNoSecrets(t *testing.T, text string, idp *sourcetest.Server, errs []error, secrets ...string) {
	t.Helper()
	leaks := slices.Clone(secrets)
	leaks = append(leaks, idp.IssuedTokens()...)
	for _, err := range errs {
		leaks = append(leaks, err.Error())
		var te *source.Error
		if errors.As(err, &te) {
			leaks = append(leaks, te.Description, te.ProviderCode, te.Code)
		}
	}
	for _, s := range leaks {
		if len(s) >= 4 && strings.Contains(text, s) {
			t.Errorf("the reply %q shows %q", text, s)
		}
	}
}

func TestMiddlewareGatewayReplacesForgedAuthorization(t *testing.T) {
	checkLeaks(t)
	e := newGatewayEnv(t, gwSetup{})

	// A token the same endpoint issued to somebody else: valid upstream,
	// but not the gateway's.
	other := newSource(t, e.idp)
	stolen, err := other.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		auth []string
	}{
		{"none", nil},
		{"forged bearer", []string{"Bearer forged-by-client"}},
		{"basic", []string{"Basic Y2xpZW50OnNlY3JldA=="}},
		{"a valid token of somebody else", []string{stolen.HeaderValue()}},
		{"two values", []string{"Bearer forged-1", "Bearer forged-2"}},
	}
	// /plain/ is proxied by a plain Transport: what the upstream gets is
	// the middleware's doing alone. /orders/ is proxied by a
	// tokenhttp.Transport, which sets the same header again.
	for _, path := range []string{"/plain/42", "/orders/42"} {
		for i, tt := range tests {
			t.Run(path+"/"+tt.name, func(t *testing.T) {
				hdr := http.Header{"X-Request-Id": {"req-" + strconv.Itoa(i)}}
				if tt.auth != nil {
					hdr["Authorization"] = tt.auth
				}
				before := e.nextCalls.Load()
				resp, body := e.do(t, http.MethodGet, path, hdr)
				if got, want := resp.StatusCode, http.StatusOK; got != want {
					t.Fatalf("status = %d, want %d; body %q", got, want, body)
				}
				if got, want := e.nextCalls.Load()-before, int64(1); got != want {
					t.Errorf("next called %d times, want %d", got, want)
				}
				want := []string{e.gatewayToken(t).HeaderValue()}
				nexts := e.nextSeen()
				if got := nexts[len(nexts)-1]; !slices.Equal(got, want) {
					t.Errorf("next's Authorization = %q, want the gateway's %q", got, want)
				}
				seen := e.upstreamSeen()
				last := seen[len(seen)-1]
				if got := last.Values("Authorization"); !slices.Equal(got, want) {
					t.Errorf("upstream's Authorization = %q, want the gateway's %q", got, want)
				}
				if got, want := last.Get("X-Request-Id"), "req-"+strconv.Itoa(i); got != want {
					t.Errorf("upstream's X-Request-Id = %q, want %q", got, want)
				}
			})
		}
	}
	if got, want := e.idp.Requests(source.ClientCredentials), 2; got != want { // the gateway's and other's
		t.Errorf("token requests = %d, want %d", got, want)
	}
}

// TestMiddlewareHeaderCopy checks, without a network, what next gets: one
// Authorization whatever the letter case of the client's, the other
// headers as sent, the token in the context, and the client's request left
// as it was.
func TestMiddlewareHeaderCopy(t *testing.T) {
	tok := &source.Token{AccessToken: "gw-access-1", TokenType: "Bearer", Scope: "orders:read",
		Expiry: time.Now().Add(time.Hour)}
	var (
		got    http.Header
		gotTok *source.Token
		gotOK  bool
	)
	h := tokenhttp.Middleware(staticSource(tok))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		gotTok, gotOK = tokenhttp.TokenFromContext(r.Context())
	}))
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	req.Header["Authorization"] = []string{"Bearer forged"}
	req.Header["authorization"] = []string{"Bearer forged-lowercase"} // a Header built by hand
	req.Header["AUTHORIZATION"] = []string{"Bearer forged-uppercase"}
	req.Header.Set("Proxy-Authorization", "Basic cHJveHk6cA==")
	req.Header.Set("Cookie", "session=abc")
	orig := req.Header.Clone()
	h.ServeHTTP(httptest.NewRecorder(), req)

	var auths []string
	for k, v := range got {
		if strings.EqualFold(k, "Authorization") {
			auths = append(auths, v...)
		}
	}
	if want := []string{"Bearer gw-access-1"}; !slices.Equal(auths, want) {
		t.Errorf("next's Authorization = %q, want %q", auths, want)
	}
	for _, k := range []string{"Proxy-Authorization", "Cookie"} {
		if got, want := got.Get(k), orig.Get(k); got != want {
			t.Errorf("next's %s = %q, want %q as sent", k, got, want)
		}
	}
	if !gotOK || gotTok != tok {
		t.Errorf("TokenFromContext = %v, %v; want the source's token, true", gotTok, gotOK)
	}
	if len(req.Header) != len(orig) {
		t.Errorf("the client's request has %d headers after the middleware, want %d", len(req.Header), len(orig))
	}
	for k, v := range orig {
		if !slices.Equal(req.Header[k], v) {
			t.Errorf("the client's request's %s = %q after the middleware, want it unchanged, %q", k, req.Header[k], v)
		}
	}
}

func TestMiddlewareTokenFromContext(t *testing.T) {
	checkLeaks(t)
	if tok, ok := tokenhttp.TokenFromContext(context.Background()); ok || tok != nil {
		t.Errorf("TokenFromContext(Background) = %v, %v; want nil, false", tok, ok)
	}

	idp := newEmulator(t, sourcetest.Options{})
	src := newSource(t, idp, func(c *source.Config) { c.Scopes = []string{"orders:read"} })

	var (
		tok  *source.Token
		ok   bool
		auth string
	)
	h := tokenhttp.Middleware(src)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok = tokenhttp.TokenFromContext(r.Context())
		auth = r.Header.Get("Authorization")
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if !ok || tok == nil {
		t.Fatalf("TokenFromContext in next = %v, %v; want a token, true", tok, ok)
	}
	if got, want := tok.HeaderValue(), auth; got != want {
		t.Errorf("the context's token's HeaderValue = %q, want the request's Authorization %q", got, want)
	}
	if got, want := tok.Scope, "orders:read"; got != want {
		t.Errorf("the context's token's Scope = %q, want %q", got, want)
	}
	if tok.Expiry.IsZero() {
		t.Errorf("the context's token has no Expiry")
	}
}

func TestMiddlewareGatewayFailures(t *testing.T) {
	checkLeaks(t)
	once := retry.Policy{MaxAttempts: 1}
	tests := []struct {
		name       string
		setup      gwSetup
		before     func(t *testing.T, e *gwEnv) // the faults to inject
		path       string
		wantStatus int
		retryAfter func(string) error
		noFetch    bool // the request makes no token request
	}{
		{
			name:       "gateway credentials refused",
			setup:      gwSetup{cfg: func(c *source.Config) { c.ClientSecret = gwSecret }},
			wantStatus: http.StatusBadGateway,
			retryAfter: noRetryAfter,
		},
		{
			name:       "token endpoint 503 with Retry-After",
			setup:      gwSetup{cfg: func(c *source.Config) { c.Retry = once }},
			before:     func(t *testing.T, e *gwEnv) { e.idp.FailNext(1, http.StatusServiceUnavailable, "7") },
			wantStatus: http.StatusServiceUnavailable,
			retryAfter: retryAfterIs("7"),
		},
		{
			name:       "token endpoint 500",
			setup:      gwSetup{cfg: func(c *source.Config) { c.Retry = once }},
			before:     func(t *testing.T, e *gwEnv) { e.idp.FailNext(1, http.StatusInternalServerError, "") },
			wantStatus: http.StatusServiceUnavailable,
			retryAfter: retryAfterIs("1"), // the default
		},
		{
			name:       "token endpoint unreachable",
			setup:      gwSetup{cfg: func(c *source.Config) { c.Retry = once }},
			before:     func(t *testing.T, e *gwEnv) { e.idp.ResetNext(1) },
			wantStatus: http.StatusServiceUnavailable,
			retryAfter: retryAfterIs("1"), // the default
		},
		{
			name: "breaker open",
			setup: gwSetup{cfg: func(c *source.Config) {
				c.Retry = once
				c.Breaker = retry.BreakerSettings{Failures: 1, OpenFor: time.Minute}
			}},
			before: func(t *testing.T, e *gwEnv) {
				e.idp.FailNext(1, http.StatusInternalServerError, "")
				if resp, body := e.do(t, http.MethodGet, "/orders", nil); resp.StatusCode != http.StatusServiceUnavailable {
					t.Fatalf("the request that opens the breaker: status %d, want 503; body %q", resp.StatusCode, body)
				}
			},
			wantStatus: http.StatusServiceUnavailable,
			retryAfter: retryAfterIn(1, 60),
			noFetch:    true,
		},
		{
			name: "token fetch timeout",
			setup: gwSetup{cfg: func(c *source.Config) {
				c.Retry = once
				c.FetchTimeout = 200 * time.Millisecond
			}},
			before:     func(t *testing.T, e *gwEnv) { e.idp.HangNext(1) },
			wantStatus: http.StatusGatewayTimeout,
			retryAfter: retryAfterIs("1"), // the default
		},
		{
			name: "request deadline",
			setup: gwSetup{outer: func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					ctx, cancel := context.WithTimeout(r.Context(), 150*time.Millisecond)
					defer cancel()
					h.ServeHTTP(w, r.WithContext(ctx))
				})
			}},
			before:     func(t *testing.T, e *gwEnv) { e.idp.HangNext(1) },
			wantStatus: http.StatusGatewayTimeout,
			retryAfter: retryAfterIs("1"), // the default
		},
		{
			name: "no route",
			setup: gwSetup{mw: func(src source.TokenSource) func(http.Handler) http.Handler {
				return tokenhttp.RoutedMiddleware(tokenhttp.PrefixRoutes(map[string]source.TokenSource{"/orders": src}))
			}},
			path:       "/ordersx/1",
			wantStatus: http.StatusNotFound,
			retryAfter: noRetryAfter,
			noFetch:    true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newGatewayEnv(t, tt.setup)
			if tt.before != nil {
				tt.before(t, e)
			}
			tokenRequests := e.idp.TokenRequests()
			path := cmp.Or(tt.path, "/orders/42")
			resp, body := e.do(t, http.MethodGet, path, http.Header{"Authorization": {"Bearer forged-by-client"}})

			if got, want := resp.StatusCode, tt.wantStatus; got != want {
				t.Fatalf("status = %d, want %d; body %q", got, want, body)
			}
			checkProblem(t, resp.Header, body, tt.wantStatus)
			if err := tt.retryAfter(resp.Header.Get("Retry-After")); err != nil {
				t.Error(err)
			}
			if got := e.nextCalls.Load(); got != 0 {
				t.Errorf("next called %d times, want 0", got)
			}
			if got := len(e.upstreamSeen()); got != 0 {
				t.Errorf("upstream requests = %d, want 0", got)
			}
			if tt.noFetch {
				if got, want := e.idp.TokenRequests(), tokenRequests; got != want {
					t.Errorf("token requests = %d, want still %d", got, want)
				}
			}
			checkNoSecrets(t, string(body)+fmt.Sprint(resp.Header), e.idp, e.src.errors(),
				gwSecret, sourcetest.DefaultClientSecret, "forged-by-client")
		})
	}
}

func noRetryAfter(v string) error {
	if v != "" {
		return fmt.Errorf("Retry-After = %q, want none", v)
	}
	return nil
}

func retryAfterIs(want string) func(string) error {
	return func(v string) error {
		if v != want {
			return fmt.Errorf("Retry-After = %q, want %q", v, want)
		}
		return nil
	}
}

func retryAfterIn(lo, hi int) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("Retry-After = %q, want whole seconds in [%d, %d]", v, lo, hi)
		}
		return nil
	}
}

// TestMiddlewareClassifies checks the status of each kind of token error
// without a network, the ones a real endpoint cannot easily be made to
// produce included.
func TestMiddlewareClassifies(t *testing.T) {
	until := time.Now().Add(2500 * time.Millisecond)
	tests := []struct {
		name       string
		src        source.TokenSource
		wantStatus int
		retryAfter func(string) error
	}{
		{"refused", errSource(&source.Error{Provider: "p", StatusCode: 400, Code: source.CodeInvalidGrant,
			Description: "password of user bob is hunter2", ProviderCode: "E_BOB"}), http.StatusBadGateway, noRetryAfter},
		{"429 with Retry-After", errSource(fmt.Errorf("wrapped: %w", &source.Error{Provider: "p", StatusCode: 429,
			Code: source.CodeTemporarilyUnavailable, RetryAfter: 1500 * time.Millisecond})), http.StatusServiceUnavailable, retryAfterIs("2")},
		{"breaker open", errSource(&source.BreakerOpenError{Provider: "p", Until: until}), http.StatusServiceUnavailable, retryAfterIs("3")},
		{"breaker open, probe due", errSource(&source.BreakerOpenError{Provider: "p", Until: time.Now().Add(-time.Second)}),
			http.StatusServiceUnavailable, retryAfterIs("1")},
		{"deadline", errSource(fmt.Errorf("x: %w", context.DeadlineExceeded)), http.StatusGatewayTimeout, retryAfterIs("1")},
		{"net timeout", errSource(&source.FetchError{Provider: "p", Err: gwTimeoutErr{}}), http.StatusGatewayTimeout, retryAfterIs("1")},
		{"closed", errSource(source.ErrClosed), http.StatusServiceUnavailable, retryAfterIs("1")},
		{"other", errSource(errors.New("something odd")), http.StatusServiceUnavailable, retryAfterIs("1")},
		{"no token, no error", staticSource(nil), http.StatusInternalServerError, noRetryAfter},
		{"empty token", staticSource(&source.Token{}), http.StatusInternalServerError, noRetryAfter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tokenhttp.Middleware(tt.src)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
				t.Error("next called")
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			if got, want := rec.Code, tt.wantStatus; got != want {
				t.Fatalf("status = %d, want %d", got, want)
			}
			checkProblem(t, rec.Header(), rec.Body.Bytes(), tt.wantStatus)
			if err := tt.retryAfter(rec.Header().Get("Retry-After")); err != nil {
				t.Error(err)
			}
			for _, s := range []string{"hunter2", "bob", "E_BOB", "invalid_grant", "something odd"} {
				if strings.Contains(rec.Body.String(), s) {
					t.Errorf("the reply %q shows %q", rec.Body.String(), s)
				}
			}
		})
	}
}

type gwTimeoutErr struct{}

func (gwTimeoutErr) Error() string { return "i/o timeout" }
func (gwTimeoutErr) Timeout() bool { return true }

// TestMiddlewareClientGone checks that a client that left while the
// middleware waited for a token gets 499 and no body, and that next is
// not called.
func TestMiddlewareClientGone(t *testing.T) {
	checkLeaks(t)
	idp := newEmulator(t, sourcetest.Options{})
	idp.HangNext(1)
	src := newSource(t, idp)
	h := tokenhttp.Middleware(src)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("next called")
	}))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil))
	if got, want := rec.Code, 499; got != want {
		t.Errorf("status = %d, want %d", got, want)
	}
	if rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "" {
		t.Errorf("reply has Content-Type %q and body %q, want neither", rec.Header().Get("Content-Type"), rec.Body.String())
	}
}

func TestMiddlewareGatewayUnmatchedPassThrough(t *testing.T) {
	checkLeaks(t)
	e := newGatewayEnv(t, gwSetup{mw: func(src source.TokenSource) func(http.Handler) http.Handler {
		return tokenhttp.RoutedMiddleware(tokenhttp.PrefixRoutes(map[string]source.TokenSource{"/orders": src}),
			tokenhttp.WithUnmatched(tokenhttp.UnmatchedPassThrough))
	}})

	// /public/ is proxied with a plain Transport: the upstream gets what
	// the client sent, and the emulator does not know that token.
	resp, body := e.do(t, http.MethodGet, "/public/docs", http.Header{"Authorization": {"Bearer client-own"}})
	if got, want := resp.StatusCode, http.StatusUnauthorized; got != want {
		t.Errorf("status = %d, want the upstream's %d; body %q", got, want, body)
	}
	if got, want := string(body), "upstream /public/docs"; got != want {
		t.Errorf("body = %q, want the upstream's %q", got, want)
	}
	if got, want := e.nextCalls.Load(), int64(1); got != want {
		t.Errorf("next called %d times, want %d", got, want)
	}
	seen := e.upstreamSeen()
	if len(seen) != 1 {
		t.Fatalf("upstream requests = %d, want 1", len(seen))
	}
	if got, want := seen[0].Values("Authorization"), []string{"Bearer client-own"}; !slices.Equal(got, want) {
		t.Errorf("upstream's Authorization = %q, want the client's, untouched: %q", got, want)
	}
	if got := e.idp.TokenRequests(); got != 0 {
		t.Errorf("token requests = %d, want 0", got)
	}

	// A matched route still gets the gateway's credential.
	resp, body = e.do(t, http.MethodGet, "/orders", http.Header{"Authorization": {"Bearer client-own"}})
	if got, want := resp.StatusCode, http.StatusOK; got != want {
		t.Errorf("matched route: status = %d, want %d; body %q", got, want, body)
	}
}

func TestMiddlewareGatewaySkip(t *testing.T) {
	checkLeaks(t)
	e := newGatewayEnv(t, gwSetup{
		cfg: func(c *source.Config) { c.Retry = retry.Policy{MaxAttempts: 1} },
		mw: func(src source.TokenSource) func(http.Handler) http.Handler {
			return tokenhttp.Middleware(src,
				tokenhttp.WithSkipPaths("/healthz"),
				tokenhttp.WithSkip(func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/status/") }))
		},
	})
	e.idp.FailNext(100, http.StatusServiceUnavailable, "") // the token endpoint is down: health checks must not care

	for _, path := range []string{"/healthz", "/status/live"} {
		t.Run(path, func(t *testing.T) {
			resp, body := e.do(t, http.MethodGet, path,
				http.Header{"Authorization": {"Bearer forged-by-client"}, "X-Probe": {"k8s"}})
			if got, want := resp.StatusCode, http.StatusOK; got != want {
				t.Fatalf("status = %d, want %d; body %q", got, want, body)
			}
			hdrs, toks := e.localSeen()
			last, tok := hdrs[len(hdrs)-1], toks[len(toks)-1]
			if got := last.Values("Authorization"); got != nil {
				t.Errorf("skipped handler's Authorization = %q, want none", got)
			}
			if got, want := last.Get("X-Probe"), "k8s"; got != want {
				t.Errorf("skipped handler's X-Probe = %q, want %q", got, want)
			}
			if tok {
				t.Errorf("TokenFromContext reported a token for a skipped request")
			}
		})
	}
	if got := e.idp.TokenRequests(); got != 0 {
		t.Errorf("token requests = %d, want 0: skipped requests fetch no token", got)
	}

	// Skipping is exact: /healthz/x is not /healthz, and fails like any
	// request while the endpoint is down.
	resp, body := e.do(t, http.MethodGet, "/healthz/x", nil)
	if got, want := resp.StatusCode, http.StatusServiceUnavailable; got != want {
		t.Errorf("/healthz/x: status = %d, want %d; body %q", got, want, body)
	}
}

// TestMiddlewareGatewayConcurrent sends 200 requests at once to a gateway
// whose source has no token yet: they share one token fetch.
func TestMiddlewareGatewayConcurrent(t *testing.T) {
	checkLeaks(t)
	e := newGatewayEnv(t, gwSetup{idp: sourcetest.Options{Latency: 100 * time.Millisecond}})

	const n = 200
	var (
		wg       sync.WaitGroup
		start    = make(chan struct{})
		statuses = make([]int, n)
		errs     = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest(http.MethodGet, e.gw.URL+"/orders/"+strconv.Itoa(i), nil)
			req.Header.Set("Authorization", "Bearer forged-"+strconv.Itoa(i))
			resp, err := e.client.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || statuses[i] != http.StatusOK {
			t.Errorf("client %d: status %d, error %v; want 200", i, statuses[i], errs[i])
		}
	}
	if got, want := e.idp.TokenRequests(), 1; got != want {
		t.Errorf("token requests = %d, want %d", got, want)
	}
	want := []string{e.gatewayToken(t).HeaderValue()}
	seen := e.upstreamSeen()
	if len(seen) != n {
		t.Errorf("upstream requests = %d, want %d", len(seen), n)
	}
	for i, h := range seen {
		if got := h.Values("Authorization"); !slices.Equal(got, want) {
			t.Errorf("upstream request %d had Authorization %q, want %q", i, got, want)
			break
		}
	}
}

// TestMiddlewareGatewayRevocation revokes the gateway's token at the
// token endpoint: the next requests, some at once, get a 401 from the
// upstream, and the proxy's tokenhttp.Transport answers it with one new
// token and one retry each; the client sees only 200s.
func TestMiddlewareGatewayRevocation(t *testing.T) {
	checkLeaks(t)
	e := newGatewayEnv(t, gwSetup{})

	if resp, body := e.do(t, http.MethodGet, "/orders", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: status %d, want 200; body %q", resp.StatusCode, body)
	}
	old := e.gatewayToken(t)
	e.idp.RevokeAll()

	const n = 50
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, e.gw.URL+"/orders", nil)
			resp, err := e.client.Do(req)
			if err != nil {
				t.Errorf("client %d: %v", i, err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusOK {
			t.Errorf("client %d after the revocation: status %d, want 200", i, s)
		}
	}
	if got, want := e.idp.TokenRequests(), 2; got != want {
		t.Errorf("token requests = %d, want %d: exactly one more after the revocation", got, want)
	}
	if fresh := e.gatewayToken(t); fresh == old || fresh.AccessToken == old.AccessToken {
		t.Errorf("the source still holds the revoked token")
	}
	if got := e.nextCalls.Load(); got != n+1 {
		t.Errorf("next called %d times, want %d", got, n+1)
	}
}

func TestMiddlewareTelemetry(t *testing.T) {
	checkLeaks(t)
	rec, reader, tel := telemetrySDK(t)

	refused := errSource(&source.Error{Provider: "p", StatusCode: 401, Code: source.CodeInvalidClient,
		Description: "secret " + gwSecret + " is wrong", ProviderCode: "E_CLIENT"})
	ok := staticSource(&source.Token{AccessToken: "gw-access-tel"})
	route := tokenhttp.PrefixRoutes(map[string]source.TokenSource{"/refused": refused, "/ok": ok})
	h := tokenhttp.RoutedMiddleware(route, tokenhttp.WithTelemetry(tel), tokenhttp.WithSkipPaths("/healthz"))(
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))

	serve := func(path string, ctx context.Context) {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(ctx, http.MethodGet, path, nil))
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	serve("/refused", context.Background())
	serve("/refused/x", context.Background())
	serve("/nowhere", context.Background())
	serve("/refused", gone)
	serve("/ok", context.Background())      // not a rejection
	serve("/healthz", context.Background()) // skipped: not a rejection

	got := metricPoints(t, reader, telemetry.MetricGatewayRejections)
	key := func(status int, errType string) string {
		return fmt.Sprintf("%s=%s,%s=%d", telemetry.AttrErrorType, errType, telemetry.AttrHTTPStatusCode, status)
	}
	want := map[string]int64{
		key(http.StatusBadGateway, source.CodeInvalidClient): 2,
		key(http.StatusNotFound, "no_route"):                 1,
		key(499, "canceled"):                                 1,
	}
	if !maps.Equal(got, want) {
		t.Errorf("%s = %v, want %v", telemetry.MetricGatewayRejections, got, want)
	}
	all := recorded(t, rec, reader)
	for _, s := range []string{gwSecret, "E_CLIENT", "gw-access-tel"} {
		if strings.Contains(all, s) {
			t.Errorf("the telemetry holds %q:\n%s", s, all)
		}
	}
}

// TestMiddlewareConstructionPanics checks that bad configuration fails at
// construction, with a message that says what to do.
func TestMiddlewareConstructionPanics(t *testing.T) {
	src := staticSource(&source.Token{AccessToken: "a"})
	tests := []struct {
		name string
		f    func()
		want string
	}{
		{"nil source", func() { tokenhttp.Middleware(nil) }, "Middleware needs a TokenSource"},
		{"nil route", func() { tokenhttp.RoutedMiddleware(nil) }, "use PrefixRoutes"},
		{"nil next", func() { tokenhttp.Middleware(src)(nil) }, "needs a next handler"},
		{"no routes", func() { tokenhttp.PrefixRoutes(nil) }, "give at least one path prefix"},
		{"empty routes", func() { tokenhttp.PrefixRoutes(map[string]source.TokenSource{}) }, "give at least one path prefix"},
		{"relative prefix", func() { tokenhttp.PrefixRoutes(map[string]source.TokenSource{"api": src}) }, `must start with "/", as in "/api"`},
		{"empty prefix", func() { tokenhttp.PrefixRoutes(map[string]source.TokenSource{"": src}) }, `must start with "/"`},
		{"unclean prefix", func() { tokenhttp.PrefixRoutes(map[string]source.TokenSource{"/api/../x": src}) }, `use "/x"`},
		{"double slash", func() { tokenhttp.PrefixRoutes(map[string]source.TokenSource{"/api//v2": src}) }, `use "/api/v2"`},
		{"same prefix twice", func() {
			tokenhttp.PrefixRoutes(map[string]source.TokenSource{"/api": src, "/api/": src})
		}, "the same prefix"},
		{"nil route source", func() { tokenhttp.PrefixRoutes(map[string]source.TokenSource{"/api": nil}) }, `nil TokenSource for the prefix "/api"`},
		{"nil skip", func() { tokenhttp.WithSkip(nil) }, "WithSkip needs a function"},
		{"relative skip path", func() { tokenhttp.WithSkipPaths("/readyz", "healthz") }, `"healthz"; each path must start with "/"`},
		{"bad unmatched", func() { tokenhttp.WithUnmatched(7) }, "use UnmatchedNotFound or UnmatchedPassThrough"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				p := recover()
				msg, _ := p.(string)
				if p == nil {
					t.Fatalf("no panic, want one saying %q", tt.want)
				}
				if !strings.HasPrefix(msg, "tokenhttp: ") || !strings.Contains(msg, tt.want) {
					t.Errorf("panic %q, want a tokenhttp: message containing %q", p, tt.want)
				}
			}()
			tt.f()
		})
	}
}

func TestMiddlewareUnmatchedString(t *testing.T) {
	for u, want := range map[tokenhttp.Unmatched]string{
		tokenhttp.UnmatchedNotFound:    "UnmatchedNotFound",
		tokenhttp.UnmatchedPassThrough: "UnmatchedPassThrough",
		9:                              "Unmatched(9)",
	} {
		if got := u.String(); got != want {
			t.Errorf("Unmatched(%d).String() = %q, want %q", int(u), got, want)
		}
	}
}

// TestTelemetryMiddlewareRejection checks that the Middleware counts the
// requests it answers itself, by status, without a secret.
func TestTelemetryMiddlewareRejection(t *testing.T) {
	const secret = "tel-gateway-secret-Pn3xQ8"
	tests := []struct {
		name       string
		fail       func(*sourcetest.Server)
		secret     string
		wantStatus int
	}{
		{"credentials refused", func(*sourcetest.Server) {}, secret, http.StatusBadGateway},
		{"endpoint unavailable", func(s *sourcetest.Server) { s.FailNext(3, http.StatusServiceUnavailable, "") },
			sourcetest.DefaultClientSecret, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			idp := newEmulator(t, sourcetest.Options{})
			tt.fail(idp)
			rec, reader, tel := telemetrySDK(t)
			src := newSource(t, idp, func(c *source.Config) { c.ClientSecret, c.Telemetry = tt.secret, tel })
			h := tokenhttp.Middleware(src, tokenhttp.WithTelemetry(tel))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
				t.Error("next handler called without a token")
			}))
			ctx, span := tel.TracerProvider.Tracer("test").Start(context.Background(), "server")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil))
			span.End()
			if got := w.Code; got != tt.wantStatus {
				t.Errorf("status = %d, want %d", got, tt.wantStatus)
			}
			got := metricPoints(t, reader, telemetry.MetricGatewayRejections)
			if len(got) != 1 {
				t.Fatalf("%s = %v, want one data point", telemetry.MetricGatewayRejections, got)
			}
			for k, v := range got {
				if want := fmt.Sprintf("%s=%d", telemetry.AttrHTTPStatusCode, tt.wantStatus); !strings.Contains(k, want) || v != 1 {
					t.Errorf("%s = {%s: %d}, want a count of 1 with %s", telemetry.MetricGatewayRejections, k, v, want)
				}
			}
			if all := recorded(t, rec, reader); strings.Contains(all, tt.secret) {
				t.Errorf("the telemetry holds the client secret:\n%s", all)
			}
		})
	}
}

// TestMiddlewareDropsAuthorizationTrailers: a client cannot get its own
// Authorization to the upstream as a request trailer, which net/http
// fills in once the body is read: routed requests and skipped ones alike
// reach the upstream with the other trailers only. (A ReverseProxy that
// streams the body forwards trailer names without values, so next reads
// the body first, as a handler that buffers for a replay does.)
func TestMiddlewareDropsAuthorizationTrailers(t *testing.T) {
	checkLeaks(t)
	type seen struct {
		auth    []string
		trailer http.Header
	}
	got := make(chan seen, 1)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got <- seen{r.Header.Values("Authorization"), r.Trailer.Clone()}
	}))
	defer upstream.Close()
	target, _ := url.Parse(upstream.URL)
	upTr, clientTr := &http.Transport{}, &http.Transport{}
	defer upTr.CloseIdleConnections()
	defer clientTr.CloseIdleConnections()
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }, Transport: upTr}
	// next reads the body before it proxies, as a handler that buffers
	// for a replay does: the trailers are in by then.
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	})
	tok := &source.Token{AccessToken: "gateway-token", TokenType: "Bearer"}
	gw := httptest.NewServer(tokenhttp.Middleware(staticSource(tok), tokenhttp.WithSkipPaths("/skipped"))(next))
	defer gw.Close()

	for _, tt := range []struct {
		path string
		auth []string // what the upstream's Authorization header must be
	}{
		{"/routed", []string{tok.HeaderValue()}},
		{"/skipped", nil},
	} {
		t.Run(tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, gw.URL+tt.path, io.MultiReader(strings.NewReader("body")))
			req.ContentLength = -1 // chunked: trailers follow the body
			req.Trailer = http.Header{
				"Authorization":       {"Bearer forged-in-trailer"},
				"Proxy-Authorization": {"Basic Zm9yZ2Vk"},
				"X-Checksum":          {"abc"},
			}
			resp, err := (&http.Client{Transport: clientTr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			s := <-got
			if !slices.Equal(s.auth, tt.auth) {
				t.Errorf("upstream's Authorization = %q, want %q", s.auth, tt.auth)
			}
			for _, k := range []string{"Authorization", "Proxy-Authorization"} {
				if v, ok := s.trailer[k]; ok {
					t.Errorf("upstream's trailer %s = %q, want none", k, v)
				}
			}
			if got, want := s.trailer.Get("X-Checksum"), "abc"; got != want {
				t.Errorf("upstream's trailer X-Checksum = %q, want %q", got, want)
			}
		})
	}
}

// TestMiddlewareRefusalDetail: a 502 says the credentials were refused
// only when the token endpoint's code says so; a wrong token URL (404)
// or a refused scope is a rejected request.
func TestMiddlewareRefusalDetail(t *testing.T) {
	for _, tt := range []struct {
		status int
		code   string
		want   string
	}{
		{401, source.CodeInvalidClient, "refused the gateway's credentials"},
		{400, source.CodeInvalidGrant, "refused the gateway's credentials"},
		{400, source.CodeUnauthorizedClient, "refused the gateway's credentials"},
		{404, source.CodeInvalidRequest, "rejected the gateway's token request"},
		{400, source.CodeInvalidScope, "rejected the gateway's token request"},
		{400, source.CodeUnsupportedGrantType, "rejected the gateway's token request"},
	} {
		h := tokenhttp.Middleware(errSource(&source.Error{Provider: "p", StatusCode: tt.status, Code: tt.code}))(http.NotFoundHandler())
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		p := checkProblem(t, rec.Header(), rec.Body.Bytes(), http.StatusBadGateway)
		if !strings.Contains(p.Detail, tt.want) {
			t.Errorf("HTTP %d %s: detail = %q, want it to say %q", tt.status, tt.code, p.Detail, tt.want)
		}
	}
}

// TestMiddlewareUndeclaredTrailers: trailers a client sends after a
// chunked body without declaring them (net/http fills r.Trailer with
// them once the body is read) reach next without Authorization or
// Proxy-Authorization, on routed and skipped requests, the others kept.
func TestMiddlewareUndeclaredTrailers(t *testing.T) {
	checkLeaks(t)
	got := make(chan http.Header, 1)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got <- r.Trailer.Clone()
	})
	tok := &source.Token{AccessToken: "gateway-token", TokenType: "Bearer"}
	gw := httptest.NewServer(tokenhttp.Middleware(staticSource(tok), tokenhttp.WithSkipPaths("/skipped"))(next))
	defer gw.Close()
	for _, path := range []string{"/routed", "/skipped"} {
		for _, declare := range []string{"", "Trailer: X-Other\r\n"} {
			c, err := net.Dial("tcp", gw.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n"+declare+"\r\n"+
				"5\r\nhello\r\n0\r\nAuthorization: Bearer forged\r\nproxy-authorization: Basic Zm9yZ2Vk\r\nX-Other: ok\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			c.Close()
			tr := <-got
			what := fmt.Sprintf("%s with %q declared", path, declare)
			for _, k := range []string{"Authorization", "Proxy-Authorization"} {
				if v, ok := tr[k]; ok {
					t.Errorf("%s: next's trailer %s = %q, want none", what, k, v)
				}
			}
			if got, want := tr.Get("X-Other"), "ok"; got != want {
				t.Errorf("%s: next's trailer X-Other = %q, want %q", what, got, want)
			}
		}
	}
}
