package source

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html"
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
	// minSecretLen: a shorter secret is scrubbed only where it stands as
	// a word of its own (not inside another word), so that a one-letter
	// password does not turn every "a" of a description into [REDACTED].
	minSecretLen = 4
)

// scrubber removes secrets from provider text. The zero value removes
// nothing but still bounds and cleans.
type scrubber struct {
	secrets []string // every form of every secret, longest first
	short   []string // forms of secrets shorter than minSecretLen: whole words only
}

// with returns a scrubber that also removes more, in each form a provider
// may echo it back: as it is, form-encoded, path-escaped, JSON-escaped
// (with and without HTML escaping, with and without "\/"), and
// HTML-escaped. clean also decodes HTML entities and percent-escapes of
// any style, so that other spellings are found as well.
func (s scrubber) with(more ...string) scrubber {
	out := scrubber{secrets: slices.Clone(s.secrets), short: slices.Clone(s.short)}
	for _, v := range more {
		if v == "" {
			continue
		}
		j := jsonEscape(v, false)
		forms := []string{v, url.QueryEscape(v), url.PathEscape(v), jsonEscape(v, true), j,
			strings.ReplaceAll(j, "/", `\/`), html.EscapeString(v), htmlEscapeNamed(v)}
		for _, f := range forms {
			list := &out.secrets
			if len(v) < minSecretLen {
				list = &out.short
			}
			if !slices.Contains(*list, f) {
				*list = append(*list, f)
			}
		}
	}
	// Longest first, so that a secret inside another is not half-replaced.
	slices.SortStableFunc(out.secrets, func(a, b string) int { return len(b) - len(a) })
	slices.SortStableFunc(out.short, func(a, b string) int { return len(b) - len(a) })
	return out
}

// htmlEscapeNamed is v HTML-escaped with named and hex entities, as other
// escapers than Go's write them.
var htmlEscapeNamed = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#x27;").Replace

// empty reports whether s knows no secret.
func (s scrubber) empty() bool { return len(s.secrets) == 0 && len(s.short) == 0 }

// replace replaces every known form of every secret in text, and reports
// whether it found one.
func (s scrubber) replace(text string) (string, bool) {
	found := false
	for _, v := range s.secrets {
		if strings.Contains(text, v) {
			text, found = strings.ReplaceAll(text, v, redacted), true
		}
	}
	for _, v := range s.short {
		var hit bool
		if text, hit = replaceWord(text, v); hit {
			found = true
		}
	}
	return text, found
}

// replaceWord replaces v in text where it is not part of a longer word
// (the characters around it are not letters or digits).
func replaceWord(text, v string) (string, bool) {
	var b strings.Builder
	found, rest := false, text
	for {
		i := strings.Index(rest, v)
		if i < 0 {
			break
		}
		before, _ := utf8.DecodeLastRuneInString(rest[:i])
		after, _ := utf8.DecodeRuneInString(rest[i+len(v):])
		if (i > 0 && wordRune(before)) || (i+len(v) < len(rest) && wordRune(after)) {
			b.WriteString(rest[:i+len(v)])
		} else {
			b.WriteString(rest[:i])
			b.WriteString(redacted)
			found = true
		}
		rest = rest[i+len(v):]
	}
	if !found {
		return text, false
	}
	b.WriteString(rest)
	return b.String(), true
}

func wordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// scrub removes every known secret from text, before anything else is
// done to it (tags stripped, bounds applied): in the forms with knows,
// then in text with its HTML entities and its percent-escapes decoded (a
// secret spelled "&#60;" or "%2a"), up to three layers deep. When a
// decoded text held a secret, the decoded, scrubbed text is returned.
func (s scrubber) scrub(text string) string {
	if s.empty() {
		return text
	}
	text, _ = s.replace(text)
	for range 3 {
		decoded := false
		if strings.Contains(text, "&") {
			if u := html.UnescapeString(text); u != text {
				if r, hit := s.replace(u); hit {
					text, decoded = r, true
				}
			}
		}
		if strings.Contains(text, "%") {
			for _, unescape := range []func(string) (string, error){url.PathUnescape, url.QueryUnescape} {
				if u, err := unescape(text); err == nil && u != text {
					if r, hit := s.replace(u); hit {
						text, decoded = r, true
						break
					}
				}
			}
		}
		if !decoded {
			break
		}
	}
	return text
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
// at most maxDescription bytes. Secrets are replaced first, and again
// after folding (which could join the parts of one); the bound comes last.
func (s scrubber) clean(text string) string {
	text = s.scrub(text)
	longest := 0
	if len(s.secrets) > 0 {
		longest = len(s.secrets[0])
	}
	text, more := fold(text, maxDescription+longest+1)
	text = s.scrub(text)
	if len(text) <= maxDescription && !more {
		return text
	}
	cut := maxDescription
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return strings.TrimSpace(text[:cut]) + "…"
}

// fold replaces invalid UTF-8 and control characters, folds runs of white
// space into one space and trims the ends. It stops after about limit
// bytes; more reports that it did.
func fold(text string, limit int) (folded string, more bool) {
	var b strings.Builder
	space := false
	for _, r := range text {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if b.Len() >= limit {
			more = true
			break
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String(), more
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
