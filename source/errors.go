package source

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/certs"
	"github.com/tokenhttp/tokenhttp/internal/oauth2code"
	"github.com/tokenhttp/tokenhttp/telemetry"
)

// Normalized error codes of Error.Code. The first six are RFC 6749 §5.2's.
const (
	CodeInvalidRequest       = oauth2code.InvalidRequest       // "invalid_request"
	CodeInvalidClient        = oauth2code.InvalidClient        // "invalid_client"
	CodeInvalidGrant         = oauth2code.InvalidGrant         // "invalid_grant"
	CodeUnauthorizedClient   = oauth2code.UnauthorizedClient   // "unauthorized_client"
	CodeUnsupportedGrantType = oauth2code.UnsupportedGrantType // "unsupported_grant_type"
	CodeInvalidScope         = oauth2code.InvalidScope         // "invalid_scope"
	// CodeServerError, "server_error", is any 5xx, and a reply the source
	// cannot use.
	CodeServerError = oauth2code.ServerError
	// CodeTemporarilyUnavailable, "temporarily_unavailable", is a 429 or
	// an endpoint that says so.
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

	refreshDead bool // see NeedsNewRefreshToken
	// ClockSkew, for an invalid_client, is the server's clock (its Date
	// header) minus the local clock when they differ by more than
	// maxClockSkew; zero otherwise. A skewed clock is the usual cause of a
	// refused client assertion (iat, exp) or certificate (validity).
	ClockSkew time.Duration
}

// Error says which endpoint refused, with which code and status, and the
// provider's own code and description. It carries no secret.
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
	if e.ClockSkew != 0 {
		fmt.Fprintf(&b, " (the server's clock is %s off the local one: check the clock)", e.ClockSkew.Round(time.Second))
	}
	if e.refreshDead {
		b.WriteString("; a new refresh token is needed")
	}
	return b.String()
}

// ErrorType returns Code, for the telemetry.AttrErrorType attribute.
func (e *Error) ErrorType() string { return e.Code }

// Temporary reports whether trying again later may succeed: a 5xx, a 429,
// or a reply outside 4xx whose code says the endpoint failed (a 200 that
// is not a usable token). Any other 4xx is final.
func (e *Error) Temporary() bool {
	if e.StatusCode >= 400 && e.StatusCode < 500 {
		return e.StatusCode == http.StatusTooManyRequests // a 4xx is final, whatever its body says
	}
	return e.StatusCode >= 500 || e.Code == CodeServerError || e.Code == CodeTemporarilyUnavailable
}

// NotTokenEndpoint reports whether the reply says that the token URL is
// not a token endpoint, rather than refusing the request: a 404, 405 or
// 410, a redirect (never followed), or a 2xx that is not a token (an HTML
// page, say). Check Config.TokenURL then; the credentials were not
// checked.
func (e *Error) NotTokenEndpoint() bool {
	switch s := e.StatusCode; {
	case s == http.StatusNotFound, s == http.StatusMethodNotAllowed, s == http.StatusGone:
		return true
	case s >= 200 && s < 400:
		return true
	}
	return false
}

// CredentialsRefused reports whether the endpoint refused the client's
// credentials or grant (invalid_client, unauthorized_client,
// invalid_grant), rather than the request or the URL.
func (e *Error) CredentialsRefused() bool {
	switch e.Code {
	case CodeInvalidClient, CodeUnauthorizedClient, CodeInvalidGrant:
		return !e.NotTokenEndpoint()
	}
	return false
}

