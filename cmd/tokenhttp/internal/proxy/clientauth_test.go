package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

func routeWith(keys string) string {
	return "routes:\n  - prefix: /a\n    upstream: https://a.example\n    source:\n      token_url: https://t.example/token\n      client_id: c\n" + keys
}

// TestClientCertificateKey: client_certificate_files as [cert, key] and
// as one file; a missing file is an error naming the key.
func TestClientCertificateKey(t *testing.T) {
	dir := t.TempDir()
	cf, kf, both := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), filepath.Join(dir, "both.pem")
	cert := sourcetest.NewCA().ClientCertificate("c")
	if err := sourcetest.WritePEM(cf, kf, cert); err != nil {
		t.Fatal(err)
	}
	if err := sourcetest.WritePEM(both, both, cert); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"[" + cf + ", " + kf + "]", both} {
		c, err := ParseConfig([]byte(routeWith("      client_certificate_files: " + v + "\n")))
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if c.Routes[0].Source.ClientCertificate == nil {
			t.Fatalf("%s: no ClientCertificate", v)
		}
		if err := Check(c, func(string) string { return "" }); err != nil {
			t.Errorf("Check (tls_client_auth, no secret): %v", err)
		}
	}
	if _, err := ParseConfig([]byte(routeWith("      client_certificate_files: " + filepath.Join(dir, "missing") + "\n"))); err == nil ||
		!strings.Contains(err.Error(), "client_certificate_files") {
		t.Errorf("missing file: %v", err)
	}
}

// TestPrivateKeyKeys: private_key only through private_key_file or
// private_key_env, with key_id, assertion_audience and signing_algorithm.
func TestPrivateKeyKeys(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	kf := filepath.Join(t.TempDir(), "jwt.pem")
	if err := os.WriteFile(kf, []byte(keyPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	extra := "      key_id: k1\n      assertion_audience: https://t.example\n      signing_algorithm: ES256\n"
	for _, tc := range []struct{ keys string }{{"      private_key_file: " + kf + "\n"}, {"      private_key_env: JWT_KEY\n"}} {
		c, err := ParseConfig([]byte(routeWith(tc.keys + extra)))
		if err != nil {
			t.Fatal(err)
		}
		s := c.Routes[0].Source
		if s.KeyID != "k1" || s.AssertionAudience != "https://t.example" || s.SigningAlgorithm != "ES256" {
			t.Errorf("fields: %+v", s)
		}
		if err := Check(c, func(k string) string { return map[string]string{"JWT_KEY": keyPEM}[k] }); err != nil {
			t.Errorf("Check: %v", err)
		}
	}
	_, err := ParseConfig([]byte(routeWith("      private_key: inline\n")))
	if err == nil || !strings.Contains(err.Error(), "private_key_file") {
		t.Errorf("inline private_key: %v", err)
	}
	c, _ := ParseConfig([]byte(routeWith("      private_key_env: JWT_KEY\n")))
	err = Check(c, func(string) string { return "not a key" })
	if err == nil || !strings.Contains(err.Error(), "PrivateKey") || strings.Contains(err.Error(), "not a key") {
		t.Errorf("Check with a bad key: %v", err)
	}
}

// TestClientAssertionFileKey: client_assertion_file is read at each call.
func TestClientAssertionFileKey(t *testing.T) {
	f := filepath.Join(t.TempDir(), "sa.jwt")
	if err := os.WriteFile(f, []byte("a.b.c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig([]byte(routeWith("      client_assertion_file: " + f + "\n")))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Routes[0].Source.ClientAssertion
	if a == nil {
		t.Fatal("no ClientAssertion")
	}
	if got, err := a(context.Background()); err != nil || got != "a.b.c" {
		t.Errorf("assertion %q, %v", got, err)
	}
	if err := Check(c, func(string) string { return "" }); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// TestClientCertificateUpstream: a route whose source has a client
// certificate presents it to the upstream too: the emulator's resource
// refuses its certificate-bound token over any other connection.
func TestClientCertificateUpstream(t *testing.T) {
	emu := sourcetest.NewMTLS(sourcetest.Options{}, sourcetest.MTLSOptions{})
	defer emu.Close()
	dir := t.TempDir()
	both := filepath.Join(dir, "both.pem")
	if err := sourcetest.WritePEM(both, both, emu.CA.ClientCertificate(sourcetest.DefaultClientID)); err != nil {
		t.Fatal(err)
	}
	h := startProxyWith(t, dir, "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nroutes:\n  - prefix: /a\n    upstream: "+emu.URL+"\n    strip_prefix: true\n    source:\n      token_url: "+emu.TokenURL+
		"\n      client_id: "+sourcetest.DefaultClientID+"\n      client_certificate_files: "+both+"\n", emu.CA.Pool)
	if status, _, body := h.do(http.MethodGet, "/a/resource", "", nil); status != http.StatusOK {
		t.Fatalf("through the proxy: HTTP %d %s, want 200", status, body)
	}
}

// TestPKCS12Key: client_certificate_p12_file with its password only from
// client_certificate_p12_password_file or _env; an inline password, a
// missing one, and a wrong one are errors that never show it.
func TestPKCS12Key(t *testing.T) {
	dir := t.TempDir()
	p12, pwFile := filepath.Join(dir, "c.p12"), filepath.Join(dir, "pw")
	const pw = "p12-password-for-the-test"
	if err := sourcetest.WritePKCS12(p12, sourcetest.NewCA().ClientCertificate("c"), pw); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string { return map[string]string{"P12_PW": pw, "WRONG": "not-the-password"}[k] }
	for _, keys := range []string{
		"      client_certificate_p12_file: " + p12 + "\n      client_certificate_p12_password_file: " + pwFile + "\n",
		"      client_certificate_p12_file: " + p12 + "\n      client_certificate_p12_password_env: P12_PW\n",
	} {
		c, err := ParseConfig([]byte(routeWith(keys)))
		if err != nil {
			t.Fatalf("%s: %v", keys, err)
		}
		if c.Routes[0].P12File != p12 {
			t.Errorf("P12File: got %q, want %q", c.Routes[0].P12File, p12)
		}
		if err := Check(c, getenv); err != nil {
			t.Errorf("Check: %v", err)
		}
	}
	c, err := ParseConfig([]byte(routeWith("      client_certificate_p12_file: " + p12 + "\n      client_certificate_p12_password_env: WRONG\n")))
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(c, getenv); err == nil || !strings.Contains(err.Error(), "client_certificate_p12_file") || strings.Contains(err.Error(), "not-the-password") {
		t.Errorf("wrong password: got %v, want an error naming the key, without the password", err)
	}
	for name, keys := range map[string]string{
		"inline password":  "      client_certificate_p12_file: " + p12 + "\n      client_certificate_p12_password: " + pw + "\n",
		"no password":      "      client_certificate_p12_file: " + p12 + "\n",
		"password, no p12": "      client_certificate_p12_password_env: P12_PW\n",
		"missing file":     "      client_certificate_p12_file: " + filepath.Join(dir, "missing.p12") + "\n      client_certificate_p12_password_env: P12_PW\n",
	} {
		_, err := ParseConfig([]byte(routeWith(keys)))
		if err == nil || !strings.Contains(err.Error(), "client_certificate_p12") || strings.Contains(err.Error(), pw) {
			t.Errorf("%s: got %v, want an error naming the key, without the password", name, err)
		}
	}
}
