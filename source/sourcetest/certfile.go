package sourcetest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"

	"software.sslmate.com/src/go-pkcs12"
)

// WritePEM writes c's certificate chain to certFile and its private key
// (PKCS #8) to keyFile, with mode 0600. The files may be the same.
func WritePEM(certFile, keyFile string, c tls.Certificate) error {
	var certPEM []byte
	for _, der := range c.Certificate {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return errors.New("sourcetest: encoding private key: " + err.Error())
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})
	if certFile == keyFile {
		return os.WriteFile(certFile, append(certPEM, keyPEM...), 0o600)
	}
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		return err
	}
	return os.WriteFile(keyFile, keyPEM, 0o600)
}

// WritePKCS12 writes c (key, leaf and the rest of its chain) to file as
// PKCS#12 protected by password, with modern algorithms (AES-256,
// PBKDF2), mode 0600.
func WritePKCS12(file string, c tls.Certificate, password string) error {
	if len(c.Certificate) == 0 {
		return errors.New("sourcetest: no certificate to encode")
	}
	certs := make([]*x509.Certificate, len(c.Certificate))
	for i, der := range c.Certificate {
		x, err := x509.ParseCertificate(der)
		if err != nil {
			return errors.New("sourcetest: parsing certificate: " + err.Error())
		}
		certs[i] = x
	}
	b, err := pkcs12.Modern.Encode(c.PrivateKey, certs[0], certs[1:], password)
	if err != nil {
		return errors.New("sourcetest: encoding PKCS#12: " + err.Error())
	}
	return os.WriteFile(file, b, 0o600)
}
