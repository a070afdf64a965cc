package proxy

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// jsonLines fails for each log line that is not a JSON object.
func jsonLines(t *testing.T, logs string) {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Errorf("a log line is not JSON: %q", l)
		}
	}
}

// waitLog waits until the logs hold s.
func (h *harness) waitLog(s string) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(h.logs.String(), s) {
		if time.Now().After(deadline) {
			h.t.Fatalf("the logs never held %q:\n%s", s, h.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReverseProxyErrorLog: ReverseProxy's own error lines (a body the
// upstream cut short) go to the proxy's JSON log, not to stderr.
func TestReverseProxyErrorLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sec := secretFile(t, dir, "secret", sourcetest.DefaultClientSecret)
	em := newEmulator(t, sourcetest.Options{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		_, _ = w.Write([]byte("only a part"))
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	}))
	t.Cleanup(up.Close)
	h := startProxy(t, dir, "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nroutes:\n"+routeYAML("/api", up.URL, em.TokenURL, sec))
	h.waitReady(200)
	if resp, err := h.client.Get(h.url + "/api/x"); err == nil {
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	h.waitLog("ReverseProxy read error during body copy")
	jsonLines(t, h.logs.String())
}

// TestRedisLog: go-redis's own lines (a refused dial) go to the proxy's
// JSON log, without the Redis password.
func TestRedisLog(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there: dials are refused
	dir := t.TempDir()
	sec := secretFile(t, dir, "secret", sourcetest.DefaultClientSecret)
	const pw = "redis-pw-s3cret"
	pwFile := secretFile(t, dir, "redis-pw", pw)
	em := newEmulator(t, sourcetest.Options{})
	h := startProxy(t, dir, oneRoute(em, sec)+"store:\n  redis: redis://"+addr+"/0\n  password_file: "+pwFile+"\n  plaintext: true\n")
	h.waitLog(`"msg":"redis client"`)
	jsonLines(t, h.logs.String())

	// A line that held the password would have it replaced.
	redisLogs.Printf(t.Context(), "redis: auth %s refused", pw)
	h.waitLog(`"message":"auth REDACTED refused"`)
	h.noSecret(pw)
}
