package tokenhttp

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/tokenhttp/tokenhttp/source"
)

// Unmatched says what RoutedMiddleware does with a request its route
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

// PrefixRoutes returns a route function for RoutedMiddleware that chooses a
// source by URL path prefix: routes maps each prefix to its upstream's
// source, as in
//
//	tokenhttp.PrefixRoutes(map[string]source.TokenSource{
//		"/orders":     ordersSrc,
//		"/orders/v2":  ordersV2Src,
//		"/billing":    billingSrc,
//	})
//
// A prefix matches whole path segments ("/orders" matches "/orders/42",
// not "/ordersx"); a trailing slash makes no difference, "/" matches every
// path, and the longest matching prefix wins. A path no prefix matches gets
// nil (unmatched), and so does a path the router behind may read otherwise
// than PrefixRoutes does, so that no credential goes where that router
// sends it: one that is not clean ("/billing/../orders", "//orders"), or
// one with an encoded separator or a backslash ("/orders/v2%2F42" is
// served by http.ServeMux's "/orders/", while its decoded form reads
// "/orders/v2/42").
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
