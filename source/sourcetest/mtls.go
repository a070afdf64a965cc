package sourcetest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokenhttp/tokenhttp/internal/certs"
	"github.com/tokenhttp/tokenhttp/internal/jwtsign"
)

// MTLSOptions configures NewMTLS.
type MTLSOptions struct {
	// CA issues the server's certificate and is the only root a client
	// certificate may chain to. Nil means a new CA, which Server.CA holds.
	CA *CA
	// PublicKey is the client's registered key for private_key_jwt. Nil
	// means private_key_jwt is refused (invalid_client) and only
	// tls_client_auth works.
	PublicKey crypto.PublicKey
	// Algorithms are the accepted client assertion algorithms. Empty
	// means PS256, ES256 and EdDSA, as FAPI allows.
	Algorithms []string
	// RequireSubject makes tls_client_auth also require the client
	// certificate's subject common name to equal the client id (a
	// simplified tls_client_auth_subject_dn, RFC 8705 §2.1.2).
	RequireSubject bool
}

// MTLSServer is a token endpoint in the manner of PIX and Open Finance
// Brasil: TLS with a required client certificate that chains to CA, the
// client_credentials grant with client authentication by tls_client_auth
// or private_key_jwt, and access tokens bound to the client certificate
// (RFC 8705 §3). Its knobs and counters are Server's.
//
// At TokenURL, the token endpoint takes a form body and accepts:
//
//   - tls_client_auth: client_id in the body, no secret, no
//     Authorization header;
//   - private_key_jwt: client_assertion_type
//     urn:ietf:params:oauth:client-assertion-type:jwt-bearer and a
//     client_assertion signed with MTLSOptions.PublicKey by one of
//     MTLSOptions.Algorithms (PS256 with a salt the size of the hash,
//     RFC 7518 §3.5), whose iss and sub are the client id, whose aud is
//     a single JSON string naming TokenURL, the discovery document's
//     token_endpoint or Issuer, whose exp has not passed and is at most
//     60 s after iat and after now, and whose jti has never been seen.
//     A jti counts as seen from the moment its request reaches the
//     endpoint, injected faults included, so a retry must sign anew.
//
// A client_secret, an Authorization header, a second method or a wrong
// claim is refused with invalid_client (401) or invalid_request (400), in
// RFC 6749 JSON. The reply is RFC 6749's plus "cnf": {"x5t#S256": the
// certificate's thumbprint}; the access token is a JWT (with a random,
// unverifiable signature) carrying the same cnf. The protected resource at
// ResourceURL answers 401 to a token presented over a connection whose
// client certificate is not the one the token is bound to.
//
// Issuer + "/.well-known/openid-configuration" is a discovery document in
// the Open Finance style: its token_endpoint (Issuer + "/token") stands
// for the endpoint without mTLS and refuses every request with
// invalid_client; mtls_endpoint_aliases.token_endpoint is TokenURL.
//
// Options.ClientSecret, Username, Password, OTPs, RefreshTokens and TLS
// are ignored; the server always speaks TLS. The embedded httptest
// Server's Client trusts the server but presents no certificate, so its
// handshakes fail: use ClientWithCertificate, or clone its Transport and
// set TLSClientConfig.GetClientCertificate.
type MTLSServer struct {
	*Server

	// Issuer is the authorization server's issuer identifier: the
	// server's URL.
	Issuer string
	// CA is the CA that issued the server's certificate and that client
	// certificates must chain to.
	CA *CA

	m *mtlsState
}

// mtlsState is what MTLSServer adds to Server.
type mtlsState struct {
	pub            crypto.PublicKey // immutable
	algs           []jose.SignatureAlgorithm
	requireSubject bool
	audiences      []string // accepted "aud" values; set by NewMTLS before it returns the URL to anyone

	// mu guards every field below.
	mu         sync.Mutex
	bound      map[string]string // access token -> x5t#S256
	seenJTI    map[string]bool
	assertions int // token requests that carried a client assertion
	replayed   int // of which reused a jti
	transports []*http.Transport
}

// replayKey is the request context key under which the token handler
// finds whether the request's jti was seen before.
type replayKey struct{}

