package source

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/safehttp"
)

// maxLifetime bounds an expires_in so that time arithmetic cannot overflow.
const maxLifetime = 100 * 365 * 24 * time.Hour

// decode turns a reply into a token or an *Error. start is when the
// request was sent: lifetimes count from then.
func (e *endpoint) decode(resp *http.Response, body []byte, start time.Time, scrub scrubber) (*Token, error) {
	status := resp.StatusCode
	ct := resp.Header.Get("Content-Type")
	if status >= 300 && status < 400 {
		loc := "elsewhere"
		if u, err := resp.Location(); err == nil {
			loc = u.Scheme + "://" + u.Host + u.Path
		}
		return nil, &Error{Provider: e.r.p.Name, StatusCode: status, Code: CodeInvalidRequest,
			Description: scrub.clean("redirected to " + loc + "; token requests follow no redirect: set Config.TokenURL to the final address")}
	}
	if status < 200 || status > 299 {
		return nil, e.errorReply(resp, body, scrub)
	}
	fields, err := parseFields(ct, body)
	if err != nil {
		return nil, &Error{Provider: e.r.p.Name, StatusCode: status, Code: CodeServerError,
			Description: "the reply is not a JSON object (" + scrub.clean(mediaType(ct)) + ")"}
	}
	str := func(k string) string { s, _ := fields[k].(string); return s }
	if str(e.reply.AccessToken) == "" && (e.reply.HeaderValue == "" || str(e.reply.HeaderValue) == "") {
		// RFC 6749 §5.2 errors sometimes come with a 200.
		if info, ok := e.decodeInfo(status, resp.Header, []byte(scrub.scrub(string(body)))); ok {
			return nil, e.newError(resp, status, info, scrub)
		}
		return nil, &Error{Provider: e.r.p.Name, StatusCode: status, Code: CodeServerError,
			Description: fmt.Sprintf("the reply has no %q field", e.reply.AccessToken)}
	}
	tok := &Token{Extra: map[string]any{}}
	consumed := map[string]bool{}
	take := func(k string) any { consumed[k] = true; return fields[k] }
	bad := func(what string) error {
		return &Error{Provider: e.r.p.Name, StatusCode: status, Code: CodeServerError, Description: what}
	}
	var ok bool
	if v := take(e.reply.AccessToken); v != nil {
		if tok.AccessToken, ok = v.(string); !ok {
			return nil, bad(fmt.Sprintf("the reply's %q is not a string", e.reply.AccessToken))
		}
	}
	if v := take(e.reply.TokenType); v != nil {
		if tok.TokenType, ok = v.(string); !ok {
			return nil, bad(fmt.Sprintf("the reply's %q is not a string", e.reply.TokenType))
		}
	}
	if tok.TokenType == "" || strings.EqualFold(tok.TokenType, "bearer") {
		tok.TokenType = "Bearer"
	}
	if v := take(e.reply.RefreshToken); v != nil {
		if tok.RefreshToken, ok = v.(string); !ok {
			return nil, bad(fmt.Sprintf("the reply's %q is not a string", e.reply.RefreshToken))
		}
	}
	tok.Scope = scopeString(take(e.reply.Scope))
	if e.reply.HeaderValue != "" {
		if v := take(e.reply.HeaderValue); v != nil {
			if tok.Authorization, ok = v.(string); !ok {
				return nil, bad(fmt.Sprintf("the reply's %q is not a string", e.reply.HeaderValue))
			}
		}
	}
	life, err := parseExpiresIn(take(e.reply.ExpiresIn))
	if err != nil {
		return nil, bad(fmt.Sprintf("the reply's %q: %v", e.reply.ExpiresIn, err))
	}
	if life == 0 {
		life = e.r.p.DefaultLifetime
	}
	if life > 0 {
		tok.Expiry = start.Add(life)
	}
	for k, v := range fields {
		if !consumed[k] {
			tok.Extra[k] = v
		}
	}
	if err := safehttp.CheckHeaderToken(tok.AccessToken, tok.Authorization); err != nil {
		return nil, bad(err.Error())
	}
	return tok, nil
}

// parseFields decodes a JSON object reply, or a form-encoded one when the
// content type says so (GitHub-style endpoints). JSON numbers stay
// json.Number.
func parseFields(contentType string, body []byte) (map[string]any, error) {
	switch mediaType(contentType) {
	case "application/x-www-form-urlencoded", "text/plain":
		if !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
			vals, err := url.ParseQuery(string(body))
			if err != nil {
				return nil, err
			}
			m := make(map[string]any, len(vals))
			for k, v := range vals {
				m[k] = v[0]
			}
			return m, nil
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("null")
	}
	if _, err := dec.Token(); err != io.EOF { // More is false before a stray '}' or ']'
		return nil, errors.New("trailing data")
	}
	return m, nil
}

func mediaType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "unknown content type"
	}
	return mt
}

// scopeString accepts a scope as a string or a list of strings.
func scopeString(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case []any:
		parts := make([]string, 0, len(s))
		for _, p := range s {
			if ps, ok := p.(string); ok {
				parts = append(parts, ps)
			}
		}
		return strings.Join(parts, " ")
	}
	return ""
}

// parseExpiresIn reads an expires_in value: a JSON number, a decimal
// string ("43200", as gestao.plus sends), or nil. Zero, a negative value
// and nil mean "not given" and return 0. A value past 100 years is capped,
// also one past float64's range (1e400, or 400 digits): it means "far
// future". Anything else is an error.
func parseExpiresIn(v any) (time.Duration, error) {
	var f float64
	switch x := v.(type) {
	case nil:
		return 0, nil
	case json.Number:
		var err error
		if f, err = parseSeconds(string(x)); err != nil {
			return 0, errors.New("not a number")
		}
	case float64:
		f = x
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return 0, nil
		}
		var err error
		if f, err = parseSeconds(s); err != nil {
			return 0, errors.New("not a number of seconds")
		}
	default:
		return 0, errors.New("not a number of seconds")
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errors.New("not a finite number")
	}
	if f <= 0 {
		return 0, nil
	}
	if f >= maxLifetime.Seconds() {
		return maxLifetime, nil
	}
	return time.Duration(f * float64(time.Second)), nil
}

// parseSeconds parses a decimal number. A well-formed number past
// float64's range is ±Inf and no error (ParseFloat says ErrRange); "Inf"
// and "NaN" spelled out are returned as they are, for the caller to refuse.
func parseSeconds(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && errors.Is(err, strconv.ErrRange) && math.IsInf(f, 0) {
		return math.Copysign(math.MaxFloat64, f), nil // past any lifetime: capped below
	}
	return f, err
}
