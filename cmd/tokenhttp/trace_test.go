package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

var update = flag.Bool("update", false, "rewrite the golden files of the -v trace")

// normalize replaces what changes from run to run in a trace: ports,
// timings, token fingerprints, dates, lengths and temporary paths.
func normalize(s, tmp string) string {
	for _, r := range []struct{ re, with string }{
		{`127\.0\.0\.1:\d+`, "127.0.0.1:PORT"},
		{`\d+\.\dms`, "Tms"},
		{`sha256:[0-9a-f]{8}`, "sha256:FP"},
		{`(?m)^< Date: .*$`, "< Date: DATE"},
		{`(?m)^< Content-Length: \d+$`, "< Content-Length: N"},
	} {
		s = regexp.MustCompile(r.re).ReplaceAllString(s, r.with)
	}
	if tmp != "" {
		s = strings.ReplaceAll(s, tmp, "TMP")
	}
	return s
}

// golden compares got with testdata/name.golden, or writes it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	file := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("the -v trace differs from %s (run go test -update and review the diff):\n--- got\n%s\n--- want\n%s", file, got, want)
	}
}

func TestVerboseGolden(t *testing.T) {
	defer noLeaks(t)()
	const otherSecret = "secret-exported-for-another-provider"
	basic := base64.StdEncoding.EncodeToString([]byte(sourcetest.DefaultClientID + ":" + sourcetest.DefaultClientSecret))
	tmp := t.TempDir()
	secretFile := filepath.Join(tmp, "secret")
	if err := os.WriteFile(secretFile, []byte("wrong-secret-in-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		emu     func() *sourcetest.Server
		in      func(emu *sourcetest.Server) invocation
		args    func(emu *sourcetest.Server) []string
		prepare func(t *testing.T, emu *sourcetest.Server) string // returns the URL to call, if any
		code    int
		secrets []string
	}{
		{
			name: "standard-token",
			emu:  func() *sourcetest.Server { return sourcetest.NewStandard(sourcetest.Options{}) },
			in:   func(*sourcetest.Server) invocation { return withSecret() },
			args: func(emu *sourcetest.Server) []string {
				return []string{"token", "--token-url", emu.TokenURL, "--client-id", sourcetest.DefaultClientID, "--scope", "orders:read", "-v"}
			},
			code: exitOK,
		},
		{
			name: "standard-retry-after-503",
			emu: func() *sourcetest.Server {
				s := sourcetest.NewStandard(sourcetest.Options{})
				s.FailNext(1, http.StatusServiceUnavailable, "0")
				return s
			},
			in: func(*sourcetest.Server) invocation { return withSecret() },
			args: func(emu *sourcetest.Server) []string {
				return []string{"token", "-v", "--token-url", emu.TokenURL, "--client-id", sourcetest.DefaultClientID}
			},
			code: exitOK,
		},
		{
			// The trap: a client secret exported for another provider is
			// not sent to gestao.plus, which wants client_secret null.
			name: "gestaoplus-stray-secret-not-sent",
			emu:  func() *sourcetest.Server { return sourcetest.NewGestaoPlus(sourcetest.Options{}) },
			in: func(*sourcetest.Server) invocation {
				return invocation{vars: map[string]string{"TOKENHTTP_CLIENT_SECRET": otherSecret, "TOKENHTTP_PASSWORD": sourcetest.DefaultPassword}}
			},
			args: func(emu *sourcetest.Server) []string {
				return []string{"token", "--provider", "gestaoplus", "--token-url", emu.TokenURL, "--username", sourcetest.DefaultUsername, "-v"}
			},
			code: exitOK,
		},
		{
			// Sent on purpose, it is refused, and the trace says which
			// value went and where it came from.
			name: "gestaoplus-secret-sent-refused",
			emu:  func() *sourcetest.Server { return sourcetest.NewGestaoPlus(sourcetest.Options{}) },
			in: func(*sourcetest.Server) invocation {
				return invocation{vars: map[string]string{"TOKENHTTP_CLIENT_SECRET": otherSecret, "TOKENHTTP_PASSWORD": sourcetest.DefaultPassword}}
			},
			args: func(emu *sourcetest.Server) []string {
				return []string{"token", "--provider", "gestaoplus", "--token-url", emu.TokenURL, "--username", sourcetest.DefaultUsername,
					"--client-secret-env", "TOKENHTTP_CLIENT_SECRET", "-v"}
			},
			code: exitRefused,
		},
		{
			name: "serproid-secret-file-refused",
			emu:  func() *sourcetest.Server { return sourcetest.NewSerproID(sourcetest.Options{}) },
			in:   func(*sourcetest.Server) invocation { return invocation{} },
			args: func(emu *sourcetest.Server) []string {
				return []string{"token", "--provider", "serproid", "--token-url", emu.TokenURL, "--client-id", sourcetest.DefaultClientID,
					"--client-secret-file", secretFile, "-v"}
			},
			code:    exitRefused,
			secrets: []string{"wrong-secret-in-a-file"},
		},
		{
			name: "vaultid-otp-stdin",
			emu:  func() *sourcetest.Server { return sourcetest.NewVaultID(sourcetest.Options{}) },
			in: func(*sourcetest.Server) invocation {
				in := withSecret()
				in.stdin = "424242\n"
				return in
			},
			args: func(emu *sourcetest.Server) []string {
				return []string{"token", "--provider", "vaultid", "--token-url", emu.TokenURL, "--client-id", sourcetest.DefaultClientID,
					"--username", sourcetest.DefaultVaultIDUsername, "--cloud", "TESTCLOUD", "--password-stdin", "-v"}
			},
			code:    exitOK,
			secrets: []string{"424242"},
		},
		{
			// The API revokes the token: a 401, why the second token
			// request happened, the retry; the API key in the URL's query
			// is redacted.
			name: "call-401-then-retry",
			emu:  func() *sourcetest.Server { return sourcetest.NewStandard(sourcetest.Options{}) },
			in:   func(*sourcetest.Server) invocation { return withSecret() },
			args: func(emu *sourcetest.Server) []string {
				return []string{"call", "--token-url", emu.TokenURL, "--client-id", sourcetest.DefaultClientID}
			},
			prepare: func(t *testing.T, emu *sourcetest.Server) string {
				a := revokingAPI(t, emu)
				t.Cleanup(a.Close)
				return a.URL + "/orders?api_key=api-key-in-the-query&page=2"
			},
			code:    exitOK,
			secrets: []string{"api-key-in-the-query"},
		},
		{
			// gestao.plus: the API revokes the access token; the second
			// token request renews it with the refresh token.
			name: "gestaoplus-401-refresh",
			emu:  func() *sourcetest.Server { return sourcetest.NewGestaoPlus(sourcetest.Options{}) },
			in: func(*sourcetest.Server) invocation {
				return invocation{vars: map[string]string{"TOKENHTTP_PASSWORD": sourcetest.DefaultPassword}}
			},
			args: func(emu *sourcetest.Server) []string {
				return []string{"call", "--provider", "gestaoplus", "--token-url", emu.TokenURL, "--username", sourcetest.DefaultUsername}
			},
			prepare: func(t *testing.T, emu *sourcetest.Server) string {
				a := newAPI(t, func(w http.ResponseWriter, r *http.Request, n int) {
					if n == 1 {
						emu.Revoke(emu.IssuedTokens()[0])
					}
					forward(w, r, emu.ResourceURL)
				})
				t.Cleanup(a.Close)
				return a.URL + "/v1/me"
			},
			code: exitOK,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu := tt.emu()
			defer emu.Close()
			args := tt.args(emu)
			if tt.prepare != nil {
				args = append(args, tt.prepare(t, emu), "-v") // flags after the URL
			}
			r := exec(t, tt.in(emu), args...)
			assertCode(t, r, tt.code)
			golden(t, tt.name, normalize(r.stderr, tmp))
			secrets := append([]string{sourcetest.DefaultClientSecret, sourcetest.DefaultPassword, otherSecret, basic}, tt.secrets...)
			assertNoSecret(t, r, append(secrets, emu.IssuedTokens()...)...)
		})
	}
}

