package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// TestReloadUpstreamChangeFailsClosed: a reload that moves a route to
// another upstream and another token endpoint, while that endpoint is
// down, does not send the old route's token to the new upstream: the
// route takes its new source cold (503) until it gets a token.
func TestReloadUpstreamChangeFailsClosed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sec := secretFile(t, dir, "secret", sourcetest.DefaultClientSecret)
	emA := newEmulator(t, sourcetest.Options{})
	emB := newEmulator(t, sourcetest.Options{})
	upA := newUpstream(t)
	var mu sync.Mutex
	var gotB []string
	upB := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotB = append(gotB, r.Header.Get("Authorization"))
		mu.Unlock()
		_ = json.NewEncoder(w).Encode(echo{Auth: r.Header.Get("Authorization")})
	}))
	t.Cleanup(upB.Close)
	cfg := func(up, tok string) string {
		return "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nroutes:\n" +
			routeYAML("/api", up, tok, sec, "retry_max_attempts: 1", "fetch_timeout: 1s")
	}
	h := startProxy(t, dir, cfg(upA.URL, emA.TokenURL))
	h.waitReady(200)
	code, tokA := h.authOf("/api")
	if code != 200 || tokA == "" {
		t.Fatalf("before the reload: %d %q", code, tokA)
	}

	emB.FailNext(1<<30, http.StatusServiceUnavailable, "")
	h.write(cfg(upB.URL, emB.TokenURL))
	if err := h.p.Reload(); err != nil {
		t.Fatal(err)
	}
	if code, _ := h.authOf("/api"); code != http.StatusServiceUnavailable {
		t.Errorf("GET /api after the reload, the new endpoint down: %d, want 503", code)
	}
	if n := len(h.p.cur.Load().pending); n != 0 {
		t.Errorf("pending after the reload: %d routes, want none (the route took its new source)", n)
	}

	emB.FailNext(0, 0, "")
	var tokB string
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if code, tokB = h.authOf("/api"); code == 200 {
			break
		}
	}
	if code != 200 || tokB == "" || tokB == tokA {
		t.Errorf("GET /api once the new endpoint is back: %d %q, want 200 with a token of the new endpoint", code, tokB)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range gotB {
		if a == tokA {
			t.Errorf("the new upstream received the old upstream's token %q; it saw %q", tokA, gotB)
			break
		}
	}
	h.noSecret(sourcetest.DefaultClientSecret)
}
