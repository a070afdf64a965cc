package source_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/testsupport"
	"github.com/tokenhttp/tokenhttp/retry"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// newMTLS starts an mTLS emulator that registers pub for private_key_jwt,
// and returns it with a client certificate it accepts.
func newMTLS(t *testing.T, pub crypto.PublicKey, algs ...string) (*sourcetest.MTLSServer, tls.Certificate) {
	t.Helper()
	srv := sourcetest.NewMTLS(sourcetest.Options{}, sourcetest.MTLSOptions{PublicKey: pub, Algorithms: algs})
	t.Cleanup(srv.Close)
	return srv, srv.CA.ClientCertificate(sourcetest.DefaultClientID)
}

// rootsClient is an HTTP client whose transport trusts srv's CA.
func rootsClient(srv *sourcetest.MTLSServer) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.CA.Pool}}}
}

func staticCert(c tls.Certificate) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
}

func newAuthSource(t *testing.T, cfg source.Config) *source.CachedSource {
	t.Helper()
	s, err := source.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// decodeJWT returns the header and claims of a compact JWT, unverified.
func decodeJWT(t *testing.T, s string) (hdr, claims map[string]any) {
	t.Helper()
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		t.Fatalf("assertion has %d parts, want 3", len(parts))
	}
	for i, dst := range []*map[string]any{&hdr, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return hdr, claims
}

func lastForm(t *testing.T, srv interface {
	LastTokenRequest() sourcetest.RecordedRequest
}) (url.Values, http.Header) {
	t.Helper()
	r := srv.LastTokenRequest()
	f, err := url.ParseQuery(string(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	return f, r.Header
}

// lastFormValue is the named field of the last token request's form body.
func lastFormValue(t *testing.T, srv interface {
	LastTokenRequest() sourcetest.RecordedRequest
}, name string) string {
	t.Helper()
	f, _ := lastForm(t, srv)
	return f.Get(name)
}

// TestPrivateKeyJWT: for each key type, the emulator (which verifies the
// signature, PS256's salt, the claims and the jti) issues a token, and the
// assertion it received has DESIGN's header and claims.
func TestPrivateKeyJWT(t *testing.T) {
	for _, tc := range []struct {
		name, alg, override, kid, aud string
		key                           crypto.Signer
	}{
		{name: "rsa", key: testsupport.RSA(), alg: "PS256", kid: "k1"},
		{name: "rsa-rs256", key: testsupport.RSA(), alg: "RS256", override: "RS256"},
		{name: "p256", key: testsupport.P256(), alg: "ES256"},
		{name: "ed25519", key: testsupport.Ed25519(), alg: "EdDSA", aud: "issuer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cert := newMTLS(t, tc.key.Public(), tc.alg)
			aud := ""
			if tc.aud != "" {
				aud = srv.Issuer
			}
			s := newAuthSource(t, source.Config{TokenURL: srv.TokenURL, ClientID: sourcetest.DefaultClientID,
				ClientCertificate: staticCert(cert), PrivateKey: tc.key, KeyID: tc.kid,
				SigningAlgorithm: tc.override, AssertionAudience: aud, HTTPClient: rootsClient(srv)})
			before := time.Now().Unix()
			if _, err := s.Token(context.Background()); err != nil {
				t.Fatalf("Token: %v", err)
			}
			f, h := lastForm(t, srv)
			if got := h.Get("Authorization"); got != "" {
				t.Errorf("Authorization header %q sent with private_key_jwt", got)
			}
			if f.Has("client_secret") {
				t.Error("client_secret sent with private_key_jwt")
			}
			if got, want := f.Get("client_assertion_type"), "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"; got != want {
				t.Errorf("client_assertion_type = %q, want %q", got, want)
			}
			hdr, c := decodeJWT(t, f.Get("client_assertion"))
			if got := hdr["alg"]; got != tc.alg {
				t.Errorf("alg = %v, want %s", got, tc.alg)
			}
			if kid, ok := hdr["kid"]; tc.kid == "" && ok || tc.kid != "" && kid != tc.kid {
				t.Errorf("kid = %v, want %q (absent if empty)", kid, tc.kid)
			}
			wantAud := srv.TokenURL
			if aud != "" {
				wantAud = aud
			}
			if c["iss"] != sourcetest.DefaultClientID || c["sub"] != sourcetest.DefaultClientID {
				t.Errorf("iss, sub = %v, %v, want the client id", c["iss"], c["sub"])
			}
			if got, ok := c["aud"].(string); !ok || got != wantAud {
				t.Errorf("aud = %#v, want the string %q", c["aud"], wantAud)
			}
			iat, _ := c["iat"].(float64)
			exp, _ := c["exp"].(float64)
			if int64(iat) < before-1 || exp-iat > 60 || exp <= iat {
				t.Errorf("iat %v exp %v: want iat now and exp at most 60 s later", iat, exp)
			}
			if jti, _ := c["jti"].(string); len(jti) < 16 {
				t.Errorf("jti %q: want a fresh random one", jti)
			}
		})
	}
}

// TestPrivateKeyJWTRetrySignsAnew: a 503 then a 200: the retry carries a
// new assertion (the emulator refuses a seen jti, counting it from the
// 503), so the token comes and no jti is ever replayed.
func TestPrivateKeyJWTRetrySignsAnew(t *testing.T) {
	srv, cert := newMTLS(t, testsupport.P256().Public())
	s := newAuthSource(t, source.Config{TokenURL: srv.TokenURL, ClientID: sourcetest.DefaultClientID,
		ClientCertificate: staticCert(cert), PrivateKey: testsupport.P256(), HTTPClient: rootsClient(srv),
		Retry: retry.Policy{MaxAttempts: 4, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond}})
	srv.FailNext(2, http.StatusServiceUnavailable, "")
	if _, err := s.Token(context.Background()); err != nil {
		t.Fatalf("Token after two 503s: %v", err)
	}
	if got, want := srv.Assertions(), 3; got != want {
		t.Errorf("assertions = %d, want %d", got, want)
	}
	if got := srv.ReplayedAssertions(); got != 0 {
		t.Errorf("replayed assertions = %d, want 0", got)
	}
}

// TestClientAssertionFunc: an assertion minted elsewhere is asked for once
// per attempt; AssertionFile reads the file at each call.
func TestClientAssertionFunc(t *testing.T) {
	srv, cert := newMTLS(t, testsupport.Ed25519().Public())
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	var calls int
	mint := func(ctx context.Context) (string, error) {
		calls++
		a, err := source.SignClientAssertionForTest(testsupport.Ed25519(), sourcetest.DefaultClientID, srv.TokenURL)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(path, []byte(a+"\n"), 0o600); err != nil {
			return "", err
		}
		return source.AssertionFile(path)(ctx)
	}
	s := newAuthSource(t, source.Config{TokenURL: srv.TokenURL, ClientID: sourcetest.DefaultClientID,
		ClientCertificate: staticCert(cert), ClientAssertion: mint, HTTPClient: rootsClient(srv),
		Retry: retry.Policy{MaxAttempts: 3, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond}})
	srv.FailNext(1, http.StatusServiceUnavailable, "")
	if _, err := s.Token(context.Background()); err != nil {
		t.Fatalf("Token: %v", err)
	}
	if calls != 2 {
		t.Errorf("ClientAssertion called %d times for 2 attempts, want 2", calls)
	}
	if got := srv.ReplayedAssertions(); got != 0 {
		t.Errorf("replayed = %d", got)
	}
	if _, err := source.AssertionFile(filepath.Join(dir, "missing"))(context.Background()); err == nil {
		t.Error("AssertionFile of a missing file: no error")
	}
}

// TestTLSClientAuth: a certificate and no secret is tls_client_auth:
// client_id in the body, no Authorization header.
func TestTLSClientAuth(t *testing.T) {
	srv, cert := newMTLS(t, nil)
	s := newAuthSource(t, source.Config{TokenURL: srv.TokenURL, ClientID: sourcetest.DefaultClientID,
		ClientCertificate: staticCert(cert), HTTPClient: rootsClient(srv)})
	if _, err := s.Token(context.Background()); err != nil {
		t.Fatalf("Token: %v", err)
	}
	f, h := lastForm(t, srv)
	if f.Get("client_id") != sourcetest.DefaultClientID || h.Get("Authorization") != "" || f.Has("client_secret") {
		t.Errorf("body %v, Authorization %q: want client_id only", f, h.Get("Authorization"))
	}
}

type notTransport struct{}

func (notTransport) RoundTrip(*http.Request) (*http.Response, error) { return nil, errors.New("no") }

// TestClientAuthConfigErrors: what New refuses, naming the field.
func TestClientAuthConfigErrors(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	cert := staticCert(tls.Certificate{})
	base := source.Config{TokenURL: "https://as.example/token", ClientID: "c"}
	for _, tc := range []struct {
		name, field string
		edit        func(*source.Config)
	}{
		{"p384 without an algorithm", "PrivateKey", func(c *source.Config) { c.PrivateKey = p384 }},
		{"wrong algorithm", "SigningAlgorithm", func(c *source.Config) { c.PrivateKey = testsupport.P256(); c.SigningAlgorithm = "RS256" }},
		{"secret with a key", "ClientSecret", func(c *source.Config) { c.PrivateKey = testsupport.RSA(); c.ClientSecret = "s3cret" }},
		{"key and assertion", "ClientAssertion", func(c *source.Config) {
			c.PrivateKey = testsupport.RSA()
			c.ClientAssertion = func(context.Context) (string, error) { return "", nil }
		}},
		{"kid without key", "KeyID", func(c *source.Config) { c.KeyID = "k" }},
		{"certificate over another RoundTripper", "HTTPClient", func(c *source.Config) {
			c.ClientCertificate = cert
			c.HTTPClient = &http.Client{Transport: notTransport{}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.edit(&cfg)
			_, err := source.New(cfg)
			var ce *source.ConfigError
			if !errors.Is(err, source.ErrInvalidConfig) || !errors.As(err, &ce) || ce.Field != tc.field {
				t.Fatalf("New: %v, want a ConfigError on %s", err, tc.field)
			}
		})
	}
}

// TestClientAuthRedaction: a Config's printed forms show no key and no
// assertion.
func TestClientAuthRedaction(t *testing.T) {
	cfg := source.Config{TokenURL: "https://as.example/token", ClientID: "c", PrivateKey: testsupport.RSA(), KeyID: "kid-1"}
	d := testsupport.RSA().D.String()[:20]
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), cfg.String()} {
		if strings.Contains(s, d) {
			t.Errorf("private key in %q", s)
		}
	}
	b, _ := json.Marshal(cfg)
	if strings.Contains(string(b), d) || !strings.Contains(string(b), "kid-1") {
		t.Errorf("MarshalJSON = %s", b)
	}
}

// TestInvalidClientClockSkew: an invalid_client whose Date is an hour
// ahead says the clock is off; one with a Date close to ours does not.
func TestInvalidClientClockSkew(t *testing.T) {
	for _, tc := range []struct {
		name string
		off  time.Duration
		skew bool
	}{{"hour ahead", time.Hour, true}, {"in sync", 0, false}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Date", time.Now().Add(tc.off).UTC().Format(http.TimeFormat))
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprint(w, `{"error":"invalid_client","error_description":"assertion expired"}`)
			}))
			defer srv.Close()
			s := newAuthSource(t, source.Config{TokenURL: srv.URL, ClientID: "c", ClientSecret: "s3cret"})
			_, err := s.Token(context.Background())
			var te *source.Error
			if !errors.As(err, &te) {
				t.Fatalf("Token: %v, want a *source.Error", err)
			}
			if got := te.ClockSkew > 59*time.Minute; got != tc.skew {
				t.Errorf("ClockSkew = %v, want skew reported: %v", te.ClockSkew, tc.skew)
			}
			if got := strings.Contains(err.Error(), "clock"); got != tc.skew {
				t.Errorf("error %q mentions the clock: %v, want %v", err, got, tc.skew)
			}
		})
	}
}

