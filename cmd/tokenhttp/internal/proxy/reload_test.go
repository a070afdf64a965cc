package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// TestReload: a good config swaps the routes without dropping a request
// in flight, whose old source is closed once it ended; a bad config is
// logged and the running one kept.
func TestReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sec := secretFile(t, dir, "secret", sourcetest.DefaultClientSecret)
	em1, em2 := newEmulator(t, sourcetest.Options{}), newEmulator(t, sourcetest.Options{})
	arrived, release := make(chan struct{}), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		w.WriteHeader(http.StatusTeapot)
	}))
	t.Cleanup(slow.Close)
	cfg := func(em *sourcetest.Server) string {
		return oneRoute(em, sec) + routeYAML("/slow", slow.URL, em1.TokenURL, sec)
	}
	h := startProxy(t, dir, cfg(em1))
	h.waitReady(200)

	inflight := make(chan int, 1)
	go func() {
		code, _, _ := h.do("GET", "/slow", "", nil)
		inflight <- code
	}()
	<-arrived
	old := h.p.cur.Load()

	h.write(cfg(em2))
	if err := h.p.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if code, _, b := h.do("GET", "/api", "", nil); code != 200 || em2.Issued() != 1 {
		t.Errorf("GET /api after the reload: %d %s, em2 issued %d, want 200 from em2's token", code, b, em2.Issued())
	}
	select { // a closed source still hands out its cached token: look at the generation
	case <-old.done:
		t.Error("the old generation was closed with a request in flight, want it open until the request ends")
	default:
	}
	close(release)
	if code := <-inflight; code != http.StatusTeapot {
		t.Errorf("the request in flight during the reload: %d, want 418", code)
	}
	select {
	case <-old.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the old generation was not closed after its last request")
	}
	// A bad config: logged, the running one kept.
	h.write("listen: 127.0.0.1:0\nroutes:\n  - prefix: /api\n    upstream: " + em1.URL + "\n    source:\n      client_id: x\n      client_secret: inline\n")
	err := h.p.Reload()
	if err == nil || !strings.Contains(err.Error(), "client_secret") {
		t.Fatalf("Reload of an inline secret: %v, want an error naming client_secret", err)
	}
	if code, _, b := h.do("GET", "/api", "", nil); code != 200 {
		t.Errorf("GET /api after a bad reload: %d %s, want the old config's 200", code, b)
	}
	if !strings.Contains(h.logs.String(), "reload failed") {
		t.Errorf("the bad reload was not logged:\n%s", h.logs)
	}
	h.noSecret("inline")
}

// TestSecretRotation: a changed secret file is read again (polled once a
// second) and the sources rebuilt with it.
func TestSecretRotation(t *testing.T) {
	t.Parallel()
	h, em, dir := startOneRoute(t, sourcetest.Options{})
	h.waitReady(200)

	em.SetCredentials(sourcetest.Options{ClientSecret: "rotated-secret"})
	em.RevokeAll()
	// The upstream's 401, the renewal refused: the 401 comes back; then
	// the source has no token and the endpoint refuses: 502.
	for _, want := range []int{http.StatusUnauthorized, http.StatusBadGateway} {
		if code, _, _ := h.do("GET", "/api", "", nil); code != want {
			t.Errorf("GET after the rotation, before the file changed: %d, want %d", code, want)
		}
	}
	secretFile(t, dir, "secret", "rotated-secret")
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _, _ := h.do("GET", "/api", "", nil)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET after the secret file changed: %d, want 200 within a few seconds", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.noSecret("rotated-secret", sourcetest.DefaultClientSecret)
}
