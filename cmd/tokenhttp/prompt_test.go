//go:build linux

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// terminal is a pseudo-terminal for in-process runs: the command reads
// the tty as its standard input and writes prompts there; the test types
// at the master and reads what the terminal shows, echo included.
type terminal struct {
	ptmx, tty *os.File
	mu        sync.Mutex
	shown     bytes.Buffer // everything the terminal displayed
	done      chan struct{}
}

func newTerminal(t *testing.T) *terminal {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	term := &terminal{ptmx: ptmx, tty: tty, done: make(chan struct{})}
	go func() {
		defer close(term.done)
		buf := make([]byte, 1024)
		for {
			n, err := ptmx.Read(buf)
			term.mu.Lock()
			term.shown.Write(buf[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		tty.Close()
		ptmx.Close()
		<-term.done
	})
	return term
}

// display is what the terminal showed so far.
func (term *terminal) display() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.shown.String()
}

// waitFor waits until the terminal shows s.
func (term *terminal) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(term.display(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q; it showed %q", s, term.display())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// typeLine types s and Enter, once the terminal's echo is off (the
// prompt is shown just before the read turns it off; a person cannot type
// in between, a test can).
func (term *terminal) typeLine(t *testing.T, s string) {
	t.Helper()
	waitEcho(t, term, false)
	if _, err := term.ptmx.Write([]byte(s + "\r")); err != nil {
		t.Fatal(err)
	}
}

// typeLineEcho types Enter whatever the echo.
func (term *terminal) typeLineEcho(t *testing.T) {
	t.Helper()
	if _, err := term.ptmx.Write([]byte("\r")); err != nil {
		t.Fatal(err)
	}
}

// runAt runs the command in-process with the terminal as its standard
// input and standard error (as a shell would) and stdout in a file. It
// returns at once; wait returns the exit code and standard output.
func runAt(t *testing.T, term *terminal, vars map[string]string, args ...string) (wait func() (int, string)) {
	t.Helper()
	return runAtCtx(t, context.Background(), term, vars, args...)
}

// runAtCtx is runAt with a context (cancel it for Ctrl-C).
func runAtCtx(t *testing.T, parent context.Context, term *terminal, vars map[string]string, args ...string) (wait func() (int, string)) {
	t.Helper()
	out, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	e := osEnv(term.tty, out, term.tty, func(k string) string { return vars[k] })
	if !e.terminal() {
		t.Fatal("osEnv: the pty is not seen as a terminal")
	}
	ctx, cancel := context.WithTimeout(parent, 30*time.Second)
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, e) }()
	return func() (int, string) {
		defer cancel()
		var code int
		select {
		case code = <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("the command did not end; the terminal showed %q", term.display())
		}
		out.Close()
		b, _ := os.ReadFile(out.Name())
		return code, string(b)
	}
}

func TestPromptNoEcho(t *testing.T) {
	defer noLeaks(t)()
	secret := map[string]string{"TOKENHTTP_CLIENT_SECRET": sourcetest.DefaultClientSecret}

	t.Run("vaultid one-time password", func(t *testing.T) {
		emu := sourcetest.NewVaultID(sourcetest.Options{})
		defer emu.Close()
		term := newTerminal(t)
		wait := runAt(t, term, secret, "token", "--provider", "vaultid", "--token-url", emu.TokenURL,
			"--client-id", sourcetest.DefaultClientID, "--username", sourcetest.DefaultVaultIDUsername, "--cloud", "TESTCLOUD")
		term.waitFor(t, "one-time password for "+sourcetest.DefaultVaultIDUsername+" (not echoed): ")
		term.typeLine(t, "654321")
		code, stdout := wait()
		if code != exitOK {
			t.Fatalf("exit code: got %d, want 0; terminal: %q", code, term.display())
		}
		if got := string(emu.LastTokenRequest().Body); !strings.Contains(got, `"654321"`) {
			t.Errorf("token request body: got %s, want the typed OTP", got)
		}
		if strings.Contains(term.display(), "654321") {
			t.Errorf("the terminal echoed the OTP: %q", term.display())
		}
		if !strings.Contains(stdout, "header scheme: VCSchema") || strings.Contains(stdout, "one-time password") {
			t.Errorf("stdout: got %q, want the metadata and no prompt", stdout)
		}
	})

	for _, tc := range []struct {
		name   string
		extra  []string // after the flags every run has
		prompt string   // what the terminal shows before the password is typed
	}{
		{"gestaoplus password", nil, "password for " + sourcetest.DefaultUsername + " (not echoed): "},
		{"--password-stdin at a terminal", []string{"--password-stdin"}, "(not echoed): "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emu := sourcetest.NewGestaoPlus(sourcetest.Options{})
			defer emu.Close()
			term := newTerminal(t)
			args := append([]string{"token", "--provider", "gestaoplus", "--token-url", emu.TokenURL, "--username", sourcetest.DefaultUsername}, tc.extra...)
			wait := runAt(t, term, nil, args...)
			term.waitFor(t, tc.prompt)
			term.typeLine(t, sourcetest.DefaultPassword)
			if code, _ := wait(); code != exitOK {
				t.Fatalf("exit code: got %d, want 0; terminal: %q", code, term.display())
			}
			if strings.Contains(term.display(), sourcetest.DefaultPassword) {
				t.Errorf("the terminal echoed the password: %q", term.display())
			}
		})
	}

	t.Run("a second token request prompts for a new OTP", func(t *testing.T) {
		emu := sourcetest.NewVaultID(sourcetest.Options{})
		defer emu.Close()
		// The API revokes every token when the first call reaches it.
		a := revokingAPI(t, emu)
		defer a.Close()
		vars := map[string]string{"TOKENHTTP_CLIENT_SECRET": sourcetest.DefaultClientSecret, "TOKENHTTP_PASSWORD": "111111"}
		term := newTerminal(t)
		wait := runAt(t, term, vars, "call", "--provider", "vaultid", "--token-url", emu.TokenURL,
			"--client-id", sourcetest.DefaultClientID, "--username", sourcetest.DefaultVaultIDUsername, "--cloud", "TESTCLOUD", a.URL+"/orders")
		term.waitFor(t, "a new one-time password for "+sourcetest.DefaultVaultIDUsername)
		term.typeLine(t, "222222")
		code, stdout := wait()
		if code != exitOK {
			t.Fatalf("exit code: got %d, want 0; terminal: %q", code, term.display())
		}
		if got, want := emu.Issued(), 2; got != want {
			t.Errorf("issued: got %d, want %d", got, want)
		}
		if got := string(emu.LastTokenRequest().Body); !strings.Contains(got, `"222222"`) {
			t.Errorf("the second token request: got %s, want the new OTP", got)
		}
		if !strings.Contains(stdout, `"ok":true`) {
			t.Errorf("stdout: got %q, want the resource's reply", stdout)
		}
		if strings.Contains(term.display(), "222222") || strings.Contains(term.display(), "111111") {
			t.Errorf("the terminal shows an OTP: %q", term.display())
		}
	})
}

