package proxy

import (
	"net/http"
	"strings"
	"testing"
)

// TestReloadLogsEachFailedRebuild: each reload whose rebuilt route gets
// no token logs it, even when it fails as the one before did, and its
// "reload done" says how many routes kept their running source; a removed
// route leaves nothing behind to de-duplicate against.
func TestReloadLogsEachFailedRebuild(t *testing.T) {
	t.Parallel()
	r := startTokenRoutes(t)
	h, em := r.harness, r.em

	em.FailNext(1<<30, http.StatusServiceUnavailable, "")
	h.write(r.config("scopes: [x]"))
	for n := 1; n <= 2; n++ {
		if err := h.p.Reload(); err != nil {
			t.Fatal(err)
		}
		logs := h.logs.String()
		if got := strings.Count(logs, "route keeps its running source"); got != n {
			t.Errorf("after reload %d of a route that still gets no token: %d failures logged, want %d:\n%s", n, got, n, logs)
		}
		if got := strings.Count(logs, `"msg":"reload done","routes":2,"kept_running_source":1`); got != n {
			t.Errorf("after reload %d: %d \"reload done\" lines with kept_running_source 1, want %d:\n%s", n, got, n, logs)
		}
	}

	// /a goes away: nothing is kept for it.
	h.write("listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nroutes:\n" +
		routeYAML("/b", r.up.URL, em.TokenURL, r.secB, "retry_max_attempts: 1", "fetch_timeout: 2s"))
	if err := h.p.Reload(); err != nil {
		t.Fatal(err)
	}
	h.p.reloadMu.Lock()
	left := len(h.p.warmErr)
	h.p.reloadMu.Unlock()
	if left != 0 {
		t.Errorf("warm-up failures remembered after /a was removed: %d, want none", left)
	}
	if !strings.Contains(h.logs.String(), `"msg":"reload done","routes":1,"kept_running_source":0`) {
		t.Errorf("no \"reload done\" with kept_running_source 0 after /a was removed:\n%s", h.logs)
	}
}
