package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/tokenhttp/tokenhttp/internal/safehttp"
	"github.com/tokenhttp/tokenhttp/source"
)

// maxBodyBytes bounds the bodies the tool reads to show or trace, as the
// library bounds token replies.
const maxBodyBytes = 1 << 20

// The verbose trace (-v) shows what curl -v and oauth2c show, with every
// secret replaced by a marker that says which secret it is and where it
// came from ([client_secret from $TOKENHTTP_CLIENT_SECRET]), and every
// token by a fingerprint ([access_token sha256:1a2b3c4d]): where each
// setting came from, each token request's line, headers and body fields,
// why it was sent (the first token, a retry and its cause, a renewal with
// the refresh token, the API's 401), each reply's status, headers and body,
// and how long each step took.

// dialect is what the trace says of a provider.
type dialect struct {
	summary    string // the quirks, in one line
	secretNote string // why a stray client secret is not sent
}

var dialects = map[string]dialect{
	"standard":      {"RFC 6749: form body, client id and secret by HTTP Basic unless --auth says otherwise", ""},
	"vaultid":       {`JSON body with client_id and client_secret, a one-time password, "provider" from --cloud; the reply's "Authorization" (VCSchema …) is sent verbatim`, ""},
	"directlink":    {"form body, password grant, no client credentials; the token URL is per customer", " (it sends no client_id or client_secret)"},
	"scorepositivo": {"JSON body with client_id and client_secret; one-hour tokens, reused", ""},
	"gestaoplus":    {`JSON body, password grant, client_id "app" and client_secret null; expires_in comes as a string; refresh tokens`, ` (it sends client_secret null)`},
	"serproid":      {"form body with client_id and client_secret; errors as {code, msg}", ""},
	"openfinancebrasil": {"FAPI: the token URL is the issuer, the token endpoint comes from its discovery document (mtls_endpoint_aliases); mTLS with tls_client_auth or private_key_jwt (PS256); tokens bound to the certificate",
		" (it authenticates by certificate or private_key_jwt)"},
}

func dialectOf(p *source.Provider) dialect { return dialects[p.Name] }

// secretFields are the fields whose values are credentials: in a token
// request (">") and in a reply ("<"; an error reply's "code" is not one).
var secretFields = map[string]map[string]bool{
	">": {"password": true, "client_secret": true, "refresh_token": true, "assertion": true,
		"client_assertion": true, "subject_token": true, "actor_token": true, "code": true, "code_verifier": true},
	"<": {"access_token": true, "refresh_token": true, "id_token": true, "authorization": true,
		"token": true, "issued_token": true},
}

// fingerprint names a secret without showing it: a SHA-256 prefix.
func fingerprint(v string) string {
	sum := sha256.Sum256([]byte(v))
	return "sha256:" + hex.EncodeToString(sum[:4])
}

// tracer prints the trace when verbose, and knows every secret the
// command holds, so that nothing it prints, trace or error, shows one.
// It is safe for concurrent use (fetches run on their own goroutines).
type tracer struct {
	w         io.Writer
	verbose   bool
	showToken bool // --show-token: Authorization values of API requests as they are

	mu      sync.Mutex // guards the fields below and the writes to w
	secrets map[string]string
	tokenN  int    // token requests sent
	pending string // why the next token request will be sent
	last    struct {
		grant  string
		status int    // 0: no reply
		failed string // a retryable failure of the last attempt, "" if none
		end    time.Time
	}
}

func newTracer(w io.Writer, verbose, showToken bool) *tracer {
	return &tracer{w: w, verbose: verbose, showToken: showToken, secrets: map[string]string{}}
}

// learn records a secret and its label.
func (t *tracer) learn(v, label string) {
	if len(v) < 3 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, f := range []string{v, url.QueryEscape(v), strings.Trim(jsonString(v), `"`)} {
		if _, ok := t.secrets[f]; !ok {
			t.secrets[f] = label
		}
	}
}

func jsonString(v string) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// scrub replaces every known secret in s by its [label].
func (t *tracer) scrub(s string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.scrubLocked(s)
}

