package proxy

import (
	"testing"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// TestSharedSameTokenRoots: a reload whose source.ca_file now holds other
// certificates builds the route a new source; the same certificates keep
// the old one.
func TestSharedSameTokenRoots(t *testing.T) {
	ca1, ca2 := sourcetest.NewCA(), sourcetest.NewCA()
	cfg := &Config{}
	s := &shared{rc: Route{Prefix: "/a", TokenRoots: ca1.Pool}, cfg: cfg}
	for _, tt := range []struct {
		name string
		rc   Route
		want bool
	}{
		{"the same CA", Route{Prefix: "/a", TokenRoots: ca1.Pool.Clone()}, true},
		{"another CA", Route{Prefix: "/a", TokenRoots: ca2.Pool}, false},
		{"no ca_file any more", Route{Prefix: "/a"}, false},
	} {
		if got := s.same(cfg, tt.rc, [32]byte{}, nil); got != tt.want {
			t.Errorf("%s: same = %v, want %v", tt.name, got, tt.want)
		}
	}
}
