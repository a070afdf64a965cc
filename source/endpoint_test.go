package source_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/source"
)

// seen is one request the fake token endpoint received.
type seen struct {
	n      int // 1 for the first request
	header http.Header
	body   []byte
	form   url.Values     // the body's fields: a form, or a JSON object's non-null values as text
	json   map[string]any // the JSON body; nil for a form body
	ctx    context.Context
}

// tokenServer is a fake token endpoint: it records each request and lets
// the test script each reply.
type tokenServer struct {
	*httptest.Server
	done  chan struct{} // closed when the test ends, so a blocked reply returns
	reply func(w http.ResponseWriter, r *seen)

	mu   sync.Mutex
	seen []*seen
}

func newTokenServer(t *testing.T, reply func(w http.ResponseWriter, r *seen)) *tokenServer {
	t.Helper()
	ts := &tokenServer{done: make(chan struct{}), reply: reply}
	ts.Server = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(func() {
		close(ts.done)
		ts.Server.Close()
	})
	return ts
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s := &seen{header: r.Header.Clone(), body: body, ctx: r.Context()}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/json" {
		s.form = url.Values{}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if dec.Decode(&s.json) == nil {
			for k, v := range s.json {
				if v != nil {
					s.form.Set(k, fmt.Sprint(v))
				}
			}
		}
	} else {
		s.form, _ = url.ParseQuery(string(body))
	}
	ts.mu.Lock()
	s.n = len(ts.seen) + 1
	ts.seen = append(ts.seen, s)
	ts.mu.Unlock()
	ts.reply(w, s)
}

// count returns how many requests the endpoint received.
func (ts *tokenServer) count() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.seen)
}

// requests returns the requests received so far.
func (ts *tokenServer) requests() []*seen {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]*seen(nil), ts.seen...)
}

// block waits until the client gives up on r or the test ends.
func (ts *tokenServer) block(r *seen) {
	select {
	case <-r.ctx.Done():
	case <-ts.done:
	}
}

// tokenURL is the endpoint's token URL.
func (ts *tokenServer) tokenURL() string { return ts.URL + "/oauth/token" }

func writeReply(w http.ResponseWriter, status int, contentType, body string) {
	if contentType != "" {
		w.Header().Set("Content-Type", contentType)
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	writeReply(w, status, "application/json", body)
}

// tokenJSON is a token reply; refresh "" leaves refresh_token out.
func tokenJSON(access string, expiresIn int, refresh string) string {
	m := map[string]any{"access_token": access, "token_type": "bearer", "expires_in": expiresIn}
	if refresh != "" {
		m["refresh_token"] = refresh
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// replyToken answers every request with a fresh token "tok-<n>".
func replyToken(expiresIn int) func(http.ResponseWriter, *seen) {
	return func(w http.ResponseWriter, r *seen) {
		writeJSON(w, http.StatusOK, tokenJSON(fmt.Sprintf("tok-%d", r.n), expiresIn, ""))
	}
}

const (
	testClientID     = "test-client"
	testClientSecret = "cs-Vb40nE6secret"
	testPassword     = "pw-Gf13yU8secret"
)

// clientConfig is a client_credentials Config for ts.
func clientConfig(ts *tokenServer) source.Config {
	return source.Config{TokenURL: ts.tokenURL(), ClientID: testClientID, ClientSecret: testClientSecret}
}

// passwordConfig is a password grant Config for ts.
func passwordConfig(ts *tokenServer) source.Config {
	return source.Config{TokenURL: ts.tokenURL(), GrantType: source.Password, ClientID: testClientID,
		ClientSecret: testClientSecret, Username: "alice", Password: testPassword}
}

// newSource returns the cached source for cfg, closed when the test ends.
func newSource(t *testing.T, cfg source.Config) *source.CachedSource {
	t.Helper()
	src, err := source.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src
}

// fetchToken makes one Token call on a new source for cfg.
func fetchToken(t *testing.T, cfg source.Config) (*source.Token, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return newSource(t, cfg).Token(ctx)
}

// tokenError returns err as a *source.Error, failing the test if it is not.
func tokenError(t *testing.T, err error) *source.Error {
	t.Helper()
	var te *source.Error
	if !errors.As(err, &te) {
		t.Fatalf("error = %v (%T), want a *source.Error", err, err)
	}
	return te
}

func TestRequestEncoding(t *testing.T) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(testClientID+":"+testClientSecret))
	tests := []struct {
		name        string
		mod         func(*source.Config)
		wantCT      string
		wantAuth    string // the Authorization header; "" for none
		wantInBody  bool   // client_id and client_secret in the body
		wantJSONObj bool
	}{
		{"default: form and Basic", func(*source.Config) {}, "application/x-www-form-urlencoded", basic, false, false},
		{"JSON", func(c *source.Config) { c.Encoding = source.JSONEncoding }, "application/json", basic, false, true},
		{"auth in body", func(c *source.Config) { c.AuthStyle = source.AuthInBody }, "application/x-www-form-urlencoded", "", true, false},
		{"JSON, auth in body", func(c *source.Config) {
			c.Encoding = source.JSONEncoding
			c.AuthStyle = source.AuthInBody
		}, "application/json", "", true, true},
		{"auth in header, explicitly", func(c *source.Config) { c.AuthStyle = source.AuthInHeader }, "application/x-www-form-urlencoded", basic, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, replyToken(3600))
			cfg := clientConfig(ts)
			tt.mod(&cfg)
			if _, err := fetchToken(t, cfg); err != nil {
				t.Fatalf("Token: %v", err)
			}
			reqs := ts.requests()
			if len(reqs) != 1 {
				t.Fatalf("requests = %d, want 1", len(reqs))
			}
			r := reqs[0]
			if got, _, _ := mime.ParseMediaType(r.header.Get("Content-Type")); got != tt.wantCT {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantCT)
			}
			if got := r.header.Get("Authorization"); got != tt.wantAuth {
				t.Errorf("Authorization = %q, want %q", got, tt.wantAuth)
			}
			if tt.wantJSONObj && r.json == nil {
				t.Errorf("body %q is not a JSON object", r.body)
			}
			if got, want := r.form.Get("grant_type"), "client_credentials"; got != want {
				t.Errorf("grant_type = %q, want %q", got, want)
			}
			gotID, gotSecret := r.form.Get("client_id"), r.form.Get("client_secret")
			if tt.wantInBody {
				if gotID != testClientID || gotSecret != testClientSecret {
					t.Errorf("body client_id, client_secret = %q, %q, want %q, %q", gotID, gotSecret, testClientID, testClientSecret)
				}
			} else if r.form.Has("client_id") || r.form.Has("client_secret") || bytes.Contains(r.body, []byte(testClientSecret)) {
				t.Errorf("body %q carries the client credentials, want them only in the header", r.body)
			}
		})
	}
}

