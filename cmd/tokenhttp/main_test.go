package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tokenhttp/tokenhttp/retry"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// result is what one in-process run of the command produced.
type result struct {
	code           int
	stdout, stderr string
}

// output is stdout and stderr together, for checks that look at both.
func (r result) output() string { return r.stdout + r.stderr }

// invocation describes one run: the fake environment and streams.
type invocation struct {
	vars           map[string]string // the environment; nothing else is visible
	stdin          string
	stdoutTerminal bool
}

// exec runs the command in-process with buffers and a fake getenv.
func exec(t *testing.T, in invocation, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr strings.Builder
	e := env{
		stdin:          strings.NewReader(in.stdin),
		stdout:         &stdout,
		stderr:         &stderr,
		getenv:         func(k string) string { return in.vars[k] },
		stdinFD:        -1,
		stdoutTerminal: in.stdoutTerminal,
	}
	code := run(ctx, args, e)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// withSecret is an environment holding the emulators' default client
// secret.
func withSecret() invocation {
	return invocation{vars: map[string]string{"TOKENHTTP_CLIENT_SECRET": sourcetest.DefaultClientSecret}}
}

// noLeaks checks, at the end of a test, that no goroutine it started is
// left (idle keep-alive connections of http.DefaultTransport are closed
// first: they belong to the process, not to the test).
func noLeaks(t *testing.T) func() {
	t.Helper()
	opts := []goleak.Option{goleak.IgnoreCurrent()}
	return func() {
		t.Helper()
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		goleak.VerifyNone(t, opts...)
	}
}

// assertNoSecret fails if any of secrets appears in the run's output.
func assertNoSecret(t *testing.T, r result, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if strings.Contains(r.stdout, s) {
			t.Errorf("stdout holds the secret %q:\n%s", s, r.stdout)
		}
		if strings.Contains(r.stderr, s) {
			t.Errorf("stderr holds the secret %q:\n%s", s, r.stderr)
		}
	}
}

// assertStderr fails unless the run's stderr contains want.
func assertStderr(t *testing.T, r result, want string) {
	t.Helper()
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr: got %q, want it to contain %q", r.stderr, want)
	}
}

func assertCode(t *testing.T, r result, want int) {
	t.Helper()
	if r.code != want {
		t.Errorf("exit code: got %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, want, r.stdout, r.stderr)
	}
}

func TestDemo(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"))
	start := time.Now()
	r := exec(t, invocation{}, "demo")
	elapsed := time.Since(start)
	assertCode(t, r, exitOK)
	if elapsed >= 30*time.Second {
		t.Errorf("the demo took %s, want under 30s", elapsed)
	}
	lines := strings.Split(r.stdout, "\n")
	for _, name := range []string{"Standard", "VaultID CESS", "DirectLink", "Score Positivo", "gestao.plus", "SerproID"} {
		t.Run("provider "+name, func(t *testing.T) {
			i := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, name+" ") && strings.Contains(l, "3 API calls") })
			if i < 0 {
				t.Fatalf("got no line for %s in the transcript:\n%s", name, r.stdout)
			}
			if got, want := lines[i], "token requests: 1 "; !strings.Contains(got, want) {
				t.Errorf("got %q, want it to contain %q", got, want)
			}
			if got, want := lines[i], "200 200 200"; !strings.Contains(got, want) {
				t.Errorf("got %q, want it to contain %q", got, want)
			}
		})
	}
	for _, want := range []string{
		"1. RFC 6749 and each provider",
		"2. The API revokes",
		"refresh_token 1",
		"3. Score Positivo's token endpoint goes down",
		"with the still-valid token",
		"circuit breaker: closed -> open",
		"circuit breaker: open -> half-open",
		"circuit breaker: half-open -> closed",
		"calls fail fast",
		"recovered",
		"demo finished in",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the transcript lacks %q:\n%s", want, r.stdout)
		}
	}
	header := regexp.MustCompile(`(?m)^\s+at\s+provider\s+grant\s+reason\s+attempts\s+status\s+outcome\s+error\.type\s+events\s+duration\s*$`)
	if !header.MatchString(r.stdout) {
		t.Errorf("the transcript lacks the spans table header:\n%s", r.stdout)
	}
	// Each provider fetched at least once: its name is in a span row.
	for _, p := range []string{"standard", "vaultid", "directlink", "scorepositivo", "gestaoplus", "serproid"} {
		row := regexp.MustCompile(`(?m)^\s+\d+\.\d\ds\s+` + p + `\s`)
		if !row.MatchString(r.stdout) {
			t.Errorf("the spans table has no row for %s:\n%s", p, r.stdout)
		}
	}
	assertNoSecret(t, r, sourcetest.DefaultClientSecret, sourcetest.DefaultPassword)
}

