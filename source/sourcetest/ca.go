package sourcetest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"time"
)

// CA is a certificate authority for tests: it issues server and client
// certificates that chain to Certificate, which Pool holds. Keys are
// ECDSA P-256 unless CertOptions says otherwise. A CA is safe for
// concurrent use.
type CA struct {
	// Certificate is the self-signed root.
	Certificate *x509.Certificate
	// Pool holds Certificate alone: the RootCAs of a client that trusts
	// the CA's servers, the ClientCAs of a server that trusts its clients.
	Pool *x509.CertPool

	key crypto.Signer
}

// NewCA returns a new CA with a fresh key. It panics if the system's
// random source fails.
func NewCA() *CA {
	key := newKey()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "sourcetest CA", Organization: []string{"tokenhttp sourcetest"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		panic("sourcetest: creating CA certificate: " + err.Error())
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic("sourcetest: parsing CA certificate: " + err.Error())
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{Certificate: cert, Pool: pool, key: key}
}

// CertOptions describes a certificate for CA.Issue.
type CertOptions struct {
	// CommonName is the subject's CN. For a client certificate of a
	// tls_client_auth client, it is what NewMTLS matches against the
	// client id when MTLSOptions.RequireSubject is set.
	CommonName string
	// Hosts are DNS names and IP addresses put in the subject alternative
	// names, for a server certificate.
	Hosts []string
	// NotBefore and NotAfter bound the validity period. Zero means an
	// hour ago and a day from now; set them to make an expired or a
	// not-yet-valid certificate.
	NotBefore, NotAfter time.Time
	// Key is the certificate's key. Nil means a new ECDSA P-256 key.
	Key crypto.Signer
}

// Issue returns a certificate signed by ca, usable by a TLS server and a
// TLS client alike, with its key and its Leaf set. It panics on a key type
// x509 cannot certify.
func (ca *CA) Issue(o CertOptions) tls.Certificate {
	key := o.Key
	if key == nil {
		key = newKey()
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: o.CommonName, Organization: []string{"tokenhttp sourcetest"}},
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = now.Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = now.Add(24 * time.Hour)
	}
	for _, h := range o.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Certificate, key.Public(), ca.key)
	if err != nil {
		panic("sourcetest: issuing certificate: " + err.Error())
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic("sourcetest: parsing certificate: " + err.Error())
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// ServerCertificate issues a server certificate for hosts; none means
// 127.0.0.1, ::1 and localhost, where httptest servers listen.
func (ca *CA) ServerCertificate(hosts ...string) tls.Certificate {
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1", "::1", "localhost"}
	}
	return ca.Issue(CertOptions{CommonName: hosts[0], Hosts: hosts})
}

// ClientCertificate issues a client certificate whose subject CN is
// commonName.
func (ca *CA) ClientCertificate(commonName string) tls.Certificate {
	return ca.Issue(CertOptions{CommonName: commonName})
}

func newKey() crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic("sourcetest: generating key: " + err.Error())
	}
	return k
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic("sourcetest: serial number: " + err.Error())
	}
	return n
}
