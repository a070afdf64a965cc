package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestREADMEMTLSProxyExample runs the README's mTLS proxy example:
// "tokenhttp emulate --port 8443 mtls openfinancebrasil" and its
// mtls-proxy.yaml, with DIR replaced by the directory the emulators
// print and the ports moved to free ones, and checks that both routes
// answer what the README promises: the emulators' CA is trusted through
// ca_file and upstream_ca_file alone.
func TestREADMEMTLSProxyExample(t *testing.T) {
	defer noLeaks(t)()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	const emulateLine = "tokenhttp emulate --port 8443 mtls openfinancebrasil"
	if !strings.Contains(readme, emulateLine) {
		t.Fatalf("the README lacks %q", emulateLine)
	}
	m := regexp.MustCompile("(?s)```yaml\n(# mtls-proxy.yaml\n.*?)```").FindStringSubmatch(readme)
	if m == nil {
		t.Fatal("no mtls-proxy.yaml block in the README")
	}
	const want = `{"ok":true,"method":"GET","body_bytes":0}`
	for _, line := range []string{"curl -s localhost:8080/pix    # " + want, "curl -s localhost:8080/ofb    # " + want} {
		if !strings.Contains(readme, line) {
			t.Fatalf("the README lacks %q", line)
		}
	}
	port := freePorts(t, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var emuOut, emuErr syncBuffer
	emuDone := make(chan int, 1)
	go func() {
		args := strings.Fields(strings.Replace(strings.TrimPrefix(emulateLine, "tokenhttp "), "8443", strconv.Itoa(port), 1))
		emuDone <- run(ctx, args, env{stdout: &emuOut, stderr: &emuErr, stdinFD: -1, getenv: func(string) string { return "" }})
	}()
	for strings.Count(emuOut.String(), "  try ") < 3 {
		if len(emuDone) > 0 {
			t.Fatalf("emulate stopped: %s", emuErr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	ca := regexp.MustCompile(`  CA +(\S+)/mtls/ca\.pem`).FindStringSubmatch(emuOut.String())
	if ca == nil {
		t.Fatalf("emulate printed no mtls CA:\n%s", emuOut.String())
	}
	dir := ca[1]
	listen, admin := port+2, port+3
	yaml := strings.NewReplacer("DIR", dir, "127.0.0.1:8443", "127.0.0.1:"+strconv.Itoa(port), "127.0.0.1:8444", "127.0.0.1:"+strconv.Itoa(port+1),
		"127.0.0.1:8080", "127.0.0.1:"+strconv.Itoa(listen), "127.0.0.1:9090", "127.0.0.1:"+strconv.Itoa(admin)).Replace(m[1])
	for _, s := range []string{"DIR", ":8443", ":8444"} {
		if strings.Contains(yaml, s) || !strings.Contains(m[1], s) {
			t.Fatalf("the config does not name %s as the test replaces it:\n%s", s, m[1])
		}
	}
	cfg := filepath.Join(t.TempDir(), "mtls-proxy.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string { return map[string]string{"OFB_P12_PASSWORD": "emulated"}[k] }
	var out, errOut syncBuffer
	if code := runProxy(ctx, []string{"--check", "--config", cfg}, &out, &errOut, getenv); code != 0 {
		t.Fatalf("proxy --check: exit %d: %s", code, errOut.String())
	}
	proxyDone := make(chan int, 1)
	go func() { proxyDone <- runProxy(ctx, []string{"--config", cfg}, &out, &errOut, getenv) }()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for _, route := range []string{"/pix", "/ofb"} {
		var body string
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := client.Get("http://127.0.0.1:" + strconv.Itoa(listen) + route)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				body = string(b)
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) || len(proxyDone) > 0 {
				t.Fatalf("GET %s through the proxy: %v %q\nproxy log:\n%s", route, err, body, errOut.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if strings.TrimSpace(body) != want {
			t.Errorf("GET %s: got %q, want the README's %s", route, body, want)
		}
	}
	cancel()
	if code := <-proxyDone; code != 0 {
		t.Errorf("proxy: exit %d", code)
	}
	<-emuDone
}
