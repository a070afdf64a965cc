package source

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Normalized error codes of Error.Code. The first six are RFC 6749 §5.2's.
const (
	CodeInvalidRequest       = "invalid_request"
	CodeInvalidClient        = "invalid_client"
	CodeInvalidGrant         = "invalid_grant"
	CodeUnauthorizedClient   = "unauthorized_client"
	CodeUnsupportedGrantType = "unsupported_grant_type"
	CodeInvalidScope         = "invalid_scope"
	// CodeServerError is any 5xx, and a reply the source cannot use.
	CodeServerError = "server_error"
	// CodeTemporarilyUnavailable is a 429 or an endpoint that says so.
	CodeTemporarilyUnavailable = "temporarily_unavailable"
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

// ErrorInfo is what an error decoder extracted from an error reply, before
// normalization. Provider.DecodeError returns it.
type ErrorInfo struct {
	Code        string // the provider's code as it sent it; a number is its decimal text
	Description string
	URI         string
	// Normalized, if set, is the Code constant to report; otherwise it is
	// derived from Code and the status.
	Normalized string
}

// decodeErrorBody recognizes every error shape we know: RFC 6749
// ({"error","error_description","error_uri"}, with error a string or a
// number), problem+json ({"type","title","status","detail"}), SerproID's
// {"code","msg","debug"} and {"message"}. Anything else yields the body's
// first bytes as the description. ok reports whether a known JSON shape
// was found.
func decodeErrorBody(contentType string, body []byte) (info ErrorInfo, ok bool) {
	if mediaType(contentType) == "application/x-www-form-urlencoded" {
		if q, err := url.ParseQuery(string(body)); err == nil && q.Get("error") != "" {
			return ErrorInfo{Code: q.Get("error"), Description: q.Get("error_description"), URI: q.Get("error_uri")}, true
		}
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) == nil && m != nil {
		str := func(k string) string {
			raw, found := m[k]
			if !found {
				return ""
			}
			var s string
			if json.Unmarshal(raw, &s) == nil {
				return s
			}
			var n json.Number
			if json.Unmarshal(raw, &n) == nil {
				return n.String()
			}
			return ""
		}
		switch {
		case str("error") != "":
			return ErrorInfo{Code: str("error"), Description: str("error_description"), URI: str("error_uri")}, true
		case str("title") != "" && (str("status") != "" || str("type") != "" || isProblem(contentType)):
			return ErrorInfo{Code: str("title"), Description: str("detail"), URI: str("type")}, true
		case str("code") != "":
			return ErrorInfo{Code: str("code"), Description: str("msg")}, true
		case str("message") != "":
			return ErrorInfo{Description: str("message")}, true
		}
	}
	text := string(body)
	if isHTML(contentType, body) {
		return ErrorInfo{Description: stripTags(text)}, false
	}
	// Plain text such as "invalid_grant: OTP already used".
	if code, desc, found := strings.Cut(strings.TrimSpace(text), ":"); found && rfcCodes[strings.TrimSpace(code)] {
		return ErrorInfo{Code: strings.TrimSpace(code), Description: strings.TrimSpace(desc)}, true
	}
	return ErrorInfo{Description: text}, false
}

func isProblem(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "application/problem+json"
}

// rfcCodes are the codes passed through as they are.
var rfcCodes = map[string]bool{
	CodeInvalidRequest: true, CodeInvalidClient: true, CodeInvalidGrant: true,
	CodeUnauthorizedClient: true, CodeUnsupportedGrantType: true, CodeInvalidScope: true,
	CodeServerError: true, CodeTemporarilyUnavailable: true,
	"access_denied": true, "unsupported_response_type": true,
	"invalid_token": true, "insufficient_scope": true,
}

// providerCodes maps provider codes that are not RFC 6749's.
var providerCodes = map[string]string{
	// SerproID
	"AUTENTICACAO_INVALIDA_CLIENT_OAUTH": CodeInvalidClient,
	"CAMPO_OBRIGATORIO":                  CodeInvalidRequest,
	"CLIENTE_OAUTH_NAO_IDENTIFICADO":     CodeInvalidRequest,
	"VALOR_PARAMETRO_INVALIDO":           CodeInvalidRequest,
	"FALHA_TOKEN_MANUTENCAO_APLICACAO":   CodeServerError,
}

// normalizeCode maps a provider's code and the status to a Code constant.
// numeric is the mapping of a numeric code (DirectLink sends the status as
// the code), nil for the generic one.
func normalizeCode(status int, providerCode string) string {
	if c := strings.ToLower(strings.TrimSpace(providerCode)); rfcCodes[c] {
		return c
	}
	if c, ok := providerCodes[providerCode]; ok {
		return c
	}
	if n, err := strconv.Atoi(providerCode); err == nil && n >= 400 && n < 600 {
		status = n
	}
	return codeForStatus(status)
}

// codeForStatus derives a code from an HTTP status alone.
func codeForStatus(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return CodeTemporarilyUnavailable
	case status >= 500:
		return CodeServerError
	case status == http.StatusUnauthorized:
		return CodeInvalidClient
	case status == http.StatusForbidden:
		return CodeUnauthorizedClient
	default:
		return CodeInvalidRequest
	}
}

// Bounds of provider text kept in an Error.
const (
	maxDescription = 256
	minSecretLen   = 4 // shorter "secrets" would scrub ordinary words
)

// scrubber removes secrets from provider text. The zero value removes
// nothing but still bounds and cleans.
type scrubber struct{ secrets []string }

// with returns a scrubber that also removes more, in each form a provider
// may echo it back: as it is, form-encoded, path-escaped and JSON-escaped
// (with and without HTML escaping).
func (s scrubber) with(more ...string) scrubber {
	out := scrubber{secrets: append([]string(nil), s.secrets...)}
	for _, v := range more {
		if len(v) < minSecretLen {
			continue
		}
		forms := []string{v, url.QueryEscape(v), url.PathEscape(v), jsonEscape(v, true), jsonEscape(v, false)}
		for i, f := range forms {
			if !slices.Contains(forms[:i], f) {
				out.secrets = append(out.secrets, f)
			}
		}
	}
	// Longest first, so that a secret inside another is not half-replaced.
	slices.SortStableFunc(out.secrets, func(a, b string) int { return len(b) - len(a) })
	return out
}

// jsonEscape is v as it appears inside a JSON string.
func jsonEscape(v string, html bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(html)
	_ = enc.Encode(v)
	out := strings.TrimSuffix(b.String(), "\n")
	return strings.TrimSuffix(strings.TrimPrefix(out, `"`), `"`)
}

// clean returns text safe to show: every known secret replaced, invalid
// UTF-8 and control characters replaced, runs of white space folded, and
// at most maxDescription bytes.
func (s scrubber) clean(text string) string {
	for _, v := range s.secrets {
		if v != "" {
			text = strings.ReplaceAll(text, v, redacted)
		}
	}
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
		if b.Len()+n > maxDescription {
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
	return strings.TrimSpace(b.String())
}

// isHTML reports whether body looks like an HTML page, whose text is noise.
func isHTML(contentType string, body []byte) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "text/html" {
		return true
	}
	b := bytes.TrimSpace(body)
	return len(b) > 0 && b[0] == '<'
}

// ErrInvalidConfig is wrapped by every error New returns for a bad Config.
var ErrInvalidConfig = errors.New("source: invalid config")

func configError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
}
