package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/jwtsign"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// TestClientAuthFlags: one happy path per flag group against the mTLS
// emulator: --client-cert/--client-key (tls_client_auth, then a call that
// presents the certificate), --p12 with its password from the
// environment, --private-key with --key-id and --assertion-audience, and
// --client-assertion-file.
func TestClientAuthFlags(t *testing.T) {
	defer noLeaks(t)()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	emu := sourcetest.NewMTLS(sourcetest.Options{}, sourcetest.MTLSOptions{PublicKey: key.Public()})
	defer emu.Close()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile := write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: emu.CA.Certificate.Raw}))
	cert := emu.CA.ClientCertificate(sourcetest.DefaultClientID)
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := sourcetest.WritePEM(certFile, keyFile, cert); err != nil {
		t.Fatal(err)
	}
	p12 := filepath.Join(dir, "c.p12")
	if err := sourcetest.WritePKCS12(p12, cert, "p12-pass"); err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyPEM := write("jwt.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	assertion, err := jwtsign.ClientAssertion(key, "", "", sourcetest.DefaultClientID, emu.TokenURL, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	assertionFile := write("assertion.jwt", []byte(assertion+"\n"))

	base := []string{"--token-url", emu.TokenURL, "--client-id", sourcetest.DefaultClientID, "--ca-file", caFile}
	for _, tc := range []struct {
		name string
		in   invocation
		args []string
	}{
		{"client-cert", withSecret(), append([]string{"token"}, append(base, "--client-cert", certFile, "--client-key", keyFile)...)},
		{"call with client-cert", invocation{}, append([]string{"call", emu.ResourceURL}, append(base, "--client-cert", certFile, "--client-key", keyFile)...)},
		{"p12", invocation{vars: map[string]string{"TOKENHTTP_P12_PASSWORD": "p12-pass"}}, append([]string{"token"}, append(base, "--p12", p12)...)},
		{"private-key", invocation{}, append([]string{"token"}, append(base, "--client-cert", certFile, "--client-key", keyFile,
			"--private-key", keyPEM, "--key-id", "k1", "--assertion-audience", emu.Issuer, "--signing-alg", "ES256")...)},
		{"assertion-file", invocation{}, append([]string{"token"}, append(base, "--client-cert", certFile, "--client-key", keyFile,
			"--client-assertion-file", assertionFile)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := exec(t, tc.in, tc.args...)
			assertCode(t, r, exitOK)
			for _, secret := range []string{"p12-pass", assertion} {
				if strings.Contains(r.output(), secret) {
					t.Errorf("output shows a secret: %s", r.output())
				}
			}
		})
	}
	if got := emu.ReplayedAssertions(); got != 0 {
		t.Errorf("replayed assertions: %d", got)
	}
}

// TestOpenFinanceBrasilFlag: --provider openfinancebrasil with the issuer
// as --token-url, a PKCS#12 certificate and a PS256 key.
func TestOpenFinanceBrasilFlag(t *testing.T) {
	defer noLeaks(t)()
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	emu := sourcetest.NewMTLS(sourcetest.Options{}, sourcetest.MTLSOptions{PublicKey: key.Public()})
	defer emu.Close()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: emu.CA.Certificate.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	p12, keyFile := filepath.Join(dir, "c.p12"), filepath.Join(dir, "jwt.pem")
	if err := sourcetest.WritePKCS12(p12, emu.CA.ClientCertificate(sourcetest.DefaultClientID), "pw"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := exec(t, invocation{}, "token", "--provider", "openfinancebrasil", "--token-url", emu.Issuer, "--client-id", sourcetest.DefaultClientID,
		"--ca-file", caFile, "--p12", p12, "--p12-password-file", pwFile, "--private-key", keyFile)
	assertCode(t, r, exitOK)
}

// TestCAFileWithoutCertificate: --ca-file with no client certificate is
// trusted for the API call too (the call went over the system roots and
// failed), and -v still traces the token request (a plain client replaced
// the tracing one).
func TestCAFileWithoutCertificate(t *testing.T) {
	emu := sourcetest.NewStandard(sourcetest.Options{TLS: true})
	t.Cleanup(emu.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem") // httptest's certificate
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: emu.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	r := exec(t, withSecret(), "call", "-v", "--token-url", emu.TokenURL, "--client-id", sourcetest.DefaultClientID, "--ca-file", caFile, emu.ResourceURL)
	assertCode(t, r, exitOK)
	if !strings.Contains(r.output(), "> POST /token HTTP/1.1") {
		t.Errorf("call -v --ca-file: the token request is not traced:\n%s", r.output())
	}
}

// TestTracePrivateKeyAlgorithm: -v names the algorithm the library would
// sign with, from the library's own rule: a P-384 key has no default (it
// was shown as ES256, which the library refuses for it).
func TestTracePrivateKeyAlgorithm(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		curve elliptic.Curve
		want  string
	}{
		{elliptic.P256(), "signed ES256 (the key's default)"},
		{elliptic.P384(), "with no default algorithm for this key (set --signing-alg)"},
	} {
		key, err := ecdsa.GenerateKey(tt.curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalPKCS8PrivateKey(key)
		file := filepath.Join(dir, tt.curve.Params().Name+".pem")
		if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		r := exec(t, invocation{}, "token", "-v", "--token-url", "https://127.0.0.1:1/token", "--client-id", "c", "--private-key", file)
		if !strings.Contains(r.output(), tt.want) {
			t.Errorf("token -v --private-key (%s): the trace does not say %q:\n%s", tt.curve.Params().Name, tt.want, r.output())
		}
	}
}
