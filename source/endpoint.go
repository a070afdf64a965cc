package source

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/retry"
	"github.com/tokenhttp/tokenhttp/internal/safehttp"
)

// maxReplyBytes bounds a token endpoint's reply body. A larger reply is an
// error, not an allocation.
const maxReplyBytes = 1 << 20

// maxLifetime bounds an expires_in so that time arithmetic cannot overflow.
const maxLifetime = 100 * 365 * 24 * time.Hour

// errNoRedirect stops net/http from following a token endpoint's redirect:
// it would re-POST the client secret to the new location.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// endpoint sends token requests in one dialect and decodes the replies.
type endpoint struct {
	r      *resolved
	client *http.Client
	reply  ReplyFields
	scrub  scrubber // the config's secrets
}

func newEndpoint(r *resolved) *endpoint {
	c := &http.Client{}
	if r.cfg.HTTPClient != nil {
		cp := *r.cfg.HTTPClient
		c = &cp
	}
	c.CheckRedirect = noRedirect
	return &endpoint{
		r: r, client: c, reply: r.p.Reply.resolve(),
		scrub: scrubber{}.with(configSecrets(r)...),
	}
}

// configSecrets are the values of r's Config that are secret, or may be:
// the client secret, the password, every value of EndpointParams (a
// client_assertion, an api_key) and of the token URL's query. Config's
// String redacts the same.
func configSecrets(r *resolved) []string {
	out := []string{r.cfg.ClientSecret, r.cfg.Password}
	for _, vs := range r.cfg.EndpointParams {
		out = append(out, vs...)
	}
	if u, err := url.Parse(r.tokenURL); err == nil {
		for _, vs := range u.Query() {
			out = append(out, vs...)
		}
	}
	return out
}

// publicParams are the request fields whose values are not secret, and
// which error descriptions name ("unknown client_id app"): the scrubber
// leaves them. Every other value a request carries is scrubbed.
var publicParams = []string{"grant_type", "client_id", "username", "scope"}

// publicHeaders are the request headers whose values are not secret.
var publicHeaders = []string{"Accept", "Content-Type", "Origin"}

// sentSecrets returns the values of tr that are not public: whatever the
// provider's Fixed fields, Prepare hook or EndpointParams put there.
func sentSecrets(p *Provider, tr *TokenRequest) []string {
	public := func(k string) bool {
		for _, pk := range publicParams {
			if k == pk || (p.Fields[pk] != "" && k == p.Fields[pk]) {
				return true
			}
		}
		return false
	}
	var out []string
	for k, v := range tr.Params {
		if public(k) {
			continue
		}
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case []string:
			out = append(out, v...)
		}
	}
	for k, vs := range tr.Header {
		if !slices.Contains(publicHeaders, http.CanonicalHeaderKey(k)) {
			out = append(out, vs...)
		}
	}
	return out
}

// exchangeStats is what telemetry learns of the exchanges of one fetch.
type exchangeStats struct {
	status   int       // the last HTTP status, 0 for none
	attempts int       // requests sent
	sent     time.Time // when the attempt that got the last reply started
	grant    string    // the last grant tried
	onRetry  func(retry.Attempt)
	// onFallback, if set, is told that grant was refused with err and the
	// fetch falls back to the configured grant.
	onFallback func(grant string, err error)
}

// exchange makes one token request with grant; refresh is the refresh
// token for the RefreshToken grant. A refusal is an *Error. st, if not
// nil, is updated with the attempts, the last status and when the
// answered attempt started (the token's Expiry counts from then).
func (e *endpoint) exchange(ctx context.Context, grant, refresh string, st *exchangeStats) (*Token, error) {
	if st == nil {
		st = &exchangeStats{}
	}
	st.grant = grant
	req, scrub, err := e.build(ctx, grant, refresh)
	if err != nil {
		return nil, err
	}
	pol := e.r.cfg.Retry
	if grant == Password && (e.r.p.OneTimePassword || e.r.cfg.PasswordFunc != nil) {
		pol.MaxAttempts = 1 // a password from PasswordFunc may be one-time: never sent twice
	}
	// A lifetime counts from the start of the attempt that was answered:
	// an earlier attempt's 429 and the wait after it are not the token's.
	start := time.Now()
	onSend := func(int) { start = time.Now() }
	resp, n, err := retry.Do(e.client, pol, retry.Request{Req: req, Unsafe: grant == RefreshToken, OnRetry: st.onRetry, OnSend: onSend})
	st.attempts += n
	st.sent = start
	if err != nil {
		st.status = 0
		return nil, e.transportError(err, scrub)
	}
	defer resp.Body.Close()
	st.status = resp.StatusCode
	body, err := readBounded(resp.Body, maxReplyBytes)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, &Error{Provider: e.r.p.Name, StatusCode: resp.StatusCode, Code: CodeServerError,
				Description: fmt.Sprintf("the reply is larger than %d bytes", maxReplyBytes)}
		}
		return nil, e.transportError(err, scrub)
	}
	return e.decode(resp, body, start, scrub)
}

