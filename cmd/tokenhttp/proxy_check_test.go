package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProxyCheckRefuses: proxy --check exits 2 naming the key and its
// line for configs it used to call ok that then failed at start or on
// every request.
func TestProxyCheckRefuses(t *testing.T) {
	dir := t.TempDir()
	sec := filepath.Join(dir, "secret")
	if err := os.WriteFile(sec, []byte("s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	route := "routes:\n  - prefix: /a\n    upstream: http://127.0.0.1:18300\n    source:\n      token_url: http://127.0.0.1:18300/token\n      client_id: cid\n      client_secret_file: " + sec + "\n"
	cases := []struct{ name, text, want string }{
		{"listen without a port", "listen: not-an-address\n" + route, "line 1: listen:"},
		{"admin on listen", "listen: 127.0.0.1:18383\nadmin: 127.0.0.1:18383\n" + route, "line 2: admin:"},
		{"cleartext upstream", strings.Replace(route, "upstream: http://127.0.0.1:18300", "upstream: http://example.com/", 1), "line 3: upstream:"},
		{"a second document", route + "---\nfoo: bar\n", "line 8: a second YAML document"},
		{"empty", "# nothing\n", "the config is empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := filepath.Join(dir, "proxy.yaml")
			if err := os.WriteFile(cfg, []byte(c.text), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errOut syncBuffer
			code := runProxy(context.Background(), []string{"--check", "--config", cfg}, &out, &errOut, func(string) string { return "" })
			if code != 2 || !strings.Contains(errOut.String(), c.want) {
				t.Errorf("proxy --check: exit %d, %q; want 2 and an error containing %q", code, errOut.String(), c.want)
			}
		})
	}
}
