package main

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestREADMEMTLSProxyExample runs the README's mTLS proxy example:
// "tokenhttp emulate --port 8443 mtls openfinancebrasil" and its
// mtls-proxy.yaml, with DIR replaced by the directory the emulators
// print and the ports moved to free ones, and checks that both routes
// answer what the README promises: the emulators' CA is trusted through
// ca_file and upstream_ca_file alone.
func TestREADMEMTLSProxyExample(t *testing.T) {
	defer noLeaks(t)()
	routes := []string{"/pix", "/ofb"}
	readme, bodies := readmeProxy{
		emulate: "tokenhttp emulate --port 8443 mtls openfinancebrasil", port: "8443", tries: 3,
		block: "mtls-proxy.yaml", ports: 4,
		rewrite: func(t *testing.T, block, emuOut string, port int) string {
			ca := regexp.MustCompile(`  CA +(\S+)/mtls/ca\.pem`).FindStringSubmatch(emuOut)
			if ca == nil {
				t.Fatalf("emulate printed no mtls CA:\n%s", emuOut)
			}
			yaml := strings.NewReplacer("DIR", ca[1], "127.0.0.1:8443", "127.0.0.1:"+strconv.Itoa(port), "127.0.0.1:8444", "127.0.0.1:"+strconv.Itoa(port+1),
				"127.0.0.1:8080", "127.0.0.1:"+strconv.Itoa(port+2), "127.0.0.1:9090", "127.0.0.1:"+strconv.Itoa(port+3)).Replace(block)
			for _, s := range []string{"DIR", ":8443", ":8444"} {
				if strings.Contains(yaml, s) || !strings.Contains(block, s) {
					t.Fatalf("the config does not name %s as the test replaces it:\n%s", s, block)
				}
			}
			return yaml
		},
		config: filepath.Join(t.TempDir(), "mtls-proxy.yaml"),
		getenv: func(k string) string { return map[string]string{"OFB_P12_PASSWORD": "emulated"}[k] },
		routes: routes,
	}.run(t)
	const want = `{"ok":true,"method":"GET","body_bytes":0}`
	for _, line := range []string{"curl -s localhost:8080/pix    # " + want, "curl -s localhost:8080/ofb    # " + want} {
		if !strings.Contains(readme, line) {
			t.Errorf("the README lacks %q", line)
		}
	}
	for i, route := range routes {
		if strings.TrimSpace(bodies[i]) != want {
			t.Errorf("GET %s = %q, want the README's %s", route, bodies[i], want)
		}
	}
}
