package proxy

import (
	"path"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseConfig: ParseConfig never panics, and a config it accepts
// holds what the proxy can start with: listen and admin addresses that
// split, and per route a clean decoded prefix and an upstream with a
// host and a valid port.
func FuzzParseConfig(f *testing.F) {
	f.Add(goodConfig)
	f.Add(goodConfig + "---\nfoo: bar\n")
	f.Add("")
	f.Add("- a\n")
	f.Add(strings.Replace(goodConfig, "prefix: /orders", "prefix: /caf%C3%A9", 1))
	f.Add(strings.Replace(goodConfig, "https://serpro.example/token", "https://serpro.example/token?Client_Secret=x", 1))
	f.Add(strings.Replace(goodConfig, "redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0?password=x", 1))
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseConfig([]byte(text))
		if err != nil {
			return
		}
		for _, a := range []string{c.Listen, c.Admin} {
			if _, _, err := splitAddr(a); err != nil {
				t.Errorf("accepted the address %q: %v", a, err)
			}
		}
		for _, r := range c.Routes {
			if r.Prefix != path.Clean(r.Prefix) || strings.Contains(r.Prefix, "\\") {
				t.Errorf("accepted the prefix %q", r.Prefix)
			}
			if r.Upstream.Hostname() == "" {
				t.Errorf("accepted the upstream %s without a host", r.Upstream.Redacted())
			}
			if p := r.Upstream.Port(); p != "" {
				if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
					t.Errorf("accepted the upstream %s", r.Upstream.Redacted())
				}
			}
		}
	})
}