// TestBasicAuthEncoding checks RFC 6749 §2.3.1: the client id and secret
// are form-encoded before they are joined by ':' and base64-encoded.
func TestBasicAuthEncoding(t *testing.T) {
	const (
		id     = "cl:ient+ id%"
		secret = "se:cr+et %41"
		// application/x-www-form-urlencoded of each, joined by ':'.
		want = "cl%3Aient%2B+id%25:se%3Acr%2Bet+%2541"
	)
	ts := newTokenServer(t, replyToken(3600))
	cfg := source.Config{TokenURL: ts.tokenURL(), ClientID: id, ClientSecret: secret}
	if _, err := fetchToken(t, cfg); err != nil {
		t.Fatalf("Token: %v", err)
	}
	h := ts.requests()[0].header.Get("Authorization")
	enc, ok := strings.CutPrefix(h, "Basic ")
	if !ok {
		t.Fatalf("Authorization = %q, want Basic", h)
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		t.Fatalf("Authorization %q is not base64: %v", h, err)
	}
	if got := string(raw); got != want {
		t.Errorf("Basic credentials = %q, want %q", got, want)
	}
	gotID, gotSecret, _ := strings.Cut(string(raw), ":")
	if u, _ := url.QueryUnescape(gotID); u != id {
		t.Errorf("decoded id = %q, want %q", u, id)
	}
	if u, _ := url.QueryUnescape(gotSecret); u != secret {
		t.Errorf("decoded secret = %q, want %q", u, secret)
	}
}

func TestRequestParams(t *testing.T) {
	ts := newTokenServer(t, replyToken(3600))
	cfg := passwordConfig(ts)
	cfg.Scopes = []string{"read", "write:all", "openid"}
	cfg.EndpointParams = url.Values{
		"audience":   {"https://api.example.com"},
		"grant_type": {"evil"},        // must not override the grant
		"username":   {"mallory"},     // nor the grant's own fields
		"resource":   {"urn:example"}, // a plain extra field
	}
	for _, enc := range []source.Encoding{source.FormEncoding, source.JSONEncoding} {
		t.Run(enc.String(), func(t *testing.T) {
			cfg.Encoding = enc
			n := ts.count()
			if _, err := fetchToken(t, cfg); err != nil {
				t.Fatalf("Token: %v", err)
			}
			r := ts.requests()[n]
			want := map[string]string{
				"grant_type": "password",
				"username":   "alice",
				"password":   testPassword,
				"scope":      "read write:all openid",
				"audience":   "https://api.example.com",
				"resource":   "urn:example",
			}
			for k, v := range want {
				if got := r.form.Get(k); got != v {
					t.Errorf("body field %q = %q, want %q (body %s)", k, got, v, r.body)
				}
			}
		})
	}
}

func TestExpiresIn(t *testing.T) {
	tests := []struct {
		name    string
		field   string // the expires_in member, with its leading comma; "" for none
		want    time.Duration
		wantErr bool
	}{
		{"number", `,"expires_in":3600`, 3600 * time.Second, false},
		{"string", `,"expires_in":"43200"`, 43200 * time.Second, false},
		{"string with spaces", `,"expires_in":" 60 "`, 60 * time.Second, false},
		{"float", `,"expires_in":3600.5`, 3600500 * time.Millisecond, false},
		{"exponent", `,"expires_in":1e3`, 1000 * time.Second, false},
		{"past float64 range", `,"expires_in":1e400`, 100 * 365 * 24 * time.Hour, false},
		{"past float64 range, string", `,"expires_in":"1e400"`, 100 * 365 * 24 * time.Hour, false},
		{"absent", ``, 0, false},
		{"null", `,"expires_in":null`, 0, false},
		{"junk string", `,"expires_in":"soon"`, 0, true},
		{"bool", `,"expires_in":true`, 0, true},
		{"object", `,"expires_in":{"s":1}`, 0, true},
		{"NaN", `,"expires_in":"NaN"`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, func(w http.ResponseWriter, r *seen) {
				writeJSON(w, 200, `{"access_token":"tok","token_type":"bearer"`+tt.field+`}`)
			})
			before := time.Now()
			tok, err := fetchToken(t, clientConfig(ts))
			after := time.Now()
			if tt.wantErr {
				te := tokenError(t, err)
				if te.Code != source.CodeServerError {
					t.Errorf("Code = %q, want %q", te.Code, source.CodeServerError)
				}
				return
			}
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if tt.want == 0 {
				if !tok.Expiry.IsZero() {
					t.Errorf("Expiry = %v, want zero", tok.Expiry)
				}
				return
			}
			if lo, hi := before.Add(tt.want), after.Add(tt.want); tok.Expiry.Before(lo) || tok.Expiry.After(hi) {
				t.Errorf("Expiry = %v, want between %v and %v", tok.Expiry, lo, hi)
			}
		})
	}
}