// TestPromptInterrupted: Ctrl-C at the prompt ends the command with 130
// and gives the terminal its echo back.
func TestPromptInterrupted(t *testing.T) {
	t.Cleanup(noLeaks(t)) // after the terminal's own cleanup
	emu := sourcetest.NewGestaoPlus(sourcetest.Options{})
	defer emu.Close()
	term := newTerminal(t)
	ctx, cancel := context.WithCancel(context.Background())
	wait := runAtCtx(t, ctx, term, nil, "token", "--provider", "gestaoplus", "--token-url", emu.TokenURL, "--username", sourcetest.DefaultUsername)
	term.waitFor(t, "(not echoed): ")
	waitEcho(t, term, false)
	cancel() // what the SIGINT handler does
	if code, _ := wait(); code != exitInterrupted {
		t.Errorf("exit code: got %d, want %d", code, exitInterrupted)
	}
	waitEcho(t, term, true)
	if got := emu.TokenRequests(); got != 0 {
		t.Errorf("token requests: got %d, want 0", got)
	}
	term.typeLineEcho(t) // the read left behind by the prompt ends
}

// waitEcho waits until the terminal's echo is on or off.
func waitEcho(t *testing.T, term *terminal, on bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		tio, err := unix.IoctlGetTermios(int(term.tty.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		if (tio.Lflag&unix.ECHO != 0) == on {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the terminal's echo: got %v, want %v", !on, on)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestNoPromptWithoutTerminal: /dev/null is a character device but not a
// terminal: no prompt, a usage error (exit 2) that says what to do.
func TestNoPromptWithoutTerminal(t *testing.T) {
	defer noLeaks(t)()
	emu := sourcetest.NewVaultID(sourcetest.Options{})
	defer emu.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	dir := t.TempDir()
	stdout, _ := os.Create(filepath.Join(dir, "stdout"))
	stderr, _ := os.Create(filepath.Join(dir, "stderr"))
	vars := map[string]string{"TOKENHTTP_CLIENT_SECRET": sourcetest.DefaultClientSecret}
	e := osEnv(null, stdout, stderr, func(k string) string { return vars[k] })
	if e.terminal() {
		t.Fatal("osEnv: /dev/null is taken for a terminal")
	}
	code := run(context.Background(), []string{"token", "--provider", "vaultid", "--token-url", emu.TokenURL,
		"--client-id", sourcetest.DefaultClientID, "--username", sourcetest.DefaultVaultIDUsername, "--cloud", "X"}, e)
	stdout.Close()
	stderr.Close()
	errText, _ := os.ReadFile(stderr.Name())
	if code != exitUsage {
		t.Errorf("exit code: got %d, want %d; stderr: %s", code, exitUsage, errText)
	}
	if strings.Contains(string(errText), "(not echoed)") {
		t.Errorf("stderr: got a prompt: %q", errText)
	}
	for _, want := range []string{"not a terminal", "$TOKENHTTP_PASSWORD", "--password-stdin"} {
		if !strings.Contains(string(errText), want) {
			t.Errorf("stderr: got %q, want it to contain %q", errText, want)
		}
	}
	if got := emu.TokenRequests(); got != 0 {
		t.Errorf("token requests: got %d, want 0", got)
	}
}

// TestOTPUsedOnce: a one-time password from the environment is sent once;
// when the API's 401 needs a second token and no terminal can ask for a
// new OTP, the call fails and says so, and the spent OTP is not resent.
func TestOTPUsedOnce(t *testing.T) {
	defer noLeaks(t)()
	emu := sourcetest.NewVaultID(sourcetest.Options{})
	defer emu.Close()
	a := revokingAPI(t, emu)
	defer a.Close()
	in := invocation{vars: map[string]string{"TOKENHTTP_CLIENT_SECRET": sourcetest.DefaultClientSecret, "TOKENHTTP_PASSWORD": "333333"}}
	r := exec(t, in, "call", "--provider", "vaultid", "--token-url", emu.TokenURL, "--client-id", sourcetest.DefaultClientID,
		"--username", sourcetest.DefaultVaultIDUsername, "--cloud", "TESTCLOUD", a.URL+"/orders")
	assertCode(t, r, exitFailed)
	if got, want := emu.TokenRequests(), 1; got != want {
		t.Errorf("token requests: got %d, want %d (the spent OTP must not be sent again)", got, want)
	}
	for _, want := range []string{"401", "new one-time password"} {
		assertStderr(t, r, want)
	}
	assertNoSecret(t, r, "333333", sourcetest.DefaultClientSecret)
}