func (t *tracer) scrubLocked(s string) string {
	keys := make([]string, 0, len(t.secrets))
	for k := range t.secrets {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return len(b) - len(a) }) // the longest first
	for _, k := range keys {
		s = strings.ReplaceAll(s, k, "["+t.secrets[k]+"]")
	}
	return s
}

// printf writes a trace line when verbose.
func (t *tracer) printf(format string, args ...any) {
	if !t.verbose {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.printLocked(format, args...)
}

func (t *tracer) printLocked(format string, args ...any) {
	fmt.Fprint(t.w, t.scrubLocked(fmt.Sprintf(format, args...))+"\n")
}

// origin says where a setting came from.
func (t *tracer) origin(what, from string) { t.printf("* %-13s %s", what, from) }

// begin prints the settings the command resolved and where each came
// from.
func (t *tracer) begin(c *credFlags, p *source.Provider) {
	if !t.verbose {
		return
	}
	from := func(flag, def string) string {
		if c.set[flag] {
			return "from --" + flag
		}
		return def
	}
	t.origin("provider", p.Name+" ("+from("provider", "the default")+"): "+dialectOf(p).summary)
	tokenURL := c.tokenURL
	if tokenURL == "" {
		tokenURL = p.TokenURL
	}
	if tokenURL != "" {
		t.origin("token URL", redactURL(tokenURL)+" ("+from("token-url", "the provider's default")+")")
	}
	t.origin("grant", c.grantOf(p)+" ("+from("grant", "the provider's")+")")
	switch {
	case c.clientID != "":
		t.origin("client id", fmt.Sprintf("%q (from --client-id)", c.clientID))
	case p == source.GestaoPlus:
		t.origin("client id", `"app" (the provider's default)`)
	default:
		t.origin("client id", "none")
	}
	if auth := c.ca.describe(); auth != "" {
		t.origin("client auth", auth)
	} else {
		auth := map[source.AuthStyle]string{
			source.AuthInHeader: "client_secret_basic: HTTP Basic with the client id and secret",
			source.AuthInBody:   "client_secret_post: client_id and client_secret as body fields",
			source.AuthNone:     "none: no client authentication",
		}[c.authOf(p)]
		if p == source.GestaoPlus && c.auth == "" {
			auth = `none: client_id "app" and client_secret null in the body, as the provider documents`
		}
		t.origin("client auth", auth+" ("+from("auth", "the provider's")+")")
	}
	if c.encoding != "" {
		t.origin("encoding", c.encoding+" (from --encoding)")
	}
}

// tokenClient is the HTTP client of token requests: nil (the library's
// default) unless the trace is on.
func (t *tracer) tokenClient() *http.Client {
	if !t.verbose {
		return nil
	}
	return &http.Client{Transport: t.tokenTransport(http.DefaultTransport)}
}

// tokenTransport wraps base to trace token requests when verbose.
func (t *tracer) tokenTransport(base http.RoundTripper) http.RoundTripper {
	if !t.verbose {
		return base
	}
	return &traceTransport{t: t, base: base, token: true}
}

// apiTransport wraps base to trace API requests when verbose.
func (t *tracer) apiTransport(base http.RoundTripper) http.RoundTripper {
	if !t.verbose {
		return base
	}
	return &traceTransport{t: t, base: base}
}

type traceTransport struct {
	t     *tracer
	base  http.RoundTripper
	token bool // token requests, else API requests
}

func (tt *traceTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.GetBody != nil {
		if rc, err := req.GetBody(); err == nil {
			body, _ = io.ReadAll(io.LimitReader(rc, maxBodyBytes))
			rc.Close()
		}
	}
	k := apiRequest
	if tt.token {
		k = tokenRequest
	}
	tt.t.request(req, body, k)
	start := time.Now()
	resp, err := tt.base.RoundTrip(req)
	if err != nil || !tt.token {
		tt.t.reply(resp, nil, time.Since(start), err, k)
		return resp, err
	}
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	resp.Body.Close()
	resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), errReader{rerr}))
	tt.t.reply(resp, b, time.Since(start), nil, k)
	return resp, nil
}

// kind is what a traced request is for.
type kind int