func TestParseExpiresIn(t *testing.T) {
	tests := []struct {
		in      any
		want    time.Duration
		wantErr bool
	}{
		{nil, 0, false},
		{json.Number("60"), time.Minute, false},
		{"60", time.Minute, false},
		{"", 0, false},
		{float64(1.5), 1500 * time.Millisecond, false},
		{json.Number("-5"), 0, false},
		{json.Number("1e300"), 100 * 365 * 24 * time.Hour, false},
		// Past float64's range: far future, capped, as a number, a string,
		// with or without an exponent. Below it: not given.
		{json.Number("1e400"), 100 * 365 * 24 * time.Hour, false},
		{json.Number("1E+400"), 100 * 365 * 24 * time.Hour, false},
		{"1e400", 100 * 365 * 24 * time.Hour, false},
		{" 1e999999 ", 100 * 365 * 24 * time.Hour, false},
		{json.Number("1" + strings.Repeat("0", 400)), 100 * 365 * 24 * time.Hour, false},
		{"1" + strings.Repeat("0", 400), 100 * 365 * 24 * time.Hour, false},
		{json.Number("-1e400"), 0, false},
		{"-1" + strings.Repeat("0", 400), 0, false},
		{json.Number("1e-400"), 0, false},
		{"Inf", 0, true},
		{"NaN", 0, true},
		{"-Infinity", 0, true},
		{"12s", 0, true},
		{true, 0, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%T %v", tt.in, tt.in), func(t *testing.T) {
			got, err := source.ParseExpiresIn(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseExpiresIn(%#v) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseExpiresIn(%#v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestTokenType(t *testing.T) {
	tests := []struct {
		name, field, want string
	}{
		{"lowercase bearer", `,"token_type":"bearer"`, "Bearer"},
		{"uppercase", `,"token_type":"BEARER"`, "Bearer"},
		{"empty", `,"token_type":""`, "Bearer"},
		{"absent", ``, "Bearer"},
		{"other type kept", `,"token_type":"mac"`, "mac"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, func(w http.ResponseWriter, r *seen) {
				writeJSON(w, 200, `{"access_token":"tok-abc"`+tt.field+`}`)
			})
			tok, err := fetchToken(t, clientConfig(ts))
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if tok.TokenType != tt.want {
				t.Errorf("TokenType = %q, want %q", tok.TokenType, tt.want)
			}
			if got, want := tok.HeaderValue(), "Bearer tok-abc"; got != want {
				t.Errorf("HeaderValue() = %q, want %q", got, want)
			}
		})
	}
}

func TestReplyFields(t *testing.T) {
	ts := newTokenServer(t, func(w http.ResponseWriter, r *seen) {
		writeJSON(w, 200, `{"access_token":"tok-1","token_type":"Bearer","expires_in":60,
			"refresh_token":"rt-1","scope":["read","write"],"id_token":"idt","ext_expires_in":3599}`)
	})
	tok, err := fetchToken(t, clientConfig(ts))
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if got, want := tok.AccessToken, "tok-1"; got != want {
		t.Errorf("AccessToken = %q, want %q", got, want)
	}
	if got, want := tok.RefreshToken, "rt-1"; got != want {
		t.Errorf("RefreshToken = %q, want %q", got, want)
	}
	if got, want := tok.Scope, "read write"; got != want {
		t.Errorf("Scope = %q, want %q", got, want)
	}
	if got, want := tok.Extra["id_token"], any("idt"); got != want {
		t.Errorf("Extra[id_token] = %#v, want %#v", got, want)
	}
	if got, want := tok.Extra["ext_expires_in"], any(json.Number("3599")); got != want {
		t.Errorf("Extra[ext_expires_in] = %#v, want %#v", got, want)
	}
	for _, k := range []string{"access_token", "refresh_token", "expires_in", "token_type", "scope"} {
		if _, ok := tok.Extra[k]; ok {
			t.Errorf("Extra has %q, want only the fields the Token does not hold", k)
		}
	}
}

func TestFormEncodedReply(t *testing.T) {
	ts := newTokenServer(t, func(w http.ResponseWriter, r *seen) {
		writeReply(w, 200, "application/x-www-form-urlencoded; charset=utf-8",
			"access_token=form-tok-1&token_type=bearer&expires_in=3600&scope=repo+gist")
	})
	before := time.Now()
	tok, err := fetchToken(t, clientConfig(ts))
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if got, want := tok.AccessToken, "form-tok-1"; got != want {
		t.Errorf("AccessToken = %q, want %q", got, want)
	}
	if got, want := tok.TokenType, "Bearer"; got != want {
		t.Errorf("TokenType = %q, want %q", got, want)
	}
	if got, want := tok.Scope, "repo gist"; got != want {
		t.Errorf("Scope = %q, want %q", got, want)
	}
	if tok.Expiry.Before(before.Add(3600*time.Second)) || tok.Expiry.After(time.Now().Add(3600*time.Second)) {
		t.Errorf("Expiry = %v, want an hour from now", tok.Expiry)
	}
}

func TestErrorReplies(t *testing.T) {
	problem := "application/problem+json"
	tests := []struct {
		name         string
		provider     *source.Provider
		status       int
		contentType  string
		body         string
		header       map[string]string
		wantCode     string
		wantProvider string // Error.ProviderCode
		wantDesc     string // must appear in Error.Description
		wantURI      string
		wantRetry    time.Duration
	}{
		{name: "rfc6749 400", status: 400, contentType: "application/json",
			body:     `{"error":"invalid_client","error_description":"Client authentication failed","error_uri":"https://docs.example/e"}`,
			wantCode: "invalid_client", wantProvider: "invalid_client", wantDesc: "Client authentication failed", wantURI: "https://docs.example/e"},
		{name: "rfc6749 401 invalid_grant", status: 401, contentType: "application/json",
			body:     `{"error":"invalid_grant","error_description":"bad user"}`,
			wantCode: "invalid_grant", wantProvider: "invalid_grant", wantDesc: "bad user"},
		{name: "rfc6749 with 200", status: 200, contentType: "application/json",
			body:     `{"error":"invalid_grant","error_description":"expired"}`,
			wantCode: "invalid_grant", wantProvider: "invalid_grant", wantDesc: "expired"},
		{name: "rfc6749 code in upper case", status: 400, contentType: "application/json",
			body:     `{"error":"INVALID_SCOPE"}`,
			wantCode: "invalid_scope", wantProvider: "INVALID_SCOPE"},
		{name: "rfc6749 unknown code", status: 401, contentType: "application/json",
			body:     `{"error":"bad_stuff"}`,
			wantCode: "invalid_client", wantProvider: "bad_stuff"},
		{name: "form-encoded rfc6749 with 400", status: 400, contentType: "application/x-www-form-urlencoded",
			body:     "error=invalid_grant&error_description=bad+password",
			wantCode: "invalid_grant", wantProvider: "invalid_grant", wantDesc: "bad password"},
		{name: "form-encoded rfc6749 with 200", status: 200, contentType: "application/x-www-form-urlencoded",
			body:     "error=invalid_grant&error_description=bad+password",
			wantCode: "invalid_grant", wantProvider: "invalid_grant", wantDesc: "bad password"},
		{name: "numeric error 400", status: 400, contentType: "application/json",
			body:     `{"error":400,"error_description":"Missing grant_type","error_uri":"https://docs.example/400"}`,
			wantCode: "invalid_request", wantProvider: "400", wantDesc: "Missing grant_type", wantURI: "https://docs.example/400"},
		{name: "numeric error 401 in a 400", status: 400, contentType: "application/json",
			body:     `{"error":401,"error_description":"Unauthorized"}`,
			wantCode: "invalid_client", wantProvider: "401", wantDesc: "Unauthorized"},
		{name: "numeric error 500", status: 500, contentType: "application/json",
			body:     `{"error":500,"error_description":"boom"}`,
			wantCode: "server_error", wantProvider: "500", wantDesc: "boom"},
		{name: "directlink numeric 401", provider: source.DirectLink, status: 401, contentType: "application/json",
			body:     `{"error":401,"error_description":"Unknown user or wrong password"}`,
			wantCode: "invalid_grant", wantProvider: "401", wantDesc: "wrong password"},
		{name: "directlink numeric 400", provider: source.DirectLink, status: 400, contentType: "application/json",
			body:     `{"error":400,"error_description":"Missing username"}`,
			wantCode: "invalid_request", wantProvider: "400", wantDesc: "Missing username"},
		{name: "problem+json", provider: source.GestaoPlus, status: 400, contentType: problem,
			body:     `{"type":"http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html","title":"invalid_grant","status":400,"detail":"The user credentials were incorrect."}`,
			wantCode: "invalid_grant", wantProvider: "invalid_grant", wantDesc: "user credentials were incorrect",
			wantURI: "http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html"},
		{name: "problem+json, generic provider", status: 401, contentType: problem,
			body:     `{"title":"invalid_client","status":401,"detail":"no such client"}`,
			wantCode: "invalid_client", wantProvider: "invalid_client", wantDesc: "no such client"},
		{name: "serproid 401", provider: source.SerproID, status: 401, contentType: "application/json",
			body:     `{"code":"AUTENTICACAO_INVALIDA_CLIENT_OAUTH","msg":"Credenciais invalidas","debug":"x"}`,
			wantCode: "invalid_client", wantProvider: "AUTENTICACAO_INVALIDA_CLIENT_OAUTH", wantDesc: "Credenciais invalidas"},
		{name: "serproid 412 missing field", provider: source.SerproID, status: 412, contentType: "application/json",
			body:     `{"code":"CAMPO_OBRIGATORIO","msg":"client_id obrigatorio"}`,
			wantCode: "invalid_request", wantProvider: "CAMPO_OBRIGATORIO", wantDesc: "obrigatorio"},
		{name: "serproid 412 unknown client", provider: source.SerproID, status: 412, contentType: "application/json",
			body:     `{"code":"CLIENTE_OAUTH_NAO_IDENTIFICADO","msg":"cliente"}`,
			wantCode: "invalid_request", wantProvider: "CLIENTE_OAUTH_NAO_IDENTIFICADO"},
		{name: "serproid 400 bad value", provider: source.SerproID, status: 400, contentType: "application/json",
			body:     `{"code":"VALOR_PARAMETRO_INVALIDO","msg":"grant_type"}`,
			wantCode: "invalid_request", wantProvider: "VALOR_PARAMETRO_INVALIDO"},
		{name: "serproid 500", provider: source.SerproID, status: 500, contentType: "application/json",
			body:     `{"code":"FALHA_TOKEN_MANUTENCAO_APLICACAO","msg":"manutencao"}`,
			wantCode: "server_error", wantProvider: "FALHA_TOKEN_MANUTENCAO_APLICACAO"},
		{name: "message 403", status: 403, contentType: "application/json",
			body:     `{"message":"Forbidden by policy"}`,
			wantCode: "unauthorized_client", wantDesc: "Forbidden by policy"},
		{name: "message 401", status: 401, contentType: "application/json",
			body:     `{"message":"Unauthorized"}`,
			wantCode: "invalid_client", wantDesc: "Unauthorized"},
		{name: "HTML 502", status: 502, contentType: "text/html",
			body:     "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>",
			wantCode: "server_error", wantDesc: "502 Bad Gateway"},
		{name: "plain text 401", status: 401, contentType: "text/plain",
			body:     "Unauthorized: unknown client\n",
			wantCode: "invalid_client", wantDesc: "Unauthorized: unknown client"},
		{name: "plain text 400", status: 400, contentType: "text/plain",
			body:     "bad request",
			wantCode: "invalid_request", wantDesc: "bad request"},
		{name: "empty 500", status: 500, wantCode: "server_error"},
		{name: "429 Retry-After seconds", status: 429, contentType: "application/json",
			body: `{"error":"slow_down"}`, header: map[string]string{"Retry-After": "7"},
			wantCode: "temporarily_unavailable", wantProvider: "slow_down", wantRetry: 7 * time.Second},
		{name: "503 Retry-After date", status: 503, contentType: "text/plain", body: "maintenance",
			header:   map[string]string{"Retry-After": "<date in 2 minutes>"},
			wantCode: "server_error", wantDesc: "maintenance", wantRetry: 2 * time.Minute},
		{name: "200 HTML", status: 200, contentType: "text/html", body: "<html>login</html>", wantCode: "server_error"},
		{name: "200 without access token", status: 200, contentType: "application/json", body: `{"token_type":"bearer"}`, wantCode: "server_error"},
		{name: "200 null", status: 200, contentType: "application/json", body: `null`, wantCode: "server_error"},
		{name: "200 array", status: 200, contentType: "application/json", body: `[{"access_token":"x"}]`, wantCode: "server_error"},
		{name: "200 trailing data", status: 200, contentType: "application/json", body: `{"access_token":"x"}{"access_token":"y"}`, wantCode: "server_error"},
		{name: "200 access token not a string", status: 200, contentType: "application/json", body: `{"access_token":12345}`, wantCode: "server_error"},
		{name: "200 refresh token not a string", status: 200, contentType: "application/json", body: `{"access_token":"x","refresh_token":7}`, wantCode: "server_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, func(w http.ResponseWriter, r *seen) {
				for k, v := range tt.header {
					if v == "<date in 2 minutes>" { // an HTTP date, as of the reply
						v = time.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat)
					}
					w.Header().Set(k, v)
				}
				writeReply(w, tt.status, tt.contentType, tt.body)
			})
			cfg := clientConfig(ts)
			cfg.Provider = tt.provider
			if tt.provider != nil && tt.provider.GrantType == source.Password {
				cfg.GrantType = source.Password
				cfg.Username, cfg.Password = "alice", testPassword
			}
			_, err := fetchToken(t, cfg)
			te := tokenError(t, err)
			if te.StatusCode != tt.status {
				t.Errorf("StatusCode = %d, want %d", te.StatusCode, tt.status)
			}
			if te.Code != tt.wantCode {
				t.Errorf("Code = %q, want %q (error %v)", te.Code, tt.wantCode, err)
			}
			if tt.wantProvider != "" && te.ProviderCode != tt.wantProvider {
				t.Errorf("ProviderCode = %q, want %q", te.ProviderCode, tt.wantProvider)
			}
			if !strings.Contains(te.Description, tt.wantDesc) {
				t.Errorf("Description = %q, want it to contain %q", te.Description, tt.wantDesc)
			}
			if strings.Contains(te.Description, "<") {
				t.Errorf("Description = %q has markup", te.Description)
			}
			if te.URI != tt.wantURI {
				t.Errorf("URI = %q, want %q", te.URI, tt.wantURI)
			}
			if d := te.RetryAfter - tt.wantRetry; d < -2*time.Second || d > 0 || (tt.wantRetry == 0 && te.RetryAfter != 0) {
				t.Errorf("RetryAfter = %v, want %v", te.RetryAfter, tt.wantRetry)
			}
			wantName := "standard"
			if tt.provider != nil {
				wantName = tt.provider.Name
			}
			if te.Provider != wantName {
				t.Errorf("Provider = %q, want %q", te.Provider, wantName)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "source: ") || !strings.Contains(msg, tt.wantCode) {
				t.Errorf("Error() = %q, want it to start with %q and name %q", msg, "source: ", tt.wantCode)
			}
		})
	}
}

