package tokenhttp

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/instrument"
	"github.com/tokenhttp/tokenhttp/source"
)

// Middleware returns server middleware that puts the upstream credential
// from src on every request before calling the next handler. It is meant
// to sit in front of an httputil.ReverseProxy in an API gateway, so that
// every request that goes upstream carries the gateway's own credential.
//
// For each request, the next handler gets a copy whose Authorization is
// exactly src's Token.HeaderValue: whatever the client sent under that
// name (one value or several, in any letter case) is dropped, so a client
// cannot choose the upstream credential. Other headers are passed on as
// they came. The request the middleware was given is not modified. The
// token is also in the copy's context, for TokenFromContext.
//
// When no token can be had, next is not called and the client gets an
// application/problem+json reply (RFC 9457: "type", "title", "status" and
// a "detail" written by this package) that shows no token, no secret and
// no text from the token endpoint:
//
//   - 502 Bad Gateway when the token endpoint refused the gateway's
//     credentials (a *source.Error that is not Temporary);
//   - 503 Service Unavailable when the endpoint is down, failing or
//     unreachable, or its circuit breaker is open, with a Retry-After
//     (whole seconds, rounded up, at least 1) when the endpoint asked for
//     one (source.Error.RetryAfter) or the breaker says when it will try
//     again (source.BreakerOpenError.Until);
//   - 504 Gateway Timeout when the token fetch timed out, or the request's
//     own deadline passed while it waited for one;
//   - 500 Internal Server Error when the TokenSource returned no error and
//     no usable token (nil, or neither AccessToken nor Authorization): a
//     bug in the source.
//
// A client that goes away (its request's context is cancelled) while the
// middleware waits for a token gets no body: the middleware writes the
// status 499 (nginx's "client closed request"), so that access logs and
// metrics do not record a success, and returns.
//
// Every request the middleware answers itself is counted in
// telemetry.MetricGatewayRejections, by status and error.type (a code such
// as "invalid_client", "breaker_open", "timeout", "canceled" or
// "no_route", never text from the provider), and error.type is set on the
// request's current span; a request that gets its token records nothing.
// Options: WithTelemetry says where that goes (without it, the
// OpenTelemetry globals); WithSkip and WithSkipPaths let requests such as
// health checks bypass the middleware. WithBase and WithInsecureHTTP tune
// a Transport and have no effect here.
//
// To have an upstream 401 answered with a new token and one retry, give
// the ReverseProxy a Transport from NewTransport over the same source: it
// sets the same header again on its own copy of the outgoing request (a
// cached token: no fetch), and on a 401 drops exactly that token, gets a
// new one and retries once. With a plain Transport, the middleware's
// header goes upstream as it is, and a 401 goes back to the client.
//
// The returned handlers are safe for concurrent use. Middleware panics if
// src is nil, and the function it returns panics if next is nil.
func Middleware(src source.TokenSource, opts ...Option) func(http.Handler) http.Handler {
	if src == nil {
		panic("tokenhttp: Middleware needs a TokenSource, got nil; use MiddlewareFunc to choose a source per request")
	}
	return newMiddleware(func(*http.Request) source.TokenSource { return src }, opts)
}

// MiddlewareFunc is Middleware with a source chosen per request: route
// returns the TokenSource for the upstream that r goes to, or nil when
// none does. PrefixRoutes makes a route function from path prefixes.
//
// A request for which route returns nil is unmatched: by default it gets
// a 404 application/problem+json reply and next is not called;
// WithUnmatched(UnmatchedPassThrough) calls next with the request as it
// came instead. Everything else is as for Middleware.
//
// route is called once per request that is not skipped, on the request
// as the client sent it; it must be safe for concurrent use. MiddlewareFunc
// panics if route is nil.
func MiddlewareFunc(route func(r *http.Request) source.TokenSource, opts ...Option) func(http.Handler) http.Handler {
	if route == nil {
		panic("tokenhttp: MiddlewareFunc needs a route function, got nil; use PrefixRoutes to route by path, or Middleware for a single source")
	}
	return newMiddleware(route, opts)
}

