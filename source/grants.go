package source

import (
	"cmp"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/jwtsign"
)

// Token type URNs (RFC 8693 §3).
const (
	TokenTypeAccessToken  = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeRefreshToken = "urn:ietf:params:oauth:token-type:refresh_token"
	TokenTypeIDToken      = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeJWT          = "urn:ietf:params:oauth:token-type:jwt"
)

// ExchangeParams are the optional fields of a token exchange request
// (RFC 8693 §2.1). None of them is secret except what ActorToken returns.
type ExchangeParams struct {
	// ActorToken, if set, returns the "actor_token", once per attempt.
	ActorToken func(ctx context.Context) (string, error)
	// ActorTokenType is the "actor_token_type"; empty means
	// TokenTypeAccessToken. It is sent only with ActorToken.
	ActorTokenType string
	// Audience is the "audience": the logical name of the target service.
	Audience []string
	// Resource is the "resource" (RFC 8707): the target service's URI,
	// repeated for several.
	Resource []string
	// RequestedTokenType is the "requested_token_type"; empty: not sent.
	RequestedTokenType string
}

// validateGrant checks the fields grant needs.
func validateGrant(c *Config, grant string) error {
	switch grant {
	case ClientCredentials, Password:
	case RefreshToken:
		if c.RefreshToken == "" && c.Store == nil {
			return configError("RefreshToken", "Config.RefreshToken is required for the refresh_token grant (a refresh token obtained elsewhere)")
		}
	case JWTBearer:
		if c.Assertion == nil {
			return configError("Assertion", "Config.Assertion is required for the JWT bearer grant (see source.SignedAssertion and source.AssertionFile)")
		}
	case TokenExchange:
		if c.SubjectToken == nil {
			return configError("SubjectToken", "Config.SubjectToken is required for the token exchange grant (see source.SubjectFrom)")
		}
	default:
		return configError("GrantType", "Config.GrantType %q is not supported; use source.ClientCredentials, Password, RefreshToken, JWTBearer or TokenExchange", grant)
	}
	if grant != TokenExchange && (c.SubjectTokenType != "" || c.Exchange.ActorToken != nil || c.Exchange.ActorTokenType != "" ||
		len(c.Exchange.Audience) > 0 || len(c.Exchange.Resource) > 0 || c.Exchange.RequestedTokenType != "") {
		return configError("Exchange", "Config.SubjectTokenType and Config.Exchange are for the token exchange grant only")
	}
	if c.Exchange.ActorToken == nil && c.Exchange.ActorTokenType != "" {
		return configError("Exchange", "Config.Exchange.ActorTokenType without Config.Exchange.ActorToken")
	}
	return nil
}

// grantParams adds the fields of the JWT bearer and token exchange grants
// to tr, calling the user's functions; it returns the secrets it sent.
func grantParams(ctx context.Context, cfg *Config, tr *TokenRequest, scrub scrubber) ([]string, error) {
	call := func(name string, f func(context.Context) (string, error)) (string, error) {
		var v string
		err := callHook(name, scrub, func() error {
			var ferr error
			v, ferr = f(ctx)
			return ferr
		})
		if err == nil && strings.TrimSpace(v) == "" {
			e := errors.New("it returned an empty token")
			err = &HookError{Hook: name, Err: e, msg: e.Error()}
		}
		return strings.TrimSpace(v), err
	}
	switch tr.Grant {
	case JWTBearer:
		a, err := call("Config.Assertion", cfg.Assertion)
		if err != nil {
			return nil, err
		}
		tr.Params["assertion"] = a
		return []string{a}, nil
	case TokenExchange:
		st, err := call("Config.SubjectToken", cfg.SubjectToken)
		if err != nil {
			return nil, err
		}
		out := []string{st}
		tr.Params["subject_token"] = st
		tr.Params["subject_token_type"] = cmp.Or(cfg.SubjectTokenType, TokenTypeAccessToken)
		x := cfg.Exchange
		if x.ActorToken != nil {
			at, err := call("Config.Exchange.ActorToken", x.ActorToken)
			if err != nil {
				return out, err
			}
			out = append(out, at)
			tr.Params["actor_token"] = at
			tr.Params["actor_token_type"] = cmp.Or(x.ActorTokenType, TokenTypeAccessToken)
		}
		if len(x.Audience) > 0 {
			tr.Params["audience"] = multi(x.Audience)
		}
		if len(x.Resource) > 0 {
			tr.Params["resource"] = multi(x.Resource)
		}
		if x.RequestedTokenType != "" {
			tr.Params["requested_token_type"] = x.RequestedTokenType
		}
		return out, nil
	}
	return nil, nil
}

func multi(v []string) any {
	if len(v) == 1 {
		return v[0]
	}
	return append([]string(nil), v...)
}