// Hint says what to check for e's Code, for a person reading the error;
// "" when there is nothing to add.
func (e *Error) Hint() string {
	if e.refreshDead {
		return refreshDeadHint
	}
	if e.NotTokenEndpoint() {
		return "the token URL is not a token endpoint; check Config.TokenURL (the credentials were not checked)"
	}
	switch e.Code {
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

// sentinel is the type of the package's sentinel errors: a fixed text and
// the error.type it reports in telemetry.
type sentinel struct{ msg, typ string }

func (e *sentinel) Error() string     { return e.msg }
func (e *sentinel) ErrorType() string { return e.typ }

// ErrClosed is returned by a CachedSource's Token after Close when it has
// no valid token left, and wrapped by the error of a fetch Close cancelled.
var ErrClosed error = &sentinel{"source: closed", telemetry.ErrorClosed}

// ErrBreakerOpen is matched (errors.Is) by the error Token returns while
// the source's circuit breaker is open and no valid token is cached: a
// *BreakerOpenError.
var ErrBreakerOpen error = &sentinel{"source: circuit breaker open", telemetry.ErrorBreakerOpen}

// ErrRefreshTokenSpent is matched (errors.Is) by the error of a GrantType
// RefreshToken source whose refresh token was sent in a request that
// failed after the server may have acted on it: it is never sent twice,
// so a new refresh token is needed.
var ErrRefreshTokenSpent error = &sentinel{"source: refresh token spent; a new one is needed", telemetry.ErrorRefreshTokenSpent}

// ErrStaticTokenRejected is returned by a StaticSource's Token once its
// token was invalidated: a static token is never renewed, so an API's
// rejection is final until a new one is issued by hand.
var ErrStaticTokenRejected error = &sentinel{"source: static token rejected", telemetry.ErrorStaticRejected}

// Errors of the client certificate helpers (ClientCertificateFiles,
// ClientCertificatePKCS12), for errors.Is.
var (
	// ErrIncorrectPassword: a PKCS#12 password is wrong.
	ErrIncorrectPassword = certs.ErrIncorrectPassword
	// ErrKeyMismatch: a private key is not its certificate's.
	ErrKeyMismatch = certs.ErrKeyMismatch
	// ErrCertificateExpired: a certificate's validity period has ended or
	// not begun.
	ErrCertificateExpired = certs.ErrExpired
)

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

// ErrorType returns telemetry.ErrorBreakerOpen.
func (e *BreakerOpenError) ErrorType() string { return telemetry.ErrorBreakerOpen }

// ExpiredError is returned by Token when the token endpoint issued a token
// that had expired by the time its reply arrived: its lifetime was shorter
// than the request took, or the endpoint's clock is not ours (check the
// clocks, the latency to the endpoint and the lifetime it grants). Such a
// token is neither returned nor cached: a TokenSource returns a token that
// is valid now, or an error.
type ExpiredError struct {
	Provider string
	Lifetime time.Duration // the lifetime the endpoint granted (expires_in)
	Took     time.Duration // how long the answered request took
}

// Error gives the lifetime and how long the request took.
func (e *ExpiredError) Error() string {
	return fmt.Sprintf("source: %s token expired before it arrived (lifetime %v, request took %v)", e.Provider, e.Lifetime, e.Took)
}

// ErrorType returns telemetry.ErrorExpiredOnArrival.
func (e *ExpiredError) ErrorType() string { return telemetry.ErrorExpiredOnArrival }

// FetchError is a token request that got no reply: a network error, a
// timeout, or a cancelled fetch. errors.Is sees the cause
// (context.DeadlineExceeded, say). Its text is scrubbed of the config's
// secrets.
type FetchError struct {
	Provider string
	Err      error
	msg      string // Err's text, scrubbed
}

// Error says which endpoint could not be reached, and why.
func (e *FetchError) Error() string {
	return "source: " + e.Provider + " token endpoint unreachable: " + e.msg
}

// Unwrap returns the cause.
func (e *FetchError) Unwrap() error { return e.Err }

// ErrorType returns telemetry.ErrorNetwork, or "" when the cause is a
// context's end or a timeout (the classifier then says which).
func (e *FetchError) ErrorType() string {
	var tm interface{ Timeout() bool }
	if isContextErr(e.Err) || (errors.As(e.Err, &tm) && tm.Timeout()) {
		return ""
	}
	return telemetry.ErrorNetwork
}

// HookError is an error returned by a user hook (Config.PasswordFunc,
// Provider.Prepare, ...), or its panic. Its text is scrubbed of the
// config's secrets; Unwrap returns the hook's own error.
type HookError struct {
	Hook string // "Config.PasswordFunc", "Provider.Prepare", ...
	Err  error
	msg  string
}

// Error names the hook and what it said.
func (e *HookError) Error() string { return "source: " + e.Hook + ": " + e.msg }

// Unwrap returns the hook's error.
func (e *HookError) Unwrap() error { return e.Err }

// ErrorType returns telemetry.ErrorHook, or "" when the hook returned a
// context's end.
func (e *HookError) ErrorType() string {
	if isContextErr(e.Err) {
		return ""
	}
	return telemetry.ErrorHook
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// ErrInvalidConfig is matched (errors.Is) by every error New returns for a
// bad Config: a *ConfigError.
var ErrInvalidConfig = errors.New("source: invalid config")

// ConfigError is a Config that New refuses. Field names the Config field
// to fix ("TokenURL", "ClientSecret", "Retry", ...); Reason says what is
// wrong with it. It matches ErrInvalidConfig.
type ConfigError struct {
	Field  string
	Reason string
	Err    error // the Provider's Validate error, if that is the reason
}

// Error is "source: invalid config: " and the reason, which names the field.
func (e *ConfigError) Error() string { return ErrInvalidConfig.Error() + ": " + e.Reason }

// Is matches ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// ErrorType returns telemetry.ErrorInvalidConfig, for the
// telemetry.AttrErrorType attribute.
func (e *ConfigError) ErrorType() string { return telemetry.ErrorInvalidConfig }

// Unwrap returns the Provider's Validate error, or nil.
func (e *ConfigError) Unwrap() error { return e.Err }

func configError(field, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &ConfigError{Field: field, Reason: err.Error(), Err: errors.Unwrap(err)}
}
