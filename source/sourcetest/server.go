package sourcetest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"
)

// Defaults used when Options leaves a credential empty.
const (
	// DefaultClientID is the client id accepted when Options.ClientID is empty.
	// GestaoPlus uses "app" instead, as its documentation fixes it.
	DefaultClientID = "test-client"
	// DefaultClientSecret is the client secret accepted when
	// Options.ClientSecret is empty. GestaoPlus uses none (JSON null).
	DefaultClientSecret = "test-client-secret"
	// DefaultUsername is the resource owner accepted when Options.Username
	// is empty. VaultID uses DefaultVaultIDUsername instead.
	DefaultUsername = "test-user"
	// DefaultVaultIDUsername is the VaultID user (an 11-digit CPF) accepted
	// when Options.Username is empty.
	DefaultVaultIDUsername = "12345678901"
	// DefaultPassword is the resource owner's password accepted when
	// Options.Password is empty. VaultID checks one-time passwords instead
	// (see Options.OTPs).
	DefaultPassword = "test-password"
)

// Options configures an emulator. The zero value is ready to use: each
// empty credential takes its default, each zero duration the provider's
// documented value.
type Options struct {
	// ClientID and ClientSecret are the accepted client credentials.
	// Empty means DefaultClientID and DefaultClientSecret, except for
	// GestaoPlus, whose client id defaults to "app" and whose secret
	// defaults to none: the request must send JSON null (when ClientSecret
	// is set, that string is accepted as well as null).
	ClientID, ClientSecret string
	// Username and Password are the accepted resource-owner credentials.
	// Empty means DefaultUsername (DefaultVaultIDUsername for VaultID)
	// and DefaultPassword. VaultID ignores Password and checks OTPs.
	Username, Password string
	// OTPs are VaultID's accepted one-time passwords, each valid once.
	// If empty, any 6-digit numeric OTP not used before is accepted.
	OTPs []string
	// Lifetime is the lifetime of issued access tokens. Zero means the
	// provider's documented default: Standard 3600 s, VaultID the
	// requested "lifetime" or 604800 s, DirectLink 3600 s, ScorePositivo
	// 3600 s, GestaoPlus 43200 s, SerproID 3600 s. A non-zero Lifetime
	// overrides VaultID's requested lifetime. Lifetimes below a second are
	// enforced exactly by the server but reported as expires_in 1.
	Lifetime time.Duration
	// Latency is added before every token reply.
	Latency time.Duration
	// RefreshTokens makes Standard issue refresh tokens with the password
	// and refresh_token grants (RFC 6749 §4.4.3: never with
	// client_credentials). GestaoPlus always issues them; the other
	// dialects never do.
	RefreshTokens bool
	// RequireOrigin, if set, makes GestaoPlus require an Origin header
	// equal to it.
	RequireOrigin string
	// TLS starts the server with TLS (httptest.NewTLSServer); use
	// Server.Client to talk to it.
	TLS bool
	// Addr is the address to listen on, such as "127.0.0.1:8081". Empty
	// means a free port on loopback, as httptest chooses. The server
	// panics if it cannot listen there, as httptest does.
	Addr string
}

// RecordedRequest is a copy of a request that reached a token endpoint.
// It holds whatever the client sent, secrets included.
type RecordedRequest struct {
	Method      string
	Header      http.Header
	Body        []byte
	ContentType string
}

func (r RecordedRequest) clone() RecordedRequest {
	r.Header = r.Header.Clone()
	r.Body = bytes.Clone(r.Body)
	return r
}

// credentials are the accepted client and resource-owner credentials.
type credentials struct {
	clientID, clientSecret string
	username, password     string
	otps                   []string
}

// Server is an OAuth2 token endpoint that speaks one provider's dialect,
// plus a protected resource that accepts the tokens it issued. Like
// httptest.Server it listens on loopback; Close shuts it down, waiting for
// requests in flight (requests held by HangNext or Latency end at once).
//
// All methods are safe for concurrent use; a knob takes effect from the
// next request on.
type Server struct {
	*httptest.Server

	// TokenURL is the full URL of the token endpoint.
	TokenURL string
	// ResourceURL is the full URL of the protected resource
	// (URL + "/resource"). It answers 200 to any method carrying a valid
	// token and 401 otherwise.
	ResourceURL string
	// Provider names the dialect: "standard", "vaultid", "directlink",
	// "scorepositivo", "gestaoplus" or "serproid".
	Provider string

	d         *dialect      // immutable after construction
	closing   chan struct{} // closed by Close; ends HangNext and Latency waits
	closeOnce sync.Once     // guards close(closing)

	// mu guards every field below.
	mu sync.Mutex
	// settings
	creds         credentials
	requireOrigin string
	refreshTokens bool
	lifetime      time.Duration // 0: the dialect's default
	latency       time.Duration
	rejectRefresh bool
	reuseRevokes  bool // a spent refresh token revokes its family
	plainText     bool // VaultID: text/plain errors
	// faults, consumed in this order: reset, hang, fail
	resetN, hangN, failN int
	failStatus           int
	failRetryAfter       string
	// counters
	tokenRequests, issuedN, resourceRequests int
	byGrant                                  map[string]int
	last                                     RecordedRequest
	issuedList                               []string
	// token store
	tokens     map[string]*issued       // by access token
	headers    map[string]*issued       // by exact Authorization value, for non-Bearer dialects
	refresh    map[string]refreshRecord // live refresh tokens
	spent      map[string]int           // rotated refresh token -> family
	usedOTPs   map[string]bool
	nextFamily int
	ext        *grantState // JWT bearer, token exchange, public clients; nil until used
}

