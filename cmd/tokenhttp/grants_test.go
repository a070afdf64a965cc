package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

func writeFile(t *testing.T, v string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGrantFlags: token and call with --grant refresh_token,
// jwt-bearer and token-exchange against the emulator; -v shows none of
// the tokens read from files.
func TestGrantFlags(t *testing.T) {
	defer noLeaks(t)()
	emu := sourcetest.NewStandard(sourcetest.Options{})
	defer emu.Close()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	emu.TrustIssuer("ci", key.Public())
	assertion, err := source.SignedAssertion(key, map[string]any{"iss": "ci", "sub": "job", "aud": emu.TokenURL}, source.AssertionOptions{})(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	emu.AddSubjectToken("subject-from-file")
	rt := emu.MintRefreshToken("")
	base := []string{"--token-url", emu.TokenURL, "--client-id", sourcetest.DefaultClientID, "-v"}
	for _, tc := range []struct {
		name, secret string
		args         []string
	}{
		{"refresh_token", rt, []string{"token", "--grant", "refresh_token", "--refresh-token-file", writeFile(t, rt)}},
		{"jwt-bearer", assertion, []string{"token", "--grant", "jwt-bearer", "--assertion-file", writeFile(t, assertion)}},
		{"token-exchange", "subject-from-file", []string{"call", emu.ResourceURL, "--grant", "token-exchange", "--subject-token-file", writeFile(t, "subject-from-file"),
			"--audience", "orders", "--resource", "https://a.example/", "--resource", "https://b.example/", "--requested-token-type", source.TokenTypeAccessToken}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := exec(t, withSecret(), append(tc.args, base...)...)
			assertCode(t, r, exitOK)
			if strings.Contains(r.stdout+r.stderr, tc.secret) {
				t.Errorf("the %s token read from a file is in the output", tc.name)
			}
		})
	}
	if x := emu.LastExchange(); len(x["resource"]) != 2 || x["audience"][0] != "orders" {
		t.Errorf("exchange parameters: %v", x)
	}
	r := exec(t, withSecret(), append([]string{"token", "--grant", "jwt-bearer"}, base...)...)
	assertCode(t, r, exitUsage)
}