// build encodes a token request. scrub knows every secret it carries.
func (e *endpoint) build(ctx context.Context, grant, refresh string) (*http.Request, scrubber, error) {
	cfg, p := &e.r.cfg, e.r.p
	tr := &TokenRequest{Grant: grant, Params: map[string]any{"grant_type": grant}, Header: http.Header{}}
	scrub := e.scrub
	switch grant {
	case Password:
		pw := cfg.Password
		if cfg.PasswordFunc != nil {
			var err error
			pw, err = callPasswordFunc(ctx, cfg.PasswordFunc, scrub)
			if err != nil {
				return nil, scrub, err
			}
		}
		scrub = scrub.with(pw)
		tr.Params["username"] = cfg.Username
		tr.Params["password"] = pw
	case RefreshToken:
		scrub = scrub.with(refresh)
		tr.Params["refresh_token"] = refresh
	}
	if len(cfg.Scopes) > 0 && grant != RefreshToken {
		tr.Params["scope"] = strings.Join(cfg.Scopes, " ")
	}
	switch e.r.auth {
	case AuthInBody:
		tr.Params["client_id"] = cfg.ClientID
		tr.Params["client_secret"] = cfg.ClientSecret
	case AuthInHeader:
		basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(cfg.ClientID) + ":" + url.QueryEscape(cfg.ClientSecret)))
		scrub = scrub.with(basic)
		tr.Header.Set("Authorization", "Basic "+basic)
	}
	for k, vs := range cfg.EndpointParams {
		if _, taken := tr.Params[k]; taken || len(vs) == 0 {
			continue
		}
		if len(vs) == 1 {
			tr.Params[k] = vs[0]
		} else {
			tr.Params[k] = append([]string(nil), vs...) // repeated (RFC 8707 resource), a JSON array
		}
	}
	for k, v := range p.Fixed {
		tr.Params[k] = v
	}
	for from, to := range p.Fields {
		if v, ok := tr.Params[from]; ok && to != "" && to != from {
			delete(tr.Params, from)
			tr.Params[to] = v
		}
	}
	for k, vs := range p.Header {
		tr.Header[k] = append([]string(nil), vs...)
	}
	if cfg.Origin != "" {
		tr.Header.Set("Origin", cfg.Origin)
	}
	tr.Header.Set("Accept", "application/json")
	if p.Prepare != nil {
		if err := callHook("Provider.Prepare", scrub, func() error { return p.Prepare(cfg, tr) }); err != nil {
			return nil, scrub, err
		}
	}
	scrub = scrub.with(sentSecrets(p, tr)...)

	var body []byte
	if e.r.encoding == JSONEncoding {
		var err error
		if body, err = json.Marshal(tr.Params); err != nil {
			return nil, scrub, fmt.Errorf("source: encoding the %s token request as JSON: a field has a value JSON cannot hold", p.Name)
		}
		tr.Header.Set("Content-Type", "application/json")
	} else {
		body = []byte(formEncode(tr.Params))
		tr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.r.tokenURL, bytes.NewReader(body))
	if err != nil {
		return nil, scrub, fmt.Errorf("source: building the %s token request: %w", p.Name, err)
	}
	for k, vs := range tr.Header {
		req.Header[k] = vs
	}
	return req, scrub, nil
}

// formEncode encodes params sorted by key; nil values are omitted and a
// []string is a repeated parameter.
func formEncode(params map[string]any) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		var vals []string
		switch v := params[k].(type) {
		case nil:
			continue
		case []string:
			vals = v
		default:
			vals = []string{fmt.Sprint(v)}
		}
		for _, v := range vals {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(k))
			b.WriteByte('=')
			b.WriteString(url.QueryEscape(v))
		}
	}
	return b.String()
}

// transportError wraps a network failure without the URL (its query may
// hold a secret) or any secret a lower layer may have put into the text.
func (e *endpoint) transportError(err error, scrub scrubber) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &FetchError{Provider: e.r.p.Name, Err: err, msg: scrub.clean(err.Error())}
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
		code = normalizeCode(status, info.Code)
	}
	return &Error{
		Provider: e.r.p.Name, StatusCode: status, Code: code,
		ProviderCode: scrub.clean(info.Code), Description: scrub.clean(info.Description),
		URI:        scrub.clean(info.URI),
		RetryAfter: retryAfter(resp.Header.Get("Retry-After")),
	}
}

func retryAfter(h string) time.Duration {
	d, _ := retry.ParseRetryAfter(h, time.Now())
	return d
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

var errTooLarge = errors.New("body too large")

// readBounded reads r up to limit bytes; more is errTooLarge.
func readBounded(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errTooLarge
	}
	return b, nil
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

// callPasswordFunc asks for a password, turning a panic into an error.
func callPasswordFunc(ctx context.Context, f func(context.Context) (string, error), scrub scrubber) (pw string, err error) {
	err = callHook("Config.PasswordFunc", scrub, func() error {
		var ferr error
		pw, ferr = f(ctx)
		return ferr
	})
	if err != nil {
		return "", err
	}
	if pw == "" {
		err := errors.New("it returned an empty password")
		return "", &HookError{Hook: "Config.PasswordFunc", Err: err, msg: err.Error()}
	}
	return pw, nil
}

// callHook runs a user hook; a panic becomes an error whose text is
// scrubbed, and a hook's error is wrapped with the hook's name.
func callHook(name string, scrub scrubber, f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			perr := fmt.Errorf("panicked: %s", scrub.clean(fmt.Sprint(v)))
			err = &HookError{Hook: name, Err: perr, msg: perr.Error()}
		}
	}()
	if err := f(); err != nil {
		return &HookError{Hook: name, Err: err, msg: scrub.clean(err.Error())}
	}
	return nil
}

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
