package source

import (
	"cmp"
	"net/http"
	"time"
)

// builtin reports whether p is one of the package's providers.
func builtin(p *Provider) bool {
	switch p {
	case Standard, VaultID, DirectLink, ScorePositivo, GestaoPlus, SerproID:
		return true
	}
	return false
}

// Encoding is how a token request body is encoded.
type Encoding int

const (
	// EncodingDefault means: in a Config, the Provider's Encoding; in a
	// Provider, FormEncoding.
	EncodingDefault Encoding = iota
	// FormEncoding is application/x-www-form-urlencoded (RFC 6749). A nil
	// field value is omitted.
	FormEncoding
	// JSONEncoding is application/json. A nil field value is sent as null.
	JSONEncoding
)

// String returns "form", "json" or "default".
func (e Encoding) String() string {
	switch e {
	case FormEncoding:
		return "form"
	case JSONEncoding:
		return "json"
	}
	return "default"
}

// AuthStyle is where the client credentials go.
type AuthStyle int

const (
	// AuthDefault means: the Provider's AuthStyle, and for a Provider,
	// AuthInHeader.
	AuthDefault AuthStyle = iota
	// AuthInHeader sends HTTP Basic, with the id and secret form-encoded
	// first as RFC 6749 §2.3.1 says.
	AuthInHeader
	// AuthInBody sends client_id and client_secret as body fields.
	AuthInBody
	// AuthNone sends no client credentials (DirectLink).
	AuthNone
)

// String returns "header", "body", "none" or "default".
func (a AuthStyle) String() string {
	switch a {
	case AuthInHeader:
		return "header"
	case AuthInBody:
		return "body"
	case AuthNone:
		return "none"
	}
	return "default"
}

// Provider describes a token endpoint's dialect. The package declares the
// dialects it knows (Standard, VaultID, ...); a user describes another one
// by filling a Provider. A Provider must not be modified once a source uses
// it. Every field is optional; the zero Provider is Standard.
type Provider struct {
	// Name identifies the provider in errors and telemetry.
	Name string
	// TokenURL is the default token endpoint; Config.TokenURL overrides
	// it. Empty means the Config must give one.
	TokenURL string
	// GrantType, if set, is the only grant the endpoint takes and the
	// default for Config.GrantType.
	GrantType string
	// Encoding of the request body (EncodingDefault: FormEncoding).
	Encoding Encoding
	// AuthStyle is where the client credentials go (AuthDefault: header).
	AuthStyle AuthStyle
	// OneTimePassword marks the password as single-use: it is asked from
	// Config.PasswordFunc for every token request and never sent twice.
	OneTimePassword bool
	// Fields renames request fields: standard name ("client_id",
	// "username", ...) to the name the endpoint wants.
	Fields map[string]string
	// Fixed holds fields sent with every request, overriding the standard
	// ones; a nil value is JSON null (and omitted from a form).
	Fixed map[string]any
	// Header holds extra headers for every token request.
	Header http.Header
	// Prepare, if set, edits each request last, before it is encoded. It
	// runs inside the fetch; a panic becomes an error.
	Prepare func(cfg *Config, req *TokenRequest) error
	// Validate, if set, checks a Config at New, after the generic checks.
	Validate func(cfg *Config) error
	// Reply says which reply fields hold the token's values.
	Reply ReplyFields
	// DecodeError, if set, reads an error reply (any non-2xx status, or a
	// 2xx whose body has no token). Nil means DefaultDecodeError. Its
	// texts are bounded and scrubbed of secrets afterwards; a panic in it
	// becomes an error.
	DecodeError func(status int, header http.Header, body []byte) ErrorInfo
	// DefaultLifetime is the lifetime of a token whose reply has no
	// expires_in. Zero means such a token does not expire until an API
	// rejects it (as in golang.org/x/oauth2).
	DefaultLifetime time.Duration
}

// ReplyFields names the JSON fields of a token reply. An empty name means
// the RFC 6749 name ("access_token", "token_type", "expires_in",
// "refresh_token", "scope"); HeaderValue empty means none.
type ReplyFields struct {
	AccessToken  string
	TokenType    string
	ExpiresIn    string
	RefreshToken string
	Scope        string
	// HeaderValue names a field whose value is sent verbatim as the
	// Authorization header (Token.Authorization).
	HeaderValue string
}

// TokenRequest is one token request before it is encoded, as
// Provider.Prepare sees it. Params are keyed by the names sent.
type TokenRequest struct {
	// Grant is the grant type of this request.
	Grant string
	// Params are the body fields. A value is a string, a []string (a
	// field sent more than once), a number, a bool or nil.
	Params map[string]any
	// Header holds the request headers.
	Header http.Header
}

// Standard is RFC 6749: form body, client credentials by HTTP Basic,
// errors per §5.2. Set Config.Encoding or Config.AuthStyle to change
// either.
var Standard = &Provider{Name: "standard"}

// resolve fills the provider defaults into names used by the endpoint.
func (r ReplyFields) resolve() ReplyFields {
	return ReplyFields{
		AccessToken:  cmp.Or(r.AccessToken, "access_token"),
		TokenType:    cmp.Or(r.TokenType, "token_type"),
		ExpiresIn:    cmp.Or(r.ExpiresIn, "expires_in"),
		RefreshToken: cmp.Or(r.RefreshToken, "refresh_token"),
		Scope:        cmp.Or(r.Scope, "scope"),
		HeaderValue:  r.HeaderValue,
	}
}
