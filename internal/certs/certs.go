// Package certs loads client certificates for mutual TLS (RFC 8705): from
// PEM files or a PKCS#12 file, reloaded when the files change, with clear
// errors for a wrong password, a key that does not match its certificate
// and a certificate outside its validity period.
//
// Errors never hold a private key or a password.
package certs

import (
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// ExpiryWarning is how long before its expiry a certificate counts as
// expiring soon (see ExpiresSoon).
const ExpiryWarning = 7 * 24 * time.Hour

// ErrIncorrectPassword is returned (wrapped) when a PKCS#12 password is
// wrong.
var ErrIncorrectPassword = errors.New("certs: PKCS#12 password incorrect")

// ErrKeyMismatch is returned (wrapped) when a private key is not the one
// of its certificate.
var ErrKeyMismatch = errors.New("certs: private key does not match the certificate")

// ErrExpired is returned (wrapped) when a certificate's validity period
// has ended or has not begun.
var ErrExpired = errors.New("certs: certificate not valid now")

// Thumbprint returns the base64url (no padding) SHA-256 of cert's DER
// encoding: the "x5t#S256" confirmation of a certificate-bound token
// (RFC 8705 §3.1).
func Thumbprint(cert *x509.Certificate) string {
	return ThumbprintDER(cert.Raw)
}

// ThumbprintDER is Thumbprint for a DER-encoded certificate.
func ThumbprintDER(der []byte) string {
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ExpiresSoon reports c's leaf expiry and whether it is within
// ExpiryWarning of now (or past). It is a signal for a span event or a
// metric, not an error. A certificate without a leaf is parsed; one that
// cannot be parsed reports the zero time and false.
func ExpiresSoon(c *tls.Certificate, now time.Time) (notAfter time.Time, soon bool) {
	leaf, err := leafOf(c)
	if err != nil {
		return time.Time{}, false
	}
	return leaf.NotAfter, !now.Add(ExpiryWarning).Before(leaf.NotAfter)
}

// FromPEM parses a PEM certificate chain (leaf first) and its PEM private
// key, and checks them with Check.
func FromPEM(certPEM, keyPEM []byte, now time.Time) (*tls.Certificate, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if isMismatch(err) {
			return nil, fmt.Errorf("%w (%v)", ErrKeyMismatch, err)
		}
		// crypto/tls's messages name what is wrong, never the key.
		return nil, fmt.Errorf("certs: PEM certificate and key: %v", err)
	}
	if err := Check(&c, now); err != nil {
		return nil, err
	}
	return &c, nil
}

func isMismatch(err error) bool {
	s := err.Error()
	return s == "tls: private key does not match public key" || s == "tls: private key type does not match public key type"
}

// FromPKCS12 decodes a PKCS#12 (.p12, .pfx) file protected by password
// with its chain of intermediates, and checks it with Check. A wrong
// password is ErrIncorrectPassword.
//
// Files larger than MaxPKCS12Size, and files whose MAC asks for more than
// MaxPKCS12Iterations key-derivation rounds, are refused before any key
// derivation, so a corrupt file cannot stall the caller.
func FromPKCS12(data []byte, password string, now time.Time) (*tls.Certificate, error) {
	if err := precheckPKCS12(data); err != nil {
		return nil, err
	}
	key, leaf, chain, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		if errors.Is(err, pkcs12.ErrIncorrectPassword) {
			return nil, ErrIncorrectPassword
		}
		// go-pkcs12 reports structure and algorithms, never the password.
		return nil, fmt.Errorf("certs: decoding PKCS#12: %v", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("certs: PKCS#12 private key of type %T cannot sign", key)
	}
	c := &tls.Certificate{PrivateKey: signer, Leaf: leaf, Certificate: [][]byte{leaf.Raw}}
	for _, ca := range chain {
		c.Certificate = append(c.Certificate, ca.Raw)
	}
	if err := Check(c, now); err != nil {
		return nil, err
	}
	return c, nil
}

// MaxPKCS12Size is the largest PKCS#12 file FromPKCS12 reads.
const MaxPKCS12Size = 1 << 20

// MaxPKCS12Iterations is the most key-derivation rounds FromPKCS12
// accepts for the file's MAC (about a second of CPU); tools write 2048 to
// 600,000. PBMAC1 parameters (RFC 9579) and the encryption's parameters
// are go-pkcs12's to read: the latter are authenticated by the MAC.
const MaxPKCS12Iterations = 1_000_000

// precheckPKCS12 bounds the work of decoding data: its size and its MAC's
// iteration count (RFC 7292 §4, MacData), the first key derivation, which
// must succeed before anything else in the file is derived from the
// password. It parses only the outer PFX structure.
func precheckPKCS12(data []byte) error {
	if len(data) > MaxPKCS12Size {
		return fmt.Errorf("certs: PKCS#12 file of %d bytes, more than %d", len(data), MaxPKCS12Size)
	}
	it, err := macIterations(data)
	if err != nil {
		return err
	}
	if it > MaxPKCS12Iterations || it < 0 {
		return fmt.Errorf("certs: PKCS#12 MAC asks for %d iterations, more than %d", it, MaxPKCS12Iterations)
	}
	return nil
}

// macIterations returns the iteration count of data's PKCS#12 MAC (1 when
// the MAC does not say, 0 without a MAC), reading only the outer PFX
// structure.
func macIterations(data []byte) (int, error) {
	var pfx struct {
		Version  int
		AuthSafe asn1.RawValue
		MacData  struct {
			Mac        asn1.RawValue
			MacSalt    []byte
			Iterations int `asn1:"optional,default:1"`
		} `asn1:"optional"`
	}
	if _, err := asn1.Unmarshal(data, &pfx); err != nil {
		return 0, errors.New("certs: not a PKCS#12 file")
	}
	return pfx.MacData.Iterations, nil
}

// Check reports whether c can authenticate a TLS client at now: it has a
// certificate, a private key whose public half is the certificate's, and
// now is within the certificate's validity period. It sets c.Leaf when it
// is nil.
func Check(c *tls.Certificate, now time.Time) error {
	leaf, err := leafOf(c)
	if err != nil {
		return err
	}
	c.Leaf = leaf
	signer, ok := c.PrivateKey.(crypto.Signer)
	if !ok {
		return errors.New("certs: no private key that can sign")
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return ErrKeyMismatch
	}
	subject := leaf.Subject.String()
	switch {
	case now.After(leaf.NotAfter):
		return fmt.Errorf("%w: certificate %q expired at %s", ErrExpired, subject, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("%w: certificate %q is not valid before %s", ErrExpired, subject, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

func leafOf(c *tls.Certificate) (*x509.Certificate, error) {
	if c == nil || len(c.Certificate) == 0 {
		return nil, errors.New("certs: no certificate")
	}
	if c.Leaf != nil {
		return c.Leaf, nil
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("certs: parsing certificate: %v", err)
	}
	return leaf, nil
}