func TestTopLevel(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		want       int
		wantStdout string
		wantStderr string
	}{
		{"no args", nil, exitUsage, "", "Usage:"},
		{"help", []string{"help"}, exitOK, "Usage:", ""},
		{"--help", []string{"--help"}, exitOK, "Exit codes:", ""},
		{"unknown command", []string{"fetch"}, exitUsage, "", `unknown command "fetch"`},
		{"help of an unknown command", []string{"help", "fetch"}, exitUsage, "", `unknown command "fetch"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := exec(t, invocation{}, tt.args...)
			assertCode(t, r, tt.want)
			if got, want := r.stdout, tt.wantStdout; !strings.Contains(got, want) {
				t.Errorf("stdout: got %q, want it to contain %q", got, want)
			}
			assertStderr(t, r, tt.wantStderr)
			if tt.want == exitUsage && !strings.Contains(r.stderr, "tokenhttp call") {
				t.Errorf("stderr: got %q, want the usage listing the commands", r.stderr)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, cmd := range []string{"demo", "token", "call", "emulate", "proxy", "version", "help"} {
		for _, args := range [][]string{{cmd, "--help"}, {cmd, "-h"}, {"help", cmd}} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				r := exec(t, invocation{}, args...)
				assertCode(t, r, exitOK)
				if got, want := r.stdout, "Usage: tokenhttp "+cmd; !strings.Contains(got, want) { // help goes to standard output
					t.Errorf("got %q, want it to contain %q", got, want)
				}
				if got, want := r.output(), "Examples"; !strings.Contains(got, want) {
					t.Errorf("got %q, want it to contain %q", got, want)
				}
			})
		}
	}
}

// tokenLine returns the value of the "name:" line of token's text output.
func tokenLine(t *testing.T, out, name string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("got no %q line in:\n%s", name, out)
	return ""
}

func TestTokenStandard(t *testing.T) {
	defer noLeaks(t)()
	emu := sourcetest.NewStandard(sourcetest.Options{})
	defer emu.Close()
	base := []string{"token", "--token-url", emu.TokenURL, "--client-id", sourcetest.DefaultClientID}

	t.Run("metadata, no token", func(t *testing.T) {
		before := emu.TokenRequests()
		r := exec(t, withSecret(), append(base, "--scope", "orders:read orders:write")...)
		assertCode(t, r, exitOK)
		if got, want := emu.TokenRequests()-before, 1; got != want {
			t.Errorf("token requests: got %d, want %d", got, want)
		}
		if got, want := tokenLine(t, r.stdout, "token type"), "Bearer"; got != want {
			t.Errorf("token type: got %q, want %q", got, want)
		}
		if got, want := tokenLine(t, r.stdout, "scope"), "orders:read orders:write"; got != want {
			t.Errorf("scope: got %q, want %q", got, want)
		}
		if got, want := tokenLine(t, r.stdout, "provider"), "standard"; got != want {
			t.Errorf("provider: got %q, want %q", got, want)
		}
		exp := tokenLine(t, r.stdout, "expiry")
		m := regexp.MustCompile(`^(\S+) \(in (\S+)\)$`).FindStringSubmatch(exp)
		if m == nil {
			t.Fatalf("expiry: got %q, want \"<RFC 3339> (in <duration>)\"", exp)
		}
		at, err := time.Parse(time.RFC3339, m[1])
		if err != nil {
			t.Errorf("expiry: %v", err)
		} else if got, want := time.Until(at), time.Hour; got > want || got < want-time.Minute {
			t.Errorf("expiry: got %s from now, want about %s", got, want)
		}
		if life, err := time.ParseDuration(m[2]); err != nil || life > time.Hour || life < 59*time.Minute {
			t.Errorf("lifetime: got %q (%v), want about 1h", m[2], err)
		}
		if strings.Contains(r.stdout, "authorization:") {
			t.Errorf("got an authorization line without --show-token:\n%s", r.stdout)
		}
		assertNoSecret(t, r, append(emu.IssuedTokens(), sourcetest.DefaultClientSecret)...)
	})

	t.Run("--show-token", func(t *testing.T) {
		r := exec(t, withSecret(), append(base, "--show-token")...)
		assertCode(t, r, exitOK)
		got := tokenLine(t, r.stdout, "authorization")
		tok, ok := strings.CutPrefix(got, "Bearer ")
		if !ok {
			t.Fatalf("authorization: got %q, want \"Bearer <token>\"", got)
		}
		if issued := emu.IssuedTokens(); len(issued) == 0 || issued[len(issued)-1] != tok {
			t.Errorf("authorization: got token %q, want the last one issued of %q", tok, issued)
		}
		assertNoSecret(t, r, sourcetest.DefaultClientSecret)
	})

	t.Run("--json", func(t *testing.T) {
		for _, show := range []bool{false, true} {
			args := append(base, "--json")
			if show {
				args = append(args, "--show-token")
			}
			r := exec(t, withSecret(), args...)
			assertCode(t, r, exitOK)
			var got map[string]any
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
				t.Fatalf("--json output does not parse: %v\n%s", err, r.stdout)
			}
			for k, want := range map[string]any{
				"provider": "standard", "token_type": "Bearer", "header_scheme": "Bearer", "refresh_token": false,
			} {
				if got[k] != want {
					t.Errorf("%s: got %v, want %v", k, got[k], want)
				}
			}
			if _, ok := got["scope"]; !ok {
				t.Errorf("got no scope field in %v", got)
			}
			if in, ok := got["expires_in"].(float64); !ok || in > 3600 || in < 3540 {
				t.Errorf("expires_in: got %v, want about 3600", got["expires_in"])
			}
			if s, _ := got["expiry"].(string); s == "" {
				t.Errorf("expiry: got %v, want an RFC 3339 time", got["expiry"])
			} else if _, err := time.Parse(time.RFC3339, s); err != nil {
				t.Errorf("expiry: %v", err)
			}
			auth, has := got["authorization"]
			if has != show {
				t.Errorf("--show-token %v: got authorization field %v, want it present: %v", show, has, show)
			}
			issued := emu.IssuedTokens()
			if show && auth != "Bearer "+issued[len(issued)-1] {
				t.Errorf("authorization: got %v, want the issued token", auth)
			}
			if !show {
				assertNoSecret(t, r, issued...)
			}
			assertNoSecret(t, r, sourcetest.DefaultClientSecret)
		}
	})

	t.Run("--client-secret-file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "secret")
		if err := os.WriteFile(file, []byte(sourcetest.DefaultClientSecret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		// The file wins over a wrong secret in the environment.
		in := invocation{vars: map[string]string{"TOKENHTTP_CLIENT_SECRET": "wrong-from-env"}}
		r := exec(t, in, append(base, "--client-secret-file", file)...)
		assertCode(t, r, exitOK)
		assertNoSecret(t, r, sourcetest.DefaultClientSecret)
	})

	t.Run("--client-secret-env", func(t *testing.T) {
		in := invocation{vars: map[string]string{"MY_SECRET": sourcetest.DefaultClientSecret}}
		r := exec(t, in, append(base, "--client-secret-env", "MY_SECRET")...)
		assertCode(t, r, exitOK)
	})

	t.Run("--auth body and header", func(t *testing.T) {
		for _, auth := range []string{"header", "body"} {
			r := exec(t, withSecret(), append(base, "--auth", auth)...)
			assertCode(t, r, exitOK)
			req := emu.LastTokenRequest()
			_, _, basic := (&http.Request{Header: req.Header}).BasicAuth()
			if got, want := basic, auth == "header"; got != want {
				t.Errorf("--auth %s: got HTTP Basic %v, want %v", auth, got, want)
			}
		}
	})

	t.Run("-v", func(t *testing.T) {
		r := exec(t, withSecret(), append(base, "-v")...)
		assertCode(t, r, exitOK)
		for _, want := range []string{"* token request #1", "> POST /token HTTP/1.1", "> Authorization: Basic [client_id", "< HTTP/1.1 200 OK"} {
			assertStderr(t, r, want)
		}
		assertNoSecret(t, r, append(emu.IssuedTokens(), sourcetest.DefaultClientSecret, base64.StdEncoding.EncodeToString(
			[]byte(sourcetest.DefaultClientID+":"+sourcetest.DefaultClientSecret)))...)
	})

	t.Run("wrong secret", func(t *testing.T) {
		const wrong = "wrong-secret-4f2a"
		in := invocation{vars: map[string]string{"TOKENHTTP_CLIENT_SECRET": wrong}}
		r := exec(t, in, base...)
		assertCode(t, r, exitRefused)
		assertStderr(t, r, "invalid_client")
		if r.stdout != "" {
			t.Errorf("stdout: got %q, want nothing", r.stdout)
		}
		assertNoSecret(t, r, wrong, sourcetest.DefaultClientSecret)
	})
}

func TestTokenUnavailable(t *testing.T) {
	defer noLeaks(t)()
	tests := []struct {
		name  string
		fault func(*sourcetest.Server)
		want  string // in stderr
	}{
		{"503", func(s *sourcetest.Server) { s.FailNext(1000, http.StatusServiceUnavailable, "") }, "503"},
		{"500", func(s *sourcetest.Server) { s.FailNext(1000, http.StatusInternalServerError, "") }, "500"},
		{"429", func(s *sourcetest.Server) { s.FailNext(1000, http.StatusTooManyRequests, "0") }, "429"},
		{"connection reset", func(s *sourcetest.Server) { s.ResetNext(1000) }, "tokenhttp token:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu := sourcetest.NewStandard(sourcetest.Options{})
			defer emu.Close()
			tt.fault(emu)
			r := exec(t, withSecret(), "token", "--token-url", emu.TokenURL, "--client-id", sourcetest.DefaultClientID)
			assertCode(t, r, exitUnavailable)
			if got, want := emu.TokenRequests(), retry.DefaultMaxAttempts; got != want {
				t.Errorf("token requests: got %d, want %d (retried)", got, want)
			}
			assertStderr(t, r, tt.want)
			if r.stdout != "" {
				t.Errorf("stdout: got %q, want nothing", r.stdout)
			}
			assertNoSecret(t, r, sourcetest.DefaultClientSecret)
		})
	}
	t.Run("closed", func(t *testing.T) {
		emu := sourcetest.NewStandard(sourcetest.Options{})
		emu.Close()
		start := time.Now()
		r := exec(t, withSecret(), "token", "--token-url", emu.TokenURL, "--client-id", sourcetest.DefaultClientID)
		assertCode(t, r, exitUnavailable)
		if got := time.Since(start); got > 20*time.Second {
			t.Errorf("took %s to give up on a closed endpoint", got)
		}
		if r.stderr == "" {
			t.Error("stderr: got nothing, want the reason")
		}
		assertNoSecret(t, r, sourcetest.DefaultClientSecret)
	})
}

func TestTokenPassword(t *testing.T) {
	defer noLeaks(t)()

	t.Run("gestaoplus --password-stdin", func(t *testing.T) {
		emu := sourcetest.NewGestaoPlus(sourcetest.Options{})
		defer emu.Close()
		in := invocation{stdin: sourcetest.DefaultPassword + "\n"}
		r := exec(t, in, "token", "--provider", "gestaoplus", "--token-url", emu.TokenURL,
			"--username", sourcetest.DefaultUsername, "--password-stdin")
		assertCode(t, r, exitOK)
		if got, want := emu.Requests("password"), 1; got != want {
			t.Errorf("password grant requests: got %d, want %d", got, want)
		}
		if got, want := tokenLine(t, r.stdout, "refresh token"), "true"; got != want {
			t.Errorf("refresh token: got %q, want %q", got, want)
		}
		assertNoSecret(t, r, append(emu.IssuedTokens(), sourcetest.DefaultPassword)...)
	})

	t.Run("gestaoplus wrong password", func(t *testing.T) {
		emu := sourcetest.NewGestaoPlus(sourcetest.Options{})
		defer emu.Close()
		const wrong = "not-the-password-9c1"
		r := exec(t, invocation{stdin: wrong + "\n"}, "token", "--provider", "gestaoplus", "--token-url", emu.TokenURL,
			"--username", sourcetest.DefaultUsername, "--password-stdin")
		assertCode(t, r, exitRefused)
		assertStderr(t, r, "invalid_grant")
		assertNoSecret(t, r, wrong)
	})

	t.Run("password from the environment and from a file", func(t *testing.T) {
		emu := sourcetest.NewGestaoPlus(sourcetest.Options{})
		defer emu.Close()
		file := filepath.Join(t.TempDir(), "pw")
		if err := os.WriteFile(file, []byte(sourcetest.DefaultPassword+"\r\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			name  string
			in    invocation
			extra []string
		}{
			{"env", invocation{vars: map[string]string{"TOKENHTTP_PASSWORD": sourcetest.DefaultPassword}}, nil},
			{"--password-env", invocation{vars: map[string]string{"PW": sourcetest.DefaultPassword}}, []string{"--password-env", "PW"}},
			{"--password-file", invocation{}, []string{"--password-file", file}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				args := append([]string{"token", "--provider", "gestaoplus", "--token-url", emu.TokenURL,
					"--username", sourcetest.DefaultUsername}, tt.extra...)
				r := exec(t, tt.in, args...)
				assertCode(t, r, exitOK)
				assertNoSecret(t, r, sourcetest.DefaultPassword)
			})
		}
	})

	vaultArgs := func(emu *sourcetest.Server, extra ...string) []string {
		return append([]string{"token", "--provider", "vaultid", "--token-url", emu.TokenURL,
			"--client-id", sourcetest.DefaultClientID, "--username", sourcetest.DefaultVaultIDUsername,
			"--cloud", "TESTCLOUD"}, extra...)
	}

	t.Run("vaultid OTP from --password-stdin", func(t *testing.T) {
		emu := sourcetest.NewVaultID(sourcetest.Options{})
		defer emu.Close()
		in := withSecret()
		in.stdin = "123456\n"
		r := exec(t, in, vaultArgs(emu, "--password-stdin", "--show-token")...)
		assertCode(t, r, exitOK)
		if got, want := tokenLine(t, r.stdout, "header scheme"), "VCSchema"; got != want {
			t.Errorf("header scheme: got %q, want %q", got, want)
		}
		auth := tokenLine(t, r.stdout, "authorization")
		enc, ok := strings.CutPrefix(auth, "VCSchema ")
		if !ok {
			t.Fatalf("authorization: got %q, want \"VCSchema ...\"", auth)
		}
		dec, err := base64.StdEncoding.DecodeString(enc)
		issued := emu.IssuedTokens()
		if err != nil || len(issued) != 1 || string(dec) != "TESTCLOUD-|"+issued[0] {
			t.Errorf("authorization: got %q (%v), want the issued token %q", dec, err, issued)
		}
		if got := string(emu.LastTokenRequest().Body); !strings.Contains(got, `"123456"`) {
			t.Errorf("token request body: got %s, want the OTP from stdin", got)
		}
		assertNoSecret(t, r, sourcetest.DefaultClientSecret)

		// The same OTP again is refused by the provider: exit 3.
		in.stdin = "123456\n"
		r = exec(t, in, vaultArgs(emu, "--password-stdin")...)
		assertCode(t, r, exitRefused)
		assertStderr(t, r, "invalid_grant")
		assertNoSecret(t, r, sourcetest.DefaultClientSecret, "123456")
	})

	t.Run("no password and no terminal", func(t *testing.T) {
		emu := sourcetest.NewVaultID(sourcetest.Options{})
		defer emu.Close()
		r := exec(t, withSecret(), vaultArgs(emu)...)
		assertCode(t, r, exitUsage)
		assertStderr(t, r, "--password-stdin")
		if got := emu.TokenRequests(); got != 0 {
			t.Errorf("token requests: got %d, want 0", got)
		}
	})
}

func TestTokenUsage(t *testing.T) {
	defer noLeaks(t)()
	emu := sourcetest.NewStandard(sourcetest.Options{})
	defer emu.Close()
	ok := []string{"--token-url", emu.TokenURL, "--client-id", sourcetest.DefaultClientID}
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  string // in stderr
	}{
		{"unknown provider", []string{"--provider", "acme", "--client-id", "x"}, "", `unknown --provider "acme"`},
		{"bad --auth", append([]string{"--auth", "cookie"}, ok...), "", `--auth "cookie"`},
		{"bad --encoding", append([]string{"--encoding", "xml"}, ok...), "", `--encoding "xml"`},
		{"standard without --token-url", []string{"--client-id", "x"}, "", "--token-url is required"},
		{"directlink without --token-url", []string{"--provider", "directlink", "--username", "u", "--password-stdin"}, "pw\n", "--token-url is required"},
		{"http to a remote host", []string{"--token-url", "http://auth.example.com/token", "--client-id", "x"}, "", "cleartext"},
		{"not a URL", []string{"--token-url", "auth.example.com/token", "--client-id", "x"}, "", "not an absolute"},
		{"unknown flag", append([]string{"--bogus"}, ok...), "", "bogus"},
		{"secret on the command line", append([]string{"--client-secret", "s3cret"}, ok...), "", "client-secret"},
		{"extra argument", append(ok, "extra"), "", `unexpected argument "extra"`},
		{"missing secret file", append([]string{"--client-secret-file", "/nonexistent/secret"}, ok...), "", "secret file"},
		{"empty --password-stdin", []string{"--provider", "gestaoplus", "--token-url", emu.TokenURL, "--username", "u", "--password-stdin"}, "", "standard input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := emu.TokenRequests()
			in := withSecret()
			in.stdin = tt.stdin
			r := exec(t, in, append([]string{"token"}, tt.args...)...)
			assertCode(t, r, exitUsage)
			assertStderr(t, r, tt.want)
			if r.stdout != "" {
				t.Errorf("stdout: got %q, want nothing", r.stdout)
			}
			if got := emu.TokenRequests() - before; got != 0 {
				t.Errorf("token requests: got %d, want 0 for a usage error", got)
			}
			assertNoSecret(t, r, sourcetest.DefaultClientSecret)
		})
	}
}

// api is a loopback HTTP server standing for an API: it records the
// requests and answers with handle.
type api struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	method string
	header http.Header
	body   string
}

func newAPI(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, n int)) *api {
	t.Helper()
	a := &api{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.reqs = append(a.reqs, recorded{r.Method, r.Header.Clone(), string(b)})
		n := len(a.reqs)
		a.mu.Unlock()
		handle(w, r, n)
	}))
	return a
}

// revokingAPI is an API in front of emu's protected resource that revokes
// every token emu issued when the first call reaches it: that call is
// answered 401.
func revokingAPI(t *testing.T, emu *sourcetest.Server) *api {
	t.Helper()
	return newAPI(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			emu.RevokeAll()
		}
		forward(w, r, emu.ResourceURL)
	})
}

func (a *api) requests() []recorded {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.reqs)
}

// forward sends r's method and Authorization to url and copies the reply.
func forward(w http.ResponseWriter, r *http.Request, url string) {
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, url, nil)
	req.Header.Set("Authorization", r.Header.Get("Authorization"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	if v := resp.Header.Get("WWW-Authenticate"); v != "" {
		w.Header().Set("WWW-Authenticate", v)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// resourceReply is the emulator's protected resource reply.
type resourceReply struct {
	OK        bool   `json:"ok"`
	Method    string `json:"method"`
	BodyBytes int64  `json:"body_bytes"`
}

func TestCall(t *testing.T) {
	defer noLeaks(t)()
	emu := sourcetest.NewStandard(sourcetest.Options{})
	defer emu.Close()
	cred := []string{"call", "--token-url", emu.TokenURL, "--client-id", sourcetest.DefaultClientID}
	args := func(extra ...string) []string { return append(slices.Clone(cred), extra...) }

	bodyFile := filepath.Join(t.TempDir(), "body.json")
	fileBody := `{"query":"` + strings.Repeat("x", 1000) + `"}`
	if err := os.WriteFile(bodyFile, []byte(fileBody), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		args       []string
		wantMethod string
		wantBytes  int64
	}{
		{"GET", args(emu.ResourceURL), "GET", 0},
		{"POST -d", args("-X", "POST", "-d", "a=b", emu.ResourceURL), "POST", 3},
		{"-d implies POST", args("-d", "a=b&c=d", emu.ResourceURL), "POST", 7},
		{"-d @file", args("-d", "@"+bodyFile, "-H", "Content-Type: application/json", emu.ResourceURL), "POST", int64(len(fileBody))},
		{"PUT -d @file", args("-X", "put", "-d", "@"+bodyFile, emu.ResourceURL), "PUT", int64(len(fileBody))},
		{"DELETE", args("-X", "DELETE", emu.ResourceURL), "DELETE", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := exec(t, withSecret(), tt.args...)
			assertCode(t, r, exitOK)
			var got resourceReply
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
				t.Fatalf("stdout is not the resource's reply: %v\n%s", err, r.stdout)
			}
			if want := (resourceReply{true, tt.wantMethod, tt.wantBytes}); got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
			assertNoSecret(t, r, append(emu.IssuedTokens(), sourcetest.DefaultClientSecret)...)
		})
	}

	t.Run("-i", func(t *testing.T) {
		r := exec(t, withSecret(), args("-i", emu.ResourceURL)...)
		assertCode(t, r, exitOK)
		head, body, found := strings.Cut(r.stdout, "\n\n")
		if !found {
			t.Fatalf("got no blank line after the headers:\n%s", r.stdout)
		}
		lines := strings.Split(head, "\n")
		if got, want := lines[0], "HTTP/1.1 200 OK"; got != want {
			t.Errorf("status line: got %q, want %q", got, want)
		}
		if !slices.Contains(lines[1:], "Content-Type: application/json") {
			t.Errorf("headers: got %q, want Content-Type: application/json", lines[1:])
		}
		if !slices.ContainsFunc(lines[1:], func(l string) bool { return strings.HasPrefix(l, "Content-Length: ") }) {
			t.Errorf("headers: got %q, want a Content-Length", lines[1:])
		}
		if !strings.HasPrefix(body, `{"ok":true`) {
			t.Errorf("body: got %q, want the resource's reply", body)
		}
	})

	t.Run("without -i no headers", func(t *testing.T) {
		r := exec(t, withSecret(), args(emu.ResourceURL)...)
		assertCode(t, r, exitOK)
		if strings.Contains(r.stdout, "HTTP/1.1") || strings.Contains(r.stdout, "Content-Type") {
			t.Errorf("got headers without -i:\n%s", r.stdout)
		}
	})

	t.Run("-H", func(t *testing.T) {
		a := newAPI(t, func(w http.ResponseWriter, r *http.Request, _ int) { forward(w, r, emu.ResourceURL) })
		defer a.Close()
		r := exec(t, withSecret(), args("-H", "X-Test: 1", "-H", "X-Multi: a", "-H", "X-Multi: b", a.URL+"/orders")...)
		assertCode(t, r, exitOK)
		reqs := a.requests()
		if len(reqs) != 1 {
			t.Fatalf("API requests: got %d, want 1", len(reqs))
		}
		h := reqs[0].header
		if got, want := h.Get("X-Test"), "1"; got != want {
			t.Errorf("X-Test: got %q, want %q", got, want)
		}
		if got, want := h.Values("X-Multi"), []string{"a", "b"}; !slices.Equal(got, want) {
			t.Errorf("X-Multi: got %q, want %q", got, want)
		}
		issued := emu.IssuedTokens()
		if got, want := h.Get("Authorization"), "Bearer "+issued[len(issued)-1]; got != want {
			t.Errorf("Authorization: got %q, want %q", got, want)
		}
	})

	t.Run("-d sets a form content type unless -H gives one", func(t *testing.T) {
		a := newAPI(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusNoContent) })
		defer a.Close()
		for _, tt := range []struct {
			extra []string
			want  string
		}{
			{[]string{"-d", "a=b"}, "application/x-www-form-urlencoded"},
			{[]string{"-d", "{}", "-H", "content-type: application/json"}, "application/json"},
		} {
			r := exec(t, withSecret(), args(append(tt.extra, a.URL)...)...)
			assertCode(t, r, exitOK)
			reqs := a.requests()
			if got := reqs[len(reqs)-1]; got.header.Get("Content-Type") != tt.want || got.body != tt.extra[1] {
				t.Errorf("%q: got Content-Type %q and body %q, want %q and %q", tt.extra, got.header.Get("Content-Type"), got.body, tt.want, tt.extra[1])
			}
		}
	})

	t.Run("-v", func(t *testing.T) {
		r := exec(t, withSecret(), args("-v", emu.ResourceURL)...)
		assertCode(t, r, exitOK)
		for _, want := range []string{"* token request #1", "> POST /token HTTP/1.1", "* API request", "> GET /resource HTTP/1.1", "> Authorization: Bearer [access_token sha256:"} {
			assertStderr(t, r, want)
		}
		assertNoSecret(t, r, append(emu.IssuedTokens(), sourcetest.DefaultClientSecret, base64.StdEncoding.EncodeToString(
			[]byte(sourcetest.DefaultClientID+":"+sourcetest.DefaultClientSecret)))...)
	})
}

func TestCallRevoked(t *testing.T) {
	defer noLeaks(t)()
	emu := sourcetest.NewStandard(sourcetest.Options{})
	defer emu.Close()
	// The API revokes every token when the first call reaches it, so that
	// call is answered 401 by the emulator's resource.
	a := revokingAPI(t, emu)
	defer a.Close()
	r := exec(t, withSecret(), "call", "--token-url", emu.TokenURL, "--client-id", sourcetest.DefaultClientID, a.URL+"/orders")
	assertCode(t, r, exitOK)
	if got, want := emu.TokenRequests(), 2; got != want {
		t.Errorf("token requests: got %d, want %d", got, want)
	}
	reqs := a.requests()
	if got, want := len(reqs), 2; got != want {
		t.Fatalf("API requests: got %d, want %d", got, want)
	}
	if reqs[0].header.Get("Authorization") == reqs[1].header.Get("Authorization") {
		t.Errorf("the retry carried the revoked token %q", reqs[1].header.Get("Authorization"))
	}
	if got, want := emu.ResourceRequests(), 2; got != want {
		t.Errorf("resource requests: got %d, want %d", got, want)
	}
	if !strings.Contains(r.stdout, `"ok":true`) {
		t.Errorf("stdout: got %q, want the resource's reply", r.stdout)
	}
	assertNoSecret(t, r, append(emu.IssuedTokens(), sourcetest.DefaultClientSecret)...)
}

func TestCallFailures(t *testing.T) {
	defer noLeaks(t)()
	emu := sourcetest.NewStandard(sourcetest.Options{})
	defer emu.Close()
	cred := []string{"call", "--token-url", emu.TokenURL, "--client-id", sourcetest.DefaultClientID}

	t.Run("API 404", func(t *testing.T) {
		a := newAPI(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
			http.Error(w, "no such order", http.StatusNotFound)
		})
		defer a.Close()
		r := exec(t, withSecret(), append(cred, a.URL+"/orders/42")...)
		assertCode(t, r, exitFailed)
		if got, want := r.stdout, "no such order"; !strings.Contains(got, want) {
			t.Errorf("stdout: got %q, want the body %q", got, want)
		}
		assertStderr(t, r, "404")
		if got, want := len(a.requests()), 1; got != want {
			t.Errorf("API requests: got %d, want %d", got, want)
		}
	})

	t.Run("API 500", func(t *testing.T) {
		a := newAPI(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusInternalServerError) })
		defer a.Close()
		r := exec(t, withSecret(), append(cred, "-i", a.URL)...)
		assertCode(t, r, exitFailed)
		if got, want := r.stdout, "HTTP/1.1 500 Internal Server Error"; !strings.HasPrefix(got, want) {
			t.Errorf("stdout: got %q, want it to start with %q", got, want)
		}
	})

	t.Run("API down", func(t *testing.T) {
		a := newAPI(t, func(http.ResponseWriter, *http.Request, int) {})
		a.Close()
		r := exec(t, withSecret(), append(cred, a.URL)...)
		assertCode(t, r, exitFailed)
		if r.stderr == "" {
			t.Error("stderr: got nothing, want the reason")
		}
	})

	t.Run("wrong secret", func(t *testing.T) {
		const wrong = "wrong-secret-77d"
		in := invocation{vars: map[string]string{"TOKENHTTP_CLIENT_SECRET": wrong}}
		r := exec(t, in, append(cred, emu.ResourceURL)...)
		assertCode(t, r, exitRefused)
		assertStderr(t, r, "invalid_client")
		assertNoSecret(t, r, wrong)
	})

	t.Run("token endpoint down", func(t *testing.T) {
		down := sourcetest.NewStandard(sourcetest.Options{})
		down.FailNext(1000, http.StatusBadGateway, "")
		defer down.Close()
		r := exec(t, withSecret(), "call", "--token-url", down.TokenURL, "--client-id", sourcetest.DefaultClientID, down.ResourceURL)
		assertCode(t, r, exitUnavailable)
		if got := down.ResourceRequests(); got != 0 {
			t.Errorf("resource requests: got %d, want 0 without a token", got)
		}
	})

	usage := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"not a URL", []string{"not a url"}, "not an absolute http(s) URL"},
		{"relative URL", []string{"/orders"}, "not an absolute http(s) URL"},
		{"ftp URL", []string{"ftp://example.com/x"}, "not an absolute http(s) URL"},
		{"no host", []string{"http:///orders"}, "not an absolute http(s) URL"},
		{"bad -H", []string{"-H", "X-Test 1", emu.ResourceURL}, `-H "X-Test 1"`},
		{"-H without a name", []string{"-H", ": 1", emu.ResourceURL}, "-H"},
		{"missing -d file", []string{"-d", "@/nonexistent/body", emu.ResourceURL}, "body file"},
		{"no URL", nil, "exactly one URL"},
		{"two URLs", []string{emu.ResourceURL, emu.ResourceURL}, "exactly one URL"},
		{"unknown flag", []string{"--data", "x", emu.ResourceURL}, "data"},
		{"unknown provider", []string{"--provider", "acme", emu.ResourceURL}, `unknown --provider "acme"`},
		{"cleartext API", []string{"http://api.example.com/orders"}, "--insecure"},
	}
	for _, tt := range usage {
		t.Run(tt.name, func(t *testing.T) {
			before := emu.TokenRequests()
			r := exec(t, withSecret(), append(slices.Clone(cred), tt.args...)...)
			assertCode(t, r, exitUsage)
			assertStderr(t, r, tt.want)
			if got := emu.TokenRequests() - before; got != 0 {
				t.Errorf("token requests: got %d, want 0 for a usage error", got)
			}
			assertNoSecret(t, r, sourcetest.DefaultClientSecret)
		})
	}
}
