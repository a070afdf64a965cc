package tokenhttp

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/tokenhttp/tokenhttp/internal/instrument"
	"github.com/tokenhttp/tokenhttp/internal/tokenuse"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/telemetry"
)

// Middleware returns server middleware that sets the Authorization of
// every request to src's token (Token.HeaderValue) and calls next: the
// front of an API gateway, before an httputil.ReverseProxy. Whatever the
// client sent as Authorization, in any letter case, is dropped, from the
// header and from the trailers (with Proxy-Authorization); other headers
// and trailers pass as they came. next gets a copy of the request, with the
// token in its context (TokenFromContext); the request the middleware is
// given is not modified.
//
// When no token can be had, next is not called and the client gets an RFC
// 9457 application/problem+json reply that shows no token, no secret and
// no text from the token endpoint: 502 when the endpoint refused the
// gateway's credentials or request, 503 when it is unavailable or its
// breaker is open, 504 when the fetch or the request's deadline ran out
// (503 and 504 with a Retry-After: the endpoint's, the breaker's, else 1
// s), 500 when the source
// returned neither a token nor an error. A client that went away gets 499
// and no body. Each such reply is counted in
// telemetry.MetricGatewayRejections by status and error.type.
//
// To answer an upstream 401 with a new token and one retry, give the
// ReverseProxy a Transport from NewTransport over the same source.
//
// WithTelemetry, WithSkip and WithSkipPaths apply; the other options have
// no effect. The handlers are safe for concurrent use. Middleware panics
// if src is nil, and the function it returns panics if next is nil.
func Middleware(src source.TokenSource, opts ...Option) func(http.Handler) http.Handler {
	if src == nil {
		panic("tokenhttp: Middleware needs a TokenSource, got nil; use RoutedMiddleware to choose a source per request")
	}
	return newMiddleware(func(*http.Request) source.TokenSource { return src }, opts)
}

// RoutedMiddleware is Middleware with a source chosen per request: route
// returns the TokenSource for the upstream that r goes to, or nil when
// none does. PrefixRoutes makes a route function from path prefixes.
//
// A request for which route returns nil is unmatched: by default it gets
// a 404 application/problem+json reply and next is not called;
// WithUnmatched(UnmatchedPassThrough) calls next with the request as it
// came instead. Everything else is as for Middleware.
//
// route is called once per request that is not skipped, on the request
// as the client sent it; it must be safe for concurrent use. RoutedMiddleware
// panics if route is nil.
func RoutedMiddleware(route func(r *http.Request) source.TokenSource, opts ...Option) func(http.Handler) http.Handler {
	if route == nil {
		panic("tokenhttp: RoutedMiddleware needs a route function, got nil; use PrefixRoutes to route by path, or Middleware for a single source")
	}
	return newMiddleware(route, opts)
}

// TokenFromContext returns the token the middleware put on the request
// whose context is ctx, so that a handler behind Middleware or
// RoutedMiddleware can read its metadata (Scope, Expiry, Extra). ok is false
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

// gateway is the handler the middleware wraps around next. Its fields are
// set at construction and only read afterwards, but for hdr.
type gateway struct {
	next      http.Handler
	route     func(*http.Request) source.TokenSource
	skip      []func(*http.Request) bool
	unmatched Unmatched
	tel       *instrument.Instruments

	hdr headerCache // the header value of the last token seen
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
		g.reject(w, r, rejection{status: http.StatusNotFound, errType: telemetry.ErrorNoRoute,
			detail: "The gateway has no upstream service for this path."})
		return
	}
	tok, err := src.Token(r.Context())
	if tokenuse.Check(tok, err) != nil {
		g.reject(w, r, classify(r.Context(), err))
		return
	}
	g.next.ServeHTTP(w, g.withToken(r, tok))
}

// withToken returns a shallow copy of r with tok in its context and a
// Header of its own whose only Authorization is tok's.
func (g *gateway) withToken(r *http.Request, tok *source.Token) *http.Request {
	r2 := r.WithContext(context.WithValue(r.Context(), tokenKey{}, tok))
	r2.Header = copyWithout(r.Header, len(r.Header)+1)
	r2.Header["Authorization"] = g.hdr.vals(tok)
	withoutCredentialTrailers(r2, r)
	return r2
}

// withoutAuthorization returns r, or a shallow copy of r without the
// client's Authorization if it sent one, and without credential trailers
// if its body may be followed by trailers.
func withoutAuthorization(r *http.Request) *http.Request {
	has := false
	for k := range r.Header {
		if isAuthorization(k) {
			has = true
			break
		}
	}
	if !has && !mayHaveTrailers(r) {
		return r
	}
	r2 := shallowCopy(r)
	if has {
		r2.Header = copyWithout(r.Header, len(r.Header))
	}
	withoutCredentialTrailers(r2, r)
	return r2
}

// mayHaveTrailers reports whether trailers may follow r's body: declared
// ones, or any after a body of unknown length (chunked), which net/http
// puts in r.Trailer once the body has been read, declared or not.
func mayHaveTrailers(r *http.Request) bool {
	return r.Trailer != nil || r.Body != nil && r.Body != http.NoBody && r.ContentLength < 0
}

// withoutCredentialTrailers gives r2, a shallow copy of r, trailers of its
// own without Authorization or Proxy-Authorization, so that a client
// cannot send its own credential after the body, past the middleware.
// r2's body fills r2.Trailer, minus those, when it reaches EOF. Requests
// that may have no trailers (nearly all) are left alone.
func withoutCredentialTrailers(r2, r *http.Request) {
	if !mayHaveTrailers(r) {
		return
	}
	r2.Trailer = nil
	if r.Trailer != nil {
		r2.Trailer = make(http.Header, len(r.Trailer))
		copyTrailers(r2.Trailer, r.Trailer)
	}
	if r.Body != nil && r.Body != http.NoBody {
		r2.Body = &trailerBody{ReadCloser: r.Body, from: r, to: r2}
	}
}

// trailerBody copies the trailers of from, minus credentials, into to's
// at EOF.
type trailerBody struct {
	io.ReadCloser
	from, to *http.Request
	done     bool
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		if len(b.from.Trailer) > 0 && b.to.Trailer == nil {
			b.to.Trailer = make(http.Header, len(b.from.Trailer))
		}
		copyTrailers(b.to.Trailer, b.from.Trailer)
	}
	return n, err
}

// copyTrailers copies the trailer fields of from into to, but for
// Authorization and Proxy-Authorization in any letter case.
func copyTrailers(to, from http.Header) {
	for k, v := range from {
		if !isAuthorization(k) && !strings.EqualFold(k, "Proxy-Authorization") {
			to[k] = v
		}
	}
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
