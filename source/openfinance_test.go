package source_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/internal/testsupport"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

type recordingRT struct {
	base http.RoundTripper
	ids  []string
}

func (r *recordingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	r.ids = append(r.ids, req.Header.Get(source.FAPIInteractionIDHeader))
	return r.base.RoundTrip(req)
}

// TestOpenFinanceBrasil: the token endpoint comes from the discovery
// document's mtls_endpoint_aliases (the emulator's plain token_endpoint
// refuses every request), the assertion is PS256, and API calls carry a
// fresh x-fapi-interaction-id and the certificate (through
// TLSClientConfig under WithBase).
func TestOpenFinanceBrasil(t *testing.T) {
	srv, cert := newMTLS(t, testsupport.RSA().Public(), "PS256")
	s := newAuthSource(t, source.Config{Provider: source.OpenFinanceBrasil, TokenURL: srv.Issuer,
		ClientID: sourcetest.DefaultClientID, ClientCertificate: staticCert(cert), PrivateKey: testsupport.RSA(),
		HTTPClient: rootsClient(srv)})
	if _, err := s.Token(context.Background()); err != nil {
		t.Fatalf("Token: %v", err)
	}
	f, _ := lastForm(t, srv)
	hdr, claims := decodeJWT(t, f.Get("client_assertion"))
	if hdr["alg"] != "PS256" || claims["aud"] != srv.TokenURL {
		t.Errorf("alg %v aud %v, want PS256 and the mTLS alias %s", hdr["alg"], claims["aud"], srv.TokenURL)
	}
	rec := &recordingRT{base: &http.Transport{TLSClientConfig: s.TLSClientConfig()}}
	api := tokenhttp.NewClient(s, tokenhttp.WithBase(rec))
	for range 2 {
		callAPI(t, api, srv.ResourceURL)
	}
	if len(rec.ids) != 2 || rec.ids[0] == rec.ids[1] {
		t.Fatalf("interaction ids %q: want two different ones", rec.ids)
	}
	for _, id := range rec.ids {
		if _, err := uuid.Parse(id); err != nil {
			t.Errorf("x-fapi-interaction-id %q is not a UUID", id)
		}
	}
}

// TestOpenFinanceBrasilDiscoveryError: an issuer without a discovery
// document is a clear error naming the document.
func TestOpenFinanceBrasilDiscoveryError(t *testing.T) {
	srv, cert := newMTLS(t, nil)
	s := newAuthSource(t, source.Config{Provider: source.OpenFinanceBrasil, TokenURL: srv.Issuer + "/nowhere",
		ClientID: sourcetest.DefaultClientID, ClientCertificate: staticCert(cert), HTTPClient: rootsClient(srv)})
	_, err := s.Token(context.Background())
	if err == nil || !strings.Contains(err.Error(), "discovery document") || !strings.Contains(err.Error(), "404") {
		t.Fatalf("Token: %v, want a discovery document error with its status", err)
	}
}

// TestOpenFinanceBrasilConfig: mTLS required, PS256 only.
func TestOpenFinanceBrasilConfig(t *testing.T) {
	cert := staticCert(tls.Certificate{})
	for _, tc := range []struct {
		field string
		cfg   source.Config
	}{
		{"ClientCertificate", source.Config{PrivateKey: testsupport.RSA()}},
		{"PrivateKey", source.Config{ClientCertificate: cert, PrivateKey: testsupport.P256()}},
		{"SigningAlgorithm", source.Config{ClientCertificate: cert, PrivateKey: testsupport.RSA(), SigningAlgorithm: "RS256"}},
	} {
		cfg := tc.cfg
		cfg.Provider, cfg.TokenURL, cfg.ClientID = source.OpenFinanceBrasil, "https://auth.bank.example", "c"
		_, err := source.New(cfg)
		var ce *source.ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("New without a valid %s: %v", tc.field, err)
		}
	}
}

func FuzzParseDiscovery(f *testing.F) {
	f.Add([]byte(`{"issuer":"https://as","token_endpoint":"https://as/token","mtls_endpoint_aliases":{"token_endpoint":"https://mtls.as/token"}}`), "https://as")
	f.Add([]byte(`{"issuer":"https://as/","token_endpoint":"https://as/token"}`), "https://as")
	f.Add([]byte(`{"issuer":"https://other"}`), "https://as")
	f.Add([]byte(`[1,2]`), "")
	f.Fuzz(func(t *testing.T, doc []byte, issuer string) {
		u, err := source.ParseDiscovery(doc, issuer)
		if err != nil {
			if u != "" {
				t.Fatal("an error with a URL")
			}
			if len(doc) > 8 && strings.Contains(err.Error(), string(doc)) {
				t.Fatalf("error %q quotes the document", err)
			}
			return
		}
		if u == "" {
			t.Fatal("no URL and no error")
		}
	})
}
