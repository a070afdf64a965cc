package certs_test

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenhttp/tokenhttp/internal/certs"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

func TestCAPool(t *testing.T) {
	dir := t.TempDir()
	ca := sourcetest.NewCA()
	good, bad := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(good, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Certificate.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("no certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := x509.NewCertPool()
	other := sourcetest.NewCA()
	base.AddCert(other.Certificate)
	pool, err := certs.CAPool(good, base)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*x509.Certificate{ca.Certificate, other.Certificate} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
			t.Errorf("the pool does not trust %s: %v", c.Subject, err)
		}
	}
	if _, err := other.Certificate.Verify(x509.VerifyOptions{Roots: mustPool(t, good)}); err == nil {
		t.Error("a nil base: the pool trusts a certificate not in the file")
	}
	if _, err := ca.Certificate.Verify(x509.VerifyOptions{Roots: base}); err == nil {
		t.Error("base was modified: it trusts the file's certificate")
	}
	if _, err := certs.CAPool(bad, nil); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("no certificate: %v", err)
	}
	if _, err := certs.CAPool(filepath.Join(dir, "missing"), nil); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v", err)
	}
}

func mustPool(t *testing.T, name string) *x509.CertPool {
	t.Helper()
	p, err := certs.CAPool(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
