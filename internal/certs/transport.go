package certs

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
)

// Transport returns an *http.Transport that presents the certificate get
// returns at each TLS handshake (tls.Config.GetClientCertificate), so a
// rotated certificate is used from the next new connection on; idle
// connections keep the certificate they were opened with.
//
// base is the transport to start from, never modified: nil means
// http.DefaultTransport (system roots); an *http.Transport is cloned,
// with get set on a clone of its TLSClientConfig, keeping its roots,
// proxy and timeouts. Any other RoundTripper cannot be given a client
// certificate and is an error.
func Transport(base http.RoundTripper, get func(*tls.CertificateRequestInfo) (*tls.Certificate, error)) (*http.Transport, error) {
	if get == nil {
		return nil, errors.New("certs: no client certificate function")
	}
	if base == nil {
		base = http.DefaultTransport
	}
	t, ok := base.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("certs: cannot present a client certificate through a %T: mTLS needs an *http.Transport", base)
	}
	t = t.Clone() // clones TLSClientConfig too
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{}
	}
	t.TLSClientConfig.GetClientCertificate = get
	return t, nil
}
