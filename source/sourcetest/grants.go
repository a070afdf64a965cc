package sourcetest

import (
	"cmp"
	"crypto"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
)

// Grant types of the Standard emulator beyond RFC 6749's.
const (
	JWTBearerGrant     = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	TokenExchangeGrant = "urn:ietf:params:oauth:grant-type:token-exchange"
	AccessTokenType    = "urn:ietf:params:oauth:token-type:access_token"
	JWTTokenType       = "urn:ietf:params:oauth:token-type:jwt"
)

// repeatable are the form parameters a token request may repeat (RFC
// 8693 §2.1, RFC 8707).
var repeatable = map[string]bool{"resource": true, "audience": true}

// grantState is the Standard emulator's state for the extension grants.
// Server.mu guards it.
type grantState struct {
	public       bool                        // AllowPublicClients
	issuers      map[string]crypto.PublicKey // JWT bearer: trusted issuers' keys
	exchange     ExchangeReply
	subjects     map[string]bool // extra subject tokens accepted (AddSubjectToken)
	lastExchange map[string][]string
}

// ExchangeReply says how the Standard emulator answers a token exchange.
// The zero value issues an access token as token_type Bearer with
// issued_token_type the access_token URN.
type ExchangeReply struct {
	// IssuedTokenType is the reply's issued_token_type; empty means the
	// access_token URN.
	IssuedTokenType string
	// TokenType is the reply's token_type; empty means "Bearer". "N_A"
	// says the token is not an access token (RFC 8693 §2.2.1).
	TokenType string
}

func (s *Server) grants() *grantState {
	if s.ext == nil {
		s.ext = &grantState{issuers: map[string]crypto.PublicKey{}, subjects: map[string]bool{}}
	}
	return s.ext
}

// AllowPublicClients makes Standard accept the refresh_token, JWT bearer
// and token exchange grants from a public client: client_id in the body,
// no client_secret and no Basic credentials.
func (s *Server) AllowPublicClients(b bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grants().public = b
}

func (s *Server) publicClient(r *http.Request, grant, secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _, basic := r.BasicAuth()
	return s.grants().public && secret == "" && !basic &&
		(grant == "refresh_token" || grant == JWTBearerGrant || grant == TokenExchangeGrant)
}

// MintRefreshToken issues a refresh token that starts a new family, as if
// a user had authorized the client elsewhere: the starting point of a
// refresh-token bootstrap. Refreshing with it rotates it (the emulator
// then issues refresh tokens even without Options.RefreshTokens).
func (s *Server) MintRefreshToken(scope string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshTokens = true
	s.nextFamily++
	rt := opaqueToken()
	s.refresh[rt] = refreshRecord{scope: scope, family: s.nextFamily}
	return rt
}

// TrustIssuer makes Standard accept JWT bearer assertions (RFC 7523 §2.1)
// whose iss is issuer, signed by key, whose aud is the token URL, with an
// exp in the future and a sub. An expired assertion, or one of another
// issuer, is refused with invalid_grant.
func (s *Server) TrustIssuer(issuer string, key crypto.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grants().issuers[issuer] = key
}

// SetExchangeReply sets how token exchanges are answered.
func (s *Server) SetExchangeReply(r ExchangeReply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grants().exchange = r
}

// AddSubjectToken makes Standard accept tok as a subject_token (as well as
// the access tokens it issued itself and has not revoked).
func (s *Server) AddSubjectToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grants().subjects[tok] = true
}

// LastExchange returns the parameters of the last accepted token exchange
// other than the tokens (audience, resource, requested_token_type,
// subject_token_type, actor_token_type), each with all its values.
func (s *Server) LastExchange() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]string{}
	for k, v := range s.grants().lastExchange {
		out[k] = slices.Clone(v)
	}
	return out
}

var assertionAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}

func (s *Server) jwtBearer(f fields, g grant) (any, *tokenError) {
	a, ok := f.str("assertion")
	if !ok {
		return nil, missingParam("assertion")
	}
	bad := func(desc string) (any, *tokenError) {
		return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_grant", desc: desc}
	}
	tok, err := josejwt.ParseSigned(a, assertionAlgs)
	if err != nil {
		return bad("malformed assertion")
	}
	var unverified josejwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return bad("malformed assertion claims")
	}
	s.mu.Lock()
	key := s.grants().issuers[unverified.Issuer]
	s.mu.Unlock()
	if key == nil {
		return bad("assertion issuer not trusted")
	}
	var c josejwt.Claims
	if err := tok.Claims(key, &c); err != nil {
		return bad("assertion signature does not verify")
	}
	if err := c.ValidateWithLeeway(josejwt.Expected{AnyAudience: josejwt.Audience{s.TokenURL}, Time: time.Now()}, 0); err != nil {
		if errors.Is(err, josejwt.ErrExpired) {
			return bad("assertion expired")
		}
		return bad("assertion rejected: " + err.Error())
	}
	if c.Expiry == nil {
		return bad("assertion has no exp")
	}
	if c.Subject == "" {
		return bad("assertion has no sub")
	}
	return newRFCReply(s.issue(g)), nil
}

func (s *Server) tokenExchange(f fields, g grant) (any, *tokenError) {
	if m := f.missing("subject_token", "subject_token_type"); m != "" {
		return nil, missingParam(m)
	}
	st, _ := f.str("subject_token")
	s.mu.Lock()
	t, issued := s.tokens[st]
	ok := s.grants().subjects[st] || issued && !t.revoked && time.Now().Before(t.expiry)
	x := s.grants().exchange
	s.mu.Unlock()
	if !ok {
		return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_grant", desc: "subject_token not valid"}
	}
	if _, has := f["actor_token"]; has {
		if m := f.missing("actor_token_type"); m != "" {
			return nil, missingParam(m)
		}
	}
	last := map[string][]string{}
	for _, k := range []string{"audience", "resource", "requested_token_type", "subject_token_type", "actor_token_type"} {
		if v, has := f[k]; has {
			last[k] = slices.Clone(v.all)
			if len(v.all) == 0 {
				last[k] = []string{v.s}
			}
		}
	}
	s.mu.Lock()
	s.grants().lastExchange = last
	s.mu.Unlock()
	g.refresh = false
	reply := newRFCReply(s.issue(g))
	return exchangeReply{rfcReply: reply, IssuedTokenType: cmp.Or(x.IssuedTokenType, AccessTokenType), TokenType: cmp.Or(x.TokenType, "Bearer")}, nil
}

// exchangeReply is an RFC 8693 §2.2.1 reply: its TokenType shadows the
// embedded one.
type exchangeReply struct {
	rfcReply
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
}
