package certs

import (
	"crypto/x509"
	"fmt"
	"os"
)

// CAPool returns base, copied, with the PEM certificates of the file
// name added: the trust roots of a --ca-file flag or a ca_file key. A nil
// base starts from an empty pool; x509.SystemCertPool keeps the system
// roots. A file that cannot be read, or holds no PEM certificate, is an
// error naming it.
func CAPool(name string, base *x509.CertPool) (*x509.CertPool, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if base != nil {
		pool = base.Clone()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", name)
	}
	return pool, nil
}

// SystemPool is x509.SystemCertPool, or an empty pool where the system
// has none to give.
func SystemPool() *x509.CertPool {
	if p, err := x509.SystemCertPool(); err == nil && p != nil {
		return p
	}
	return x509.NewCertPool()
}
