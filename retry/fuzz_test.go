package retry

import (
	"net/http"
	"testing"
	"time"
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
		p := Policy{}.withDefaults()
		resp := &http.Response{Header: http.Header{"Retry-After": {h}}}
		if w, ok := nextWait(p, 1, resp); ok && (w < 0 || w > max(p.MaxRetryAfter, p.MaxWait)) {
			t.Fatalf("nextWait with Retry-After %q = %v, over the caps", h, w)
		}
	})
}
