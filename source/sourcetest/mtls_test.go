package sourcetest_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/certs"
	"github.com/tokenhttp/tokenhttp/internal/jwtsign"
	"github.com/tokenhttp/tokenhttp/internal/testsupport"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// getResource calls the resource with access token tok over client c.
func getResource(t *testing.T, c *http.Client, srv *sourcetest.MTLSServer, tok string) reply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.ResourceURL, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	return send(t, c, req)
}

func tlsClientAuth() url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {sourcetest.DefaultClientID}}
}

func withAssertion(a string) url.Values {
	return url.Values{"grant_type": {"client_credentials"},
		"client_assertion_type": {jwtsign.ClientAssertionType}, "client_assertion": {a}}
}

func TestMTLSClientAuth(t *testing.T) {
	srv := started(t, sourcetest.NewMTLS(sourcetest.Options{}, sourcetest.MTLSOptions{}))
	cert := srv.CA.ClientCertificate("client-a")
	c := srv.ClientWithCertificate(cert)

	r := post(t, c, srv.TokenURL, tlsClientAuth())
	if r.status != http.StatusOK {
		t.Fatalf("token status = %d, want 200; body %s", r.status, r.body)
	}
	thumb := certs.Thumbprint(cert.Leaf)
	if cnf, _ := r.json["cnf"].(map[string]any); cnf["x5t#S256"] != thumb {
		t.Errorf("cnf = %v, want x5t#S256 %s", r.json["cnf"], thumb)
	}
	if got, want := r.str("token_type"), "Bearer"; got != want {
		t.Errorf("token_type = %q, want %q", got, want)
	}
	if got, want := r.num("expires_in"), 900.0; got != want {
		t.Errorf("expires_in = %v, want %v", got, want)
	}
	tok := r.str("access_token")
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("access token is not a JWT")
	}
	var claims struct {
		Cnf map[string]string `json:"cnf"`
	}
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if json.Unmarshal(b, &claims); claims.Cnf["x5t#S256"] != thumb {
		t.Errorf("access token cnf = %v, want x5t#S256 %s", claims.Cnf, thumb)
	}

	if r := getResource(t, c, srv, tok); r.status != http.StatusOK {
		t.Errorf("resource status with the bound certificate = %d, want 200; body %s", r.status, r.body)
	}
	other := srv.ClientWithCertificate(srv.CA.ClientCertificate("client-b"))
	if r := getResource(t, other, srv, tok); r.status != http.StatusUnauthorized || !strings.Contains(r.str("error_description"), "binding") {
		t.Errorf("resource status with another certificate = %d, want 401 about the binding; body %s", r.status, r.body)
	}
	if got, want := srv.TokenRequests(), 1; got != want {
		t.Errorf("TokenRequests() = %d, want %d", got, want)
	}
	if got, want := srv.Requests("client_credentials"), 1; got != want {
		t.Errorf("Requests(client_credentials) = %d, want %d", got, want)
	}
	if got, want := srv.ResourceRequests(), 2; got != want {
		t.Errorf("ResourceRequests() = %d, want %d", got, want)
	}
	if got, want := srv.Issued(), 1; got != want {
		t.Errorf("Issued() = %d, want %d", got, want)
	}
}

func TestMTLSRefusals(t *testing.T) {
	srv := started(t, sourcetest.NewMTLS(sourcetest.Options{ClientID: "pix-client"}, sourcetest.MTLSOptions{RequireSubject: true}))
	c := srv.ClientWithCertificate(srv.CA.ClientCertificate("pix-client"))
	form := func(kv ...string) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	tests := []struct {
		name   string
		client *http.Client
		form   url.Values
		hdr    []string
		status int
		code   string
	}{
		{"ok", c, form("client_id", "pix-client"), nil, 200, ""},
		{"secret", c, form("client_id", "pix-client", "client_secret", "s3cret"), nil, 401, "invalid_client"},
		{"basic", c, form("client_id", "pix-client"), []string{"Authorization", "Basic cGl4LWNsaWVudDpz"}, 400, "invalid_request"},
		{"no client id", c, form(), nil, 401, "invalid_client"},
		{"other client id", c, form("client_id", "someone"), nil, 401, "invalid_client"},
		{"subject mismatch", srv.ClientWithCertificate(srv.CA.ClientCertificate("not-pix")), form("client_id", "pix-client"), nil, 401, "invalid_client"},
		{"grant", c, url.Values{"grant_type": {"password"}, "client_id": {"pix-client"}}, nil, 400, "unsupported_grant_type"},
		{"assertion type only", c, form("client_assertion_type", jwtsign.ClientAssertionType), nil, 400, "invalid_request"},
		{"no key registered", c, form("client_assertion_type", jwtsign.ClientAssertionType, "client_assertion", "a.b.c"), nil, 401, "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(t, tt.client, srv.TokenURL, tt.form, tt.hdr...)
			if r.status != tt.status || r.str("error") != tt.code {
				t.Errorf("status, error = %d %q, want %d %q; body %s", r.status, r.str("error"), tt.status, tt.code, r.body)
			}
			if strings.Contains(string(r.body), "s3cret") {
				t.Errorf("reply echoes the secret: %s", r.body)
			}
		})
	}

	// No certificate, or one from another CA: the handshake fails.
	for name, cl := range map[string]*http.Client{
		"no certificate": srv.Client(),
		"foreign CA":     srv.ClientWithCertificate(sourcetest.NewCA().ClientCertificate("pix-client")),
	} {
		req, _ := http.NewRequest(http.MethodPost, srv.TokenURL, strings.NewReader(tlsClientAuth().Encode()))
		req.Header.Set("Content-Type", formType)
		if resp, err := cl.Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("%s: status = %d, want a TLS error", name, resp.StatusCode)
		}
	}
	srv.Client().Transport.(*http.Transport).CloseIdleConnections()
}

