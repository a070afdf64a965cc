package proxy

import (
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
)

// TestRewriteStripPrefix: with strip_prefix, what follows the prefix is
// joined to the upstream's path with exactly one slash, and the client's
// trailing slash is kept, for upstreams with and without a path.
func TestRewriteStripPrefix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		prefix, upstream, path, want string
	}{
		{"/a/b", "http://up/ab", "/a/b", "/ab"},
		{"/a/b", "http://up/ab", "/a/b/", "/ab/"},
		{"/a/b", "http://up/ab", "/a/b/x", "/ab/x"},
		{"/a/b", "http://up/ab", "/a/b/x/", "/ab/x/"},
		{"/a/b", "http://up/ab/", "/a/b", "/ab/"},
		{"/a/b", "http://up/ab/", "/a/b/", "/ab/"},
		{"/a/b", "http://up/ab/", "/a/b/x", "/ab/x"},
		{"/a/b", "http://up", "/a/b", ""},
		{"/a/b", "http://up", "/a/b/", "/"},
		{"/a/b", "http://up", "/a/b/x", "/x"},
		{"/a/b", "http://up/", "/a/b/x/", "/x/"},
		{"/base/", "http://up/up/base", "/base/", "/up/base/"},
		{"/base/", "http://up/up/base", "/base/x", "/up/base/x"},
		{"/base/", "http://up/up/base/", "/base/x", "/up/base/x"},
		{"/base/", "http://up", "/base/x", "/x"},
		{"/base/", "http://up", "/base/", "/"},
		{"/a", "http://up/r", "/a/x%2Fy", "/r/x%2Fy"},
	}
	for _, tt := range tests {
		t.Run(tt.prefix+" "+tt.upstream+" "+tt.path, func(t *testing.T) {
			u, err := url.Parse(tt.upstream)
			if err != nil {
				t.Fatal(err)
			}
			in := httptest.NewRequest("GET", "http://proxy"+tt.path, nil)
			pr := &httputil.ProxyRequest{In: in, Out: in.Clone(in.Context())}
			rewrite(Route{Prefix: tt.prefix, Upstream: u, StripPrefix: true})(pr)
			if got := pr.Out.URL.EscapedPath(); got != tt.want {
				t.Errorf("%s with prefix %s to %s: got %q, want %q", tt.path, tt.prefix, tt.upstream, got, tt.want)
			}
		})
	}
}
