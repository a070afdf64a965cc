package source_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/internal/certs"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
	"github.com/tokenhttp/tokenhttp/telemetry"
)

func thumbOf(c tls.Certificate) string { return certs.ThumbprintDER(c.Certificate[0]) }

func cnfOf(tok *source.Token) string {
	m, _ := tok.Extra["cnf"].(map[string]any)
	s, _ := m["x5t#S256"].(string)
	return s
}

// TestCertificateRotation: PEM files rewritten mid-run; the next handshake
// presents the new certificate, the token is renewed bound to it, the
// store key changes, and an API call through a Transport with no WithBase
// presents it too (the emulator's resource refuses a token over a
// connection with another certificate).
func TestCertificateRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("seconds of real time; TLS handshakes need sockets, which a synctest bubble cannot use")
	}
	srv, certA := newMTLS(t, nil)
	certB := srv.CA.ClientCertificate(sourcetest.DefaultClientID)
	dir := t.TempDir()
	cf, kf := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := sourcetest.WritePEM(cf, kf, certA); err != nil {
		t.Fatal(err)
	}
	get, err := source.ClientCertificateFiles(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	s := newAuthSource(t, source.Config{TokenURL: srv.TokenURL, ClientID: sourcetest.DefaultClientID,
		ClientCertificate: get, HTTPClient: rootsClient(srv), Store: source.NewMemoryStore()})
	api := tokenhttp.NewClient(s)
	defer api.CloseIdleConnections()
	ctx := context.Background()

	tokA, err := s.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cnfOf(tokA), thumbOf(certA); got != want {
		t.Fatalf("token bound to %q, want certificate A %q", got, want)
	}
	keyA := s.StoreKeyForTest()
	callAPI(t, api, srv.ResourceURL)

	time.Sleep(certs.CheckInterval + 50*time.Millisecond)
	if err := sourcetest.WritePEM(cf, kf, certB); err != nil {
		t.Fatal(err)
	}
	time.Sleep(certs.CheckInterval + 50*time.Millisecond)
	// A new handshake (a new connection) presents B.
	api.CloseIdleConnections()
	probe, _ := s.TLSClientConfig().GetClientCertificate(&tls.CertificateRequestInfo{})
	if got, want := thumbOf(*probe), thumbOf(certB); got != want {
		t.Fatalf("handshake presents %q, want certificate B %q", got, want)
	}
	tokB, err := s.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tokB == tokA || cnfOf(tokB) != thumbOf(certB) {
		t.Fatalf("after rotation: token bound to %q, want a new token bound to B %q", cnfOf(tokB), thumbOf(certB))
	}
	if keyB := s.StoreKeyForTest(); keyB == keyA {
		t.Error("store key unchanged by a new certificate")
	}
	callAPI(t, api, srv.ResourceURL)
}

func callAPI(t *testing.T, c *http.Client, u string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("API call: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("API call: HTTP %d, want 200", resp.StatusCode)
	}
}

// TestCertificateHelpersErrors: a wrong PKCS#12 password and a key that
// is not the certificate's are errors that say so, without the password.
func TestCertificateHelpersErrors(t *testing.T) {
	ca := sourcetest.NewCA()
	a, b := ca.ClientCertificate("a"), ca.ClientCertificate("b")
	dir := t.TempDir()
	p12 := filepath.Join(dir, "c.p12")
	if err := sourcetest.WritePKCS12(p12, a, "right-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := source.ClientCertificatePKCS12(p12, "right-password"); err != nil {
		t.Errorf("PKCS12 with the right password: %v", err)
	}
	_, err := source.ClientCertificatePKCS12(p12, "wrong-password")
	if !errors.Is(err, source.ErrIncorrectPassword) || containsAny(err.Error(), "wrong-password", "right-password") {
		t.Errorf("wrong password: %v", err)
	}
	cf, kf, kf2 := filepath.Join(dir, "a.pem"), filepath.Join(dir, "a.key"), filepath.Join(dir, "b.key")
	if err := sourcetest.WritePEM(cf, kf, a); err != nil {
		t.Fatal(err)
	}
	if err := sourcetest.WritePEM(filepath.Join(dir, "b.pem"), kf2, b); err != nil {
		t.Fatal(err)
	}
	if _, err := source.ClientCertificateFiles(cf, kf2); !errors.Is(err, source.ErrKeyMismatch) {
		t.Errorf("mismatched key: %v", err)
	}
	old := ca.Issue(sourcetest.CertOptions{CommonName: "old", NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	if err := sourcetest.WritePEM(cf, kf, old); err != nil {
		t.Fatal(err)
	}
	if _, err := source.ClientCertificateFiles(cf, kf); !errors.Is(err, source.ErrCertificateExpired) {
		t.Errorf("expired: %v", err)
	}
	_ = os.Remove(p12)
}

func containsAny(s string, subs ...string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// TestCachedHitMTLSNoAlloc: with a client certificate, a cached hit still
// allocates nothing (it compares the handshake's record by pointer).
func TestCachedHitMTLSNoAlloc(t *testing.T) {
	srv, cert := newMTLS(t, nil)
	s := newAuthSource(t, source.Config{TokenURL: srv.TokenURL, ClientID: sourcetest.DefaultClientID,
		ClientCertificate: staticCert(cert), HTTPClient: rootsClient(srv)})
	ctx := context.Background()
	first, err := s.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if tok, _ := s.Token(ctx); tok != first {
			t.Fatal("cached hit returned another token")
		}
	})
	if allocs != 0 {
		t.Errorf("cached hit: %v allocations, want 0", allocs)
	}
}

// TestCertificateExpiringTelemetry: a fetch with a certificate expiring
// within a week adds a span event and counts the metric; one valid for
// longer does neither. Neither is an error.
func TestCertificateExpiringTelemetry(t *testing.T) {
	for _, tc := range []struct {
		name string
		life time.Duration
		want bool
	}{{"three days", 72 * time.Hour, true}, {"a month", 30 * 24 * time.Hour, false}} {
		t.Run(tc.name, func(t *testing.T) {
			tel := newTelSDK(t)
			srv, _ := newMTLS(t, nil)
			cert := srv.CA.Issue(sourcetest.CertOptions{CommonName: sourcetest.DefaultClientID,
				NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(tc.life)})
			s := newAuthSource(t, source.Config{TokenURL: srv.TokenURL, ClientID: sourcetest.DefaultClientID,
				ClientCertificate: staticCert(cert), HTTPClient: rootsClient(srv), Telemetry: tel.Providers()})
			if _, err := s.Token(context.Background()); err != nil {
				t.Fatalf("Token: %v", err)
			}
			var events int
			for _, sp := range tel.fetchSpans() {
				for _, ev := range sp.Events() {
					if ev.Name == telemetry.EventCertificateExpiring {
						events++
					}
				}
			}
			counted := len(telMetricValues(tel.collect(t), telemetry.MetricCertificateExpiring)) > 0
			if got := events == 1; got != tc.want || counted != tc.want {
				t.Errorf("events %d, metric counted %v; want expiring reported: %v", events, counted, tc.want)
			}
		})
	}
}
