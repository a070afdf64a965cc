package source

import (
	"context"
	"crypto"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/safehttp"
	"github.com/tokenhttp/tokenhttp/retry"
	"github.com/tokenhttp/tokenhttp/telemetry"
)

// Grant types.
const (
	ClientCredentials = "client_credentials"
	Password          = "password"
	// RefreshToken is the grant a source uses on its own to renew a token
	// that came with a refresh token. As a Config.GrantType it starts from
	// Config.RefreshToken, obtained elsewhere, and keeps the rotated ones.
	RefreshToken = "refresh_token"
	// JWTBearer is the JWT bearer grant (RFC 7523 §2.1): Config.Assertion
	// is the "assertion".
	JWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	// TokenExchange is the token exchange grant (RFC 8693):
	// Config.SubjectToken is the "subject_token".
	TokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// Config describes a credential and the token endpoint that takes it. New
// validates it and returns a cached source.
//
// Config's String, GoString, Format, LogValue and MarshalJSON never show
// ClientSecret or Password. (fmt cannot call methods on a value in an
// unexported struct field: such a Config, printed with its parent's %+v,
// shows its fields. Keep it in an exported field or print it on its own.)
type Config struct {
	// Provider is the endpoint's dialect; nil means Standard.
	Provider *Provider
	// TokenURL overrides the provider's default token endpoint.
	TokenURL string
	// GrantType is ClientCredentials or Password. Empty means the
	// Provider's grant, or ClientCredentials when it has none.
	GrantType string
	// ClientID and ClientSecret identify the client.
	ClientID     string
	ClientSecret string
	// Username and Password are the resource owner's, for the Password
	// grant.
	Username string
	Password string
	// PasswordFunc, if set, is asked for the password on every password
	// grant request, instead of Password: for one-time passwords. It runs
	// inside the shared fetch, on a context that is not any caller's, and
	// a panic in it becomes an error.
	PasswordFunc func(ctx context.Context) (string, error)
	// RefreshToken, for GrantType RefreshToken, is the refresh token to
	// start from (obtained elsewhere); rotated ones replace it. A refresh
	// token held by the Store wins over it.
	RefreshToken string
	// Assertion, for GrantType JWTBearer, returns the signed JWT sent as
	// "assertion". It is called once per attempt, retries included, and
	// never cached (see SignedAssertion and AssertionFile); New never
	// calls it (with a Store, StoreKey names whose assertion it is).
	Assertion func(ctx context.Context) (string, error)
	// SubjectToken, for GrantType TokenExchange, returns the
	// "subject_token", once per attempt (see SubjectFrom).
	SubjectToken func(ctx context.Context) (string, error)
	// SubjectTokenType is the "subject_token_type"; empty means
	// TokenTypeAccessToken.
	SubjectTokenType string
	// Exchange holds the other fields of a TokenExchange request.
	Exchange ExchangeParams
	// ClientCertificate, if set, is the client's TLS certificate (mTLS,
	// RFC 8705), used as tls.Config.GetClientCertificate: asked at each
	// handshake, so a rotated certificate is used from the next connection
	// on (see ClientCertificateFiles). Token requests go through a clone of
	// HTTPClient's *http.Transport (http.DefaultTransport's without one;
	// any other RoundTripper is refused). Without ClientSecret it is
	// tls_client_auth: client_id in the body, no Authorization header. A
	// tokenhttp.Transport over the source with no WithBase presents it on
	// API calls too (see CachedSource.TLSClientConfig), and the store key
	// covers the certificate's thumbprint.
	ClientCertificate func(*tls.CertificateRequestInfo) (*tls.Certificate, error)
	// PrivateKey, if set, authenticates the client by private_key_jwt
	// (RFC 7523 §2.2): each attempt sends a newly signed assertion with
	// iss = sub = ClientID, aud = AssertionAudience or the token URL, a
	// fresh jti and a 60 s lifetime; no client secret is sent. RSA keys
	// sign PS256, ECDSA P-256 ES256, Ed25519 EdDSA; only Public and Sign
	// are used, so a KMS-backed signer works.
	PrivateKey crypto.Signer
	// KeyID is the assertion's "kid" header; empty: no kid.
	KeyID string
	// AssertionAudience is the assertion's "aud" (the issuer, as FAPI 2.0
	// asks); empty means the token URL.
	AssertionAudience string
	// SigningAlgorithm overrides the key's default algorithm (RS256 for a
	// server that refuses PS256, ES384 for a P-384 key ...).
	SigningAlgorithm string
	// ClientAssertion, if set, returns a client assertion minted
	// elsewhere (a Kubernetes projected token, a SPIFFE JWT-SVID: see
	// AssertionFile), sent as private_key_jwt's. It is called once per
	// attempt, never cached, on a context that is not any caller's.
	ClientAssertion func(ctx context.Context) (string, error)

	// Scopes are requested, joined by spaces.
	Scopes []string
	// EndpointParams are extra fields for every token request (an
	// "audience", say); a name with several values is repeated (a JSON
	// array in a JSON body). They do not override the grant's own fields.
	EndpointParams url.Values
	// HTTPClient sends token requests; nil means a client over
	// http.DefaultTransport. Its CheckRedirect is replaced: token requests
	// never follow a redirect.
	HTTPClient *http.Client

	// Encoding overrides the Provider's body encoding. EncodingDefault,
	// the zero value, keeps the Provider's.
	Encoding Encoding
	// AuthStyle overrides the Provider's client-credential placement.
	AuthStyle AuthStyle

	// Lifetime asks for a token lifetime, for providers that take one
	// (VaultID's "lifetime"). Zero means the provider's default.
	Lifetime time.Duration
	// Cloud is the VaultID "provider" field: the cloud the user belongs
	// to. Empty: the field is not sent.
	Cloud string
	// Origin is sent as the Origin header (gestao.plus: the customer's
	// subdomain, "https://yourcompany.gestao.plus").
	Origin string

	// RefreshAhead is how long before expiry a token is renewed: at most
	// half the lifetime, and never less than the guard below plus twice
	// the last fetch's duration, so that the renewal lands before the
	// token stops being served. Zero means a margin that adapts to the
	// lifetime: a tenth of it, at most 5 minutes, plus a random jitter of
	// up to a tenth of the margin so that replicas do not renew at once.
	// Callers keep the current token while the renewal runs, until it is
	// within the guard, min(lifetime/20, 1s), of expiry.
	RefreshAhead time.Duration
	// FetchTimeout bounds one token fetch, including its retries. Zero
	// means 30 seconds.
	FetchTimeout time.Duration
	// Retry says how token requests are retried (5xx, 429 and network
	// errors only). The zero value is retry's documented defaults.
	Retry retry.Policy
	// Breaker configures the circuit breaker over token fetches. The zero
	// value is retry's documented defaults; while it is open a still-valid
	// token keeps being served, and otherwise Token fails fast with an
	// error that matches ErrBreakerOpen.
	Breaker retry.BreakerSettings

	// Store, if set, shares tokens with other sources: the replicas of a
	// service (source/redisstore) or the sources of a process
	// (NewMemoryStore). Nil keeps tokens in this source only. Sources
	// share a stored token only when everything that decides which token
	// is issued is equal: see StoreKey.
	Store Store
	// StoreKey, with a Store, names what the store key cannot see: what a
	// Provider.Prepare hook adds to the token request, and whose assertion
	// (JWTBearer) or subject token (TokenExchange) Config's functions
	// return — they are called only for token requests, never to name a
	// key. The store key covers every other field of the Config and the
	// Provider that shapes the request. Sources share a stored token only
	// when their StoreKey is equal too. New refuses a Config with a Store
	// and no StoreKey whose Provider has a Prepare hook (other than those
	// of the package's own providers, whose hooks read only fields the key
	// covers) or whose grant is JWTBearer or TokenExchange: give each
	// distinct request a distinct StoreKey ("tenant-a", "workload-x", say).
	// It is hashed, never stored or shown as such.
	StoreKey string

	// Hook is told of every token change, and can persist a rotated
	// refresh token before the new token is served (TokenHook.Persist).
	Hook TokenHook

	// Telemetry says where spans and metrics of token fetches go; the zero
	// value means the OpenTelemetry globals. Nothing secret is recorded,
	// and a cached hit records nothing.
	Telemetry telemetry.Providers
	// Name, if set, tells this source apart from others of the same
	// provider in telemetry (the telemetry.AttrSource attribute of its
	// gauges, fetch metrics and spans). Empty means a short hash of the
	// credential's non-secret identity (provider, token URL without query
	// values, grant, client id, username, scopes ...). It must not hold a
	// secret.
	Name string

	// AllowInsecureHTTP allows a cleartext http:// TokenURL to a host that
	// is not loopback. Off, New refuses it: the client secret and the
	// token would cross the network in the clear.
	AllowInsecureHTTP bool
}

// DefaultFetchTimeout is the FetchTimeout used when Config leaves it zero.
const DefaultFetchTimeout = 30 * time.Second

// String returns a description of c that shows no secret.
func (c Config) String() string {
	b, _ := json.Marshal(c.redacted())
	return "source.Config" + string(b)
}

// GoString is String, so %#v shows no secret.
func (c Config) GoString() string { return c.String() }

// Format implements fmt.Formatter: every verb prints the redacted String.
func (c Config) Format(f fmt.State, verb rune) { formatRedacted(f, verb, c.String()) }

// MarshalJSON encodes c with its secrets redacted (ClientSecret, Password,
// RefreshToken, PrivateKey) and only the names of EndpointParams.
func (c Config) MarshalJSON() ([]byte, error) { return json.Marshal(c.redacted()) }

// LogValue implements slog.LogValuer with the secrets redacted.
func (c Config) LogValue() slog.Value {
	r := c.redacted()
	return slog.GroupValue(
		slog.String("provider", r.Provider),
		slog.String("token_url", r.TokenURL),
		slog.String("grant_type", r.GrantType),
		slog.String("client_id", r.ClientID),
		slog.String("client_secret", r.ClientSecret),
		slog.String("username", r.Username),
		slog.String("password", r.Password),
		slog.Any("scopes", r.Scopes),
		slog.String("refresh_token", r.RefreshToken),
	)
}

type redactedConfig struct {
	Provider          string        `json:"provider"`
	TokenURL          string        `json:"token_url,omitempty"`
	GrantType         string        `json:"grant_type,omitempty"`
	ClientID          string        `json:"client_id,omitempty"`
	ClientSecret      string        `json:"client_secret,omitempty"`
	Username          string        `json:"username,omitempty"`
	Password          string        `json:"password,omitempty"`
	PasswordFunc      bool          `json:"password_func,omitempty"`
	Scopes            []string      `json:"scopes,omitempty"`
	EndpointParams    []string      `json:"endpoint_params,omitempty"`
	Lifetime          time.Duration `json:"lifetime,omitempty"`
	Cloud             string        `json:"cloud,omitempty"`
	Origin            string        `json:"origin,omitempty"`
	AllowInsecureHTTP bool          `json:"allow_insecure_http,omitempty"`
	RefreshToken      string        `json:"refresh_token,omitempty"`
	Assertion         bool          `json:"assertion,omitempty"`
	SubjectToken      bool          `json:"subject_token,omitempty"`
	SubjectTokenType  string        `json:"subject_token_type,omitempty"`
	ClientCertificate bool          `json:"client_certificate,omitempty"`
	PrivateKey        string        `json:"private_key,omitempty"`
	KeyID             string        `json:"key_id,omitempty"`
	AssertionAudience string        `json:"assertion_audience,omitempty"`
	SigningAlgorithm  string        `json:"signing_algorithm,omitempty"`
	ClientAssertion   bool          `json:"client_assertion,omitempty"`
}

func (c Config) redacted() redactedConfig {
	r := redactedConfig{
		Provider: providerOf(c).Name, TokenURL: redactURL(c.TokenURL), GrantType: c.GrantType,
		ClientID: c.ClientID, ClientSecret: redact(c.ClientSecret), Username: c.Username,
		Password: redact(c.Password), PasswordFunc: c.PasswordFunc != nil, Scopes: c.Scopes,
		Lifetime: c.Lifetime, Cloud: c.Cloud, Origin: c.Origin, AllowInsecureHTTP: c.AllowInsecureHTTP,
		RefreshToken: redact(c.RefreshToken), Assertion: c.Assertion != nil, SubjectToken: c.SubjectToken != nil,
		SubjectTokenType:  c.SubjectTokenType,
		ClientCertificate: c.ClientCertificate != nil, KeyID: c.KeyID, AssertionAudience: redactURL(c.AssertionAudience),
		SigningAlgorithm: c.SigningAlgorithm, ClientAssertion: c.ClientAssertion != nil,
	}
	if c.PrivateKey != nil {
		r.PrivateKey = redacted
	}
	for k := range c.EndpointParams { // names only: values may be secret
		r.EndpointParams = append(r.EndpointParams, k)
	}
	return r
}

func providerOf(c Config) *Provider {
	if c.Provider == nil {
		return Standard
	}
	return c.Provider
}

// validate checks c and returns the resolved settings an endpoint needs.
func (c Config) validate() (*resolved, error) {
	p := providerOf(c)
	r := &resolved{cfg: c, p: p}

	raw := c.TokenURL
	if raw == "" {
		raw = p.TokenURL
	}
	if raw == "" {
		return nil, configError("TokenURL", "Config.TokenURL is required for the %s provider (it has no default endpoint; give your deployment's token URL)", p.Name)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, configError("TokenURL", "Config.TokenURL %q is not an absolute http(s) URL", redactURL(raw))
	}
	if u.User != nil {
		return nil, configError("TokenURL", "Config.TokenURL must not carry credentials; use ClientID and ClientSecret")
	}
	if u.Fragment != "" {
		return nil, configError("TokenURL", "Config.TokenURL %q has a fragment", redactURL(raw))
	}
	if u.Scheme == "http" && !safehttp.IsLoopback(u.Hostname()) && !c.AllowInsecureHTTP {
		return nil, configError("TokenURL", "Config.TokenURL %q is cleartext http to a host that is not loopback; use https, or set AllowInsecureHTTP if the network is trusted", redactURL(raw))
	}
	r.tokenURL = u.String()

	switch {
	case c.GrantType != "":
		r.grant = c.GrantType
	case p.GrantType != "":
		r.grant = p.GrantType
	default:
		r.grant = ClientCredentials
	}
	if err := validateGrant(&c, r.grant); err != nil {
		return nil, err
	}
	if p.GrantType != "" && r.grant != p.GrantType {
		return nil, configError("GrantType", "Config.GrantType %q: the %s provider only takes the %q grant; leave GrantType empty", r.grant, p.Name, p.GrantType)
	}

	r.encoding = p.Encoding
	if c.Encoding != EncodingDefault {
		r.encoding = c.Encoding
	}
	if r.encoding == EncodingDefault {
		r.encoding = FormEncoding
	}
	r.auth = p.AuthStyle
	if c.AuthStyle != AuthDefault {
		r.auth = c.AuthStyle
	}
	if r.auth == AuthDefault {
		r.auth = AuthInHeader
	}
	if r.auth < AuthDefault || r.auth > AuthNone {
		return nil, configError("AuthStyle", "Config.AuthStyle %d is not one of the AuthStyle constants", int(c.AuthStyle))
	}
	if c.Encoding < EncodingDefault || c.Encoding > JSONEncoding {
		return nil, configError("Encoding", "Config.Encoding %d is not one of the Encoding constants", int(c.Encoding))
	}

	if r.auth != AuthNone && c.ClientID == "" && !fixed(p, "client_id") {
		return nil, configError("ClientID", "Config.ClientID is required for the %s provider", p.Name)
	}
	if r.auth == AuthInHeader && c.ClientSecret == "" && publicClientGrant(r.grant) && c.AuthStyle == AuthDefault {
		r.auth = AuthInBody // a public client: client_id in the body
	}
	if err := validateClientAuth(&c, r); err != nil {
		return nil, err
	}
	if r.grant == ClientCredentials && r.auth != AuthNone && c.ClientSecret == "" && !fixed(p, "client_secret") && !r.jwtClientAuth() && c.ClientCertificate == nil {
		return nil, configError("ClientSecret", "Config.ClientSecret is required for the client_credentials grant")
	}
	if r.grant == Password {
		if c.Username == "" {
			return nil, configError("Username", "Config.Username is required for the password grant")
		}
		if c.Password == "" && c.PasswordFunc == nil {
			return nil, configError("Password", "Config.Password or Config.PasswordFunc is required for the password grant")
		}
		if p.OneTimePassword && c.PasswordFunc == nil {
			return nil, configError("PasswordFunc", "the %s provider takes one-time passwords: set Config.PasswordFunc to supply a fresh one for each token request", p.Name)
		}
	}
	if err := c.Retry.Validate(); err != nil {
		return nil, configError("Retry", "Config.Retry: %v", err)
	}
	if err := c.Breaker.Validate(); err != nil {
		return nil, configError("Breaker", "Config.Breaker: %v", err)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"RefreshAhead", c.RefreshAhead}, {"FetchTimeout", c.FetchTimeout}, {"Lifetime", c.Lifetime}} {
		if d.v < 0 {
			return nil, configError(d.field, "Config.RefreshAhead, FetchTimeout and Lifetime must not be negative")
		}
	}
	for _, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return nil, configError("Scopes", "Config.Scopes has %q: a scope is one non-empty word without spaces or quotes", s)
		}
	}
	if strings.ContainsAny(c.Origin, "\r\n") {
		return nil, configError("Origin", "Config.Origin must not contain a line break")
	}
	if c.Store != nil && c.StoreKey == "" && (r.grant == JWTBearer || r.grant == TokenExchange) {
		return nil, configError("StoreKey", "Config.StoreKey is required with a Store for the %s grant: the store key cannot see whose assertion or subject token Config's functions return (they are called only for token requests), so name it (sources share a token only when their StoreKey is equal)", r.grant)
	}
	if c.Store != nil && p.Prepare != nil && c.StoreKey == "" && !builtin(p) {
		return nil, configError("StoreKey", "Config.StoreKey is required with a Store when the %s provider has a Prepare hook: the store key cannot see what the hook changes in the request, so name it (sources share a token only when their StoreKey is equal)", p.Name)
	}
	if p.Validate != nil {
		if err := p.Validate(&c); err != nil {
			if ce := (*ConfigError)(nil); errors.As(err, &ce) {
				return nil, &ConfigError{Field: ce.Field, Reason: p.Name + " provider: " + ce.Reason, Err: err}
			}
			return nil, configError("Provider", "%s provider: %w", p.Name, err)
		}
	}
	if c.ClientCertificate != nil {
		r.cert = &clientCert{get: c.ClientCertificate}
		var err error
		if r.client, err = mtlsClient(&c, r.cert); err != nil {
			return nil, err
		}
	}
	r.fetchTimeout = c.FetchTimeout
	if r.fetchTimeout == 0 {
		r.fetchTimeout = DefaultFetchTimeout
	}
	return r, nil
}

func fixed(p *Provider, field string) bool {
	_, ok := p.Fixed[field]
	return ok
}

// resolved is a validated Config with every default applied.
type resolved struct {
	cfg          Config
	p            *Provider
	tokenURL     string
	grant        string
	encoding     Encoding
	auth         AuthStyle
	fetchTimeout time.Duration
	alg          string       // private_key_jwt's algorithm
	cert         *clientCert  // nil without Config.ClientCertificate
	client       *http.Client // with cert: the mTLS client for token requests
}