func TestMTLSPrivateKeyJWT(t *testing.T) {
	for _, tt := range []struct {
		name string
		key  crypto.Signer
		alg  string
		algs []string
	}{
		{"PS256", testsupport.RSA(), "", nil},
		{"ES256", testsupport.P256(), "", nil},
		{"EdDSA", testsupport.Ed25519(), "", nil},
		{"RS256 allowed", testsupport.RSA(), "RS256", []string{"RS256"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := started(t, sourcetest.NewMTLS(sourcetest.Options{}, sourcetest.MTLSOptions{PublicKey: tt.key.Public(), Algorithms: tt.algs}))
			c := srv.ClientWithCertificate(srv.CA.ClientCertificate("any"))
			a, err := jwtsign.ClientAssertion(tt.key, tt.alg, "kid-1", sourcetest.DefaultClientID, srv.TokenURL, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if r := post(t, c, srv.TokenURL, withAssertion(a)); r.status != http.StatusOK {
				t.Fatalf("status = %d, want 200; body %s", r.status, r.body)
			}
			r := post(t, c, srv.TokenURL, withAssertion(a))
			if r.status != http.StatusUnauthorized || !strings.Contains(r.str("error_description"), "replayed") {
				t.Errorf("replay status = %d, want 401 replayed; body %s", r.status, r.body)
			}
			if got, want := srv.ReplayedAssertions(), 1; got != want {
				t.Errorf("ReplayedAssertions() = %d, want %d", got, want)
			}
			if got, want := srv.Assertions(), 2; got != want {
				t.Errorf("Assertions() = %d, want %d", got, want)
			}
		})
	}
}

// pssAuto signs PSS with the largest salt, as go-jose's cryptosigner does.
type pssAuto struct{ *rsa.PrivateKey }

func (k pssAuto) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if o, ok := opts.(*rsa.PSSOptions); ok {
		return k.PrivateKey.Sign(r, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto, Hash: o.Hash})
	}
	return k.PrivateKey.Sign(r, digest, opts)
}

func TestMTLSAssertionRefusals(t *testing.T) {
	srv := started(t, sourcetest.NewMTLS(sourcetest.Options{}, sourcetest.MTLSOptions{PublicKey: testsupport.RSA().Public()}))
	c := srv.ClientWithCertificate(srv.CA.ClientCertificate("any"))
	now := time.Now()
	id := sourcetest.DefaultClientID
	claims := func(kv ...any) map[string]any {
		m := map[string]any{"iss": id, "sub": id, "aud": srv.TokenURL}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	otherRSA, _ := rsa.GenerateKey(rand.Reader, 2048)
	tests := []struct {
		name   string
		signer crypto.Signer
		alg    string
		claims map[string]any
		ok     bool
		why    string // in the error description
	}{
		{"token URL", testsupport.RSA(), "", claims(), true, ""},
		{"issuer", testsupport.RSA(), "", claims("aud", srv.Issuer), true, ""},
		{"token_endpoint", testsupport.RSA(), "", claims("aud", srv.URL+"/token"), true, ""},
		{"aud array", testsupport.RSA(), "", claims("aud", []string{srv.TokenURL}), false, "single string"},
		{"aud elsewhere", testsupport.RSA(), "", claims("aud", "https://elsewhere.example/token"), false, "not this server"},
		{"iss", testsupport.RSA(), "", claims("iss", "someone"), false, "iss and sub"},
		{"sub", testsupport.RSA(), "", claims("sub", "someone"), false, "iss and sub"},
		{"expired", testsupport.RSA(), "", claims("iat", now.Add(-2*time.Minute).Unix(), "exp", now.Add(-time.Minute).Unix()), false, "expired"},
		{"exp far ahead", testsupport.RSA(), "", claims("exp", now.Add(10*time.Minute).Unix()), false, "ahead"},
		{"lives too long", testsupport.RSA(), "", claims("iat", now.Add(-time.Minute).Unix(), "exp", now.Add(30*time.Second).Unix()), false, "exp - iat"},
		{"no jti", testsupport.RSA(), "", claims("jti", ""), false, "no jti"},
		{"other key", otherRSA, "", claims(), false, "does not verify"},
		{"RS256 not allowed", testsupport.RSA(), "RS256", claims(), false, "not accepted"},
		{"PSS largest salt", pssAuto{testsupport.RSA()}, "", claims(), false, "salt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := jwtsign.Assertion(tt.signer, tt.alg, "", tt.claims, now)
			if err != nil {
				t.Fatal(err)
			}
			r := post(t, c, srv.TokenURL, withAssertion(a))
			if tt.ok {
				if r.status != http.StatusOK {
					t.Errorf("status = %d, want 200; body %s", r.status, r.body)
				}
				return
			}
			if r.status != http.StatusUnauthorized || r.str("error") != "invalid_client" || !strings.Contains(r.str("error_description"), tt.why) {
				t.Errorf("status = %d, want 401 invalid_client saying %q; body %s", r.status, tt.why, r.body)
			}
		})
	}
}

