package certs_test

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/tokenhttp/tokenhttp/internal/certs"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestTransport(t *testing.T) {
	srv := sourcetest.NewMTLS(sourcetest.Options{}, sourcetest.MTLSOptions{})
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "client.pem")
	if err := sourcetest.WritePEM(file, file, srv.CA.ClientCertificate("c")); err != nil {
		t.Fatal(err)
	}
	f, err := certs.NewPEMFiles(file, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := srv.Client().Transport.(*http.Transport)
	tr, err := certs.Transport(base, f.GetClientCertificate)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	if base.TLSClientConfig.GetClientCertificate != nil {
		t.Error("the base transport was modified")
	}
	resp, err := (&http.Client{Transport: tr}).PostForm(srv.TokenURL, url.Values{
		"grant_type": {"client_credentials"}, "client_id": {sourcetest.DefaultClientID}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d, want 200", resp.StatusCode)
	}

	// Default: system roots, which do not hold the test CA.
	def, err := certs.Transport(nil, f.GetClientCertificate)
	if err != nil {
		t.Fatal(err)
	}
	defer def.CloseIdleConnections()
	if def == http.DefaultTransport || def.TLSClientConfig.RootCAs != nil {
		t.Error("nil base: want a clone of http.DefaultTransport with system roots")
	}
	if resp, err := (&http.Client{Transport: def}).Get(srv.ResourceURL); err == nil {
		resp.Body.Close()
		t.Error("system roots trusted the test CA")
	}

	if _, err := certs.Transport(roundTripperFunc(nil), f.GetClientCertificate); err == nil {
		t.Error("a RoundTripper that is not an *http.Transport: no error")
	}
	if _, err := certs.Transport(base, nil); err == nil {
		t.Error("nil function: no error")
	}
	var _ func(*tls.CertificateRequestInfo) (*tls.Certificate, error) = f.GetClientCertificate
}
