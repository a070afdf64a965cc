package proxy

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// TestRouting: longest prefix wins on whole segments, the client's
// Authorization is replaced, unmatched and ambiguous paths get a 404
// problem+json, and no secret is logged.
func TestRouting(t *testing.T) {
	dir := t.TempDir()
	sec := secretFile(t, dir, "secret", sourcetest.DefaultClientSecret)
	a, b := newEmulator(t, sourcetest.Options{}), newEmulator(t, sourcetest.Options{})
	up := newUpstream(t)
	h := startProxy(t, dir, "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nroutes:\n"+
		routeYAML("/orders", up.URL+"/v1", a.TokenURL, sec)+
		"  - prefix: /orders/v2\n    upstream: "+up.URL+"/v2\n    strip_prefix: true\n    source:\n      token_url: "+b.TokenURL+
		"\n      client_id: "+sourcetest.DefaultClientID+"\n      client_secret_file: "+sec+"\n")

	cases := []struct {
		path     string
		status   int
		wantPath string
		emulator *sourcetest.Server
	}{
		{"/orders/42", 200, "/v1/orders/42", a},
		{"/orders", 200, "/v1/orders", a},
		{"/orders/v2/7", 200, "/v2/7", b},
		{"/orders/v2x", 200, "/v1/orders/v2x", a},
		{"/ordersx", 404, "", nil},
		{"/orders/v2%2F7", 404, "", nil},
		{"/billing", 404, "", nil},
	}
	for _, c := range cases {
		code, hdr, body := h.do("GET", c.path, "Bearer client-sent", nil)
		if code != c.status {
			t.Errorf("GET %s: %d %s, want %d", c.path, code, body, c.status)
			continue
		}
		if c.status == 404 {
			if ct := hdr.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("GET %s: Content-Type %q", c.path, ct)
			}
			continue
		}
		var e echo
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatal(err)
		}
		if e.Path != c.wantPath {
			t.Errorf("GET %s: upstream got %s, want %s", c.path, e.Path, c.wantPath)
		}
		tok, ok := strings.CutPrefix(e.Auth, "Bearer ")
		if !ok || !contains(c.emulator.IssuedTokens(), tok) {
			t.Errorf("GET %s: upstream got Authorization %q, not a token of the route's emulator", c.path, e.Auth)
		}
	}
	if a.Issued() != 1 || b.Issued() != 1 {
		t.Errorf("tokens issued: %d and %d, want 1 each (cached)", a.Issued(), b.Issued())
	}
	if !strings.Contains(h.logs.String(), `"msg":"request rejected"`) {
		t.Errorf("no rejection logged:\n%s", h.logs)
	}
	h.noSecret(append(a.IssuedTokens(), b.IssuedTokens()...)...)
	h.noSecret(sourcetest.DefaultClientSecret)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestReplay401: an upstream 401 gets one renewal and one replay, body
// included; a body over max_replay_body is streamed and not replayed.
func TestReplay401(t *testing.T) {
	dir := t.TempDir()
	sec := secretFile(t, dir, "secret", sourcetest.DefaultClientSecret)
	em := newEmulator(t, sourcetest.Options{})
	h := startProxy(t, dir, "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nmax_replay_body: 64\nroutes:\n"+
		"  - prefix: /api\n    upstream: "+em.URL+"/resource\n    strip_prefix: true\n    source:\n      token_url: "+em.TokenURL+
		"\n      client_id: "+sourcetest.DefaultClientID+"\n      client_secret_file: "+sec+"\n")
	h.waitReady(200)

	em.RevokeAll()
	body := []byte(strings.Repeat("x", 64))
	code, _, got := h.do("POST", "/api", "", body)
	if code != 200 || !strings.Contains(string(got), `"body_bytes":64`) {
		t.Fatalf("POST after revocation: %d %s, want 200 with the 64-byte body replayed", code, got)
	}
	if em.Issued() != 2 {
		t.Errorf("Issued() = %d, want 2 (one renewal)", em.Issued())
	}

	em.RevokeAll()
	big := []byte(strings.Repeat("y", 65))
	code, _, got = h.do("POST", "/api", "", big)
	if code != http.StatusUnauthorized {
		t.Errorf("POST of a body over the limit after revocation: %d %s, want the upstream's 401 (not replayed)", code, got)
	}
	code, _, got = h.do("POST", "/api", "", big)
	if code != 200 || !strings.Contains(string(got), `"body_bytes":65`) {
		t.Errorf("POST of a big body with a fresh token: %d %s, want 200 with 65 bytes streamed", code, got)
	}
}

// TestPassThrough: with unmatched: pass_through, a path no route matches
// goes to pass_through_upstream as the client sent it, with no token.
func TestPassThrough(t *testing.T) {
	dir := t.TempDir()
	sec := secretFile(t, dir, "secret", sourcetest.DefaultClientSecret)
	em := newEmulator(t, sourcetest.Options{})
	up, other := newUpstream(t), newUpstream(t)
	h := startProxy(t, dir, "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nunmatched: pass_through\npass_through_upstream: "+other.URL+
		"\nroutes:\n"+routeYAML("/api", up.URL, em.TokenURL, sec))
	code, _, body := h.do("GET", "/elsewhere/1", "Bearer client-own", nil)
	var e echo
	if code != 200 || json.Unmarshal(body, &e) != nil || e.Path != "/elsewhere/1" || e.Auth != "Bearer client-own" {
		t.Errorf("unmatched pass-through: %d %s, want the client's request as it came", code, body)
	}
	code, _, body = h.do("GET", "/api/x", "Bearer client-own", nil)
	if code != 200 || json.Unmarshal(body, &e) != nil || e.Auth == "Bearer client-own" || e.Path != "/api/x" {
		t.Errorf("matched: %d %s, want the route's token", code, body)
	}
}