const (
	apiRequest   kind = iota
	tokenRequest      // to the token endpoint
	discovery         // the issuer's discovery document, read before the first token request
)

// request prints a request about to be sent.
func (t *tracer) request(req *http.Request, body []byte, k kind) {
	t.mu.Lock()
	defer t.mu.Unlock()
	token := k == tokenRequest
	switch {
	case k == discovery:
		t.printLocked("* the issuer's discovery document, which names the token endpoint")
	case token:
		t.tokenN++
		grant := bodyField(req.Header.Get("Content-Type"), body, "grant_type")
		t.printLocked("* token request #%d: %s", t.tokenN, t.reasonLocked(grant))
		t.last.grant = grant
	default:
		t.printLocked("* API request")
	}
	t.printLocked("> %s %s %s", req.Method, redactURL(req.URL.RequestURI()), "HTTP/1.1")
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	t.printLocked("> Host: %s", host)
	t.headersLocked(">", req.Header)
	if token {
		t.fieldsLocked(">", req.Header.Get("Content-Type"), body)
	} else if len(body) > 0 {
		t.printLocked("> (a body of %d bytes)", len(body))
	}
}

// reply prints the reply to the request printed last, or err; body is a
// token reply's or a discovery document's body (API replies' bodies are
// not shown).
func (t *tracer) reply(resp *http.Response, body []byte, took time.Duration, err error, k kind) {
	t.mu.Lock()
	defer t.mu.Unlock()
	token := k == tokenRequest
	if token {
		t.last.end, t.last.status, t.last.failed = time.Now(), 0, ""
	}
	if err != nil {
		t.printLocked("* no reply after %s: %s", ms(took), sanitize(err.Error()))
		if token {
			t.last.failed = "no reply (" + sanitize(cliText(err.Error())) + ")"
		}
		return
	}
	t.printLocked("< %s %s (took %s)", resp.Proto, resp.Status, ms(took))
	t.headersLocked("<", resp.Header)
	if k == discovery {
		t.fieldsLocked("<", resp.Header.Get("Content-Type"), body)
		return
	}
	if !token {
		if resp.StatusCode == http.StatusUnauthorized {
			t.printLocked("* the API answered 401: the token is dropped, a new one fetched, and the request retried once if its body can be sent again")
			t.pending = "the API answered 401 to the last token"
		}
		return
	}
	t.last.status = resp.StatusCode
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		t.last.failed = resp.Status
	}
	t.fieldsLocked("<", resp.Header.Get("Content-Type"), body)
}

// errReader returns err (or io.EOF) after the bytes read before it.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	return 0, io.EOF
}

// reasonLocked says why a token request with grant is sent.
func (t *tracer) reasonLocked(grant string) string {
	defer func() { t.pending = "" }()
	switch {
	case t.last.failed != "" && !t.last.end.IsZero():
		return fmt.Sprintf("a retry: the last attempt got %s; waited %s", t.last.failed, ms(time.Since(t.last.end)))
	case grant == source.RefreshToken && t.pending != "":
		return t.pending + "; renewing with the refresh token"
	case grant == source.RefreshToken:
		return "renewing the token with the refresh token"
	case t.last.grant == source.RefreshToken && t.last.status >= 400:
		return "the refresh token was refused: the " + grant + " grant instead"
	case t.pending != "":
		return t.pending
	case t.tokenN == 1:
		return "the first token (none is cached)"
	}
	return "the cached token expired or is about to"
}

// headersLocked prints headers sorted, secrets replaced.
func (t *tracer) headersLocked(dir string, h http.Header) {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		for _, v := range h[k] {
			switch http.CanonicalHeaderKey(k) {
			case "Authorization", "Proxy-Authorization":
				v = t.authLocked(v)
			case "Cookie", "Set-Cookie":
				v = "[" + strings.ToLower(k) + " " + fingerprint(v) + "]"
			default:
				v = sanitize(v)
			}
			t.printLocked("%s %s: %s", dir, k, v)
		}
	}
}