// TokenFromContext returns the token the middleware put on the request
// whose context is ctx, so that a handler behind Middleware or
// MiddlewareFunc can read its metadata (Scope, Expiry, Extra). ok is false
// when the request did not go through the middleware, was skipped, or
// was passed through unmatched.
//
// The token holds the upstream credential: it belongs in the upstream
// request's Authorization only. Its String, GoString and LogValue redact
// it; its fields do not.
func TokenFromContext(ctx context.Context) (tok *source.Token, ok bool) {
	tok, ok = ctx.Value(tokenKey{}).(*source.Token)
	return tok, ok && tok != nil
}

// tokenKey is the context key of the token the middleware attached.
type tokenKey struct{}

// Unmatched says what MiddlewareFunc does with a request its route
// function finds no source for.
type Unmatched int

const (
	// UnmatchedNotFound answers 404 with an application/problem+json
	// reply and does not call next. It is the default.
	UnmatchedNotFound Unmatched = iota
	// UnmatchedPassThrough calls next with the request as the client sent
	// it: no token is fetched and the client's own Authorization, if any,
	// is left in place, since no upstream credential of the gateway is
	// involved. Use it when next serves other routes as well (a mux, say)
	// and is trusted with what the client sent: a ReverseProxy with a
	// plain Transport forwards the client's Authorization upstream (one
	// from NewTransport replaces it with its own source's token).
	UnmatchedPassThrough
)

// String returns the constant's name.
func (u Unmatched) String() string {
	switch u {
	case UnmatchedNotFound:
		return "UnmatchedNotFound"
	case UnmatchedPassThrough:
		return "UnmatchedPassThrough"
	}
	return "Unmatched(" + strconv.Itoa(int(u)) + ")"
}

// WithUnmatched says what MiddlewareFunc does with a request no route
// matches: UnmatchedNotFound (the default) or UnmatchedPassThrough. It has
// no effect on Middleware, where every request matches, nor on a
// Transport. It panics on any other value.
func WithUnmatched(u Unmatched) Option {
	if u != UnmatchedNotFound && u != UnmatchedPassThrough {
		panic(fmt.Sprintf("tokenhttp: WithUnmatched got %v; use UnmatchedNotFound or UnmatchedPassThrough", u))
	}
	return optionFunc(func(o *options) { o.unmatched = u })
}

// WithSkip makes the middleware let through the requests for which skip
// returns true, such as health checks, without a token: next gets a copy
// of the request without the client's Authorization (a skipped path must
// not become a way to send a credential of the client's choosing
// upstream); every other header is kept. No token is fetched, nothing is
// recorded, and TokenFromContext reports none.
//
// skip is called first, for every request, on the request as the client
// sent it; it must be safe for concurrent use. Several WithSkip and
// WithSkipPaths options add up: a request any of them matches is skipped.
//
// Skipping is the middleware's alone: if next proxies a skipped request
// through a Transport from NewTransport, that Transport still attaches a
// token (and fails when there is none). Serve health checks in the
// gateway, or proxy them with a plain Transport.
//
// WithSkip has no effect on a Transport. It panics if skip is nil.
func WithSkip(skip func(r *http.Request) bool) Option {
	if skip == nil {
		panic("tokenhttp: WithSkip needs a function, got nil")
	}
	return optionFunc(func(o *options) { o.skip = append(o.skip, skip) })
}

// WithSkipPaths is WithSkip for requests whose URL path is exactly one of
// paths, as in WithSkipPaths("/healthz", "/readyz"). The match is exact:
// "/healthz" skips neither "/healthz/" nor "/healthz/x". It panics if a
// path does not start with "/".
func WithSkipPaths(paths ...string) Option {
	set := make(map[string]bool, len(paths))
	for _, p := range paths {
		if !strings.HasPrefix(p, "/") {
			panic(fmt.Sprintf("tokenhttp: WithSkipPaths got %q; each path must start with \"/\", as in \"/healthz\"", p))
		}
		set[p] = true
	}
	return WithSkip(func(r *http.Request) bool { return set[r.URL.Path] })
}

