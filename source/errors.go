package source

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/oauth2code"
)

// ErrClosed is returned by a CachedSource's Token after Close when it has
// no valid token left.
var ErrClosed = errors.New("source: the token source is closed")

// ExpiredError is returned by Token when the token endpoint issued a token
// that had expired by the time its reply arrived: its lifetime was shorter
// than the request took, or the endpoint's idea of time is not ours. Such
// a token is neither returned nor cached: a TokenSource returns a token
// that is valid now, or an error.
type ExpiredError struct {
	Provider string
	Lifetime time.Duration // the lifetime the endpoint granted (expires_in)
	Took     time.Duration // how long the answered request took
}

// Error says what happened and what to check. It carries no secret.
func (e *ExpiredError) Error() string {
	return fmt.Sprintf("source: the %s token endpoint issued a token that expired before it arrived (lifetime %v, the request took %v); check the clocks, the latency to the token endpoint, and the lifetime it grants",
		e.Provider, e.Lifetime, e.Took)
}

// FetchError is a token request that got no reply: a network error, a
// timeout, or a cancelled fetch. errors.Is sees the cause
// (context.DeadlineExceeded, say).
type FetchError struct {
	Provider string
	Err      error
	msg      string // Err's text, scrubbed
}

// Error says which endpoint could not be reached.
func (e *FetchError) Error() string {
	return fmt.Sprintf("source: %s token endpoint could not be reached: %s; check the network and Config.TokenURL", e.Provider, e.msg)
}

// Unwrap returns the cause.
func (e *FetchError) Unwrap() error { return e.Err }

// HookError is an error returned by a user hook (Config.PasswordFunc,
// Provider.Prepare, ...). Its text is scrubbed of the config's secrets;
// Unwrap returns the hook's own error.
type HookError struct {
	Hook string
	Err  error
	msg  string
}

// Error names the hook and what it said.
func (e *HookError) Error() string { return "source: " + e.Hook + ": " + e.msg }

// Unwrap returns the hook's error.
func (e *HookError) Unwrap() error { return e.Err }

// Normalized error codes of Error.Code. The first six are RFC 6749 §5.2's.
const (
	CodeInvalidRequest       = oauth2code.InvalidRequest
	CodeInvalidClient        = oauth2code.InvalidClient
	CodeInvalidGrant         = oauth2code.InvalidGrant
	CodeUnauthorizedClient   = oauth2code.UnauthorizedClient
	CodeUnsupportedGrantType = oauth2code.UnsupportedGrantType
	CodeInvalidScope         = oauth2code.InvalidScope
	// CodeServerError is any 5xx, and a reply the source cannot use.
	CodeServerError = oauth2code.ServerError
	// CodeTemporarilyUnavailable is a 429 or an endpoint that says so.
	CodeTemporarilyUnavailable = oauth2code.TemporarilyUnavailable
)

// Error is a "no" from a token endpoint: an error reply in any of the
// dialects' shapes, or a reply that is not a usable token.
//
// Text the provider sent is bounded and scrubbed of every secret the
// source knows before it is stored here.
type Error struct {
	// Provider is the Provider's Name.
	Provider string
	// StatusCode is the HTTP status of the reply.
	StatusCode int
	// Code is the normalized code, one of the Code constants.
	Code string
	// Description is the provider's description, or a scrubbed snippet
	// of an undocumented body.
	Description string
	// ProviderCode is the provider's own code as it sent it
	// ("AUTENTICACAO_INVALIDA_CLIENT_OAUTH", "400", "invalid_grant").
	ProviderCode string
	// URI is the provider's error_uri or problem type, when given.
	URI string
	// RetryAfter is the delay the reply's Retry-After asked for, or zero.
	RetryAfter time.Duration
}

// Error describes the refusal and what to do about it. It carries no
// secret.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "source: %s token endpoint said %s (HTTP %d", e.Provider, e.Code, e.StatusCode)
	if e.ProviderCode != "" && e.ProviderCode != e.Code {
		fmt.Fprintf(&b, ", provider code %q", e.ProviderCode)
	}
	b.WriteString(")")
	if e.Description != "" {
		fmt.Fprintf(&b, ": %q", e.Description)
	}
	if h := hint(e.Code); h != "" {
		b.WriteString("; ")
		b.WriteString(h)
	}
	return b.String()
}

// Temporary reports whether trying again later may succeed: a 5xx, a 429,
// or a reply outside 4xx whose code says the endpoint failed (a 200 that
// is not a usable token). Any other 4xx is final.
func (e *Error) Temporary() bool {
	if e.StatusCode >= 400 && e.StatusCode < 500 {
		return e.StatusCode == http.StatusTooManyRequests // a 4xx is final, whatever its body says
	}
	return e.StatusCode >= 500 || e.Code == CodeServerError || e.Code == CodeTemporarilyUnavailable
}

func hint(code string) string {
	switch code {
	case CodeInvalidClient:
		return "check Config.ClientID and ClientSecret, and how the provider wants them sent (Config.AuthStyle)"
	case CodeInvalidGrant:
		return "check Config.Username and the password (or one-time password); a refresh token may have expired or been revoked"
	case CodeInvalidRequest:
		return "the endpoint did not accept the request's fields or encoding; check the Provider and Config"
	case CodeUnauthorizedClient:
		return "the client is not allowed this grant type; check Config.GrantType with the provider"
	case CodeUnsupportedGrantType:
		return "the endpoint does not support Config.GrantType"
	case CodeInvalidScope:
		return "check Config.Scopes"
	case CodeServerError, CodeTemporarilyUnavailable:
		return "the token endpoint failed; try again later"
	}
	return ""
}

// ErrBreakerOpen is matched (errors.Is) by the error Token returns while
// the source's circuit breaker is open and no valid token is cached: a
// *BreakerOpenError.
var ErrBreakerOpen = errors.New("source: circuit breaker open")

// BreakerOpenError is the error of a fetch the circuit breaker refused: no
// request was sent. It matches ErrBreakerOpen.
type BreakerOpenError struct {
	Provider string
	Until    time.Time // when the breaker lets the next try (a probe) through
}

// Error says the breaker is open. Until says when the next try will be.
func (e *BreakerOpenError) Error() string {
	return "source: " + e.Provider + " token endpoint failing: circuit breaker open"
}

// Is matches ErrBreakerOpen.
func (e *BreakerOpenError) Is(target error) bool { return target == ErrBreakerOpen }

// ErrInvalidConfig is wrapped by every error New returns for a bad Config.
var ErrInvalidConfig = errors.New("source: invalid config")

func configError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
}