// authLocked shows an Authorization value by what it is, never as it is
// (unless --show-token, for API requests).
func (t *tracer) authLocked(v string) string {
	if _, ok := t.secrets[v]; ok {
		return "[" + t.secrets[v] + "]"
	}
	scheme, cred, _ := strings.Cut(v, " ")
	if strings.EqualFold(scheme, "Basic") {
		if raw, err := base64.StdEncoding.DecodeString(cred); err == nil {
			id, secret, _ := strings.Cut(string(raw), ":")
			id, _ = url.QueryUnescape(id)
			secret, _ = url.QueryUnescape(secret)
			label, ok := t.secrets[secret]
			if !ok {
				label = "client_secret " + fingerprint(secret)
			}
			return fmt.Sprintf("Basic [client_id %q : %s]", id, label)
		}
	}
	if t.showToken && !strings.EqualFold(scheme, "Basic") {
		return v
	}
	if label, ok := t.secrets[cred]; ok {
		return scheme + " [" + label + "]"
	}
	return scheme + " [credential " + fingerprint(cred) + "]"
}

// fieldsLocked prints a token request's or reply's body: each field with
// its value, secrets replaced by their label and tokens by a fingerprint
// (learned, so that the API request shows the same one).
func (t *tracer) fieldsLocked(dir, contentType string, body []byte) {
	if len(body) == 0 {
		t.printLocked("%s (no body)", dir)
		return
	}
	fields, kind := parseBody(contentType, body)
	if fields == nil {
		t.printLocked("%s body (%s, %d bytes): %s", dir, mediaOf(contentType), len(body), snippet(body))
		return
	}
	t.printLocked("%s body (%s):", dir, kind)
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		t.printLocked("%s   %-15s %s", dir, k, t.valueLocked(secretFields[dir], k, fields[k]))
	}
}

// valueLocked shows one body field's value.
func (t *tracer) valueLocked(secret map[string]bool, name string, v any) string {
	s, isString := v.(string)
	if isString {
		if label, ok := t.secrets[s]; ok {
			return "[" + label + "]"
		}
	}
	if secret[strings.ToLower(name)] && v != nil {
		if !isString {
			b, _ := json.Marshal(v)
			s = string(b)
		}
		label := name + " " + fingerprint(s)
		for _, f := range []string{s, url.QueryEscape(s), strings.Trim(jsonString(s), `"`)} {
			t.secrets[f] = label
		}
		if scheme, cred, ok := strings.Cut(s, " "); ok && len(cred) > 8 {
			t.secrets[cred] = name + " " + fingerprint(s) + " (after " + scheme + ")"
		}
		return "[" + label + "]"
	}
	b, _ := json.Marshal(v)
	return sanitize(string(b))
}

// parseBody reads a JSON object or a form; nil when the body is neither.
func parseBody(contentType string, body []byte) (map[string]any, string) {
	switch mediaOf(contentType) {
	case "application/x-www-form-urlencoded":
		q, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, ""
		}
		m := map[string]any{}
		for k, vs := range q {
			if len(vs) == 1 {
				m[k] = vs[0]
			} else {
				m[k] = vs
			}
		}
		return m, "form"
	}
	var m map[string]any
	if json.Unmarshal(body, &m) != nil || m == nil {
		return nil, ""
	}
	return m, "json"
}

// bodyField returns a string field of a token request body.
func bodyField(contentType string, body []byte, name string) string {
	m, _ := parseBody(contentType, body)
	s, _ := m[name].(string)
	return s
}

func mediaOf(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// snippet is the first bytes of a body that is not a known shape, with
// control characters escaped.
func snippet(b []byte) string {
	const max = 512
	s := string(b)
	cut := ""
	if len(s) > max {
		s, cut = s[:max], "…"
	}
	return sanitize(strings.Join(strings.Fields(s), " ")) + cut
}

// sanitize escapes control characters, so that a reply cannot drive the
// terminal.
func sanitize(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar }) < 0 {
		return s
	}
	q := fmt.Sprintf("%+q", s)
	return q[1 : len(q)-1]
}

// ms writes a duration in milliseconds, one way everywhere.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

// redactURL hides a URL's password and query values (see safehttp.RedactURL).
func redactURL(s string) string { return safehttp.RedactURL(s, "[redacted]") }
