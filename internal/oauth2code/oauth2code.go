// Package oauth2code normalizes the error codes token endpoints send to
// RFC 6749 §5.2's, for source.Error.Code: the source package's dialects
// and oauth2adapt share it.
package oauth2code

import (
	"net/http"
	"strconv"
	"strings"
)

// The normalized codes. The first six are RFC 6749 §5.2's.
const (
	InvalidRequest         = "invalid_request"
	InvalidClient          = "invalid_client"
	InvalidGrant           = "invalid_grant"
	UnauthorizedClient     = "unauthorized_client"
	UnsupportedGrantType   = "unsupported_grant_type"
	InvalidScope           = "invalid_scope"
	ServerError            = "server_error"
	TemporarilyUnavailable = "temporarily_unavailable"
)

// rfc are the codes passed through as they are.
var rfc = map[string]bool{
	InvalidRequest: true, InvalidClient: true, InvalidGrant: true,
	UnauthorizedClient: true, UnsupportedGrantType: true, InvalidScope: true,
	ServerError: true, TemporarilyUnavailable: true,
	"access_denied": true, "unsupported_response_type": true,
	"invalid_token": true, "insufficient_scope": true,
}

// provider maps provider codes that are not RFC 6749's (SerproID's).
var provider = map[string]string{
	"AUTENTICACAO_INVALIDA_CLIENT_OAUTH": InvalidClient,
	"CAMPO_OBRIGATORIO":                  InvalidRequest,
	"CLIENTE_OAUTH_NAO_IDENTIFICADO":     InvalidRequest,
	"VALOR_PARAMETRO_INVALIDO":           InvalidRequest,
	"FALHA_TOKEN_MANUTENCAO_APLICACAO":   ServerError,
}

// IsRFC reports whether code is an RFC 6749 or RFC 6750 error code, as
// sent (lower case).
func IsRFC(code string) bool { return rfc[code] }

// Normalize maps a provider's code and the HTTP status to a normalized
// code: an RFC code as it is (in any case), a provider code it knows as
// its meaning, a number of a 4xx or 5xx status (DirectLink sends the
// status as the code) as that status, else the status alone.
func Normalize(status int, code string) string {
	if c := strings.ToLower(strings.TrimSpace(code)); rfc[c] {
		return c
	}
	if c, ok := provider[code]; ok {
		return c
	}
	if n, err := strconv.Atoi(code); err == nil && n >= 400 && n < 600 {
		status = n
	}
	return ForStatus(status)
}

// ForStatus derives a code from an HTTP status alone.
func ForStatus(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return TemporarilyUnavailable
	case status >= 500:
		return ServerError
	case status == http.StatusUnauthorized:
		return InvalidClient
	case status == http.StatusForbidden:
		return UnauthorizedClient
	default:
		return InvalidRequest
	}
}