// TestMTLSRetryNeedsNewAssertion: a jti counts as seen even when a fault
// ended its request, so a retry must sign anew.
func TestMTLSRetryNeedsNewAssertion(t *testing.T) {
	srv := started(t, sourcetest.NewMTLS(sourcetest.Options{}, sourcetest.MTLSOptions{PublicKey: testsupport.P256().Public()}))
	c := srv.ClientWithCertificate(srv.CA.ClientCertificate("any"))
	a, err := jwtsign.ClientAssertion(testsupport.P256(), "", "", sourcetest.DefaultClientID, srv.TokenURL, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext(1, http.StatusServiceUnavailable, "")
	if r := post(t, c, srv.TokenURL, withAssertion(a)); r.status != http.StatusServiceUnavailable {
		t.Fatalf("first attempt status = %d, want 503", r.status)
	}
	if r := post(t, c, srv.TokenURL, withAssertion(a)); r.status != http.StatusUnauthorized {
		t.Errorf("retry with the same assertion: status = %d, want 401; body %s", r.status, r.body)
	}
	a2, _ := jwtsign.ClientAssertion(testsupport.P256(), "", "", sourcetest.DefaultClientID, srv.TokenURL, time.Now())
	if r := post(t, c, srv.TokenURL, withAssertion(a2)); r.status != http.StatusOK {
		t.Errorf("retry with a new assertion: status = %d, want 200; body %s", r.status, r.body)
	}
}

func TestMTLSDiscovery(t *testing.T) {
	srv := started(t, sourcetest.NewMTLS(sourcetest.Options{}, sourcetest.MTLSOptions{}))
	c := srv.ClientWithCertificate(srv.CA.ClientCertificate("any"))
	req, _ := http.NewRequest(http.MethodGet, srv.Issuer+"/.well-known/openid-configuration", nil)
	r := send(t, c, req)
	if r.status != http.StatusOK {
		t.Fatalf("status = %d, want 200", r.status)
	}
	if r.str("issuer") != srv.Issuer {
		t.Errorf("issuer = %q, want %q", r.str("issuer"), srv.Issuer)
	}
	aliases, _ := r.json["mtls_endpoint_aliases"].(map[string]any)
	if aliases["token_endpoint"] != srv.TokenURL {
		t.Errorf("mtls_endpoint_aliases.token_endpoint = %v, want %s", aliases["token_endpoint"], srv.TokenURL)
	}
	if r.json["tls_client_certificate_bound_access_tokens"] != true {
		t.Error("tls_client_certificate_bound_access_tokens is not true")
	}
	plain := post(t, c, r.str("token_endpoint"), tlsClientAuth())
	if plain.status != http.StatusUnauthorized || plain.str("error") != "invalid_client" {
		t.Errorf("token_endpoint without the alias: status = %d, want 401 invalid_client; body %s", plain.status, plain.body)
	}
}

func TestMTLSCertificateRotation(t *testing.T) {
	srv := started(t, sourcetest.NewMTLS(sourcetest.Options{}, sourcetest.MTLSOptions{}))
	var mu sync.Mutex
	cur := srv.CA.ClientCertificate("one")
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		mu.Lock()
		defer mu.Unlock()
		return &cur, nil
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	r := post(t, c, srv.TokenURL, tlsClientAuth())
	first, _ := r.json["cnf"].(map[string]any)
	mu.Lock()
	cur = srv.CA.ClientCertificate("two")
	mu.Unlock()
	tr.CloseIdleConnections() // a new handshake
	r = post(t, c, srv.TokenURL, tlsClientAuth())
	second, _ := r.json["cnf"].(map[string]any)
	if first["x5t#S256"] == nil || first["x5t#S256"] == second["x5t#S256"] {
		t.Errorf("cnf = %v then %v, want two different bindings", first, second)
	}
	if got := getResource(t, c, srv, r.str("access_token")); got.status != http.StatusOK {
		t.Errorf("resource status = %d, want 200; body %s", got.status, got.body)
	}
}