// exchangedToken checks a token exchange reply's token type: "N_A" (RFC
// 8693 §2.2.1) is sent as Bearer only when the issued token is an access
// token; otherwise the token cannot be sent as an Authorization header.
func exchangedToken(provider string, status int, tok *Token) error {
	if !strings.EqualFold(tok.TokenType, "N_A") {
		return nil
	}
	issued, _ := tok.Extra["issued_token_type"].(string)
	if issued == TokenTypeAccessToken {
		tok.TokenType = "Bearer"
		return nil
	}
	return &Error{Provider: provider, StatusCode: status, Code: CodeInvalidRequest, ProviderCode: "N_A",
		Description: fmt.Sprintf("the token exchange issued a token of type %q with token_type N_A: it is not an access token, so it cannot be sent as Bearer (ask for requested_token_type %s)", issued, TokenTypeAccessToken)}
}

// SubjectFrom adapts a TokenSource to Config.SubjectToken (or
// ExchangeParams.ActorToken): the subject of a token exchange is ts's
// current access token, so one source's token is exchanged for another
// API's in one line.
func SubjectFrom(ts TokenSource) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		tok, err := ts.Token(ctx)
		if err != nil {
			return "", err
		}
		return tok.AccessToken, nil
	}
}

// AssertionOptions say how SignedAssertion signs.
type AssertionOptions struct {
	// Algorithm is the JWS "alg"; empty means the key's default: RSA
	// PS256, ECDSA P-256 ES256, Ed25519 EdDSA.
	Algorithm string
	// KeyID is the header's "kid"; empty: none.
	KeyID string
}

// SignedAssertion returns a Config.Assertion for the JWT bearer grant that
// signs claims with signer at every call: claims must hold "iss" and
// "aud" (and "sub" as the server asks); iat, exp (60 s ahead) and a fresh
// jti are added where claims lack them. The signer's Public() decides the
// algorithm, so a KMS-backed crypto.Signer works.
func SignedAssertion(signer crypto.Signer, claims map[string]any, opts AssertionOptions) func(context.Context) (string, error) {
	c := make(map[string]any, len(claims))
	for k, v := range claims {
		c[k] = v
	}
	return func(context.Context) (string, error) {
		return jwtsign.Assertion(signer, opts.Algorithm, opts.KeyID, c, time.Now())
	}
}

// publicClientGrant reports whether grant may come from a public client:
// client_id in the body and no client_secret when ClientSecret is empty.
func publicClientGrant(grant string) bool {
	return grant == RefreshToken || grant == JWTBearer || grant == TokenExchange
}

// rebuild returns a GetBody that builds the request again, calling
// Assertion or SubjectToken anew: each attempt carries fresh values, and
// scrub learns each attempt's secrets.
func (e *endpoint) rebuild(ctx context.Context, grant, refresh string, scrub *scrubber) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		req, sc, err := e.build(ctx, grant, refresh)
		*scrub = scrub.merge(sc)
		if err != nil {
			return nil, err
		}
		return req.Body, nil
	}
}

// merge returns a scrubber that removes the secrets of both.
func (s scrubber) merge(o scrubber) scrubber {
	out := scrubber{secrets: slices.Clone(s.secrets), short: slices.Clone(s.short)}
	for _, v := range o.secrets {
		if !slices.Contains(out.secrets, v) {
			out.secrets = append(out.secrets, v)
		}
	}
	for _, v := range o.short {
		if !slices.Contains(out.short, v) {
			out.short = append(out.short, v)
		}
	}
	slices.SortStableFunc(out.secrets, func(a, b string) int { return len(b) - len(a) })
	slices.SortStableFunc(out.short, func(a, b string) int { return len(b) - len(a) })
	return out
}

// grantIdentity returns what of the grant decides the issued token, for
// the store key, without a secret and without calling Config's functions
// (they are called once per token request attempt, never to name a key):
// the starting refresh token's hash, the token types, the audience,
// resources and requested type. Whose assertion or subject token it is,
// Config.StoreKey says (New requires it with a Store for those grants).
func grantIdentity(r *resolved) []string {
	cfg := &r.cfg
	switch r.grant {
	case RefreshToken:
		return []string{"refresh_token", refreshID(cfg.RefreshToken)}
	case JWTBearer:
		return []string{"jwt_bearer"}
	case TokenExchange:
		x := cfg.Exchange
		out := []string{"token_exchange", cmp.Or(cfg.SubjectTokenType, TokenTypeAccessToken), x.RequestedTokenType,
			strings.Join(x.Audience, "\x00"), strings.Join(x.Resource, "\x00")}
		if x.ActorToken != nil {
			out = append(out, "actor", cmp.Or(x.ActorTokenType, TokenTypeAccessToken))
		}
		return out
	}
	return nil
}
