package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// TestRefusedRotationNotRetried: a password file rotated to a password
// the IdP refuses is tried once, when the file changes, not again every
// 30 s: the route keeps its running source until the file changes again.
func TestRefusedRotationNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		sec := secretFile(t, dir, "secret", sourcetest.DefaultClientSecret)
		pw := secretFile(t, dir, "pw", "good-password")
		var bad, issued atomic.Int64
		tc := &http.Client{Transport: roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			status, body := 200, fmt.Sprintf(`{"access_token":"tok-%d","token_type":"Bearer","expires_in":3600}`, issued.Add(1))
			if !strings.Contains(string(b), "password=good-password") {
				bad.Add(1)
				status, body = 400, `{"error":"invalid_grant","error_description":"bad password"}`
			}
			return tokenReply(r, status, body), nil
		})}
		p, logs := newProxy(t, "routes:\n"+routeYAML("/api", "http://127.0.0.1:1", "http://127.0.0.1:1/token", sec,
			"retry_max_attempts: 1", "grant: password", "username: alice", "password_file: "+pw), Options{TokenClient: tc, Upstream: echoAuth})
		defer p.Shutdown(context.Background())
		auth := func() (int, string) { return serve(p, "/api") }
		synctest.Wait()
		_, old := auth()

		secretFile(t, dir, "pw", "typo-password")
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if n := bad.Load(); n != 1 {
			t.Errorf("refused password grants in 10 min after a rotation to a refused password: %d, want 1", n)
		}
		if n := strings.Count(logs.String(), "not retried"); n != 1 {
			t.Errorf("%d refusals logged, want 1:\n%s", n, logs)
		}
		if code, got := auth(); code != 200 || got != old {
			t.Errorf("GET /api while the rotated password is refused: %d %q, want 200 with %q", code, got, old)
		}

		// Each later change of the file is tried once; an accepted one is taken.
		secretFile(t, dir, "pw", "typo-password-2")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		secretFile(t, dir, "pw", "good-password-new")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if n := bad.Load(); n != 2 {
			t.Errorf("refused password grants after two more changes, one refused: %d, want 2", n)
		}
		if code, got := auth(); code != 200 || got == old {
			t.Errorf("GET /api after the password file changed to an accepted one: %d %q, want 200 with a new token", code, got)
		}
		if g := p.cur.Load(); len(g.pending)+len(g.held) != 0 {
			t.Errorf("routes still waiting: pending %q held %q", g.pending, g.held)
		}
	})
}

// TestOneTimePasswordRebuildNotRetried: a VaultID route (one-time
// passwords) whose rebuilt source got no token, even for a temporary
// failure, is not rebuilt again on its own: each try would send the
// password file's OTP again.
func TestOneTimePasswordRebuildNotRetried(t *testing.T) {
	t.Parallel()
	vault, dir, sec, otp := startVault(t)
	cfg := func(extra string) string {
		return "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nroutes:\n" + vaultRoute(vault.URL, sec, otp, "retry_max_attempts: 1") + extra
	}
	h := startProxy(t, dir, cfg(""))
	h.waitReady(200)
	vault.FailNext(1<<30, http.StatusServiceUnavailable, "")
	h.write(cfg("      scopes: [x]\n"))
	if err := h.p.Reload(); err != nil {
		t.Fatal(err)
	}
	n0 := vault.TokenRequests()
	time.Sleep(5 * time.Second) // the retries would come after about 1 and 3 s
	if n := vault.TokenRequests() - n0; n != 0 {
		t.Errorf("token requests in 5 s after the failed rebuild: %d, want none", n)
	}
	if g := h.p.cur.Load(); len(g.pending) != 0 {
		t.Errorf("pending: %q, want none", g.pending)
	}
	h.noSecret("123456")
}
