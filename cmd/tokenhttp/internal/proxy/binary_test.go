package proxy

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/testsupport"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// proc is the tokenhttp binary running `proxy`.
type proc struct {
	t          *testing.T
	cmd        *exec.Cmd
	url, admin string
	stderr     *syncBuffer
	exited     chan error
}

// buildBinary builds cmd/tokenhttp into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "tokenhttp")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/tokenhttp/tokenhttp/cmd/tokenhttp").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startBinary runs `bin proxy --config cfg` and waits for its addresses.
func startBinary(t *testing.T, bin, cfg string, extra ...string) *proc {
	t.Helper()
	p := &proc{t: t, stderr: &syncBuffer{}, exited: make(chan error, 1)}
	p.cmd = exec.Command(bin, append([]string{"proxy", "--config", cfg, "--drain-timeout", "5s"}, extra...)...)
	pr, pw := io.Pipe()
	p.cmd.Stderr = pw
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrs := make(chan [2]string, 1)
	var copied sync.WaitGroup
	copied.Go(func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			p.stderr.Write([]byte(line + "\n"))
			var m struct{ Msg, Listen, Admin string }
			if json.Unmarshal([]byte(line), &m) == nil && m.Msg == "proxy listening" {
				addrs <- [2]string{m.Listen, m.Admin}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	})
	go func() {
		err := p.cmd.Wait()
		pw.Close()
		copied.Wait()
		p.exited <- err
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		p.wait()
	})
	select {
	case a := <-addrs:
		p.url, p.admin = "http://"+a[0], "http://"+a[1]
	case err := <-p.exited:
		p.exited <- err
		t.Fatalf("the proxy exited: %v\n%s", err, p.stderr)
	case <-time.After(10 * time.Second):
		t.Fatalf("the proxy did not start:\n%s", p.stderr)
	}
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait() int {
	select {
	case err := <-p.exited:
		p.exited <- err
	case <-time.After(10 * time.Second):
		p.t.Fatalf("the proxy did not exit:\n%s", p.stderr)
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *proc) signal(s os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(s); err != nil {
		p.t.Fatal(err)
	}
}

// waitFor polls f until it is true, for up to 10 s.
func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func status(c *http.Client, url string) int {
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func writeFile(t *testing.T, name, text string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBinary runs the built tokenhttp binary: --check, SIGHUP reloads
// (good and bad), SIGTERM drains, and two processes share tokens through
// Redis.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	sec := secretFile(t, dir, "secret", sourcetest.DefaultClientSecret)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	t.Run("check", func(t *testing.T) {
		em := newEmulator(t, sourcetest.Options{})
		good, bad := filepath.Join(dir, "good.yaml"), filepath.Join(dir, "bad.yaml")
		writeFile(t, good, oneRoute(em, sec))
		writeFile(t, bad, strings.Replace(oneRoute(em, sec), "client_secret_file: "+sec, "client_secret: s3cr3t-inline", 1))
		out, err := exec.Command(bin, "proxy", "--check", "--config", good).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "ok") {
			t.Errorf("--check of a good config: %v %s", err, out)
		}
		cmd := exec.Command(bin, "proxy", "--check", "--config", bad)
		out, _ = cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "client_secret") || strings.Contains(string(out), "s3cr3t-inline") {
			t.Errorf("--check of an inline secret: exit %d, %s; want 2 naming the key, not the secret", cmd.ProcessState.ExitCode(), out)
		}
	})

	t.Run("sighup", func(t *testing.T) {
		em1, em2 := newEmulator(t, sourcetest.Options{}), newEmulator(t, sourcetest.Options{})
		cfg := filepath.Join(t.TempDir(), "proxy.yaml")
		writeFile(t, cfg, oneRoute(em1, sec))
		p := startBinary(t, bin, cfg)
		waitFor(t, "ready", func() bool { return status(client, p.admin+"/readyz") == 200 })

		writeFile(t, cfg, oneRoute(em2, sec))
		p.signal(syscall.SIGHUP)
		waitFor(t, "the reload", func() bool { return em2.Issued() == 1 })
		if code := status(client, p.url+"/api"); code != 200 {
			t.Errorf("GET after the reload: %d", code)
		}
		writeFile(t, cfg, "routes: [nonsense")
		p.signal(syscall.SIGHUP)
		waitFor(t, "the failed reload's log", func() bool { return strings.Contains(p.stderr.String(), "reload failed") })
		if code := status(client, p.url+"/api"); code != 200 {
			t.Errorf("GET after a bad reload: %d, want 200 from the running config", code)
		}
		p.signal(syscall.SIGTERM)
		if code := p.wait(); code != 0 {
			t.Errorf("exit code after SIGTERM: %d\n%s", code, p.stderr)
		}
		for _, s := range append(em1.IssuedTokens(), em2.IssuedTokens()...) {
			if strings.Contains(p.stderr.String(), s) {
				t.Errorf("the logs show a token")
			}
		}
	})

	t.Run("sigterm drains", func(t *testing.T) {
		em := newEmulator(t, sourcetest.Options{})
		arrived := make(chan struct{})
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(arrived)
			time.Sleep(500 * time.Millisecond)
			w.WriteHeader(http.StatusTeapot)
		}))
		defer slow.Close()
		cfg := filepath.Join(t.TempDir(), "proxy.yaml")
		writeFile(t, cfg, "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nroutes:\n"+routeYAML("/slow", slow.URL, em.TokenURL, sec))
		p := startBinary(t, bin, cfg)
		got := make(chan int, 1)
		go func() { got <- status(client, p.url+"/slow") }()
		<-arrived
		p.signal(syscall.SIGTERM)
		if code := <-got; code != http.StatusTeapot {
			t.Errorf("the request in flight at SIGTERM: %d, want the upstream's 418", code)
		}
		if code := p.wait(); code != 0 {
			t.Errorf("exit code after SIGTERM: %d\n%s", code, p.stderr)
		}
	})

	t.Run("redis fleet", func(t *testing.T) {
		addr := startRedis(t)
		em := newEmulator(t, sourcetest.Options{})
		d := t.TempDir()
		key := secretFile(t, d, "store-key", strings.Repeat("ab", 32))
		cfg := filepath.Join(d, "proxy.yaml")
		writeFile(t, cfg, oneRoute(em, sec)+"store:\n  redis: redis://"+addr+"/0\n  key_file: "+key+"\n")
		a, b := startBinary(t, bin, cfg), startBinary(t, bin, cfg)
		for _, p := range []*proc{a, b} {
			waitFor(t, "ready", func() bool { return status(client, p.admin+"/readyz") == 200 })
			if code := status(client, p.url+"/api"); code != 200 {
				t.Errorf("GET through a proxy: %d", code)
			}
		}
		if n := em.Issued(); n != 1 {
			t.Errorf("tokens issued to two proxies sharing Redis: %d, want 1", n)
		}
		a.signal(syscall.SIGTERM)
		b.signal(syscall.SIGTERM)
		a.wait()
		b.wait()
	})
}

// startRedis starts redis-server on a free loopback port, killed when t
// ends, and returns its address (testsupport.StartRedis).
func startRedis(t testing.TB) string { return testsupport.StartRedis(t).Addr }
