package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// TestExitCodes runs one case for each row of the exit code table, in the
// usage text and the README.
func TestExitCodes(t *testing.T) {
	defer noLeaks(t)()
	emu := sourcetest.NewStandard(sourcetest.Options{})
	defer emu.Close()
	cred := func(tokenURL string) []string {
		return []string{"--token-url", tokenURL, "--client-id", sourcetest.DefaultClientID}
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	binary := "\x1b[2J\x1b]0;pwned\x07\x00\x01\x02 PNG"
	api := newAPI(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch r.URL.Path {
		case "/missing":
			http.Error(w, "no such order", http.StatusNotFound)
		case "/hang":
			<-r.Context().Done()
		case "/binary":
			w.Header().Set("Content-Type", "application/octet-stream")
			fmt.Fprint(w, binary)
		default:
			fmt.Fprint(w, "ok")
		}
	})
	defer api.Close()
	// Token URLs that are not token endpoints.
	notToken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/405":
			w.WriteHeader(http.StatusMethodNotAllowed)
		case "/302":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/html":
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html><body>Welcome to the portal</body></html>")
		default:
			http.NotFound(w, r)
		}
	}))
	defer notToken.Close()
	hung := sourcetest.NewStandard(sourcetest.Options{})
	defer hung.Close()
	down := sourcetest.NewStandard(sourcetest.Options{})
	defer down.Close()
	outFile := filepath.Join(t.TempDir(), "body")

	tests := []struct {
		code     int
		name     string
		args     []string
		in       invocation
		want     string // in stderr
		before   func()
		check    func(t *testing.T, r result)
		maxTaken time.Duration
	}{
		{code: exitOK, name: "a token", args: append([]string{"token"}, cred(emu.TokenURL)...)},
		{code: exitOK, name: "a call", args: append([]string{"call", api.URL + "/x"}, cred(emu.TokenURL)...)},
		{code: exitOK, name: "a binary body with -o -", args: append([]string{"call", api.URL + "/binary", "-o", "-"}, cred(emu.TokenURL)...),
			in: invocation{stdoutTerminal: true}, check: func(t *testing.T, r result) {
				if r.stdout != binary {
					t.Errorf("stdout: got %q, want the body as it is", r.stdout)
				}
			}},
		{code: exitOK, name: "a binary body with -o FILE", args: append([]string{"call", api.URL + "/binary", "-o", outFile}, cred(emu.TokenURL)...),
			in: invocation{stdoutTerminal: true}, check: func(t *testing.T, r result) {
				if b, _ := os.ReadFile(outFile); string(b) != binary || r.stdout != "" {
					t.Errorf("file: got %q and stdout %q, want the body in the file only", b, r.stdout)
				}
			}},
		{code: exitFailed, name: "the API answers 404", args: append([]string{"call", api.URL + "/missing"}, cred(emu.TokenURL)...), want: "404 Not Found"},
		{code: exitFailed, name: "the API refuses the connection", args: append([]string{"call", closed.URL + "/x?api_key=k-in-query"}, cred(emu.TokenURL)...),
			want: "api_key=[redacted]", check: func(t *testing.T, r result) {
				if strings.Contains(r.output(), "k-in-query") {
					t.Errorf("the output shows the URL's query: %s", r.output())
				}
			}},
		{code: exitFailed, name: "the API does not answer within --timeout", args: append([]string{"call", api.URL + "/hang", "--timeout", "1s"}, cred(emu.TokenURL)...),
			want: "no reply within --timeout 1s", maxTaken: 10 * time.Second},
		{code: exitFailed, name: "a binary body at a terminal", args: append([]string{"call", api.URL + "/binary"}, cred(emu.TokenURL)...),
			in: invocation{stdoutTerminal: true}, want: "-o FILE", check: func(t *testing.T, r result) {
				if r.stdout != "" {
					t.Errorf("stdout: got %q, want nothing", r.stdout)
				}
			}},
		{code: exitUsage, name: "an unknown flag", args: append([]string{"token", "--bogus"}, cred(emu.TokenURL)...), want: "bogus"},
		{code: exitUsage, name: "a secret on the command line", args: append([]string{"token", "--client-secret", "s3cret"}, cred(emu.TokenURL)...),
			want: "use $TOKENHTTP_CLIENT_SECRET, --client-secret-env NAME or --client-secret-file FILE", check: func(t *testing.T, r result) {
				if n := strings.Count(r.stderr, "\n"); n > 3 {
					t.Errorf("stderr: got %d lines, want the one reason:\n%s", n, r.stderr)
				}
			}},
		{code: exitUsage, name: "no password and no terminal", args: []string{"token", "--provider", "gestaoplus", "--token-url", emu.TokenURL, "--username", "u"},
			want: "--password-stdin"},
		{code: exitUsage, name: "a missing --assertion-file", args: append([]string{"token", "--grant", "jwt-bearer", "--assertion-file", "/nonexistent/sa"}, cred(emu.TokenURL)...),
			want: "--assertion-file"},
		{code: exitUsage, name: "a missing --subject-token-file", args: append([]string{"token", "--grant", "token-exchange", "--subject-token-file", "/nonexistent/id"}, cred(emu.TokenURL)...),
			want: "--subject-token-file"},
		{code: exitUsage, name: "a missing --client-assertion-file", args: append([]string{"token", "--client-assertion-file", "/nonexistent/ca"}, cred(emu.TokenURL)...),
			want: "--client-assertion-file"},
		{code: exitUsage, name: "--encoding form for a JSON provider", args: []string{"token", "--provider", "scorepositivo", "--encoding", "form", "--client-id", "x"},
			want: "takes a JSON body only"},
		{code: exitRefused, name: "a wrong client secret", args: append([]string{"token"}, cred(emu.TokenURL)...),
			in: invocation{vars: map[string]string{"TOKENHTTP_CLIENT_SECRET": "wrong-secret-1"}}, want: "invalid_client"},
		{code: exitUnavailable, name: "the token endpoint answers 503", args: append([]string{"token"}, cred(down.TokenURL)...),
			before: func() { down.FailNext(1000, http.StatusServiceUnavailable, "0") }, want: "503"},
		{code: exitUnavailable, name: "the token endpoint refuses the connection", args: append([]string{"token"}, cred(closed.URL+"/token")...),
			want: "unreachable"},
		{code: exitUnavailable, name: "the token endpoint does not answer within --timeout", args: append([]string{"token", "--timeout", "1s"}, cred(hung.TokenURL)...),
			before: func() { hung.HangNext(1000) }, want: "--timeout 1s", maxTaken: 10 * time.Second},
		{code: exitWrongURL, name: "the token URL answers 404", args: append([]string{"token"}, cred(emu.TokenURL+"/typo")...), want: "not a token endpoint"},
		{code: exitWrongURL, name: "the token URL answers 405", args: append([]string{"token"}, cred(notToken.URL+"/405")...), want: "HTTP 405"},
		{code: exitWrongURL, name: "the token URL redirects", args: append([]string{"token"}, cred(notToken.URL+"/302")...), want: "HTTP 302"},
		{code: exitWrongURL, name: "the token URL answers a web page", args: append([]string{"token"}, cred(notToken.URL+"/html")...), want: "not a token"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d %s", tt.code, tt.name), func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			in := tt.in
			if in.vars == nil {
				in.vars = withSecret().vars
			}
			start := time.Now()
			r := exec(t, in, tt.args...)
			assertCode(t, r, tt.code)
			assertStderr(t, r, tt.want)
			if tt.maxTaken > 0 && time.Since(start) > tt.maxTaken {
				t.Errorf("took %s, want under %s", time.Since(start), tt.maxTaken)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
			assertNoSecret(t, r, sourcetest.DefaultClientSecret, "wrong-secret-1", "s3cret")
		})
	}

	t.Run("130 interrupted", func(t *testing.T) {
		hung.HangNext(1000)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		var out, errOut strings.Builder
		e := env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, stdinFD: -1,
			getenv: func(k string) string { return withSecret().vars[k] }}
		if got := run(ctx, append([]string{"token"}, cred(hung.TokenURL)...), e); got != exitInterrupted {
			t.Errorf("exit code: got %d, want %d; stderr %q", got, exitInterrupted, errOut.String())
		}
	})

	t.Run("the table lists every code", func(t *testing.T) {
		for _, code := range []int{exitOK, exitFailed, exitUsage, exitRefused, exitUnavailable, exitWrongURL, exitInterrupted} {
			if !strings.Contains(exitTable, fmt.Sprintf("\n  %-4d ", code)) {
				t.Errorf("the exit code table lacks %d:\n%s", code, exitTable)
			}
		}
		readme, err := os.ReadFile("../../README.md")
		if err != nil {
			t.Fatal(err)
		}
		for _, code := range []int{exitOK, exitFailed, exitUsage, exitRefused, exitUnavailable, exitWrongURL, exitInterrupted} {
			if !strings.Contains(string(readme), fmt.Sprintf("| %d |", code)) {
				t.Errorf("the README's exit code table lacks a row for %d", code)
			}
		}
	})
}
