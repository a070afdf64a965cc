package retry

import (
	"net/http"
	"testing"
	"time"

	pretry "github.com/tokenhttp/tokenhttp/retry"
)

// FuzzParseRetryAfter: any header value: no panic, never negative, never
// over the 24-hour cap, and the capped wait of a retry is never over the
// Policy's MaxRetryAfter.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	for _, s := range []string{"0", "1", "120", "3600", "99999999999999999999", "-1", "1.5", "",
		"Sun, 22 Nov 2026 03:02:00 GMT", "Sun, 22 Nov 2020 03:02:00 GMT", "junk", " 7 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		d, _ := ParseRetryAfter(h, now)
		if d < 0 || d > 24*time.Hour {
			t.Fatalf("ParseRetryAfter(%q) = %v, out of range", h, d)
		}
		p := withDefaults(pretry.Policy{})
		resp := &http.Response{Header: http.Header{"Retry-After": {h}}}
		if w, ok := nextWait(p, 1, resp); ok && (w < 0 || w > max(p.MaxRetryAfter, p.MaxWait)) {
			t.Fatalf("nextWait with Retry-After %q = %v, over the caps", h, w)
		}
	})
}

// FuzzWWWAuthenticate: any header: no panic, and a bounded parse.
func FuzzWWWAuthenticate(f *testing.F) {
	for _, s := range []string{`Bearer error="invalid_token"`, `Bearer realm="x", error="insufficient_scope", scope="a b"`,
		`Basic realm="sourcetest", Bearer error=invalid_request`, `Bearer error="unterminated`, `=,,"\`, ``, `Bearer error="a\"b"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		_ = RefreshOn401([]string{h})
		for _, c := range parseChallenges(h) {
			if len(c.scheme) > maxChallengeBytes {
				t.Fatalf("scheme longer than the bound")
			}
		}
	})
}

func TestRefreshOn401(t *testing.T) {
	tests := []struct {
		name string
		h    []string
		want bool
	}{
		{"no header", nil, true},
		{"invalid_token", []string{`Bearer realm="api", error="invalid_token", error_description="expired"`}, true},
		{"insufficient_scope", []string{`Bearer realm="api", error="insufficient_scope", scope="orders:write"`}, false},
		{"invalid_request, token form", []string{`Bearer error=invalid_request`}, false},
		{"case-insensitive", []string{`bearer ERROR="Insufficient_Scope"`}, false},
		{"second challenge", []string{`Basic realm="x", Bearer error="insufficient_scope"`}, false},
		{"second header", []string{`Basic realm="x"`, `Bearer error="insufficient_scope"`}, false},
		{"other scheme's error", []string{`DPoP error="insufficient_scope"`}, true},
		{"quoted comma", []string{`Bearer error_description="a, error=insufficient_scope", error="invalid_token"`}, true},
		{"junk", []string{`=,,"\`}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RefreshOn401(tt.h); got != tt.want {
				t.Errorf("RefreshOn401(%q) = %v, want %v", tt.h, got, tt.want)
			}
		})
	}
}