// TestVerboseFingerprints: the fingerprint of the token in the reply is
// the one the API request's Authorization shows, and it is the token's.
func TestVerboseFingerprints(t *testing.T) {
	defer noLeaks(t)()
	emu := sourcetest.NewStandard(sourcetest.Options{})
	defer emu.Close()
	r := exec(t, withSecret(), "call", emu.ResourceURL, "-v", "--token-url", emu.TokenURL, "--client-id", sourcetest.DefaultClientID)
	assertCode(t, r, exitOK)
	reply := regexp.MustCompile(`<   access_token    \[access_token (sha256:[0-9a-f]{8})\]`).FindStringSubmatch(r.stderr)
	sent := regexp.MustCompile(`> Authorization: Bearer \[access_token (sha256:[0-9a-f]{8})\]`).FindStringSubmatch(r.stderr)
	if reply == nil || sent == nil {
		t.Fatalf("no fingerprints in the trace:\n%s", r.stderr)
	}
	issued := emu.IssuedTokens()
	if want := fingerprint(issued[0]); reply[1] != want || sent[1] != want {
		t.Errorf("fingerprints: reply %s, request %s, want both %s", reply[1], sent[1], want)
	}
	assertNoSecret(t, r, issued...)
}

// TestVerboseMTLSGolden: with a client certificate the library sends
// token requests through its own transport; -v still shows them, says
// which client authentication was used, and shows neither the client
// assertion nor any key.
func TestVerboseMTLSGolden(t *testing.T) {
	defer noLeaks(t)()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	emu := sourcetest.NewMTLS(sourcetest.Options{}, sourcetest.MTLSOptions{PublicKey: key.Public()})
	defer emu.Close()
	tmp := t.TempDir()
	caFile, certFile, keyFile, jwtKey := filepath.Join(tmp, "ca.pem"), filepath.Join(tmp, "client.pem"), filepath.Join(tmp, "client-key.pem"), filepath.Join(tmp, "jwt-key.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: emu.CA.Certificate.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert := emu.CA.ClientCertificate(sourcetest.DefaultClientID)
	if err := sourcetest.WritePEM(certFile, keyFile, cert); err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(jwtKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	r := exec(t, withSecret(), "call", "--token-url", emu.TokenURL, "--client-id", sourcetest.DefaultClientID,
		"--client-cert", certFile, "--client-key", keyFile, "--ca-file", caFile, "--private-key", jwtKey, "--key-id", "k1",
		emu.ResourceURL, "-v")
	assertCode(t, r, exitOK)
	got := normalize(r.stderr, tmp)
	for _, r := range []struct{ re, with string }{
		{`(?m)^> Content-Length: \d+$`, "> Content-Length: N"},
		{`"x5t#S256":"[^"]+"`, `"x5t#S256":"THUMBPRINT"`},
	} {
		got = regexp.MustCompile(r.re).ReplaceAllString(got, r.with)
	}
	golden(t, "mtls-private-key-jwt", got)
	if emu.Assertions() != 1 {
		t.Errorf("assertions sent: got %d, want 1", emu.Assertions())
	}
	secrets := []string{sourcetest.DefaultClientSecret, "eyJ"} // a JWT: the assertion or the access token
	for _, f := range []string{keyFile, jwtKey} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		enc := base64.StdEncoding.EncodeToString(blk.Bytes)
		secrets = append(secrets, enc[:40], enc[len(enc)-40:])
	}
	assertNoSecret(t, r, append(secrets, emu.IssuedTokens()...)...)
	for _, want := range []string{"> POST /mtls/token", "client_assertion [client_assertion sha256:", `private_key_jwt: a client_assertion signed ES256 (the key's default), kid "k1"`, "over mTLS with the client certificate"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the trace lacks %q:\n%s", want, r.stderr)
		}
	}
}
