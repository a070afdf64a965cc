package main

import (
	"encoding/json"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := exec(t, invocation{}, args...)
		assertCode(t, r, exitOK)
		for _, want := range []string{"tokenhttp ", "module github.com/tokenhttp/tokenhttp", runtime.GOOS + "/" + runtime.GOARCH} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%v: got %q, want it to contain %q", args, r.stdout, want)
			}
		}
	}
	if got := versionText(nil, false); !strings.Contains(got, "no build information") {
		t.Errorf("without build information: got %q", got)
	}
}

// TestFlagsAnywhere: flags after the URL, "--", and -d @-.
func TestFlagsAnywhere(t *testing.T) {
	defer noLeaks(t)()
	emu := sourcetest.NewStandard(sourcetest.Options{})
	defer emu.Close()
	t.Run("call URL -v -i", func(t *testing.T) {
		r := exec(t, withSecret(), "call", emu.ResourceURL, "--token-url", emu.TokenURL, "-v", "--client-id", sourcetest.DefaultClientID, "-i")
		assertCode(t, r, exitOK)
		if !strings.HasPrefix(r.stdout, "HTTP/1.1 200 OK") || !strings.Contains(r.stderr, "* token request #1") {
			t.Errorf("got stdout %q and stderr %q, want -i and -v to apply", r.stdout, r.stderr)
		}
	})
	t.Run("-- ends the flags", func(t *testing.T) {
		r := exec(t, withSecret(), "call", "--token-url", emu.TokenURL, "--client-id", sourcetest.DefaultClientID, "--", emu.ResourceURL, "-v")
		assertCode(t, r, exitUsage)
		if !strings.Contains(r.stderr, "exactly one URL, got 2") {
			t.Errorf("stderr: got %q", r.stderr)
		}
	})
	t.Run("-d @-", func(t *testing.T) {
		in := withSecret()
		in.stdin = `{"query":"from stdin"}`
		r := exec(t, in, "call", emu.ResourceURL, "-d", "@-", "--token-url", emu.TokenURL, "--client-id", sourcetest.DefaultClientID)
		assertCode(t, r, exitOK)
		var got resourceReply
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Method != "POST" || got.BodyBytes != int64(len(in.stdin)) {
			t.Errorf("got %+v (%v), want a POST of %d bytes", got, err, len(in.stdin))
		}
	})
	t.Run("-d @- with --password-stdin", func(t *testing.T) {
		r := exec(t, withSecret(), "call", emu.ResourceURL, "-d", "@-", "--password-stdin", "--token-url", emu.TokenURL)
		assertCode(t, r, exitUsage)
	})
	t.Run("a bad flag is one line, not the whole flag list", func(t *testing.T) {
		r := exec(t, withSecret(), "call", "--nope", emu.ResourceURL)
		assertCode(t, r, exitUsage)
		if n := strings.Count(r.stderr, "\n"); n != 2 || !strings.Contains(r.stderr, "tokenhttp help call") {
			t.Errorf("stderr: got %d lines, want the error and where the help is:\n%s", n, r.stderr)
		}
	})
	for _, flag := range []string{"--client-secret", "--client-secret=x", "-password", "--password=pw", "--token"} {
		t.Run("refused "+flag, func(t *testing.T) {
			r := exec(t, withSecret(), "token", flag, "value", "--token-url", emu.TokenURL, "--client-id", "x")
			assertCode(t, r, exitUsage)
			if !strings.Contains(r.stderr, "command line") && !strings.Contains(r.stderr, "fetches the token itself") {
				t.Errorf("stderr: got %q, want why and what to use", r.stderr)
			}
			if strings.Contains(r.stderr, "-provider string") {
				t.Errorf("stderr: got the flag list:\n%s", r.stderr)
			}
		})
	}
}