func TestErrorSnippetBounded(t *testing.T) {
	const limit = 256 + len("…")
	long := strings.Repeat("lorem ipsum dolor sit amet ", 400) // ~10 KB
	tests := []struct {
		name, contentType, body string
	}{
		{"plain text", "text/plain", long},
		{"HTML", "text/html", "<html><body><p>" + long + "</p></body></html>"},
		{"JSON description", "application/json", `{"error":"invalid_request","error_description":"` + long + `"}`},
		{"JSON message", "application/json", `{"message":"` + long + `"}`},
		{"unknown JSON", "application/json", `{"detail":"` + long + `"}`},
		{"binary", "application/octet-stream", strings.Repeat("\x00\xff\x1b[31m", 2000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, func(w http.ResponseWriter, r *seen) {
				writeReply(w, 400, tt.contentType, tt.body)
			})
			_, err := fetchToken(t, clientConfig(ts))
			te := tokenError(t, err)
			if got := len(te.Description); got > limit {
				t.Errorf("len(Description) = %d, want at most %d", got, limit)
			}
			if len(tt.body) > limit && strings.TrimSpace(te.Description) != "" && !strings.HasSuffix(te.Description, "…") {
				t.Errorf("Description = %q, want it to end in an ellipsis", te.Description)
			}
			if got := len(err.Error()); got > 1024 {
				t.Errorf("len(Error()) = %d, want at most 1024", got)
			}
			for _, c := range te.Description + te.ProviderCode {
				if c < ' ' || c == 0x7f || c == '\ufffd' {
					t.Errorf("Description %q has control or invalid characters", te.Description)
					break
				}
			}
		})
	}
}

