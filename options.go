package tokenhttp

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/tokenhttp/tokenhttp/telemetry"
)

// Option tunes a Transport or a Middleware. Options are applied once, at
// construction; an Option that does not concern what is being built has no
// effect on it.
type Option interface{ apply(*options) }

// options is what the Options resolve to. newOptions fills it once; the
// Transport and the middleware copy what they need and never read it again.
type options struct {
	// Transport.
	base http.RoundTripper // never nil after newOptions
	// defaultBase: no WithBase; a source with a client certificate
	// (certSource) then gets a base that presents it.
	defaultBase bool
	insecure    bool

	// Both.
	tel telemetry.Providers

	// Middleware.
	unmatched Unmatched                  // what a request no route matches gets
	skip      []func(*http.Request) bool // requests that bypass the middleware
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithBase sets the RoundTripper that sends requests. If rt is nil,
// http.DefaultTransport is used.
func WithBase(rt http.RoundTripper) Option {
	return optionFunc(func(o *options) { o.base = rt })
}

// WithInsecureHTTP allows tokens over cleartext http to hosts that are not
// loopback. Without it such a request fails before it is sent. Use it only
// on a network you trust.
func WithInsecureHTTP() Option {
	return optionFunc(func(o *options) { o.insecure = true })
}

// WithTelemetry sets where the 401 retries (an event on the request's span,
// and a count) and the middleware's rejections are recorded. Without it,
// the OpenTelemetry globals are used.
func WithTelemetry(p telemetry.Providers) Option {
	return optionFunc(func(o *options) { o.tel = p })
}

// WithUnmatched says what RoutedMiddleware does with a request no route
// matches: UnmatchedNotFound (the default) or UnmatchedPassThrough. It has
// no effect on Middleware, where every request matches, nor on a
// Transport. It panics on any other value.
func WithUnmatched(u Unmatched) Option {
	if u != UnmatchedNotFound && u != UnmatchedPassThrough {
		panic(fmt.Sprintf("tokenhttp: WithUnmatched got %v; use UnmatchedNotFound or UnmatchedPassThrough", u))
	}
	return optionFunc(func(o *options) { o.unmatched = u })
}

// WithSkip lets the requests for which skip returns true, such as health
// checks, through the middleware without a token: next gets a copy
// without the client's Authorization (a skipped path must not carry a
// credential of the client's choosing upstream) and with every other
// header. No token is fetched and nothing is recorded. Several WithSkip
// and WithSkipPaths add up.
//
// skip is called first, on the request as the client sent it, and must be
// safe for concurrent use. Skipping is the middleware's alone: a Transport
// from NewTransport behind it still attaches a token. WithSkip has no
// effect on a Transport. It panics if skip is nil.
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

// newOptions applies opts in order, skipping nil ones, and sets the
// defaults.
func newOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	if o.base == nil {
		o.base, o.defaultBase = http.DefaultTransport, true
	}
	return o
}
