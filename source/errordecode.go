package source

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/oauth2code"
	iretry "github.com/tokenhttp/tokenhttp/internal/retry"
)

// errorReply builds the *Error for a non-2xx reply.
func (e *endpoint) errorReply(resp *http.Response, body []byte, scrub scrubber) error {
	// Secrets go before anything else is done to the text: stripping an
	// HTML page's tags would cut a secret holding '<', and bounding it
	// could cut one in two, leaving a part that no longer matches.
	body = []byte(scrub.scrub(string(body)))
	info, _ := e.decodeInfo(resp.StatusCode, resp.Header, body)
	return e.newError(resp, resp.StatusCode, info, scrub)
}

// decodeInfo runs the provider's error decoder or the generic one. ok
// reports a recognized error shape.
func (e *endpoint) decodeInfo(status int, h http.Header, body []byte) (info ErrorInfo, ok bool) {
	if d := e.r.p.DecodeError; d != nil {
		err := callHook("Provider.DecodeError", e.scrub, func() error { info = d(status, h, body); return nil })
		if err != nil {
			return ErrorInfo{Description: "the provider's error decoder failed"}, false
		}
		return info, info.Code != "" || info.Normalized != ""
	}
	return decodeErrorBody(h.Get("Content-Type"), body)
}

func (e *endpoint) newError(resp *http.Response, status int, info ErrorInfo, scrub scrubber) *Error {
	code := info.Normalized
	if code == "" {
		code = oauth2code.Normalize(status, info.Code)
	}
	return &Error{
		Provider: e.r.p.Name, StatusCode: status, Code: code,
		ProviderCode: scrub.clean(info.Code), Description: scrub.clean(info.Description),
		URI:        scrub.clean(info.URI),
		RetryAfter: retryAfter(resp.Header.Get("Retry-After")),
	}
}

func retryAfter(h string) time.Duration {
	d, _ := iretry.ParseRetryAfter(h, time.Now())
	return d
}

// stripTags keeps the text of an HTML page, roughly: what is outside tags.
func stripTags(s string) string {
	var b strings.Builder
	in := false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
			b.WriteByte(' ')
		case r == '>':
			in = false
		case !in:
			b.WriteRune(r)
		}
	}
	return b.String()
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

// DefaultDecodeError is the error decoder used when Provider.DecodeError
// is nil. It knows RFC 6749 §5.2 ({"error","error_description",
// "error_uri"}, error a string or a number, in JSON or a form body),
// problem+json ({"type","title","status","detail"}), {"code","msg"} and
// {"message"}, and "code: description" plain text; of anything else it
// keeps the body as the description (the text of an HTML page). A
// Provider's DecodeError may call it and adjust what it returns.
func DefaultDecodeError(status int, h http.Header, body []byte) ErrorInfo {
	info, _ := decodeErrorBody(h.Get("Content-Type"), body)
	return info
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
	if code, desc, found := strings.Cut(strings.TrimSpace(text), ":"); found && oauth2code.IsRFC(strings.TrimSpace(code)) {
		return ErrorInfo{Code: strings.TrimSpace(code), Description: strings.TrimSpace(desc)}, true
	}
	return ErrorInfo{Description: text}, false
}

func isProblem(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "application/problem+json"
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