// TestReplayedAssertionRefused: the emulator refuses a jti it has seen
// (here a ClientAssertion that wrongly returns the same assertion twice),
// so the library's fresh assertion per attempt is what passes.
func TestReplayedAssertionRefused(t *testing.T) {
	srv, cert := newMTLS(t, testsupport.P256().Public())
	a, err := source.SignClientAssertionForTest(testsupport.P256(), sourcetest.DefaultClientID, srv.TokenURL)
	if err != nil {
		t.Fatal(err)
	}
	s := newAuthSource(t, source.Config{TokenURL: srv.TokenURL, ClientID: sourcetest.DefaultClientID,
		ClientCertificate: staticCert(cert), HTTPClient: rootsClient(srv),
		ClientAssertion: func(context.Context) (string, error) { return a, nil },
		Retry:           retry.Policy{MaxAttempts: 3, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond}})
	srv.FailNext(1, http.StatusServiceUnavailable, "")
	_, err = s.Token(context.Background())
	var te *source.Error
	if !errors.As(err, &te) || te.Code != source.CodeInvalidClient {
		t.Fatalf("Token with a replayed assertion: %v, want invalid_client", err)
	}
	if got := srv.ReplayedAssertions(); got != 1 {
		t.Errorf("replayed = %d, want 1", got)
	}
	if strings.Contains(err.Error(), a) {
		t.Error("the error holds the assertion")
	}
}

// TestClientAssertionTrimmed: an assertion read as a file line ("jwt\n")
// goes out without its white space, and one that is only white space is
// an error, as for Assertion and SubjectToken.
func TestClientAssertionTrimmed(t *testing.T) {
	srv, cert := newMTLS(t, testsupport.Ed25519().Public())
	for _, tc := range []struct {
		name    string
		pad     func(string) string
		wantErr bool
	}{
		{"trailing newline", func(a string) string { return a + "\n" }, false},
		{"spaces around", func(a string) string { return "  " + a + " \t" }, false},
		{"only white space", func(string) string { return " \n" }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newAuthSource(t, source.Config{TokenURL: srv.TokenURL, ClientID: sourcetest.DefaultClientID,
				ClientCertificate: staticCert(cert), HTTPClient: rootsClient(srv),
				ClientAssertion: func(context.Context) (string, error) {
					a, err := source.SignClientAssertionForTest(testsupport.Ed25519(), sourcetest.DefaultClientID, srv.TokenURL)
					return tc.pad(a), err
				}})
			_, err := s.Token(context.Background())
			if (err != nil) != tc.wantErr {
				t.Errorf("Token() error = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}
