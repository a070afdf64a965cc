package proxy

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// TestPrefixDecoded: a prefix is decoded at config time, as routing
// matches the decoded path: /caf%C3%A9 and /café are the same prefix, and
// one whose decoding would change its segments, or does not decode, is
// refused naming the key and its line.
func TestPrefixDecoded(t *testing.T) {
	for _, p := range []string{"/caf%C3%A9", "/café", "/caf%c3%a9/"} {
		c, err := ParseConfig([]byte(strings.Replace(routeWith(""), "prefix: /a", "prefix: "+p, 1)))
		if err != nil {
			t.Fatalf("prefix %s: %v", p, err)
		}
		if got := c.Routes[0].Prefix; got != "/café" {
			t.Errorf("prefix %s: got %q, want /café", p, got)
		}
	}
	two := "routes:\n" + strings.Repeat("  - prefix: PREFIX\n    upstream: https://a.example\n    source:\n      token_url: https://t.example/token\n      client_id: c\n", 2)
	two = strings.Replace(strings.Replace(two, "PREFIX", "/café", 1), "PREFIX", "/caf%C3%A9", 1)
	if _, err := ParseConfig([]byte(two)); err == nil || !strings.Contains(err.Error(), "same as routes[0]") {
		t.Errorf("/café and /caf%%C3%%A9: %v, want the same prefix refused", err)
	}
	for _, p := range []string{"/b%2Fc", "/b%2fc", "/b%5Cc", `/b\c`, "/b%252Fc", "/b%zz", "/a/%2E%2E/b", "/a%00", "/b?x=1", "/b#f"} {
		_, err := ParseConfig([]byte(strings.Replace(routeWith(""), "prefix: /a", "prefix: "+p, 1)))
		if err == nil || !strings.Contains(err.Error(), "line 2: prefix") {
			t.Errorf("prefix %s: %v, want an error naming the prefix on line 2", p, err)
		}
	}
}

// TestPrefixDecodedRoutes: a route with a percent-encoded prefix gets
// requests for its path however the client encodes it, and not those
// whose decoded path differs.
func TestPrefixDecodedRoutes(t *testing.T) {
	dir := t.TempDir()
	sec := secretFile(t, dir, "secret", sourcetest.DefaultClientSecret)
	em := newEmulator(t, sourcetest.Options{})
	up := newUpstream(t)
	h := startProxy(t, dir, "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nroutes:\n"+
		routeYAML("/caf%C3%A9", up.URL+"/v1", em.TokenURL, sec)+"    strip_prefix: true\n")
	for _, target := range []string{"/caf%C3%A9/x", "/caf%c3%a9/x", "/café/x", "/caf%C3%A9"} {
		code, body := rawGet(t, strings.TrimPrefix(h.url, "http://"), target)
		if code != http.StatusOK {
			t.Errorf("GET %s: %d %s, want 200", target, code, body)
			continue
		}
		var e echo
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("GET %s: %v", target, err)
		}
		want := "/v1/x"
		if !strings.HasSuffix(target, "/x") {
			want = "/v1"
		}
		if e.Path != want || !strings.HasPrefix(e.Auth, "Bearer ") {
			t.Errorf("GET %s: upstream got %s with %q, want %s with a token", target, e.Path, e.Auth, want)
		}
	}
	for _, target := range []string{"/caf%25C3%25A9/x", "/cafe/x", "/caf%C3%A9%2Fx"} {
		if code, body := rawGet(t, strings.TrimPrefix(h.url, "http://"), target); code != http.StatusNotFound {
			t.Errorf("GET %s: %d %s, want 404", target, code, body)
		}
	}
}

// rawGet sends target as it is on the request line (the client would
// re-encode it) and returns the status and body.
func rawGet(t *testing.T, addr, target string) (int, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET "+target+" HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