// NewMTLS starts an mTLS token endpoint. See MTLSServer.
func NewMTLS(o Options, m MTLSOptions) *MTLSServer {
	ca := m.CA
	if ca == nil {
		ca = NewCA()
	}
	st := &mtlsState{
		pub:            m.PublicKey,
		requireSubject: m.RequireSubject,
		bound:          map[string]string{},
		seenJTI:        map[string]bool{},
	}
	for _, a := range m.Algorithms {
		st.algs = append(st.algs, jose.SignatureAlgorithm(a))
	}
	if len(st.algs) == 0 {
		st.algs = []jose.SignatureAlgorithm{jose.PS256, jose.ES256, jose.EdDSA}
	}
	d := &dialect{
		provider:   "mtls",
		path:       "/mtls/token",
		lifetime:   15 * time.Minute,
		defaults:   credentials{clientID: DefaultClientID},
		token:      st.token,
		writeError: writeRFCError,
	}
	// Only the client id, lifetime, latency and address of o apply.
	s := newState(Options{ClientID: o.ClientID, Lifetime: o.Lifetime, Latency: o.Latency}, d)
	ms := &MTLSServer{Server: s, CA: ca, m: st}

	mux := http.NewServeMux()
	mux.HandleFunc(d.path, ms.serveToken)
	mux.HandleFunc("/token", ms.serveNoMTLS)
	mux.HandleFunc("/resource", ms.serveResource)
	mux.HandleFunc("/.well-known/openid-configuration", ms.serveDiscovery)
	hs := httptest.NewUnstartedServer(mux)
	hs.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	listenOn(hs, o.Addr)
	hs.TLS = &tls.Config{
		Certificates: []tls.Certificate{ca.ServerCertificate()},
		ClientCAs:    ca.Pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	s.Server = hs
	hs.StartTLS()
	s.TokenURL = s.URL + d.path
	s.ResourceURL = s.URL + "/resource"
	ms.Issuer = s.URL
	st.audiences = []string{s.TokenURL, s.URL + "/token", ms.Issuer}
	return ms
}

// Close shuts the server down like Server.Close, and closes the idle
// connections of the clients ClientWithCertificate made.
func (s *MTLSServer) Close() {
	s.m.mu.Lock()
	ts := slices.Clone(s.m.transports)
	s.m.mu.Unlock()
	for _, t := range ts {
		t.CloseIdleConnections()
	}
	s.Server.Close()
}

// ClientWithCertificate returns an HTTP client that trusts the server's CA
// and presents c as its client certificate. Close closes its idle
// connections.
func (s *MTLSServer) ClientWithCertificate(c tls.Certificate) *http.Client {
	t := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: s.CA.Pool, Certificates: []tls.Certificate{c}},
		ForceAttemptHTTP2: s.EnableHTTP2,
	}
	s.m.mu.Lock()
	s.m.transports = append(s.m.transports, t)
	s.m.mu.Unlock()
	return &http.Client{Transport: t}
}

// Assertions reports how many token requests carried a client
// assertion, refused ones included.
func (s *MTLSServer) Assertions() int {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	return s.m.assertions
}

// ReplayedAssertions reports how many token requests carried a client
// assertion whose jti an earlier request had carried.
func (s *MTLSServer) ReplayedAssertions() int {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	return s.m.replayed
}

// serveToken notes the jti of a client assertion, before any fault or
// check, then serves the request as Server does.
func (s *MTLSServer) serveToken(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxTokenBody+1))
	r.Body = io.NopCloser(bytes.NewReader(body))
	if len(body) <= maxTokenBody && mediaType(r.Header.Get("Content-Type")) == formType {
		if vs, err := url.ParseQuery(string(body)); err == nil && vs.Get("client_assertion") != "" {
			jti := unverifiedJTI(vs.Get("client_assertion"))
			s.m.mu.Lock()
			s.m.assertions++
			seen := jti != "" && s.m.seenJTI[jti]
			if seen {
				s.m.replayed++
			}
			if jti != "" {
				s.m.seenJTI[jti] = true
			}
			s.m.mu.Unlock()
			r = r.WithContext(context.WithValue(r.Context(), replayKey{}, seen))
		}
	}
	s.Server.serveToken(w, r)
}

// serveNoMTLS is the token_endpoint of the discovery document: the one
// without mTLS, which a client with a certificate must not use.
func (s *MTLSServer) serveNoMTLS(w http.ResponseWriter, _ *http.Request) {
	noStore(w)
	writeRFCError(s.Server, w, &tokenError{status: http.StatusUnauthorized, code: "invalid_client",
		desc: "no client certificate on this endpoint: use mtls_endpoint_aliases.token_endpoint"})
}