// PrefixRoutes returns a route function for MiddlewareFunc that chooses a
// source by URL path prefix: routes maps each prefix to its upstream's
// source, as in
//
//	tokenhttp.PrefixRoutes(map[string]source.TokenSource{
//		"/orders":     ordersSrc,
//		"/orders/v2":  ordersV2Src,
//		"/billing":    billingSrc,
//	})
//
// A prefix matches whole path segments: "/orders" matches "/orders" and
// "/orders/42", not "/ordersx"; a trailing slash makes no difference
// ("/orders/" is "/orders"), and "/" matches every path. The longest
// matching prefix wins. A path that is not clean ("/billing/../orders/1",
// "//orders", "/orders/./1") gets nil (unmatched), as does a path no prefix
// matches: the router behind the middleware may read such a path
// differently, and the credential must not go where the router sends it.
// (http.ServeMux redirects such paths to their clean form first.) So does
// a path with an encoded separator ("/orders/v2%2F42", "%5C") or a
// backslash: http.ServeMux matches the escaped path segment by segment
// and would serve "/orders/v2%2F42" from "/orders/", while its decoded
// form reads "/orders/v2/42". A route function of your own decides such
// paths for itself.
//
// routes is copied; the function is safe for concurrent use. PrefixRoutes
// panics if routes is empty, a prefix does not start with "/" or is not a
// clean path, two prefixes are the same after the trailing slash is
// dropped, or a source is nil.
func PrefixRoutes(routes map[string]source.TokenSource) func(r *http.Request) source.TokenSource {
	if len(routes) == 0 {
		panic("tokenhttp: PrefixRoutes got no routes; give at least one path prefix and its TokenSource, such as {\"/api\": src}")
	}
	list := make([]prefixRoute, 0, len(routes))
	seen := make(map[string]string, len(routes))
	for prefix, src := range routes {
		if !strings.HasPrefix(prefix, "/") {
			panic(fmt.Sprintf("tokenhttp: PrefixRoutes got the prefix %q; a prefix must start with \"/\", as in %q", prefix, "/"+prefix))
		}
		key := path.Clean(prefix)
		if key != prefix && key+"/" != prefix {
			panic(fmt.Sprintf("tokenhttp: PrefixRoutes got the prefix %q, which is not a clean path; use %q", prefix, key))
		}
		if other, dup := seen[key]; dup {
			panic(fmt.Sprintf("tokenhttp: PrefixRoutes got both %q and %q, which are the same prefix; keep one", other, prefix))
		}
		seen[key] = prefix
		if src == nil {
			panic(fmt.Sprintf("tokenhttp: PrefixRoutes got a nil TokenSource for the prefix %q", prefix))
		}
		list = append(list, prefixRoute{prefix: key, src: src})
	}
	// Longest first: the first match is the longest.
	slices.SortFunc(list, func(a, b prefixRoute) int {
		return cmp.Or(cmp.Compare(len(b.prefix), len(a.prefix)), strings.Compare(a.prefix, b.prefix))
	})
	return func(r *http.Request) source.TokenSource {
		if ambiguousSegments(r.URL) {
			return nil
		}
		p := cleanPath(r.URL.Path)
		if raw := r.URL.Path; raw != "" && p != raw && p+"/" != raw {
			// A path that is not clean ("/billing/../orders") may be read
			// differently by the router behind: no credential for it.
			return nil
		}
		for _, rt := range list {
			if underPrefix(p, rt.prefix) {
				return rt.src
			}
		}
		return nil
	}
}

// ambiguousSegments reports whether u's escaped and decoded paths may
// disagree on where segments end: an encoded "/" or "\\" ("%2F", "%5C"),
// or a backslash, which some servers take as a separator. http.ServeMux
// matches the escaped path segment by segment ("/orders/v2%2F42" is served
// by "/orders/"), while the decoded path reads "/orders/v2/42": routing on
// either could hand one upstream another's credential. It allocates only
// when the path has escapes that Go would not write itself.
func ambiguousSegments(u *url.URL) bool {
	if strings.IndexByte(u.Path, '\\') >= 0 {
		return true
	}
	if u.RawPath == "" {
		return false // the escaped path is the default encoding of Path: no %2F or %5C
	}
	esc := u.EscapedPath()
	for i := 0; i+2 < len(esc); i++ {
		if esc[i] != '%' {
			continue
		}
		if h, l := esc[i+1], esc[i+2]|0x20; (h == '2' && l == 'f') || (h == '5' && l == 'c') {
			return true
		}
	}
	return false
}

