package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// keepsServing checks, for d, that each path keeps getting 200 with the
// Authorization in want and that /readyz stays 200.
func (h *harness) keepsServing(d time.Duration, want map[string]string) {
	h.t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		for path, auth := range want {
			if code, got := h.authOf(path); code != 200 || got != auth {
				h.t.Fatalf("GET %s with the token endpoint down: %d %q, want 200 with the token it had, %q", path, code, got, auth)
			}
		}
		if code, rd := h.ready(); code != 200 {
			h.t.Fatalf("/readyz with the token endpoint down: %d %+v, want 200", code, rd)
		}
	}
}

// TestSecretRotationKeepsTokens: a rotated secret file while the token
// endpoint is down does not cost any route its token: the unchanged route
// keeps its source, the changed one keeps its running source until the
// rebuilt one gets a token, which is retried until the endpoint is back.
func TestSecretRotationKeepsTokens(t *testing.T) {
	t.Parallel()
	r := startTokenRoutes(t)
	h, em := r.harness, r.em
	_, tokA := h.authOf("/a")
	_, tokB := h.authOf("/b")
	if tokA == "" || tokB == "" {
		t.Fatalf("tokens before the rotation: %q %q", tokA, tokB)
	}

	em.FailNext(1<<30, http.StatusServiceUnavailable, "")
	secretFile(t, h.dir, "secret-a", "rotated-secret")
	h.keepsServing(2500*time.Millisecond, map[string]string{"/a": tokA, "/b": tokB})
	h.waitLog("route keeps its running source")

	// The endpoint is back, with the rotated secret: /a's rebuild is
	// retried and its new source used; /b keeps its token.
	em.SetCredentials(sourcetest.Options{ClientSecret: "rotated-secret"})
	em.FailNext(0, 0, "")
	h.waitNewToken("/a", tokA)
	if code, got := h.authOf("/b"); code != 200 || got != tokB {
		t.Errorf("GET /b, whose secret did not change: %d %q, want 200 with %q", code, got, tokB)
	}
	if n := strings.Count(h.logs.String(), "route keeps its running source"); n != 1 {
		t.Errorf("%d warm-up failures logged, want 1:\n%s", n, h.logs) // TestRotationRetryBacksOff checks that a repeat is not logged
	}
	h.waitReady(200)
	h.noSecret("rotated-secret", sourcetest.DefaultClientSecret)
}

// TestReloadKeepsTokens: SIGHUP's reload while the token endpoint is down
// keeps every route's token, whether its source config changed or not.
func TestReloadKeepsTokens(t *testing.T) {
	t.Parallel()
	r := startTokenRoutes(t)
	h, em := r.harness, r.em
	_, tokA := h.authOf("/a")
	_, tokB := h.authOf("/b")
	em.FailNext(1<<30, http.StatusServiceUnavailable, "")
	issued := em.Issued()

	// The same config.
	if err := h.p.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	h.keepsServing(500*time.Millisecond, map[string]string{"/a": tokA, "/b": tokB})

	// /a's source changes.
	h.write(r.config("scopes: [more]"))
	if err := h.p.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	h.keepsServing(1500*time.Millisecond, map[string]string{"/a": tokA, "/b": tokB})
	if got := em.Issued(); got != issued {
		t.Errorf("tokens issued with the endpoint down: %d, want %d", got, issued)
	}

	// Back: /a gets its new source's token, /b keeps its own.
	em.FailNext(0, 0, "")
	h.waitNewToken("/a", tokA)
	if code, got := h.authOf("/b"); code != 200 || got != tokB {
		t.Errorf("GET /b, whose source did not change: %d %q, want 200 with %q", code, got, tokB)
	}
}

// TestRotationRetryBacksOff: while the token endpoint is down, a rotated
// route keeps its token and its rebuild is retried with a growing wait,
// not at every poll, and not at all while the secret file is missing;
// once the endpoint is back the new source is used.
func TestRotationRetryBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		sec := secretFile(t, dir, "secret", sourcetest.DefaultClientSecret)
		var down atomic.Bool
		var tokenRequests, issued atomic.Int64
		tc := &http.Client{Transport: roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			tokenRequests.Add(1)
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
			status, body := 200, fmt.Sprintf(`{"access_token":"tok-%d","token_type":"Bearer","expires_in":3600}`, issued.Add(1))
			if down.Load() {
				status, body = 503, `{"error":"temporarily_unavailable"}`
			}
			return tokenReply(r, status, body), nil
		})}
		p, logs := newProxy(t, "routes:\n"+routeYAML("/api", "http://127.0.0.1:1", "http://127.0.0.1:1/token", sec, "retry_max_attempts: 1"), Options{TokenClient: tc, Upstream: echoAuth})
		defer p.Shutdown(context.Background())
		auth := func() (int, string) { return serve(p, "/api") }
		synctest.Wait()
		_, old := auth()

		down.Store(true)
		secretFile(t, dir, "secret", "rotated-secret")
		time.Sleep(1500 * time.Millisecond) // the poll that sees it, and the failed warm-up
		synctest.Wait()
		before := tokenRequests.Load()
		for range 20 {
			time.Sleep(time.Second)
			synctest.Wait()
			if code, got := auth(); code != 200 || got != old {
				t.Fatalf("GET /api with the endpoint down: %d %q, want 200 with %q", code, got, old)
			}
			if rd := p.Ready(); !rd.Ready {
				t.Fatalf("/readyz with the endpoint down: %+v, want ready", rd)
			}
		}
		// Retries after 2, 4, 8 and 16 s: at most 5 in 20 s, not 20.
		if n := tokenRequests.Load() - before; n < 2 || n > 5 {
			t.Errorf("token requests in 20 s of retries: %d, want 2 to 5", n)
		}
		if n := strings.Count(logs.String(), "route keeps its running source"); n != 1 {
			t.Errorf("%d warm-up failures logged, want 1:\n%s", n, logs)
		}

		// The file goes away meanwhile: logged once, and no retry of the
		// rebuild until it is back.
		if err := os.Remove(sec); err != nil {
			t.Fatal(err)
		}
		before = tokenRequests.Load()
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := strings.Count(logs.String(), "secret reload failed"); n != 1 {
			t.Errorf("%d rebuild failures logged in a minute of a missing file, want 1:\n%s", n, logs)
		}
		if n := tokenRequests.Load() - before; n != 0 {
			t.Errorf("token requests in a minute of a missing file: %d, want none", n)
		}
		if code, got := auth(); code != 200 || got != old {
			t.Fatalf("GET /api with the file missing: %d %q, want 200 with %q", code, got, old)
		}
		secretFile(t, dir, "secret", "rotated-secret")

		down.Store(false)
		time.Sleep(31 * time.Second)
		synctest.Wait()
		if code, got := auth(); code != 200 || got == old {
			t.Errorf("GET /api after the endpoint came back: %d %q, want 200 with a new token", code, got)
		}
		h := &harness{t: t, logs: logs}
		h.noSecret("rotated-secret", sourcetest.DefaultClientSecret)
	})
}