// serveDiscovery serves the OpenID Provider metadata, Open Finance style.
func (s *MTLSServer) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	algs := make([]string, len(s.m.algs))
	for i, a := range s.m.algs {
		algs[i] = string(a)
	}
	writeJSON(w, http.StatusOK, jsonType, map[string]any{
		"issuer":                                s.Issuer,
		"token_endpoint":                        s.URL + "/token",
		"mtls_endpoint_aliases":                 map[string]string{"token_endpoint": s.TokenURL},
		"token_endpoint_auth_methods_supported": []string{"private_key_jwt", "tls_client_auth"},
		"token_endpoint_auth_signing_alg_values_supported": algs,
		"tls_client_certificate_bound_access_tokens":       true,
		"grant_types_supported":                            []string{"client_credentials"},
	})
}

// mtlsReply is the RFC 6749 reply with the certificate confirmation.
type mtlsReply struct {
	rfcReply
	Cnf map[string]string `json:"cnf"`
}

// token authenticates the client by tls_client_auth or private_key_jwt
// and issues a certificate-bound token.
func (m *mtlsState) token(s *Server, q *tokenRequest) (any, *tokenError) {
	f, e := q.fields(formType)
	if e != nil {
		return nil, e
	}
	if q.r.TLS == nil || len(q.r.TLS.PeerCertificates) == 0 {
		return nil, invalidClient("client certificate required")
	}
	cert := q.r.TLS.PeerCertificates[0]
	c := s.credentials()
	if q.r.Header.Get("Authorization") != "" {
		return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_request",
			desc: "Authorization header not accepted: authenticate by mTLS or private_key_jwt"}
	}
	if _, ok := f["client_secret"]; ok {
		return nil, invalidClient("client_secret not accepted: authenticate by mTLS or private_key_jwt")
	}
	id, hasID := f.str("client_id")
	assertion, hasAssertion := f.str("client_assertion")
	atype, hasType := f.str("client_assertion_type")
	switch {
	case hasAssertion || hasType:
		if !hasType || atype != jwtsign.ClientAssertionType {
			return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_request",
				desc: "client_assertion_type must be " + jwtsign.ClientAssertionType, param: "client_assertion_type"}
		}
		if !hasAssertion {
			return nil, missingParam("client_assertion")
		}
		replayed, _ := q.r.Context().Value(replayKey{}).(bool)
		if e := m.checkAssertion(assertion, c.clientID, replayed, time.Now()); e != nil {
			return nil, e
		}
		if hasID && id != c.clientID {
			return nil, invalidClient("client_id does not match the assertion")
		}
	case !hasID:
		return nil, invalidClient("client authentication required: client_id (tls_client_auth) or client_assertion (private_key_jwt)")
	case id != c.clientID:
		return nil, invalidClient("unknown client")
	case m.requireSubject && cert.Subject.CommonName != c.clientID:
		return nil, invalidClient("client certificate subject does not match the client")
	}
	var g grant
	g.scope, _ = f.str("scope")
	switch gt, _ := f.str("grant_type"); gt {
	case "":
		return nil, missingParam("grant_type")
	case "client_credentials":
	default:
		return nil, &tokenError{status: http.StatusBadRequest, code: "unsupported_grant_type", desc: "grant_type not supported"}
	}
	thumb := certs.Thumbprint(cert)
	cnf := map[string]string{"x5t#S256": thumb}
	issuer := s.URL
	g.mint = func(now, expiry time.Time) string {
		return jwt(`{"alg":"ES256","typ":"at+jwt"}`, map[string]any{
			"iss": issuer, "sub": c.clientID, "client_id": c.clientID, "aud": issuer,
			"iat": now.Unix(), "exp": expiry.Unix(), "jti": opaqueToken(),
			"scope": g.scope, "cnf": cnf,
		}, 64)
	}
	t := s.issue(g)
	m.mu.Lock()
	m.bound[t.access] = thumb
	m.mu.Unlock()
	return mtlsReply{rfcReply: newRFCReply(t), Cnf: cnf}, nil
}

func invalidClient(desc string) *tokenError {
	return &tokenError{status: http.StatusUnauthorized, code: "invalid_client", desc: desc}
}

// serveResource is the protected resource: a valid token, presented over
// a connection with the certificate it is bound to.
func (s *MTLSServer) serveResource(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, io.LimitReader(r.Body, maxResourceBody))
	auth := r.Header.Get("Authorization")
	s.mu.Lock()
	s.resourceRequests++
	reason := s.tokenFor(auth, time.Now())
	s.mu.Unlock()
	if reason == "" {
		_, tok, _ := strings.Cut(auth, " ")
		s.m.mu.Lock()
		want := s.m.bound[tok]
		s.m.mu.Unlock()
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 || certs.Thumbprint(r.TLS.PeerCertificates[0]) != want {
			reason = "client certificate does not match the token's binding (cnf x5t#S256)"
		}
	}
	writeResource(w, r.Method, n, reason)
}
