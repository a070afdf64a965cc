package certs

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

func TestParsePrivateKey(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not parsed")})
	for _, tc := range []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"PKCS#8 RSA", pkcs8(rsaKey), ""},
		{"PKCS#8 Ed25519", pkcs8(edKey), ""},
		{"PKCS#1 RSA after a certificate", append(cert, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})...), ""},
		{"SEC 1 EC", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}), ""},
		{"no key", cert, "no PEM private key"},
		{"bad block", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("SECRET-BYTES")}), "does not parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParsePrivateKey(tc.data)
			if tc.wantErr == "" {
				if err != nil || k == nil {
					t.Fatalf("ParsePrivateKey = %v, %v; want a key", k, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "SECRET-BYTES") {
				t.Errorf("ParsePrivateKey = %v, want an error with %q that quotes no data", err, tc.wantErr)
			}
		})
	}
}