// prefixRoute is one route of PrefixRoutes; prefix is clean, without a
// trailing slash unless it is "/".
type prefixRoute struct {
	prefix string
	src    source.TokenSource
}

// underPrefix reports whether the clean path p is prefix or below it.
func underPrefix(p, prefix string) bool {
	if prefix == "/" {
		return true
	}
	return strings.HasPrefix(p, prefix) && (len(p) == len(prefix) || p[len(prefix)] == '/')
}

// cleanPath is p made absolute and cleaned. It allocates only when p is
// not clean already.
func cleanPath(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	return path.Clean(p)
}

// gateway is the handler the middleware wraps around next. Its fields are
// set at construction and only read afterwards, but for hdr.
type gateway struct {
	next      http.Handler
	route     func(*http.Request) source.TokenSource
	skip      []func(*http.Request) bool
	unmatched Unmatched
	tel       *instrument.Instruments

	// hdr is the header value of the last token seen. With several
	// sources in turn it changes often; it is only a cache, keyed by the
	// token's identity.
	hdr atomic.Pointer[header]
}

func newMiddleware(route func(*http.Request) source.TokenSource, opts []Option) func(http.Handler) http.Handler {
	o := newOptions(opts)
	tel := instrument.New(o.tel)
	skip := slices.Clip(o.skip)
	return func(next http.Handler) http.Handler {
		if next == nil {
			panic("tokenhttp: the middleware needs a next handler, got nil")
		}
		return &gateway{next: next, route: route, skip: skip, unmatched: o.unmatched, tel: tel}
	}
}

// ServeHTTP skips, routes, gets a token and calls next, or answers itself.
func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for _, skip := range g.skip {
		if skip(r) {
			g.next.ServeHTTP(w, withoutAuthorization(r))
			return
		}
	}
	src := g.route(r)
	if src == nil {
		if g.unmatched == UnmatchedPassThrough {
			g.next.ServeHTTP(w, r)
			return
		}
		g.reject(w, r, rejection{status: http.StatusNotFound, errType: "no_route",
			detail: "The gateway has no upstream service for this path."})
		return
	}
	tok, err := src.Token(r.Context())
	if err != nil || tok == nil || (tok.AccessToken == "" && tok.Authorization == "") {
		g.reject(w, r, classify(r.Context(), err))
		return
	}
	g.next.ServeHTTP(w, g.withToken(r, tok))
}

// withToken returns a shallow copy of r with tok in its context and a
// Header of its own whose only Authorization is tok's.
func (g *gateway) withToken(r *http.Request, tok *source.Token) *http.Request {
	h := g.hdr.Load()
	if h == nil || h.tok != tok {
		h = &header{tok: tok, vals: []string{tok.HeaderValue()}}
		g.hdr.Store(h)
	}
	r2 := r.WithContext(context.WithValue(r.Context(), tokenKey{}, tok))
	r2.Header = copyWithout(r.Header, len(r.Header)+1)
	r2.Header["Authorization"] = h.vals
	return r2
}

// withoutAuthorization returns r, or a shallow copy of r without the
// client's Authorization if it sent one.
func withoutAuthorization(r *http.Request) *http.Request {
	has := false
	for k := range r.Header {
		if isAuthorization(k) {
			has = true
			break
		}
	}
	if !has {
		return r
	}
	r2 := shallowCopy(r)
	r2.Header = copyWithout(r.Header, len(r.Header))
	return r2
}

// copyWithout copies h, minus every Authorization key, into a new map of
// capacity n. The value slices are shared: handlers do not modify the
// request they are given.
func copyWithout(h http.Header, n int) http.Header {
	out := make(http.Header, n)
	for k, v := range h {
		if !isAuthorization(k) {
			out[k] = v
		}
	}
	return out
}