// TestErrorScrubsSecrets has the provider echo what it was sent back in
// its error; no secret the source knows may reach the error.
func TestErrorScrubsSecrets(t *testing.T) {
	const (
		secret = "cs-Wq+7 x:Ab%secret" // form-encoding changes it
		pass   = "pw-Lm3/Yt&9secret"
		otp    = "otp-Nn42Zr6secret"
	)
	formSecret := url.QueryEscape(secret)
	basicCred := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(testClientID) + ":" + formSecret))
	secrets := []string{secret, pass, otp, formSecret, url.QueryEscape(pass), basicCred}

	tests := []struct {
		name  string
		mod   func(*source.Config)
		reply func(w http.ResponseWriter, r *seen)
	}{
		{"secret in description", nil, func(w http.ResponseWriter, r *seen) {
			writeJSON(w, 401, `{"error":"invalid_client","error_description":"client secret `+secret+` is wrong"}`)
		}},
		{"secret as the code", nil, func(w http.ResponseWriter, r *seen) {
			writeJSON(w, 401, `{"error":"`+secret+`"}`)
		}},
		{"secret in error_uri", nil, func(w http.ResponseWriter, r *seen) {
			writeJSON(w, 401, `{"error":"invalid_client","error_uri":"https://docs.example/?s=`+secret+`"}`)
		}},
		{"password in problem detail", nil, func(w http.ResponseWriter, r *seen) {
			writeReply(w, 400, "application/problem+json", `{"title":"invalid_grant","status":400,"detail":"password `+pass+` rejected"}`)
		}},
		{"password in code,msg", nil, func(w http.ResponseWriter, r *seen) {
			writeJSON(w, 401, `{"code":"AUTENTICACAO_INVALIDA_CLIENT_OAUTH","msg":"`+pass+`","debug":"`+secret+`"}`)
		}},
		{"secret in message", nil, func(w http.ResponseWriter, r *seen) {
			writeJSON(w, 403, `{"message":"`+secret+`"}`)
		}},
		{"secret in plain text", nil, func(w http.ResponseWriter, r *seen) {
			writeReply(w, 401, "text/plain", "bad secret "+secret+" and password "+pass)
		}},
		{"secret in HTML", nil, func(w http.ResponseWriter, r *seen) {
			writeReply(w, 500, "text/html", "<html><body><pre>"+secret+"</pre></body></html>")
		}},
		{"secret in a 200 error", nil, func(w http.ResponseWriter, r *seen) {
			writeJSON(w, 200, `{"error":"invalid_client","error_description":"`+secret+`"}`)
		}},
		{"OTP in description", func(c *source.Config) {
			c.Password = ""
			c.PasswordFunc = func(context.Context) (string, error) { return otp, nil }
		}, func(w http.ResponseWriter, r *seen) {
			writeJSON(w, 400, `{"error":"invalid_grant","error_description":"otp `+otp+` used"}`)
		}},
		{"request body echoed", func(c *source.Config) { c.AuthStyle = source.AuthInBody }, func(w http.ResponseWriter, r *seen) {
			writeReply(w, 400, "text/plain", "cannot parse "+string(r.body))
		}},
		{"Basic header echoed", nil, func(w http.ResponseWriter, r *seen) {
			writeReply(w, 401, "text/plain", "bad header: "+r.header.Get("Authorization"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, tt.reply)
			cfg := passwordConfig(ts)
			cfg.ClientSecret, cfg.Password = secret, pass
			if tt.mod != nil {
				tt.mod(&cfg)
			}
			_, err := fetchToken(t, cfg)
			te := tokenError(t, err)
			outs := map[string]string{
				"Error()": err.Error(), "Description": te.Description, "ProviderCode": te.ProviderCode,
				"URI": te.URI, "%+v": fmt.Sprintf("%+v", err), "%#v": fmt.Sprintf("%#v", te),
			}
			for what, out := range outs {
				for _, s := range secrets {
					if strings.Contains(out, s) {
						t.Errorf("%s shows secret %q: %s", what, s, out)
					}
				}
			}
		})
	}

	t.Run("refresh token in description", func(t *testing.T) {
		const refresh = "rt-Kk19Qs4secret"
		ts := newTokenServer(t, func(w http.ResponseWriter, r *seen) {
			if r.n == 1 {
				writeJSON(w, 200, tokenJSON("tok-1", 3600, refresh))
				return
			}
			writeJSON(w, 503, `{"error":"temporarily_unavailable","error_description":"cannot refresh `+refresh+`"}`)
		})
		src := newSource(t, clientConfig(ts))
		tok, err := src.Token(context.Background())
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		src.Invalidate(tok)
		_, err = src.Token(context.Background())
		te := tokenError(t, err)
		if got := ts.requests()[1].form.Get("grant_type"); got != "refresh_token" {
			t.Fatalf("second request grant_type = %q, want refresh_token", got)
		}
		for _, out := range []string{err.Error(), te.Description, te.ProviderCode} {
			if strings.Contains(out, refresh) {
				t.Errorf("error shows the refresh token: %s", out)
			}
		}
	})
}

