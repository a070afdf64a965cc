package tokenhttp_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// TestRoutePrefixRoutes checks which source PrefixRoutes picks for a path.
func TestRoutePrefixRoutes(t *testing.T) {
	srcs := map[string]source.TokenSource{}
	for _, name := range []string{"api", "apiv2", "admin", "files"} {
		srcs[name] = staticSource(&source.Token{AccessToken: name})
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

// TestRouteEncodedSeparators sends paths with encoded separators through
// PrefixRoutes in front of an http.ServeMux, which matches the escaped
// path segment by segment: "/orders/v2%2F42" is served by "/orders/", so
// it must not get the "/orders/v2" credential (nor any other).
func TestRouteEncodedSeparators(t *testing.T) {
	v1, v2 := staticSource(&source.Token{AccessToken: "v1"}), staticSource(&source.Token{AccessToken: "v2"})
	mw := tokenhttp.RoutedMiddleware(tokenhttp.PrefixRoutes(map[string]source.TokenSource{"/orders": v1, "/orders/v2": v2}))
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

// TestRouteGatewayPerRoute sends requests for two upstreams, each with its
// own token endpoint, through one gateway. The proxies use plain
// Transports, so a 200 proves the middleware chose the right credential:
// each emulator rejects the other's tokens.
func TestRouteGatewayPerRoute(t *testing.T) {
	checkLeaks(t)
	type upstream struct {
		idp *sourcetest.Server
		src *source.CachedSource
		tr  *http.Transport
	}
	ups := map[string]*upstream{}
	routes := map[string]source.TokenSource{}
	mux := http.NewServeMux()
	for _, name := range []string{"orders", "billing"} {
		u := &upstream{idp: newEmulator(t, sourcetest.Options{}), tr: &http.Transport{}}
		t.Cleanup(u.tr.CloseIdleConnections)
		u.src = newSource(t, u.idp)
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
	gw := httptest.NewServer(tokenhttp.RoutedMiddleware(tokenhttp.PrefixRoutes(routes))(mux))
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
