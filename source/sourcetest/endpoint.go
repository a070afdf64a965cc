package sourcetest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// maxTokenBody is the most a token endpoint reads of a request body.
const maxTokenBody = 64 << 10

// Media types the dialects accept.
const (
	formType = "application/x-www-form-urlencoded"
	jsonType = "application/json"
)

// responseWriter is http.ResponseWriter; the alias keeps dialect
// signatures short.
type responseWriter = http.ResponseWriter

// tokenRequest is a request to a token endpoint, its body already read.
type tokenRequest struct {
	r         *http.Request
	body      []byte
	mediaType string // Content-Type without parameters, lower case
}

// fault is a failure injected by a knob.
type fault int

const (
	noFault fault = iota
	resetFault
	hangFault
	failFault
)

// serveToken is the token endpoint: counts and records the request,
// applies latency and faults, checks method and size, then hands the
// request to the dialect.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxTokenBody+1))
	tooBig := len(body) > maxTokenBody
	if tooBig {
		body = body[:maxTokenBody]
	}
	q := &tokenRequest{r: r, body: body, mediaType: mediaType(r.Header.Get("Content-Type"))}
	grantType := sniffGrant(q)

	s.mu.Lock()
	s.tokenRequests++
	s.byGrant[grantType]++
	s.last = RecordedRequest{
		Method:      r.Method,
		Header:      r.Header.Clone(),
		Body:        body, // never written to; LastTokenRequest copies it
		ContentType: r.Header.Get("Content-Type"),
	}
	latency := s.latency
	f, status, retryAfter := s.takeFault()
	s.mu.Unlock()

	if !s.wait(r.Context(), latency) {
		return // the client left
	}
	switch f {
	case resetFault:
		abort(w, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Le")
		return
	case hangFault:
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		abort(w, "")
		return
	case failFault:
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		s.fail(w, faultError(status))
		return
	}

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.fail(w, &tokenError{status: http.StatusMethodNotAllowed, code: "invalid_request",
			desc: "the token endpoint only accepts POST", param: "method"})
		return
	}
	if tooBig {
		s.fail(w, &tokenError{status: http.StatusRequestEntityTooLarge, code: "invalid_request",
			desc: "request body larger than 64 KiB", param: "body"})
		return
	}
	reply, e := s.d.token(s, q)
	if e != nil {
		s.fail(w, e)
		return
	}
	noStore(w)
	writeJSON(w, http.StatusOK, jsonType, reply)
}

// takeFault consumes the next injected fault, if any. s.mu must be held.
func (s *Server) takeFault() (f fault, status int, retryAfter string) {
	switch {
	case s.resetN > 0:
		s.resetN--
		return resetFault, 0, ""
	case s.hangN > 0:
		s.hangN--
		return hangFault, 0, ""
	case s.failN > 0:
		s.failN--
		return failFault, s.failStatus, s.failRetryAfter
	}
	return noFault, 0, ""
}

// wait sleeps for d. It returns false if ctx ends first, and returns early
// (true) when the server closes.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.closing:
		return true
	case <-ctx.Done():
		return false
	}
}

// fail writes e in the dialect's error shape.
func (s *Server) fail(w http.ResponseWriter, e *tokenError) {
	noStore(w)
	s.d.writeError(s, w, e)
}

// abort writes partial to the raw connection and closes it, so the client
// sees a network error. Where the connection cannot be hijacked (HTTP/2)
// it aborts the handler, which resets the stream.
func abort(w http.ResponseWriter, partial string) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	buf.WriteString(partial)
	buf.Flush()
	conn.Close()
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

// writeJSON writes v as the body, with status and content type ctype.
func writeJSON(w http.ResponseWriter, status int, ctype string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "sourcetest: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func mediaType(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	return mt
}

// sniffGrant returns the grant_type the request carries, whatever the
// dialect, for the Requests counter.
func sniffGrant(q *tokenRequest) string {
	f, err := parseFields(q.mediaType, q.body)
	if err != nil {
		return ""
	}
	g, _ := f.str("grant_type")
	return g
}

// fields parses the body, which must be in one of the accepted media
// types; a wrong media type or a malformed body is invalid_request.
func (q *tokenRequest) fields(accept ...string) (fields, *tokenError) {
	if !slices.Contains(accept, q.mediaType) {
		return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_request",
			desc: "Content-Type must be " + strings.Join(accept, " or "), param: "Content-Type"}
	}
	f, err := parseFields(q.mediaType, q.body)
	if err != nil {
		return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_request",
			desc: "malformed request body: " + err.Error()}
	}
	return f, nil
}

// field is one request parameter.
type field struct {
	kind fieldKind
	s    string          // the value, for kindString
	raw  json.RawMessage // the JSON text, for kindOther
	all  []string        // every value of a repeatable form parameter (resource, audience)
}

type fieldKind int

const (
	kindString fieldKind = iota // a form value or a JSON string
	kindNull                    // JSON null
	kindOther                   // any other JSON value
)

// fields are the parameters of a token request, from a form or a JSON
// object.
type fields map[string]field

// str returns a parameter's value if it is present, a string, and not
// empty (RFC 6749 §3.2: an empty parameter is an omitted one).
func (f fields) str(name string) (string, bool) {
	v, ok := f[name]
	return v.s, ok && v.kind == kindString && v.s != ""
}

// missing returns the first name not present as a non-empty string, or "".
func (f fields) missing(names ...string) string {
	for _, n := range names {
		if _, ok := f.str(n); !ok {
			return n
		}
	}
	return ""
}

var errUnsupported = errors.New("unsupported media type")

// parseFields parses a form or a JSON object. A form parameter given more
// than once is an error (RFC 6749 §3.2).
func parseFields(mediaType string, body []byte) (fields, error) {
	f := fields{}
	switch mediaType {
	case formType:
		vs, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, errors.New("bad form encoding")
		}
		for k, v := range vs {
			if len(v) > 1 && !repeatable[k] {
				return nil, errors.New("parameter " + k + " repeated")
			}
			f[k] = field{kind: kindString, s: v[0], all: v}
		}
	case jsonType:
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, errors.New("not a JSON object")
		}
		for k, raw := range m {
			switch {
			case string(raw) == "null":
				f[k] = field{kind: kindNull}
			case raw[0] == '"':
				var s string
				if err := json.Unmarshal(raw, &s); err != nil {
					return nil, errors.New("bad JSON string") // the error would quote the value
				}
				f[k] = field{kind: kindString, s: s}
			default:
				f[k] = field{kind: kindOther, raw: raw}
			}
		}
	default:
		return nil, errUnsupported
	}
	return f, nil
}