func TestReplySizeLimit(t *testing.T) {
	// body returns a valid token reply of exactly n bytes.
	body := func(n int) string {
		head := `{"access_token":"big-tok","token_type":"bearer","expires_in":3600,"pad":"`
		tail := `"}`
		return head + strings.Repeat("a", n-len(head)-len(tail)) + tail
	}
	tests := []struct {
		name    string
		size    int
		wantErr bool
	}{
		{"exactly 1 MiB", source.MaxReplyBytes, false},
		{"1 MiB + 1", source.MaxReplyBytes + 1, true},
		{"8 MiB", 8 << 20, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := body(tt.size)
			if len(b) != tt.size {
				t.Fatalf("test body is %d bytes, want %d", len(b), tt.size)
			}
			ts := newTokenServer(t, func(w http.ResponseWriter, r *seen) { writeJSON(w, 200, b) })
			tok, err := fetchToken(t, clientConfig(ts))
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Token: %v", err)
				}
				if got, want := tok.AccessToken, "big-tok"; got != want {
					t.Errorf("AccessToken = %q, want %q", got, want)
				}
				return
			}
			te := tokenError(t, err)
			if te.Code != source.CodeServerError {
				t.Errorf("Code = %q, want %q", te.Code, source.CodeServerError)
			}
		})
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	for _, status := range []int{301, 302, 303, 307, 308} {
		for _, userClient := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d user client %v", status, userClient), func(t *testing.T) {
				target := newTokenServer(t, replyToken(3600))
				ts := newTokenServer(t, func(w http.ResponseWriter, r *seen) {
					w.Header().Set("Location", target.tokenURL())
					w.WriteHeader(status)
				})
				cfg := clientConfig(ts)
				var follow func(*http.Request, []*http.Request) error
				if userClient {
					follow = func(*http.Request, []*http.Request) error { return nil }
					cfg.HTTPClient = &http.Client{CheckRedirect: follow}
				}
				_, err := fetchToken(t, cfg)
				te := tokenError(t, err)
				if te.StatusCode != status {
					t.Errorf("StatusCode = %d, want %d", te.StatusCode, status)
				}
				if got := target.count(); got != 0 {
					t.Errorf("the redirect target got %d requests, want 0", got)
				}
				if got := ts.count(); got != 1 {
					t.Errorf("the token endpoint got %d requests, want 1", got)
				}
				if strings.Contains(err.Error(), testClientSecret) {
					t.Errorf("error shows the client secret: %v", err)
				}
				if userClient && (cfg.HTTPClient.CheckRedirect == nil || cfg.HTTPClient.CheckRedirect(nil, nil) != nil) {
					t.Errorf("New changed the caller's HTTPClient.CheckRedirect")
				}
			})
		}
	}
}

