package source

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Token is a credential issued by a token endpoint.
//
// A Token returned by a TokenSource is shared by every caller that got it
// and must be treated as read-only. Its String, GoString, Format, LogValue
// and MarshalJSON methods never show AccessToken, RefreshToken or
// Authorization. (fmt cannot call methods on a value in an unexported
// struct field: keep tokens in exported fields, or print them on their
// own.)
type Token struct {
	// AccessToken is the token the provider issued.
	AccessToken string
	// TokenType is the token type; "Bearer" when the provider sends
	// "bearer" in any case, or nothing.
	TokenType string
	// RefreshToken, if set, is used to renew the token.
	RefreshToken string
	// Expiry is when the token expires. The zero value means it does not
	// expire (or the provider did not say); such a token is renewed when an
	// API rejects it.
	Expiry time.Time
	// Scope is the scope the provider granted, as it sent it.
	Scope string
	// Authorization, if set, is a header value the provider dictates
	// (VaultID's "VCSchema ..."), sent verbatim instead of
	// "Bearer <AccessToken>".
	Authorization string
	// Extra holds the other fields of the token reply. Values are as
	// encoding/json decodes them, with numbers as json.Number.
	Extra map[string]any
}

// Valid reports whether t is non-nil, carries a credential and has not
// expired.
func (t *Token) Valid() bool {
	if t == nil || (t.AccessToken == "" && t.Authorization == "") {
		return false
	}
	return t.Expiry.IsZero() || time.Now().Before(t.Expiry)
}

// HeaderValue returns the value of the Authorization header to send:
// Authorization if set, else "Bearer " + AccessToken. Another TokenType
// ("DPoP", "mac") is not sent differently: such a scheme needs a Provider
// whose reply sets Authorization.
func (t *Token) HeaderValue() string {
	if t.Authorization != "" {
		return t.Authorization
	}
	return "Bearer " + t.AccessToken
}

// String returns a description of t that shows no secret.
func (t *Token) String() string {
	if t == nil {
		return "source.Token(nil)"
	}
	var b strings.Builder
	b.WriteString("source.Token{Type: ")
	b.WriteString(t.TokenType)
	if t.AccessToken != "" {
		b.WriteString(", AccessToken: [REDACTED]")
	}
	if t.Authorization != "" {
		b.WriteString(", Authorization: [REDACTED]")
	}
	if t.RefreshToken != "" {
		b.WriteString(", RefreshToken: [REDACTED]")
	}
	if t.Scope != "" {
		fmt.Fprintf(&b, ", Scope: %q", t.Scope)
	}
	if t.Expiry.IsZero() {
		b.WriteString(", Expiry: never")
	} else {
		b.WriteString(", Expiry: ")
		b.WriteString(t.Expiry.Format(time.RFC3339))
	}
	if len(t.Extra) > 0 {
		fmt.Fprintf(&b, ", Extra: %d fields", len(t.Extra))
	}
	b.WriteString("}")
	return b.String()
}

// GoString is String, so %#v shows no secret.
func (t *Token) GoString() string { return t.String() }

// Format implements fmt.Formatter so that every verb (%v, %+v, %#v, %s,
// %q ...) prints the redacted String. It has a value receiver so that a
// Token value, not only a pointer, prints redacted.
func (t Token) Format(f fmt.State, verb rune) { formatRedacted(f, verb, t.String()) }

// LogValue implements slog.LogValuer with the redacted fields.
func (t *Token) LogValue() slog.Value {
	if t == nil {
		return slog.StringValue("source.Token(nil)")
	}
	attrs := []slog.Attr{
		slog.String("type", t.TokenType),
		slog.Bool("access_token", t.AccessToken != ""),
		slog.Bool("refresh_token", t.RefreshToken != ""),
		slog.Bool("authorization", t.Authorization != ""),
		slog.String("scope", t.Scope),
	}
	if !t.Expiry.IsZero() {
		attrs = append(attrs, slog.Time("expiry", t.Expiry))
	}
	return slog.GroupValue(attrs...)
}

// MarshalJSON encodes the token's metadata with every secret redacted. It
// has a value receiver so that a Token value encodes redacted too.
// Tokens are not meant to be stored as JSON; a store that needs the
// secrets encodes them itself.
func (t Token) MarshalJSON() ([]byte, error) {
	type redacted struct {
		TokenType     string     `json:"token_type,omitempty"`
		AccessToken   string     `json:"access_token,omitempty"`
		RefreshToken  string     `json:"refresh_token,omitempty"`
		Authorization string     `json:"authorization,omitempty"`
		Scope         string     `json:"scope,omitempty"`
		Expiry        *time.Time `json:"expiry,omitempty"`
	}
	r := redacted{TokenType: t.TokenType, Scope: t.Scope,
		AccessToken: redact(t.AccessToken), RefreshToken: redact(t.RefreshToken),
		Authorization: redact(t.Authorization)}
	if !t.Expiry.IsZero() {
		r.Expiry = &t.Expiry
	}
	return json.Marshal(r)
}
