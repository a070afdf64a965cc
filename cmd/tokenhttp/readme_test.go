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

// TestREADMEProxyExample runs the README's proxy try-it: "tokenhttp
// emulate --port 8181 standard" and its proxy.yaml, with the ports moved
// to free ones (the text is otherwise used as it is), and checks the
// reply the README promises.
func TestREADMEProxyExample(t *testing.T) {
	defer noLeaks(t)()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	const emulateLine = "tokenhttp emulate --port 8181 standard"
	if !strings.Contains(readme, emulateLine) {
		t.Fatalf("the README lacks %q", emulateLine)
	}
	m := regexp.MustCompile("(?s)```yaml\n(# proxy.yaml\n.*?)```").FindStringSubmatch(readme)
	if m == nil {
		t.Fatal("no proxy.yaml block in the README")
	}
	emuPort := freePorts(t, 3)
	listen, admin := emuPort+1, emuPort+2
	yaml := strings.NewReplacer("127.0.0.1:8181", "127.0.0.1:"+strconv.Itoa(emuPort),
		"127.0.0.1:8080", "127.0.0.1:"+strconv.Itoa(listen), "127.0.0.1:9090", "127.0.0.1:"+strconv.Itoa(admin)).Replace(m[1])
	if yaml == m[1] || strings.Contains(yaml, "PORT") {
		t.Fatalf("the config does not name the emulator's port as is:\n%s", m[1])
	}
	dir := t.TempDir()
	t.Chdir(dir) // client_secret_file: ./secret
	if err := os.WriteFile("secret", []byte("test-client-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "proxy.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var emuOut, emuErr syncBuffer
	emuDone := make(chan int, 1)
	go func() {
		emuDone <- run(ctx, strings.Fields(strings.Replace(strings.TrimPrefix(emulateLine, "tokenhttp "), "8181", strconv.Itoa(emuPort), 1)),
			env{stdout: &emuOut, stderr: &emuErr, stdinFD: -1, getenv: func(string) string { return "" }})
	}()
	for !strings.Contains(emuOut.String(), "  try ") {
		if len(emuDone) > 0 {
			t.Fatalf("emulate stopped: %s", emuErr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var out, errOut syncBuffer
	if code := runProxy(ctx, []string{"--check", "--config", "proxy.yaml"}, &out, &errOut, os.Getenv); code != 0 {
		t.Fatalf("proxy --check: exit %d: %s", code, errOut.String())
	}
	proxyDone := make(chan int, 1)
	go func() {
		proxyDone <- runProxy(ctx, []string{"--config", "proxy.yaml"}, &out, &errOut, os.Getenv)
	}()
	var body string
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(listen) + "/api")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) || len(proxyDone) > 0 {
			t.Fatalf("GET /api through the proxy: %v %q\nproxy log:\n%s", err, body, errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if want := `{"ok":true,"method":"GET","body_bytes":0}`; strings.TrimSpace(body) != want || !strings.Contains(readme, want) {
		t.Errorf("GET /api: got %q, want the README's %s", body, want)
	}
	cancel()
	if code := <-proxyDone; code != 0 {
		t.Errorf("proxy: exit %d", code)
	}
	<-emuDone
	http.DefaultClient.CloseIdleConnections()
}