// isAuthorization reports whether the header key k is Authorization in any
// letter case (a Header built by hand need not be canonical).
func isAuthorization(k string) bool {
	return len(k) == len("Authorization") && strings.EqualFold(k, "Authorization")
}

// statusClientClosedRequest is nginx's status for a client that left
// before the reply; net/http writes any 3-digit status.
const statusClientClosedRequest = 499

// rejection is how the middleware answers a request it cannot pass on.
type rejection struct {
	status     int
	errType    string        // error.type for telemetry: a code, never provider text
	detail     string        // written by us; "" writes no body
	retryAfter time.Duration // > 0: a Retry-After header
}

// Details of the replies. They say what happened in the gateway's words;
// nothing the token endpoint sent is ever copied into them.
const (
	detailRefused     = "The gateway could not get a credential for the upstream service: its token endpoint refused the gateway's credentials."
	detailUnavailable = "The gateway could not get a credential for the upstream service: its token endpoint is unavailable. Try again later."
	detailBreaker     = "The gateway could not get a credential for the upstream service: its token endpoint is failing, and the gateway has paused requests to it. Try again after Retry-After seconds."
	detailTimeout     = "The gateway could not get a credential for the upstream service in time."
	detailNoToken     = "The gateway could not get a credential for the upstream service: its token source returned none."
)

// classify maps why no token could be had to the reply. ctx is the
// request's; err may be nil when the source returned no token and no
// error.
func classify(ctx context.Context, err error) rejection {
	if ctx.Err() == context.Canceled {
		return rejection{status: statusClientClosedRequest, errType: "canceled"}
	}
	if err == nil {
		return rejection{status: http.StatusInternalServerError, errType: "no_token", detail: detailNoToken}
	}
	var (
		open *source.BreakerOpenError
		te   *source.Error
		he   *source.HookError
		fe   *source.FetchError
		tm   interface{ Timeout() bool }
	)
	switch {
	case errors.As(err, &open):
		return rejection{status: http.StatusServiceUnavailable, errType: "breaker_open", detail: detailBreaker,
			retryAfter: max(time.Until(open.Until), time.Second)}
	case errors.Is(err, source.ErrBreakerOpen):
		return rejection{status: http.StatusServiceUnavailable, errType: "breaker_open", detail: detailUnavailable}
	case errors.As(err, &te) && te.Temporary():
		return rejection{status: http.StatusServiceUnavailable, errType: te.Code, detail: detailUnavailable,
			retryAfter: te.RetryAfter}
	case te != nil:
		return rejection{status: http.StatusBadGateway, errType: te.Code, detail: detailRefused}
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &tm) && tm.Timeout()):
		return rejection{status: http.StatusGatewayTimeout, errType: "timeout", detail: detailTimeout}
	case errors.Is(err, source.ErrClosed):
		return rejection{status: http.StatusServiceUnavailable, errType: "closed", detail: detailUnavailable}
	case errors.As(err, &he):
		return rejection{status: http.StatusServiceUnavailable, errType: "hook", detail: detailUnavailable}
	case errors.As(err, &fe):
		return rejection{status: http.StatusServiceUnavailable, errType: "network", detail: detailUnavailable}
	}
	return rejection{status: http.StatusServiceUnavailable, errType: "error", detail: detailUnavailable}
}

// problem is an RFC 9457 problem details object. With type "about:blank",
// the title is the status's reason phrase.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// reject records rj and answers it.
func (g *gateway) reject(w http.ResponseWriter, r *http.Request, rj rejection) {
	g.tel.GatewayRejection(r.Context(), rj.status, rj.errType)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if rj.detail == "" {
		w.WriteHeader(rj.status)
		return
	}
	body, err := json.Marshal(problem{Type: "about:blank", Title: http.StatusText(rj.status), Status: rj.status, Detail: rj.detail})
	if err != nil { // cannot happen: the fields are plain strings and an int
		body = []byte("{}")
	}
	body = append(body, '\n')
	h.Set("Content-Type", "application/problem+json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if rj.retryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((rj.retryAfter+time.Second-1)/time.Second), 10))
	}
	w.WriteHeader(rj.status)
	_, _ = w.Write(body)
}