// listenOn makes the unstarted hs listen on addr, if set (Options.Addr).
func listenOn(hs *httptest.Server, addr string) {
	if addr == "" {
		return
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		panic(fmt.Sprintf("sourcetest: cannot listen on %s: %v", addr, err))
	}
	hs.Listener.Close()
	hs.Listener = l
}

// newServer starts a server for dialect d.
func newServer(o Options, d *dialect) *Server {
	s := newState(o, d)
	mux := http.NewServeMux()
	mux.HandleFunc(d.path, s.serveToken)
	mux.HandleFunc("/resource", s.serveResource)
	s.Server = httptest.NewUnstartedServer(mux)
	listenOn(s.Server, o.Addr)
	if o.TLS {
		s.StartTLS()
	} else {
		s.Start()
	}
	s.TokenURL = s.URL + d.path
	s.ResourceURL = s.URL + "/resource"
	return s
}

// newState returns a Server for dialect d with o's settings, not yet
// listening.
func newState(o Options, d *dialect) *Server {
	s := &Server{
		Provider:      d.provider,
		d:             d,
		closing:       make(chan struct{}),
		requireOrigin: o.RequireOrigin,
		refreshTokens: o.RefreshTokens,
		lifetime:      o.Lifetime,
		latency:       o.Latency,
		byGrant:       map[string]int{},
		tokens:        map[string]*issued{},
		headers:       map[string]*issued{},
		refresh:       map[string]refreshRecord{},
		spent:         map[string]int{},
		usedOTPs:      map[string]bool{},
	}
	s.creds = d.credentials(o)
	return s
}

// Close shuts down the server and blocks until all requests in flight
// have ended. Requests held by HangNext or Latency are released first;
// a hung token request sees its connection closed.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.Server.Close()
}

// SetLifetime sets the lifetime of tokens issued from now on. Zero or
// less restores the provider's default.
func (s *Server) SetLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lifetime = max(d, 0)
}

// SetLatency sets the delay added before every token reply.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = max(d, 0)
}

// FailNext makes the next n token requests fail with status, in this
// provider's own error shape, with a Retry-After header when retryAfter is
// not empty. The request is not processed: no OTP or refresh token is
// consumed.
func (s *Server) FailNext(n int, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failStatus, s.failRetryAfter = max(n, 0), status, retryAfter
}

// ResetNext makes the next n token requests end in a network error: the
// server writes part of a status line and headers, then closes the
// connection.
func (s *Server) ResetNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetN = max(n, 0)
}

// HangNext makes the next n token requests block until the client gives
// up (its context ends) or the server closes; then the connection is
// closed without a reply.
func (s *Server) HangNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hangN = max(n, 0)
}

// RevokeAll invalidates every access token and refresh token issued so
// far. Tokens issued afterwards are valid.
func (s *Server) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		t.revoked = true
	}
	clear(s.refresh)
}

// Revoke invalidates one access token. Its refresh token, if any, stays
// valid.
func (s *Server) Revoke(accessToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tokens[accessToken]; ok {
		t.revoked = true
	}
}

// RejectRefresh makes refresh_token grants fail with invalid_grant, in
// the provider's shape, while b is true. Refused refresh tokens are not
// consumed.
func (s *Server) RejectRefresh(b bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectRefresh = b
}

// RevokeOnRefreshReuse turns on refresh-token reuse detection: when a
// refresh token that was already rotated is presented again, every access
// and refresh token descended from the same grant is revoked (the request
// fails with invalid_grant either way).
func (s *Server) RevokeOnRefreshReuse(b bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reuseRevokes = b
}

// PlainTextErrors makes VaultID answer errors as text/plain bodies such as
// "invalid_grant: OTP already used" instead of RFC 6749 JSON. Other
// dialects ignore it.
func (s *Server) PlainTextErrors(b bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.plainText = b
}

// SetCredentials replaces the accepted credentials (ClientID,
// ClientSecret, Username, Password and OTPs; empty ones take their
// defaults, as in the constructor). Other fields of o are ignored. Tokens
// already issued stay valid; OTPs already used stay used.
func (s *Server) SetCredentials(o Options) {
	c := s.d.credentials(o)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creds = c
}

// credentials returns a copy of the accepted credentials.
func (s *Server) credentials() credentials {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.creds
}

// requiredOrigin returns the Origin GestaoPlus requires, or "".
func (s *Server) requiredOrigin() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requireOrigin
}

// refreshEnabled reports whether Standard issues refresh tokens.
func (s *Server) refreshEnabled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshTokens
}

// TokenRequests reports how many requests reached the token endpoint,
// failed ones included.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenRequests
}

// Requests reports how many token requests carried grant_type grant, as
// sent (in a form or a JSON body, whatever the dialect accepts).
func (s *Server) Requests(grant string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byGrant[grant]
}

// Issued reports how many access tokens were issued.
func (s *Server) Issued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issuedN
}

// ResourceRequests reports how many requests reached the protected
// resource, rejected ones included.
func (s *Server) ResourceRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resourceRequests
}

// LastTokenRequest returns a copy of the last request that reached the
// token endpoint, or the zero RecordedRequest if none did.
func (s *Server) LastTokenRequest() RecordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last.clone()
}

// IssuedTokens returns the access tokens issued so far, in order.
func (s *Server) IssuedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issuedList)
}