// TestNoGoIdentifiers: errors name flags, never the library's Go names.
func TestNoGoIdentifiers(t *testing.T) {
	defer noLeaks(t)()
	emu := sourcetest.NewVaultID(sourcetest.Options{})
	defer emu.Close()
	goName := regexp.MustCompile(`Config\.|source\.|AuthStyle|PasswordFunc|AllowInsecureHTTP`)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"token", "--provider", "vaultid", "--token-url", emu.TokenURL, "--client-id", "x", "--username", "12345678901", "--password-stdin", "--lifetime", "200h"}, "--lifetime"},
		{[]string{"token", "--provider", "vaultid", "--token-url", emu.TokenURL, "--client-id", "x", "--username", "abc", "--password-stdin", "--cloud", "C"}, "--username"},
		{[]string{"token", "--grant", "implicit", "--token-url", emu.TokenURL, "--client-id", "x"}, "client_credentials, password, refresh_token, jwt-bearer or token-exchange"},
		{[]string{"token", "--provider", "serproid", "--grant", "password", "--username", "u", "--password-stdin", "--client-id", "x"}, "leave out --grant"},
		{[]string{"token", "--token-url", "http://auth.example.com/token", "--client-id", "x"}, "--insecure"},
		{[]string{"token", "--client-id", "x"}, "--token-url"},
		{[]string{"token", "--token-url", emu.TokenURL}, "--client-id"},
		{[]string{"token", "--token-url", emu.TokenURL, "--client-id", "x", "--scope", `a"b`}, "--scope"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[1:], " "), func(t *testing.T) {
			in := withSecret()
			in.stdin = "123456\n"
			r := exec(t, in, tt.args...)
			assertCode(t, r, exitUsage)
			if m := goName.FindString(r.stderr); m != "" {
				t.Errorf("stderr names the Go identifier %q: %s", m, r.stderr)
			}
			assertStderr(t, r, tt.want)
		})
	}
	t.Run("a refusal's hint", func(t *testing.T) {
		std := sourcetest.NewStandard(sourcetest.Options{})
		defer std.Close()
		r := exec(t, invocation{vars: map[string]string{"TOKENHTTP_CLIENT_SECRET": "wrong"}}, "token", "--token-url", std.TokenURL, "--client-id", "x")
		assertCode(t, r, exitRefused)
		if m := goName.FindString(r.stderr); m != "" {
			t.Errorf("stderr names the Go identifier %q: %s", m, r.stderr)
		}
		if !strings.Contains(r.stderr, "--auth") || !strings.Contains(r.stderr, "-v") {
			t.Errorf("stderr: got %q, want the flags to check and -v", r.stderr)
		}
	})
}

// TestDemoSpansGrouped: repeated identical span rows are one row with a
// count, and durations are printed one way.
func TestDemoSpansGrouped(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes seconds")
	}
	r := exec(t, invocation{}, "demo")
	assertCode(t, r, exitOK)
	_, table, _ := strings.Cut(r.stdout, "4. The spans")
	if !regexp.MustCompile(`breaker_open\s+\S+\s+× \d+`).MatchString(table) {
		t.Errorf("no grouped breaker_open row:\n%s", table)
	}
	if n := strings.Count(table, "breaker_open  breaker_open"); n > 2 {
		t.Errorf("%d breaker_open rows, want them grouped:\n%s", n, table)
	}
	for _, l := range strings.Split(strings.TrimSpace(table), "\n")[2:] {
		if strings.HasPrefix(l, "demo finished") || strings.TrimSpace(l) == "" {
			continue
		}
		if !regexp.MustCompile(`\d+\.\dms(–\d+\.\dms)?( +× \d+)?$`).MatchString(l) {
			t.Errorf("row %q: want its duration in ms with one decimal", l)
		}
	}
	for _, want := range []string{`"client_secret": null`, `"expires_in": "43200", a string`, `"Authorization": "VCSchema …"`, "Standard", "form body, client id and secret by HTTP Basic"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the demo does not show %q", want)
		}
	}
}
