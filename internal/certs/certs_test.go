package certs_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/certs"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
	"software.sslmate.com/src/go-pkcs12"
)

const password = "p12-s3cret-pass"

// clock is a clock a test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func writePEM(t *testing.T, certFile, keyFile string, c tls.Certificate) {
	t.Helper()
	if err := sourcetest.WritePEM(certFile, keyFile, c); err != nil {
		t.Fatal(err)
	}
}

func TestThumbprint(t *testing.T) {
	c := sourcetest.NewCA().ClientCertificate("client-1")
	sum := sha256.Sum256(c.Leaf.Raw)
	if got, want := certs.Thumbprint(c.Leaf), base64.RawURLEncoding.EncodeToString(sum[:]); got != want {
		t.Errorf("Thumbprint = %q, want %q", got, want)
	}
	if got := certs.Thumbprint(c.Leaf); len(got) != 43 || strings.ContainsAny(got, "+/=") {
		t.Errorf("Thumbprint = %q, want 43 base64url characters", got)
	}
}

func TestPEMFilesReload(t *testing.T) {
	ca := sourcetest.NewCA()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := ca.ClientCertificate("first")
	writePEM(t, certFile, keyFile, first)
	clk := &clock{t: time.Now()}
	f, err := certs.NewPEMFiles(certFile, keyFile, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	get := func() string {
		t.Helper()
		c, err := f.GetClientCertificate(&tls.CertificateRequestInfo{})
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.Subject.CommonName
	}
	if got := get(); got != "first" {
		t.Fatalf("CN = %q, want first", got)
	}

	// The certificate is rewritten, then its key: in between they do not
	// match, and the old pair keeps being served.
	second := ca.ClientCertificate("second-with-a-longer-name")
	writePEM(t, certFile, filepath.Join(dir, "unused.key"), second)
	if got := get(); got != "first" {
		t.Errorf("before a second passed: CN = %q, want first", got)
	}
	clk.Add(time.Second)
	if got := get(); got != "first" {
		t.Errorf("with a mismatched key: CN = %q, want first", got)
	}
	if err := f.Err(); !errors.Is(err, certs.ErrKeyMismatch) {
		t.Errorf("Err() = %v, want ErrKeyMismatch", err)
	}
	writePEM(t, certFile, keyFile, second)
	if got := get(); got != "first" {
		t.Errorf("checked again within a second: CN = %q, want first", got)
	}
	clk.Add(time.Second)
	if got := get(); got != "second-with-a-longer-name" {
		t.Errorf("after the rotation: CN = %q, want second-with-a-longer-name", got)
	}
	if err := f.Err(); err != nil {
		t.Errorf("Err() = %v, want nil", err)
	}
	if s := fmt.Sprintf("%v %+v %#v", f, f, f); !strings.Contains(s, "tls.crt") || strings.Contains(s, "PRIVATE") {
		t.Errorf("%%v = %s", s)
	}
}

// TestPEMFilesExpire: a certificate that expires while loaded fails the
// handshake with an error saying when.
func TestPEMFilesExpire(t *testing.T) {
	ca := sourcetest.NewCA()
	dir := t.TempDir()
	file := filepath.Join(dir, "both.pem")
	now := time.Now()
	writePEM(t, file, file, ca.Issue(sourcetest.CertOptions{CommonName: "c", NotAfter: now.Add(time.Hour)}))
	clk := &clock{t: now}
	f, err := certs.NewPEMFiles(file, file, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Hour)
	_, err = f.GetClientCertificate(nil)
	if !errors.Is(err, certs.ErrExpired) || !strings.Contains(err.Error(), "expired at") {
		t.Errorf("GetClientCertificate after expiry: %v, want ErrExpired saying when", err)
	}
}

func TestPEMErrors(t *testing.T) {
	ca := sourcetest.NewCA()
	dir := t.TempDir()
	now := time.Now()
	expired := ca.Issue(sourcetest.CertOptions{CommonName: "old", NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
	writePEM(t, filepath.Join(dir, "old.crt"), filepath.Join(dir, "old.key"), expired)
	_, err := certs.NewPEMFiles(filepath.Join(dir, "old.crt"), filepath.Join(dir, "old.key"), nil)
	want := "expired at " + expired.Leaf.NotAfter.UTC().Format(time.RFC3339)
	if !errors.Is(err, certs.ErrExpired) || !strings.Contains(err.Error(), want) {
		t.Errorf("expired: %v, want ErrExpired with %q", err, want)
	}
	future := ca.Issue(sourcetest.CertOptions{CommonName: "new", NotBefore: now.Add(time.Hour)})
	writePEM(t, filepath.Join(dir, "new.crt"), filepath.Join(dir, "new.key"), future)
	if _, err := certs.NewPEMFiles(filepath.Join(dir, "new.crt"), filepath.Join(dir, "new.key"), nil); !errors.Is(err, certs.ErrExpired) {
		t.Errorf("not yet valid: %v, want ErrExpired", err)
	}
	if _, err := certs.NewPEMFiles(filepath.Join(dir, "old.crt"), filepath.Join(dir, "new.key"), nil); !errors.Is(err, certs.ErrKeyMismatch) {
		t.Errorf("mismatched key: %v, want ErrKeyMismatch", err)
	}
	if _, err := certs.NewPEMFiles(filepath.Join(dir, "missing.crt"), filepath.Join(dir, "new.key"), nil); err == nil {
		t.Error("missing file: no error")
	}
	keyPEM, _ := os.ReadFile(filepath.Join(dir, "new.key"))
	_, err = certs.FromPEM(keyPEM, keyPEM, now)
	if err == nil || strings.Contains(err.Error(), string(keyPEM[30:60])) {
		t.Errorf("key as certificate: %v", err)
	}
}

func TestPKCS12(t *testing.T) {
	ca := sourcetest.NewCA()
	dir := t.TempDir()
	file := filepath.Join(dir, "client.p12")
	c := ca.ClientCertificate("p12-client")
	c.Certificate = append(c.Certificate, ca.Certificate.Raw) // with its chain
	if err := sourcetest.WritePKCS12(file, c, password); err != nil {
		t.Fatal(err)
	}
	f, err := certs.NewPKCS12File(file, password, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.GetClientCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Leaf.Subject.CommonName != "p12-client" || len(got.Certificate) != 2 {
		t.Errorf("loaded CN %q with %d certificates, want p12-client with 2", got.Leaf.Subject.CommonName, len(got.Certificate))
	}
	if s := fmt.Sprintf("%v %#v", f, f); strings.Contains(s, password) {
		t.Errorf("%%v shows the password: %s", s)
	}

	_, err = certs.NewPKCS12File(file, "wrong-password", nil)
	if !errors.Is(err, certs.ErrIncorrectPassword) {
		t.Errorf("wrong password: %v, want ErrIncorrectPassword", err)
	}

	now := time.Now()
	old := ca.Issue(sourcetest.CertOptions{CommonName: "old", NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	oldFile := filepath.Join(dir, "old.p12")
	if err := sourcetest.WritePKCS12(oldFile, old, password); err != nil {
		t.Fatal(err)
	}
	_, err = certs.NewPKCS12File(oldFile, password, nil)
	if !errors.Is(err, certs.ErrExpired) || !strings.Contains(err.Error(), "expired at") || strings.Contains(err.Error(), password) {
		t.Errorf("expired: %v, want ErrExpired saying when", err)
	}

	other := ca.ClientCertificate("other")
	mismatched := c
	mismatched.PrivateKey = other.PrivateKey
	mmFile := filepath.Join(dir, "mismatch.p12")
	if err := sourcetest.WritePKCS12(mmFile, mismatched, password); err != nil {
		t.Fatal(err)
	}
	if _, err := certs.NewPKCS12File(mmFile, password, nil); !errors.Is(err, certs.ErrKeyMismatch) {
		t.Errorf("mismatched key: %v, want ErrKeyMismatch", err)
	}
	if _, err := certs.FromPKCS12([]byte("not a pfx"), password, now); err == nil || strings.Contains(err.Error(), password) {
		t.Errorf("garbage: %v", err)
	}
}

func TestExpiresSoon(t *testing.T) {
	ca := sourcetest.NewCA()
	now := time.Now()
	for _, tt := range []struct {
		left time.Duration
		want bool
	}{{time.Hour, true}, {6 * 24 * time.Hour, true}, {8 * 24 * time.Hour, false}} {
		c := ca.Issue(sourcetest.CertOptions{NotAfter: now.Add(tt.left)})
		c.Leaf = nil
		na, soon := certs.ExpiresSoon(&c, now)
		if soon != tt.want || na.Unix() != now.Add(tt.left).Unix() {
			t.Errorf("ExpiresSoon(%v left) = %v, %v; want %v", tt.left, na, soon, tt.want)
		}
	}
	if _, soon := certs.ExpiresSoon(nil, now); soon {
		t.Error("ExpiresSoon(nil) = true")
	}
}

// TestPKCS12Encodings loads files as tools write them: modern (AES,
// PBKDF2) and legacy (3DES, RC2), with RSA keys as ICP-Brasil A1
// certificates have.
func TestPKCS12Encodings(t *testing.T) {
	ca := sourcetest.NewCA()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for name, enc := range map[string]*pkcs12.Encoder{
		"Modern2023": pkcs12.Modern2023, "LegacyDES": pkcs12.LegacyDES, "LegacyRC2": pkcs12.LegacyRC2,
	} {
		for _, key := range []crypto.Signer{rsaKey, nil} {
			c := ca.Issue(sourcetest.CertOptions{CommonName: name, Key: key})
			b, err := enc.Encode(c.PrivateKey, c.Leaf, []*x509.Certificate{ca.Certificate}, password)
			if err != nil {
				t.Fatal(err)
			}
			got, err := certs.FromPKCS12(b, password, now)
			if err != nil {
				t.Errorf("%s %T: %v", name, c.PrivateKey, err)
				continue
			}
			if got.Leaf.Subject.CommonName != name || len(got.Certificate) != 2 {
				t.Errorf("%s: CN %q, %d certificates", name, got.Leaf.Subject.CommonName, len(got.Certificate))
			}
			if _, err := certs.FromPKCS12(b, "not-"+password, now); !errors.Is(err, certs.ErrIncorrectPassword) {
				t.Errorf("%s, wrong password: %v, want ErrIncorrectPassword", name, err)
			}
		}
	}
}

// TestFilesConcurrent calls GetClientCertificate from many handshakes at
// once while the files rotate (run with -race).
func TestFilesConcurrent(t *testing.T) {
	ca := sourcetest.NewCA()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	writePEM(t, certFile, keyFile, ca.ClientCertificate("a"))
	clk := &clock{t: time.Now()}
	f, err := certs.NewPEMFiles(certFile, keyFile, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if _, err := f.GetClientCertificate(nil); err != nil {
					t.Error(err)
					return
				}
				clk.Add(100 * time.Millisecond)
			}
		})
	}
	writePEM(t, certFile, keyFile, ca.ClientCertificate("bb"))
	wg.Wait()
	clk.Add(time.Second)
	c, err := f.GetClientCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Leaf.Subject.CommonName; got != "bb" {
		t.Errorf("after the rotation: CN %q, want bb", got)
	}
}
