package tokenhttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
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

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/retry"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
	"github.com/tokenhttp/tokenhttp/telemetry"
)

// gwEnv is an API gateway end to end:
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
	e := &gwEnv{idp: sourcetest.NewStandard(s.idp)}
	newTr := func() *http.Transport {
		tr := &http.Transport{}
		e.trs = append(e.trs, tr)
		return tr
	}
	cfg := source.Config{
		TokenURL: e.idp.TokenURL, ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret,
		HTTPClient: e.idp.Client(),
	}
	if s.cfg != nil {
		s.cfg(&cfg)
	}
	src, err := source.New(cfg)
	if err != nil {
		e.idp.Close()
		t.Fatalf("source.New: %v", err)
	}
	e.src = &gwRecordingSource{CachedSource: src}

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
	e.client = &http.Client{Transport: newTr()}
	return e
}

// close shuts everything down, the gateway first.
func (e *gwEnv) close() {
	e.gw.Close()
	e.upstream.Close()
	e.src.Close()
	e.idp.Close()
	for _, tr := range e.trs {
		tr.CloseIdleConnections()
	}
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

// gwStaticSource always returns tok.
type gwStaticSource struct{ tok *source.Token }

func (s gwStaticSource) Token(context.Context) (*source.Token, error) { return s.tok, nil }

// gwErrSource always fails with err.
type gwErrSource struct{ err error }

func (s gwErrSource) Token(context.Context) (*source.Token, error) { return nil, s.err }

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
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e := newGatewayEnv(t, gwSetup{})
	defer e.close()

	// A token the same endpoint issued to somebody else: valid upstream,
	// but not the gateway's.
	other, err := source.New(source.Config{TokenURL: e.idp.TokenURL, ClientID: sourcetest.DefaultClientID,
		ClientSecret: sourcetest.DefaultClientSecret, HTTPClient: e.idp.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
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
					t.Errorf("next got Authorization %q, want the gateway's %q", got, want)
				}
				seen := e.upstreamSeen()
				last := seen[len(seen)-1]
				if got := last.Values("Authorization"); !slices.Equal(got, want) {
					t.Errorf("upstream got Authorization %q, want the gateway's %q", got, want)
				}
				if got, want := last.Get("X-Request-Id"), "req-"+strconv.Itoa(i); got != want {
					t.Errorf("upstream got X-Request-Id %q, want %q", got, want)
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
	h := tokenhttp.Middleware(gwStaticSource{tok})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		t.Errorf("next got Authorization %q, want %q", auths, want)
	}
	for _, k := range []string{"Proxy-Authorization", "Cookie"} {
		if got, want := got.Get(k), orig.Get(k); got != want {
			t.Errorf("next got %s %q, want it as sent, %q", k, got, want)
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
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	if tok, ok := tokenhttp.TokenFromContext(context.Background()); ok || tok != nil {
		t.Errorf("TokenFromContext(Background) = %v, %v; want nil, false", tok, ok)
	}

	idp := sourcetest.NewStandard(sourcetest.Options{})
	defer idp.Close()
	src, err := source.New(source.Config{TokenURL: idp.TokenURL, ClientID: sourcetest.DefaultClientID,
		ClientSecret: sourcetest.DefaultClientSecret, Scopes: []string{"orders:read"}, HTTPClient: idp.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()

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
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	once := retry.Policy{MaxAttempts: 1}
	tests := []struct {
		name       string
		setup      gwSetup
		before     func(t *testing.T, e *gwEnv) // the faults to inject
		path       string
		wantStatus int
		wantType   string // the reply's detail mentions this
		retryAfter func(string) error
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
			retryAfter: noRetryAfter,
		},
		{
			name:       "token endpoint unreachable",
			setup:      gwSetup{cfg: func(c *source.Config) { c.Retry = once }},
			before:     func(t *testing.T, e *gwEnv) { e.idp.ResetNext(1) },
			wantStatus: http.StatusServiceUnavailable,
			retryAfter: noRetryAfter,
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
		},
		{
			name: "token fetch timeout",
			setup: gwSetup{cfg: func(c *source.Config) {
				c.Retry = once
				c.FetchTimeout = 200 * time.Millisecond
			}},
			before:     func(t *testing.T, e *gwEnv) { e.idp.HangNext(1) },
			wantStatus: http.StatusGatewayTimeout,
			retryAfter: noRetryAfter,
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
			retryAfter: noRetryAfter,
		},
		{
			name: "no route",
			setup: gwSetup{mw: func(src source.TokenSource) func(http.Handler) http.Handler {
				return tokenhttp.MiddlewareFunc(tokenhttp.PrefixRoutes(map[string]source.TokenSource{"/orders": src}))
			}},
			path:       "/ordersx/1",
			wantStatus: http.StatusNotFound,
			retryAfter: noRetryAfter,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newGatewayEnv(t, tt.setup)
			defer e.close()
			if tt.before != nil {
				tt.before(t, e)
			}
			tokenRequests := e.idp.TokenRequests()
			path := cmpOr(tt.path, "/orders/42")
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
				t.Errorf("the upstream got %d requests, want 0", got)
			}
			if tt.name == "breaker open" || tt.name == "no route" {
				if got, want := e.idp.TokenRequests(), tokenRequests; got != want {
					t.Errorf("token requests = %d, want still %d", got, want)
				}
			}
			checkNoSecrets(t, string(body)+fmt.Sprint(resp.Header), e.idp, e.src.errors(),
				gwSecret, sourcetest.DefaultClientSecret, "forged-by-client")
		})
	}
}

// cmpOr is cmp.Or for two strings.
func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
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
		{"refused", gwErrSource{&source.Error{Provider: "p", StatusCode: 400, Code: source.CodeInvalidGrant,
			Description: "password of user bob is hunter2", ProviderCode: "E_BOB"}}, http.StatusBadGateway, noRetryAfter},
		{"429 with Retry-After", gwErrSource{fmt.Errorf("wrapped: %w", &source.Error{Provider: "p", StatusCode: 429,
			Code: source.CodeTemporarilyUnavailable, RetryAfter: 1500 * time.Millisecond})}, http.StatusServiceUnavailable, retryAfterIs("2")},
		{"breaker open", gwErrSource{&source.BreakerOpenError{Provider: "p", Until: until}}, http.StatusServiceUnavailable, retryAfterIs("3")},
		{"breaker open, probe due", gwErrSource{&source.BreakerOpenError{Provider: "p", Until: time.Now().Add(-time.Second)}},
			http.StatusServiceUnavailable, retryAfterIs("1")},
		{"deadline", gwErrSource{fmt.Errorf("x: %w", context.DeadlineExceeded)}, http.StatusGatewayTimeout, noRetryAfter},
		{"net timeout", gwErrSource{&source.FetchError{Provider: "p", Err: gwTimeoutErr{}}}, http.StatusGatewayTimeout, noRetryAfter},
		{"closed", gwErrSource{source.ErrClosed}, http.StatusServiceUnavailable, noRetryAfter},
		{"other", gwErrSource{errors.New("something odd")}, http.StatusServiceUnavailable, noRetryAfter},
		{"no token, no error", gwStaticSource{nil}, http.StatusInternalServerError, noRetryAfter},
		{"empty token", gwStaticSource{&source.Token{}}, http.StatusInternalServerError, noRetryAfter},
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
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	idp := sourcetest.NewStandard(sourcetest.Options{})
	defer idp.Close()
	idp.HangNext(1)
	src, err := source.New(source.Config{TokenURL: idp.TokenURL, ClientID: sourcetest.DefaultClientID,
		ClientSecret: sourcetest.DefaultClientSecret, HTTPClient: idp.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
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
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e := newGatewayEnv(t, gwSetup{mw: func(src source.TokenSource) func(http.Handler) http.Handler {
		return tokenhttp.MiddlewareFunc(tokenhttp.PrefixRoutes(map[string]source.TokenSource{"/orders": src}),
			tokenhttp.WithUnmatched(tokenhttp.UnmatchedPassThrough))
	}})
	defer e.close()

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
		t.Fatalf("the upstream got %d requests, want 1", len(seen))
	}
	if got, want := seen[0].Values("Authorization"), []string{"Bearer client-own"}; !slices.Equal(got, want) {
		t.Errorf("upstream got Authorization %q, want the client's, untouched: %q", got, want)
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
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e := newGatewayEnv(t, gwSetup{
		cfg: func(c *source.Config) { c.Retry = retry.Policy{MaxAttempts: 1} },
		mw: func(src source.TokenSource) func(http.Handler) http.Handler {
			return tokenhttp.Middleware(src,
				tokenhttp.WithSkipPaths("/healthz"),
				tokenhttp.WithSkip(func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/status/") }))
		},
	})
	defer e.close()
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
				t.Errorf("the skipped handler got Authorization %q, want none", got)
			}
			if got, want := last.Get("X-Probe"), "k8s"; got != want {
				t.Errorf("the skipped handler got X-Probe %q, want %q", got, want)
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

// TestRoutePrefixRoutes checks which source PrefixRoutes picks for a path.
func TestRoutePrefixRoutes(t *testing.T) {
	srcs := map[string]source.TokenSource{}
	for _, name := range []string{"api", "apiv2", "admin", "files"} {
		srcs[name] = gwStaticSource{&source.Token{AccessToken: name}}
	}
	route := tokenhttp.PrefixRoutes(map[string]source.TokenSource{
		"/api":       srcs["api"],
		"/api/v2/":   srcs["apiv2"], // a trailing slash is the same prefix without it
		"/admin":     srcs["admin"],
		"/files/raw": srcs["files"],
	})
	rootRoute := tokenhttp.PrefixRoutes(map[string]source.TokenSource{"/": srcs["files"], "/api": srcs["api"]})
	tests := []struct {
		path     string
		want     string // "" for unmatched
		wantRoot string
	}{
		{"/api", "api", "api"},
		{"/api/", "api", "api"},
		{"/api/orders/1", "api", "api"},
		{"/apiary", "", "files"},
		{"/api/v2", "apiv2", "api"},
		{"/api/v2/orders", "apiv2", "api"},
		{"/api/v2x", "api", "api"},
		{"/api/v", "api", "api"},
		{"/admin/users", "admin", "files"},
		{"/files", "", "files"},
		{"/files/raw/a.txt", "files", "files"},
		{"/", "", "files"},
		{"", "", "files"},
		{"/API", "", "files"}, // paths are case-sensitive
		// A path that is not clean is unmatched: a router behind that does
		// not clean paths could send it elsewhere than its clean form.
		{"/api/../admin/users", "", ""},
		{"/api/v2/../../admin", "", ""},
		{"/admin/../api/v2/x", "", ""},
		{"//api/v2", "", ""},
		{"/./api", "", ""},
		{"/../api", "", ""},
	}
	name := func(s source.TokenSource) string {
		if s == nil {
			return ""
		}
		tok, _ := s.Token(context.Background())
		return tok.AccessToken
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.URL.Path = tt.path
			if got := name(route(r)); got != tt.want {
				t.Errorf("route(%q) = %q, want %q", tt.path, got, tt.want)
			}
			if got := name(rootRoute(r)); got != tt.wantRoot {
				t.Errorf("with a \"/\" route, route(%q) = %q, want %q", tt.path, got, tt.wantRoot)
			}
		})
	}
}

// TestRouteGatewayPerRoute sends requests for two upstreams, each with its
// own token endpoint, through one gateway. The proxies use plain
// Transports, so a 200 proves the middleware chose the right credential:
// each emulator rejects the other's tokens.
func TestRouteGatewayPerRoute(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	type upstream struct {
		idp *sourcetest.Server
		src *source.CachedSource
		tr  *http.Transport
	}
	ups := map[string]*upstream{}
	routes := map[string]source.TokenSource{}
	mux := http.NewServeMux()
	for _, name := range []string{"orders", "billing"} {
		u := &upstream{idp: sourcetest.NewStandard(sourcetest.Options{}), tr: &http.Transport{}}
		defer u.tr.CloseIdleConnections()
		defer u.idp.Close()
		src, err := source.New(source.Config{TokenURL: u.idp.TokenURL, ClientID: sourcetest.DefaultClientID,
			ClientSecret: sourcetest.DefaultClientSecret, HTTPClient: u.idp.Client()})
		if err != nil {
			t.Fatal(err)
		}
		u.src = src
		defer u.src.Close()
		ups[name], routes["/"+name] = u, u.src
		target, _ := url.Parse(u.idp.ResourceURL)
		mux.Handle("/"+name+"/", &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				u := *target
				pr.Out.URL, pr.Out.Host = &u, ""
			},
			Transport: u.tr,
		})
	}
	gw := httptest.NewServer(tokenhttp.MiddlewareFunc(tokenhttp.PrefixRoutes(routes))(mux))
	defer gw.Close()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.Transport.(*http.Transport).CloseIdleConnections()

	get := func(path string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, gw.URL+path, nil)
		req.Header.Set("Authorization", "Bearer forged")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tt := range []struct {
		path string
		want int
	}{
		{"/orders/1", http.StatusOK},
		{"/billing/1", http.StatusOK},
		{"/orders/2", http.StatusOK},
		{"/ordersbilling/1", http.StatusNotFound},
		{"/other", http.StatusNotFound},
	} {
		if got := get(tt.path); got != tt.want {
			t.Errorf("GET %s: status %d, want %d", tt.path, got, tt.want)
		}
	}
	for name, want := range map[string]struct{ tokens, resource int }{"orders": {1, 2}, "billing": {1, 1}} {
		if got := ups[name].idp.TokenRequests(); got != want.tokens {
			t.Errorf("%s: token requests = %d, want %d", name, got, want.tokens)
		}
		if got := ups[name].idp.ResourceRequests(); got != want.resource {
			t.Errorf("%s: resource requests = %d, want %d", name, got, want.resource)
		}
	}
}

// TestMiddlewareGatewayConcurrent sends 200 requests at once to a gateway
// whose source has no token yet: they share one token fetch.
func TestMiddlewareGatewayConcurrent(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e := newGatewayEnv(t, gwSetup{idp: sourcetest.Options{Latency: 100 * time.Millisecond}})
	defer e.close()

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
		t.Errorf("the upstream got %d requests, want %d", len(seen), n)
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
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e := newGatewayEnv(t, gwSetup{})
	defer e.close()

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
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	tel := telemetry.Providers{MeterProvider: mp}

	refused := gwErrSource{&source.Error{Provider: "p", StatusCode: 401, Code: source.CodeInvalidClient,
		Description: "secret " + gwSecret + " is wrong", ProviderCode: "E_CLIENT"}}
	ok := gwStaticSource{&source.Token{AccessToken: "gw-access-tel"}}
	route := tokenhttp.PrefixRoutes(map[string]source.TokenSource{"/refused": refused, "/ok": ok})
	h := tokenhttp.MiddlewareFunc(route, tokenhttp.WithTelemetry(tel), tokenhttp.WithSkipPaths("/healthz"))(
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

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	var all strings.Builder
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			fmt.Fprintf(&all, "%+v\n", m)
			if m.Name != telemetry.MetricGatewayRejections {
				continue
			}
			sum, isSum := m.Data.(metricdata.Sum[int64])
			if !isSum {
				t.Fatalf("%s is a %T, want an int64 sum", m.Name, m.Data)
			}
			for _, dp := range sum.DataPoints {
				got[string(dp.Attributes.Encoded(attribute.DefaultEncoder()))] = dp.Value
			}
		}
	}
	key := func(status int, errType string) string {
		return fmt.Sprintf("%s=%s,%s=%d", telemetry.AttrErrorType, errType, telemetry.AttrHTTPStatusCode, status)
	}
	want := map[string]int64{
		key(http.StatusBadGateway, source.CodeInvalidClient): 2,
		key(http.StatusNotFound, "no_route"):                 1,
		key(499, "canceled"):                                 1,
	}
	if !mapsEqual(got, want) {
		t.Errorf("%s = %v, want %v", telemetry.MetricGatewayRejections, got, want)
	}
	for _, s := range []string{gwSecret, "E_CLIENT", "gw-access-tel"} {
		if strings.Contains(all.String(), s) {
			t.Errorf("the metrics hold %q:\n%s", s, all.String())
		}
	}
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestMiddlewareConstructionPanics checks that bad configuration fails at
// construction, with a message that says what to do.
func TestMiddlewareConstructionPanics(t *testing.T) {
	src := gwStaticSource{&source.Token{AccessToken: "a"}}
	tests := []struct {
		name string
		f    func()
		want string
	}{
		{"nil source", func() { tokenhttp.Middleware(nil) }, "Middleware needs a TokenSource"},
		{"nil route", func() { tokenhttp.MiddlewareFunc(nil) }, "use PrefixRoutes"},
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

// TestRouteEncodedSeparators sends paths with encoded separators through
// PrefixRoutes in front of an http.ServeMux, which matches the escaped
// path segment by segment: "/orders/v2%2F42" is served by "/orders/", so
// it must not get the "/orders/v2" credential (nor any other).
func TestRouteEncodedSeparators(t *testing.T) {
	v1, v2 := gwStaticSource{&source.Token{AccessToken: "v1"}}, gwStaticSource{&source.Token{AccessToken: "v2"}}
	mw := tokenhttp.MiddlewareFunc(tokenhttp.PrefixRoutes(map[string]source.TokenSource{"/orders": v1, "/orders/v2": v2}))
	mux := http.NewServeMux()
	got := map[string]string{} // handler -> Authorization it received
	for _, pattern := range []string{"/orders/", "/orders/v2/"} {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) { got[pattern] = r.Header.Get("Authorization") })
	}
	h := mw(mux)
	for _, tt := range []struct {
		target  string
		handler string // the mux handler that serves it; "" when the gateway answers
		want    string // the Authorization that handler gets
	}{
		{"/orders/v2/42", "/orders/v2/", "Bearer v2"},
		{"/orders/42", "/orders/", "Bearer v1"},
		{"/ord%65rs/v2/42", "/orders/v2/", "Bearer v2"}, // an escaped letter is the same segment
		{"/orders/v2%2F42", "", ""},
		{"/orders/v2%2f42", "", ""},
		{"/orders%2Fv2/42", "", ""},
		{"/orders/v2%5C42", "", ""},
		{"/orders/v2%5c..%5c42", "", ""},
	} {
		t.Run(tt.target, func(t *testing.T) {
			clear(got)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.target, nil))
			if tt.handler == "" {
				if rec.Code != http.StatusNotFound || len(got) != 0 {
					t.Errorf("GET %s = %d, handlers reached %v; want 404 from the gateway and no handler", tt.target, rec.Code, got)
				}
				return
			}
			if auth, ok := got[tt.handler]; !ok || auth != tt.want || len(got) != 1 {
				t.Errorf("GET %s reached %v, want only %s with %q", tt.target, got, tt.handler, tt.want)
			}
		})
	}
}