func TestRejectsUnsafeHeaderValues(t *testing.T) {
	header := &source.Provider{Name: "custom", Reply: source.ReplyFields{HeaderValue: "Authorization"}}
	tests := []struct {
		name     string
		provider *source.Provider
		body     string
		wantErr  bool
		want     string // HeaderValue when no error
	}{
		{"plain token", nil, `{"access_token":"abc.DEF-123_~+/="}`, false, "Bearer abc.DEF-123_~+/="},
		{"CR LF", nil, `{"access_token":"abc\r\nX-Evil: 1"}`, true, ""},
		{"LF", nil, `{"access_token":"abc\nX-Evil: 1"}`, true, ""},
		{"space", nil, `{"access_token":"abc def"}`, true, ""},
		{"tab", nil, `{"access_token":"abc\tdef"}`, true, ""},
		{"NUL", nil, `{"access_token":"abc\u0000def"}`, true, ""},
		{"DEL", nil, `{"access_token":"abc\u007fdef"}`, true, ""},
		{"non-ASCII", nil, `{"access_token":"abcé"}`, true, ""},
		{"empty", nil, `{"access_token":""}`, true, ""},
		{"header value verbatim", header, `{"Authorization":"VCSchema abc.def"}`, false, "VCSchema abc.def"},
		{"header value over access token", header, `{"access_token":"at","Authorization":"VCSchema abc"}`, false, "VCSchema abc"},
		{"header value CR LF", header, `{"Authorization":"VCSchema abc\r\nX-Evil: 1"}`, true, ""},
		{"header value LF", header, `{"Authorization":"VCSchema abc\nX-Evil: 1"}`, true, ""},
		{"header value CR", header, `{"Authorization":"VCSchema abc\rdef"}`, true, ""},
		{"header value non-ASCII", header, `{"Authorization":"VCSchema abcé"}`, true, ""},
		{"header value leading space", header, `{"Authorization":" VCSchema abc"}`, true, ""},
		{"header value not a string", header, `{"Authorization":42}`, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, func(w http.ResponseWriter, r *seen) { writeJSON(w, 200, tt.body) })
			cfg := clientConfig(ts)
			cfg.Provider = tt.provider
			tok, err := fetchToken(t, cfg)
			if tt.wantErr {
				te := tokenError(t, err)
				if te.Code != source.CodeServerError {
					t.Errorf("Code = %q, want %q", te.Code, source.CodeServerError)
				}
				if strings.Contains(err.Error(), "abc") {
					t.Errorf("error shows the token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if got := tok.HeaderValue(); got != tt.want {
				t.Errorf("HeaderValue() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestVaultIDRequest(t *testing.T) {
	ts := newTokenServer(t, func(w http.ResponseWriter, r *seen) {
		writeJSON(w, 200, `{"Authorization":"VCSchema vc-abc.def","token_type":"bearer","expires_in":3600,"scope":"authentication_session"}`)
	})
	cfg := source.Config{Provider: source.VaultID, TokenURL: ts.tokenURL(), ClientID: testClientID,
		ClientSecret: testClientSecret, Username: "123.456.789-09", Lifetime: 2 * time.Hour, Cloud: "cloud-a",
		PasswordFunc: func(context.Context) (string, error) { return "654321", nil }}
	tok, err := fetchToken(t, cfg)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if got, want := tok.HeaderValue(), "VCSchema vc-abc.def"; got != want {
		t.Errorf("HeaderValue() = %q, want %q", got, want)
	}
	r := ts.requests()[0]
	if r.json == nil {
		t.Fatalf("body %q is not JSON", r.body)
	}
	want := map[string]string{"grant_type": "password", "client_id": testClientID, "client_secret": testClientSecret,
		"username": "12345678909", "password": "654321", "lifetime": "7200", "provider": "cloud-a"}
	for k, v := range want {
		if got := r.form.Get(k); got != v {
			t.Errorf("body field %q = %q, want %q", k, got, v)
		}
	}
}

func TestPasswordFunc(t *testing.T) {
	errOTP := errors.New("otp device unplugged")
	tests := []struct {
		name    string
		f       func(context.Context) (string, error)
		wantIs  error
		wantMsg string
	}{
		{"panics", func(context.Context) (string, error) { panic("device on fire " + testClientSecret) }, nil, "PasswordFunc"},
		{"panics with nil error", func(context.Context) (string, error) {
			var err error
			panic(err)
		}, nil, "PasswordFunc"},
		{"errors", func(context.Context) (string, error) { return "", errOTP }, errOTP, "PasswordFunc"},
		{"empty password", func(context.Context) (string, error) { return "", nil }, nil, "PasswordFunc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, replyToken(3600))
			cfg := passwordConfig(ts)
			cfg.Password = ""
			cfg.PasswordFunc = tt.f
			_, err := fetchToken(t, cfg)
			if err == nil {
				t.Fatal("Token = nil error, want one")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false, want true", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not name %q", err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), testClientSecret) {
				t.Errorf("error %q shows the client secret", err)
			}
			if got := ts.count(); got != 0 {
				t.Errorf("token requests = %d, want 0", got)
			}
		})
	}
}

func TestPasswordFuncOncePerRequest(t *testing.T) {
	ts := newTokenServer(t, func(w http.ResponseWriter, r *seen) {
		if r.n == 2 {
			writeJSON(w, 400, `{"error":"invalid_grant"}`)
			return
		}
		writeJSON(w, 200, tokenJSON(fmt.Sprintf("tok-%d", r.n), 3600, ""))
	})
	var mu sync.Mutex
	calls := 0
	cfg := passwordConfig(ts)
	cfg.Password = ""
	cfg.PasswordFunc = func(ctx context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return fmt.Sprintf("otp-%d", calls), nil
	}
	src := newSource(t, cfg)
	ctx := context.Background()
	var last *source.Token
	for i := 1; i <= 4; i++ {
		tok, err := src.Token(ctx)
		if i == 2 {
			if err == nil {
				t.Fatalf("Token #2 = nil error, want the endpoint's 400")
			}
			continue
		}
		if err != nil {
			t.Fatalf("Token #%d: %v", i, err)
		}
		// A cached hit must not ask for a password.
		if again, _ := src.Token(ctx); again != tok {
			t.Errorf("Token #%d again = %v, want the cached %v", i, again, tok)
		}
		src.Invalidate(tok)
		last = tok
	}
	if last == nil {
		t.Fatal("no token")
	}
	reqs := ts.requests()
	mu.Lock()
	gotCalls := calls
	mu.Unlock()
	if gotCalls != len(reqs) || len(reqs) != 4 {
		t.Errorf("PasswordFunc calls = %d, requests = %d, want 4 and 4", gotCalls, len(reqs))
	}
	for i, r := range reqs {
		if got, want := r.form.Get("password"), fmt.Sprintf("otp-%d", i+1); got != want {
			t.Errorf("request %d password = %q, want %q (each request its own OTP)", i+1, got, want)
		}
	}
}

func TestUnreachableEndpoint(t *testing.T) {
	ts := newTokenServer(t, replyToken(3600))
	cfg := clientConfig(ts)
	ts.Close() // nothing listens any more
	_, err := fetchToken(t, cfg)
	var fe *source.FetchError
	if !errors.As(err, &fe) {
		t.Fatalf("error = %v (%T), want a *source.FetchError", err, err)
	}
	if strings.Contains(err.Error(), testClientSecret) {
		t.Errorf("error %q shows the client secret", err)
	}
}

// A parameter with several values (RFC 8707 resource) is sent repeated in
// a form and as an array in JSON; none is dropped.
func TestRequestParamsRepeated(t *testing.T) {
	ts := newTokenServer(t, replyToken(3600))
	cfg := passwordConfig(ts)
	cfg.EndpointParams = url.Values{"resource": {"urn:a", "urn:b"}}
	for _, enc := range []source.Encoding{source.FormEncoding, source.JSONEncoding} {
		t.Run(enc.String(), func(t *testing.T) {
			cfg.Encoding = enc
			n := ts.count()
			if _, err := fetchToken(t, cfg); err != nil {
				t.Fatalf("Token: %v", err)
			}
			r := ts.requests()[n]
			var got []string
			if enc == source.JSONEncoding {
				arr, _ := r.json["resource"].([]any)
				for _, v := range arr {
					got = append(got, fmt.Sprint(v))
				}
			} else {
				got = r.form["resource"]
			}
			if want := []string{"urn:a", "urn:b"}; !slices.Equal(got, want) {
				t.Errorf("resource = %q, want %q (body %s)", got, want, r.body)
			}
		})
	}
}
