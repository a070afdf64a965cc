package certs_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/certs"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// FuzzPKCS12 feeds arbitrary bytes and passwords to FromPKCS12: no panic,
// and no error repeats the password. A valid file costs two key
// derivations, which makes the engine's default minimization crawl; run
// it as
//
//	go test -run '^$' -fuzz FuzzPKCS12 -fuzzminimizetime 100x ./internal/certs
func FuzzPKCS12(f *testing.F) {
	ca := sourcetest.NewCA()
	file := filepath.Join(f.TempDir(), "seed.p12")
	if err := sourcetest.WritePKCS12(file, ca.ClientCertificate("seed"), password); err != nil {
		f.Fatal(err)
	}
	seed, err := os.ReadFile(file)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed, password)
	f.Add(seed, "wrong-password-x")
	f.Add(seed[:len(seed)/2], password)
	f.Add([]byte{0x30, 0x80}, "")
	f.Add([]byte{}, "")
	now := time.Now()
	f.Fuzz(func(t *testing.T, data []byte, pw string) {
		if it, _ := certs.MacIterations(data); it > 10_000 {
			t.Skip("slow by design: FromPKCS12 allows up to a million MAC iterations")
		}
		c, err := certs.FromPKCS12(data, pw, now)
		if err != nil {
			if c != nil {
				t.Error("a certificate with an error")
			}
			if len(pw) >= 8 && strings.Contains(err.Error(), pw) {
				t.Errorf("error %q shows the password", err)
			}
			return
		}
		if c.Leaf == nil || c.PrivateKey == nil {
			t.Error("a certificate without a leaf or a key")
		}
	})
}
