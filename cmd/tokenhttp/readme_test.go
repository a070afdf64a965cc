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

// readmePath is the README, found before any test changes directory.
var readmePath, _ = filepath.Abs("../../README.md")

// readmeProxy is one of the README's proxy examples: an emulate line and
// a yaml block for "tokenhttp proxy".
type readmeProxy struct {
	emulate string // the README's emulate line
	port    string // the port in emulate, moved to the first free port
	tries   int    // the "  try " lines emulate prints once it is up
	block   string // the name in the yaml block's first line, "# proxy.yaml"
	ports   int    // free ports taken: the emulator's first, the proxy's listen and admin last
	// rewrite turns the block into the proxy's configuration, given
	// emulate's output and the first free port.
	rewrite func(t *testing.T, block, emuOut string, port int) string
	config  string // where the configuration is written
	getenv  func(string) string
	routes  []string // fetched through the proxy, in order
}

// run runs the example: it starts emulate, checks the rewritten block
// with --check, runs the proxy until every route answers 200 and stops
// both. It returns the README and the routes' bodies.
func (x readmeProxy) run(t *testing.T) (readme string, bodies []string) {
	t.Helper()
	b, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	readme = string(b)
	if !strings.Contains(readme, x.emulate) {
		t.Fatalf("the README lacks %q", x.emulate)
	}
	m := regexp.MustCompile("(?s)```yaml\n(# " + regexp.QuoteMeta(x.block) + "\n.*?)```").FindStringSubmatch(readme)
	if m == nil {
		t.Fatalf("no %s block in the README", x.block)
	}
	port := freePorts(t, x.ports)
	listen := port + x.ports - 2
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var emuOut, emuErr syncBuffer
	emuDone := make(chan int, 1)
	go func() {
		args := strings.Fields(strings.Replace(strings.TrimPrefix(x.emulate, "tokenhttp "), x.port, strconv.Itoa(port), 1))
		emuDone <- run(ctx, args, env{stdout: &emuOut, stderr: &emuErr, stdinFD: -1, getenv: func(string) string { return "" }})
	}()
	defer func() { cancel(); <-emuDone }()
	for strings.Count(emuOut.String(), "  try ") < x.tries {
		if len(emuDone) > 0 {
			t.Fatalf("emulate stopped: %s", emuErr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := os.WriteFile(x.config, []byte(x.rewrite(t, m[1], emuOut.String(), port)), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut syncBuffer
	if code := runProxy(ctx, []string{"--check", "--config", x.config}, &out, &errOut, x.getenv); code != 0 {
		t.Fatalf("proxy --check: exit %d: %s", code, errOut.String())
	}
	proxyDone := make(chan int, 1)
	go func() { proxyDone <- runProxy(ctx, []string{"--config", x.config}, &out, &errOut, x.getenv) }()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for _, route := range x.routes {
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
		bodies = append(bodies, body)
	}
	cancel()
	if code := <-proxyDone; code != 0 {
		t.Errorf("proxy: exit %d", code)
	}
	return readme, bodies
}

// TestREADMEProxyExample runs the README's proxy try-it: "tokenhttp
// emulate --port 8181 standard" and its proxy.yaml, with the ports moved
// to free ones (the text is otherwise used as it is), and checks the
// reply the README promises.
func TestREADMEProxyExample(t *testing.T) {
	defer noLeaks(t)()
	t.Chdir(t.TempDir()) // client_secret_file: ./secret
	if err := os.WriteFile("secret", []byte("test-client-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	readme, bodies := readmeProxy{
		emulate: "tokenhttp emulate --port 8181 standard", port: "8181", tries: 1,
		block: "proxy.yaml", ports: 3,
		rewrite: func(t *testing.T, block, _ string, port int) string {
			yaml := strings.NewReplacer("127.0.0.1:8181", "127.0.0.1:"+strconv.Itoa(port),
				"127.0.0.1:8080", "127.0.0.1:"+strconv.Itoa(port+1), "127.0.0.1:9090", "127.0.0.1:"+strconv.Itoa(port+2)).Replace(block)
			if yaml == block || strings.Contains(yaml, "PORT") {
				t.Fatalf("the config does not name the emulator's port as is:\n%s", block)
			}
			return yaml
		},
		config: "proxy.yaml", getenv: os.Getenv, routes: []string{"/api"},
	}.run(t)
	if want := `{"ok":true,"method":"GET","body_bytes":0}`; strings.TrimSpace(bodies[0]) != want || !strings.Contains(readme, want) {
		t.Errorf("GET /api = %q, want the README's %s", bodies[0], want)
	}
}
