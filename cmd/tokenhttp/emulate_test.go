package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/testsupport"
)

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer = testsupport.SyncBuffer

// TestEmulate starts every emulator, pastes each printed call line into
// an in-process run, and stops them with the context (Ctrl-C).
func TestEmulate(t *testing.T) {
	defer noLeaks(t)()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	e := env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, stdinFD: -1, getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"emulate"}, e) }()
	deadline := time.Now().Add(20 * time.Second)
	wantTries := len(emulators) + 1 // mtls has a PEM line and a PKCS#12 line
	for strings.Count(out.String(), "  try ") < wantTries {
		if time.Now().After(deadline) {
			t.Fatalf("emulate printed:\n%s\nstderr: %s", out.String(), errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	otp := 100000
	for _, line := range strings.Split(out.String(), "\n") {
		line, ok := strings.CutPrefix(line, "  try ")
		if !ok {
			continue
		}
		t.Run(line, func(t *testing.T) {
			// VAR=value ... tokenhttp call ...
			envPart, cmd, ok := strings.Cut(line, "tokenhttp ")
			if !ok {
				t.Fatalf("no tokenhttp command in %q", line)
			}
			in := invocation{vars: map[string]string{}}
			for _, kv := range strings.Fields(envPart) {
				k, v, _ := strings.Cut(kv, "=")
				in.vars[k] = v
			}
			if strings.Contains(cmd, "--provider vaultid") {
				otp++ // the line prompts for it at a terminal; here it comes from the environment
				in.vars["TOKENHTTP_PASSWORD"] = strconv.Itoa(otp)
			}
			r := exec(t, in, strings.Fields(cmd)...)
			assertCode(t, r, exitOK)
			if !strings.Contains(r.stdout, `"ok":true`) {
				t.Errorf("stdout: got %q, want the resource's reply", r.stdout)
			}
			if !strings.Contains(r.stderr, "* token request #1") {
				t.Errorf("stderr: got %q, want the -v trace", r.stderr)
			}
		})
	}
	for _, want := range []string{"token URL", "credentials", "resource", "Ctrl-C", "client.p12", "ca.pem", "jwt-key.pem"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("emulate's output lacks %q:\n%s", want, out.String())
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit code: got %d, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("emulate did not stop when its context ended")
	}
	if !strings.HasSuffix(out.String(), "stopped.\n") {
		t.Errorf("emulate's output does not end with its stop: %q", out.String())
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if f, ok := strings.CutPrefix(line, "  CA           "); ok {
			if _, err := os.Stat(f); !os.IsNotExist(err) {
				t.Errorf("%s: still there after emulate stopped (%v)", f, err)
			}
		}
	}

	t.Run("a chosen provider", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := result{}
		var o, eo strings.Builder
		r.code = run(ctx, []string{"emulate", "GestaoPlus"}, env{stdout: &o, stderr: &eo, stdinFD: -1, getenv: func(string) string { return "" }})
		if r.code != exitOK || !strings.Contains(o.String(), "gestaoplus:") || strings.Contains(o.String(), "serproid:") {
			t.Errorf("emulate gestaoplus: got %d and\n%s", r.code, o.String())
		}
	})
	t.Run("an unknown provider", func(t *testing.T) {
		r := exec(t, invocation{}, "emulate", "acme")
		assertCode(t, r, exitUsage)
	})
}

// TestEmulatePort: with --port the emulators listen on that port and the
// next, in the order named, so a config file can name them; the mTLS ones
// too.
func TestEmulatePort(t *testing.T) {
	defer noLeaks(t)()
	port := freePorts(t, 4)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	e := env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, stdinFD: -1, getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"emulate", "--port", strconv.Itoa(port), "standard", "mtls", "serproid", "openfinancebrasil"}, e)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(out.String(), "  try ") < 5 { // mtls prints two
		if time.Now().After(deadline) || len(done) > 0 {
			cancel()
			t.Fatalf("emulate printed:\n%s\nstderr: %s", out.String(), errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("emulate --port: exit %d, want %d", code, exitOK)
	}
	for i, em := range []struct{ name, url string }{
		{"standard", "http://127.0.0.1:%d/"},
		{"mtls", "https://127.0.0.1:%d/mtls/token"},
		{"serproid", "http://127.0.0.1:%d/"},
		{"openfinancebrasil", "https://127.0.0.1:%d/mtls/token"},
	} {
		name := em.name
		if want := fmt.Sprintf(em.url, port+i); !strings.Contains(out.String(), want) {
			t.Errorf("emulate --port %d: %s is not on %s:\n%s", port, name, want, out.String())
		}
	}
	r := exec(t, invocation{}, "emulate", "--port", "70000")
	assertCode(t, r, exitUsage)
}

// freePorts returns the first of n consecutive loopback ports that were
// free a moment ago. It looks below Linux's ephemeral range (32768 and
// up), where the sockets of tests running alongside take ports one after
// another.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for range 200 {
		first := 20000 + rand.IntN(12000)
		var ls []net.Listener
		for i := range n {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", first+i))
			if err != nil {
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if len(ls) == n {
			return first
		}
	}
	t.Fatalf("no %d consecutive free ports on loopback", n)
	return 0
}
