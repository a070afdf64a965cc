package oauth2adapt

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/tokenhttp/tokenhttp/source"
)

// providerName is the source.Error Provider of an x/oauth2 refusal.
const providerName = "oauth2"

// convertError turns an *oauth2.RetrieveError in err into a *source.Error
// and wraps any other error.
func convertError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return fmt.Errorf("oauth2adapt: the x/oauth2 TokenSource failed: %w", err)
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	code := clean(re.ErrorCode, maxCode)
	return &source.Error{
		Provider:     providerName,
		StatusCode:   status,
		Code:         normalizeCode(status, code),
		ProviderCode: code,
		Description:  clean(re.ErrorDescription, maxDescription),
		URI:          clean(re.ErrorURI, maxDescription),
	}
}

// normalizeCode maps an RFC 6749 error code and the HTTP status to a
// source.Code constant, as the source package's dialects do: an RFC code
// as it is, a provider code it knows as its meaning, a number of a 4xx or
// 5xx status as that status, else the status alone. (A copy of the source
// package's unexported normalizeCode; keep them in step.)
func normalizeCode(status int, code string) string {
	if c := strings.ToLower(code); rfcCodes[c] {
		return c
	}
	if c, ok := providerCodes[code]; ok {
		return c
	}
	if n, err := strconv.Atoi(code); err == nil && n >= 400 && n < 600 {
		status = n
	}
	switch {
	case status == http.StatusTooManyRequests:
		return source.CodeTemporarilyUnavailable
	case status >= 500:
		return source.CodeServerError
	case status == http.StatusUnauthorized:
		return source.CodeInvalidClient
	case status == http.StatusForbidden:
		return source.CodeUnauthorizedClient
	default:
		return source.CodeInvalidRequest
	}
}

// rfcCodes are the codes passed through as they are.
var rfcCodes = map[string]bool{
	source.CodeInvalidRequest: true, source.CodeInvalidClient: true, source.CodeInvalidGrant: true,
	source.CodeUnauthorizedClient: true, source.CodeUnsupportedGrantType: true, source.CodeInvalidScope: true,
	source.CodeServerError: true, source.CodeTemporarilyUnavailable: true,
	"access_denied": true, "unsupported_response_type": true,
	"invalid_token": true, "insufficient_scope": true,
}

// providerCodes maps provider codes that are not RFC 6749's (SerproID's).
var providerCodes = map[string]string{
	"AUTENTICACAO_INVALIDA_CLIENT_OAUTH": source.CodeInvalidClient,
	"CAMPO_OBRIGATORIO":                  source.CodeInvalidRequest,
	"CLIENTE_OAUTH_NAO_IDENTIFICADO":     source.CodeInvalidRequest,
	"VALOR_PARAMETRO_INVALIDO":           source.CodeInvalidRequest,
	"FALHA_TOKEN_MANUTENCAO_APLICACAO":   source.CodeServerError,
}

// Bounds of provider text kept in a source.Error.
const (
	maxDescription = 256
	maxCode        = 64
)

// clean returns provider text safe to show: invalid UTF-8 and control
// characters dropped, runs of white space folded, at most limit bytes.
// (The secrets of an x/oauth2 source are not known here; RetrieveError's
// Body, where a misbehaving endpoint may echo them, is never used.)
func clean(text string, limit int) string {
	var b strings.Builder
	space, cut := false, false
	for _, r := range text {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		n := utf8.RuneLen(r)
		if space {
			n++
		}
		if b.Len()+n > limit {
			cut = true
			break
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	if cut {
		b.WriteString("…")
	}
	return b.String()
}
