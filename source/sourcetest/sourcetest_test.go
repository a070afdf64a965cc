package sourcetest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// Valid requests, one per dialect.
var (
	standardCC   = form("grant_type", "client_credentials", "client_id", sourcetest.DefaultClientID, "client_secret", sourcetest.DefaultClientSecret)
	standardPass = form("grant_type", "password", "client_id", sourcetest.DefaultClientID, "client_secret", sourcetest.DefaultClientSecret,
		"username", sourcetest.DefaultUsername, "password", sourcetest.DefaultPassword)
	directLinkReq = form("grant_type", "password", "username", sourcetest.DefaultUsername, "password", sourcetest.DefaultPassword)
	scoreReq      = jsonOf(map[string]any{"grant_type": "client_credentials", "client_id": sourcetest.DefaultClientID, "client_secret": sourcetest.DefaultClientSecret})
	gestaoReq     = jsonOf(map[string]any{"grant_type": "password", "client_id": "app", "client_secret": nil,
		"username": sourcetest.DefaultUsername, "password": sourcetest.DefaultPassword})
	serproReq = form("grant_type", "client_credentials", "client_id", sourcetest.DefaultClientID, "client_secret", sourcetest.DefaultClientSecret)
)

func vaultIDReq(otp string, extra ...any) string {
	m := map[string]any{
		"client_id": sourcetest.DefaultClientID, "client_secret": sourcetest.DefaultClientSecret,
		"username": sourcetest.DefaultVaultIDUsername, "password": otp,
		"grant_type": "password", "provider": "SOLUTIHOM",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	return jsonOf(m)
}

// emulator is one dialect, with a request it accepts.
type emulator struct {
	name     string
	provider string
	new      func(sourcetest.Options) *sourcetest.Server
	path     string
	ctype    string
	body     func(i int) string // the i-th valid request (VaultID needs a fresh OTP)
	grant    string
	// auth returns the Authorization value the resource wants.
	auth func(r reply) string
}

func bearer(r reply) string { return "Bearer " + r.str("access_token") }

var emulators = []emulator{
	{"Standard", "standard", sourcetest.NewStandard, "/token", formType,
		func(int) string { return standardCC }, "client_credentials", bearer},
	{"VaultID", "vaultid", sourcetest.NewVaultID, "/oauth", jsonType,
		func(i int) string { return vaultIDReq(fmt.Sprintf("%06d", i)) }, "password",
		func(r reply) string { return r.str("Authorization") }},
	{"DirectLink", "directlink", sourcetest.NewDirectLink, "/directlink/v1/oauth2/token", formType,
		func(int) string { return directLinkReq }, "password", bearer},
	{"ScorePositivo", "scorepositivo", sourcetest.NewScorePositivo, "/oauth/token", jsonType,
		func(int) string { return scoreReq }, "client_credentials", bearer},
	{"GestaoPlus", "gestaoplus", sourcetest.NewGestaoPlus, "/oauth", jsonType,
		func(int) string { return gestaoReq }, "password", bearer},
	{"SerproID", "serproid", sourcetest.NewSerproID, "/oauth/v0/oauth/client_token", formType,
		func(int) string { return serproReq }, "client_credentials", bearer},
}

func TestHappyPath(t *testing.T) {
	for _, e := range emulators {
		t.Run(e.name, func(t *testing.T) {
			srv := started(t, e.new(sourcetest.Options{}))
			if got, want := srv.TokenURL, srv.URL+e.path; got != want {
				t.Errorf("TokenURL = %q, want %q", got, want)
			}
			if got, want := srv.ResourceURL, srv.URL+"/resource"; got != want {
				t.Errorf("ResourceURL = %q, want %q", got, want)
			}
			if got, want := srv.Provider, e.provider; got != want {
				t.Errorf("Provider = %q, want %q", got, want)
			}

			r := token(t, srv, e.ctype, e.body(1))
			wantStatus(t, r, http.StatusOK)
			if got := r.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			if r.str("access_token") == "" {
				t.Fatalf("no access_token in %s", r.body)
			}
			if got, want := srv.IssuedTokens(), []string{r.str("access_token")}; !slices.Equal(got, want) {
				t.Errorf("IssuedTokens = %q, want %q", got, want)
			}

			body := `{"x":1}`
			res := do(t, srv, http.MethodPut, srv.ResourceURL, jsonType, body, "Authorization", e.auth(r))
			wantStatus(t, res, http.StatusOK)
			wantField(t, res, "ok", true)
			wantField(t, res, "method", "PUT")
			wantField(t, res, "body_bytes", float64(len(body)))

			wantStatus(t, resource(t, srv, ""), http.StatusUnauthorized)

			last := srv.LastTokenRequest()
			if last.Method != http.MethodPost || last.ContentType != e.ctype || string(last.Body) != e.body(1) {
				t.Errorf("LastTokenRequest = %s %q %q, want POST %q %q", last.Method, last.ContentType, last.Body, e.ctype, e.body(1))
			}
			counters := []struct {
				name      string
				got, want int
			}{
				{"TokenRequests", srv.TokenRequests(), 1},
				{"Requests(" + e.grant + ")", srv.Requests(e.grant), 1},
				{"Requests(refresh_token)", srv.Requests("refresh_token"), 0},
				{"Issued", srv.Issued(), 1},
				{"ResourceRequests", srv.ResourceRequests(), 2},
			}
			for _, c := range counters {
				if c.got != c.want {
					t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
				}
			}
		})
	}
}

func TestReplyShapes(t *testing.T) {
	t.Run("Standard", func(t *testing.T) {
		srv := started(t, sourcetest.NewStandard(sourcetest.Options{}))
		r := token(t, srv, formType, standardCC+"&scope=read+write")
		wantStatus(t, r, http.StatusOK)
		wantField(t, r, "token_type", "Bearer")
		wantField(t, r, "expires_in", 3600.0)
		wantField(t, r, "scope", "read write")
		if _, ok := r.json["refresh_token"]; ok {
			t.Errorf("refresh_token sent without Options.RefreshTokens: %s", r.body)
		}
	})
	t.Run("VaultID", func(t *testing.T) {
		srv := started(t, sourcetest.NewVaultID(sourcetest.Options{}))
		r := token(t, srv, jsonType, vaultIDReq("123456"))
		wantStatus(t, r, http.StatusOK)
		wantField(t, r, "token_type", "bearer")
		wantField(t, r, "expires_in", 604800.0)
		wantField(t, r, "scope", "authentication_session")
		wantField(t, r, "provider", "SOLUTIHOM")
		access := r.str("access_token")
		if len(access) != 40 || strings.Trim(access, "0123456789abcdef") != "" {
			t.Errorf("access_token = %q, want 40 hex digits", access)
		}
		want := "VCSchema " + base64.StdEncoding.EncodeToString([]byte("SOLUTIHOM-|"+access))
		wantField(t, r, "Authorization", want)
		wantStatus(t, resource(t, srv, want), http.StatusOK)
		wantStatus(t, resource(t, srv, "Bearer "+access), http.StatusUnauthorized)
	})
	t.Run("DirectLink", func(t *testing.T) {
		srv := started(t, sourcetest.NewDirectLink(sourcetest.Options{}))
		r := token(t, srv, formType, directLinkReq)
		wantStatus(t, r, http.StatusOK)
		wantField(t, r, "token_type", "Bearer")
		wantField(t, r, "expires_in", 3600.0)
		wantField(t, r, "scope", srv.URL+"/directlink/v1")
		parts := strings.Split(r.str("access_token"), ".")
		if len(parts) != 3 {
			t.Fatalf("access_token has %d segments, want 3", len(parts))
		}
		var header, claims map[string]any
		for i, v := range []*map[string]any{&header, &claims} {
			b, err := base64.RawURLEncoding.DecodeString(parts[i])
			if err != nil {
				t.Fatalf("segment %d: %v", i, err)
			}
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatalf("segment %d: %v", i, err)
			}
		}
		if got, want := fmt.Sprint(header["alg"], "/", header["typ"]), "HS256/JWT"; got != want {
			t.Errorf("JWT header alg typ = %q, want %q", got, want)
		}
		if got, want := claims["sub"], sourcetest.DefaultUsername; got != want {
			t.Errorf("sub = %v, want %v", got, want)
		}
		for _, c := range []string{"iss", "exp", "iat", "jti"} {
			if _, ok := claims[c]; !ok {
				t.Errorf("claim %s missing: %v", c, claims)
			}
		}
	})
	t.Run("ScorePositivo", func(t *testing.T) {
		srv := started(t, sourcetest.NewScorePositivo(sourcetest.Options{}))
		r := token(t, srv, jsonType, scoreReq)
		wantStatus(t, r, http.StatusOK)
		wantField(t, r, "token_type", "Bearer")
		wantField(t, r, "expires_in", 3600.0)
		if got := r.str("access_token"); len(got) < 500 || strings.Count(got, ".") != 2 {
			t.Errorf("access_token = %.40q (%d chars), want a long JWT", got, len(got))
		}
	})
	t.Run("GestaoPlus", func(t *testing.T) {
		srv := started(t, sourcetest.NewGestaoPlus(sourcetest.Options{}))
		r := token(t, srv, jsonType, gestaoReq)
		wantStatus(t, r, http.StatusOK)
		wantField(t, r, "expires_in", "43200")
		wantField(t, r, "token_type", "Bearer")
		wantField(t, r, "scope", "")
		if r.str("refresh_token") == "" {
			t.Errorf("no refresh_token: %s", r.body)
		}
	})
	t.Run("SerproID", func(t *testing.T) {
		srv := started(t, sourcetest.NewSerproID(sourcetest.Options{}))
		r := token(t, srv, formType, serproReq)
		wantStatus(t, r, http.StatusOK)
		wantField(t, r, "token_type", "Bearer")
		wantField(t, r, "expires_in", 3600.0)
	})
}

// Shape checks for each provider's error body.
func rfcError(code string) func(*testing.T, reply) {
	return func(t *testing.T, r reply) {
		t.Helper()
		wantField(t, r, "error", code)
		if r.str("error_description") == "" {
			t.Errorf("no error_description: %s", r.body)
		}
	}
}

func directLinkError(status int, desc string) func(*testing.T, reply) {
	return func(t *testing.T, r reply) {
		t.Helper()
		wantField(t, r, "error", float64(status))
		wantField(t, r, "error_description", desc)
		if !strings.HasSuffix(r.str("error_uri"), "/directlink/v1") {
			t.Errorf("error_uri = %q, want .../directlink/v1", r.str("error_uri"))
		}
	}
}

func passportError(code string) func(*testing.T, reply) {
	return func(t *testing.T, r reply) {
		t.Helper()
		wantField(t, r, "error", code)
		if r.str("message") == "" || r.str("message") != r.str("error_description") {
			t.Errorf("message = %q, want error_description %q", r.str("message"), r.str("error_description"))
		}
	}
}

func problem(status int, title string) func(*testing.T, reply) {
	return func(t *testing.T, r reply) {
		t.Helper()
		if got, want := r.header.Get("Content-Type"), "application/problem+json"; got != want {
			t.Errorf("Content-Type = %q, want %q", got, want)
		}
		wantField(t, r, "type", "http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html")
		wantField(t, r, "title", title)
		wantField(t, r, "status", float64(status))
	}
}

func serproError(code, msg string) func(*testing.T, reply) {
	return func(t *testing.T, r reply) {
		t.Helper()
		wantField(t, r, "code", code)
		if msg != "" {
			wantField(t, r, "msg", msg)
		}
		if _, ok := r.json["debug"].(string); !ok {
			t.Errorf("no debug string: %s", r.body)
		}
	}
}

func TestWrongEncoding(t *testing.T) {
	tests := []struct {
		e      emulator
		ctype  string
		body   string
		status int
		check  func(*testing.T, reply)
	}{
		{emulators[0], "text/plain", standardCC, 400, rfcError("invalid_request")},
		{emulators[1], formType, "grant_type=password", 400, rfcError("invalid_request")},
		{emulators[2], jsonType, `{"grant_type":"password"}`, 400, directLinkError(400, "Bad Request")},
		{emulators[3], formType, "grant_type=client_credentials", 400, passportError("invalid_request")},
		{emulators[4], formType, "grant_type=password", 400, problem(400, "invalid_client")}, // the documented 400
		{emulators[5], jsonType, `{"grant_type":"client_credentials"}`, 400, serproError("VALOR_PARAMETRO_INVALIDO", "Valor do parâmetro Content-Type inválido")},
	}
	for _, tt := range tests {
		t.Run(tt.e.name, func(t *testing.T) {
			srv := started(t, tt.e.new(sourcetest.Options{}))
			r := token(t, srv, tt.ctype, tt.body)
			wantStatus(t, r, tt.status)
			tt.check(t, r)
			if got := srv.Issued(); got != 0 {
				t.Errorf("Issued = %d, want 0", got)
			}
		})
	}
}

func TestMethodAndSize(t *testing.T) {
	for _, e := range emulators {
		t.Run(e.name, func(t *testing.T) {
			srv := started(t, e.new(sourcetest.Options{}))
			r := do(t, srv, http.MethodGet, srv.TokenURL, "", "")
			wantStatus(t, r, http.StatusMethodNotAllowed)
			if got := r.header.Get("Allow"); got != "POST" {
				t.Errorf("Allow = %q, want POST", got)
			}
			r = token(t, srv, e.ctype, strings.Repeat("a", 64<<10+1))
			wantStatus(t, r, http.StatusRequestEntityTooLarge)
			if got := srv.TokenRequests(); got != 2 {
				t.Errorf("TokenRequests = %d, want 2", got)
			}
		})
	}
}

func TestStandardErrors(t *testing.T) {
	id, secret := sourcetest.DefaultClientID, sourcetest.DefaultClientSecret
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
	tests := []struct {
		name   string
		ctype  string
		body   string
		hdr    []string
		status int
		code   string
	}{
		{"wrong secret", formType, form("grant_type", "client_credentials", "client_id", id, "client_secret", "nope"), nil, 401, "invalid_client"},
		{"no client", formType, form("grant_type", "client_credentials"), nil, 401, "invalid_client"},
		{"wrong Basic", formType, form("grant_type", "client_credentials"), []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":x"))}, 401, "invalid_client"},
		{"Basic and body secret", formType, form("grant_type", "client_credentials", "client_secret", secret), []string{"Authorization", basic}, 400, "invalid_request"},
		{"missing grant_type", formType, form("client_id", id, "client_secret", secret), nil, 400, "invalid_request"},
		{"unknown grant", formType, form("grant_type", "urn:x", "client_id", id, "client_secret", secret), nil, 400, "unsupported_grant_type"},
		{"wrong password", formType, form("grant_type", "password", "client_id", id, "client_secret", secret, "username", sourcetest.DefaultUsername, "password", "x"), nil, 400, "invalid_grant"},
		{"missing password", formType, form("grant_type", "password", "client_id", id, "client_secret", secret, "username", sourcetest.DefaultUsername), nil, 400, "invalid_request"},
		{"unknown refresh token", formType, form("grant_type", "refresh_token", "client_id", id, "client_secret", secret, "refresh_token", "x"), nil, 400, "invalid_grant"},
		{"repeated parameter", formType, standardCC + "&grant_type=password", nil, 400, "invalid_request"},
		{"malformed JSON", jsonType, `{"grant_type":`, nil, 400, "invalid_request"},
		{"Basic", formType, form("grant_type", "client_credentials"), []string{"Authorization", basic}, 200, ""},
		{"Basic and same client_id", formType, form("grant_type", "client_credentials", "client_id", id), []string{"Authorization", basic}, 200, ""},
		{"JSON body", jsonType, jsonOf(map[string]string{"grant_type": "client_credentials", "client_id": id, "client_secret": secret}), nil, 200, ""},
		{"password grant", formType, standardPass, nil, 200, ""},
	}
	srv := started(t, sourcetest.NewStandard(sourcetest.Options{}))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := token(t, srv, tt.ctype, tt.body, tt.hdr...)
			wantStatus(t, r, tt.status)
			if tt.code == "" {
				return
			}
			rfcError(tt.code)(t, r)
			if got, want := r.header.Get("WWW-Authenticate"), `Basic realm="sourcetest"`; tt.status == 401 && got != want {
				t.Errorf("WWW-Authenticate = %q, want %q", got, want)
			}
		})
	}
}

func TestStandardBasicIsFormEncoded(t *testing.T) {
	id, secret := "client:1 é", "s3cr%t+/="
	srv := started(t, sourcetest.NewStandard(sourcetest.Options{ClientID: id, ClientSecret: secret}))
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
	r := token(t, srv, formType, "grant_type=client_credentials", "Authorization", basic)
	wantStatus(t, r, http.StatusOK)
}

func TestRefreshRotation(t *testing.T) {
	tests := []struct {
		name    string
		new     func(sourcetest.Options) *sourcetest.Server
		opts    sourcetest.Options
		ctype   string
		login   string
		refresh func(rt string) string
		status  int // of a refused refresh
		check   func(*testing.T, reply)
	}{
		{"Standard", sourcetest.NewStandard, sourcetest.Options{RefreshTokens: true},
			formType, standardPass + "&scope=a+b",
			func(rt string) string {
				return form("grant_type", "refresh_token", "refresh_token", rt, "client_id", sourcetest.DefaultClientID, "client_secret", sourcetest.DefaultClientSecret)
			},
			400, rfcError("invalid_grant")},
		{"GestaoPlus", sourcetest.NewGestaoPlus, sourcetest.Options{},
			jsonType, gestaoReq,
			func(rt string) string {
				return jsonOf(map[string]any{"grant_type": "refresh_token", "refresh_token": rt, "client_id": "app", "client_secret": nil})
			},
			401, problem(401, "invalid_grant")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := started(t, tt.new(tt.opts))
			r0 := token(t, srv, tt.ctype, tt.login)
			wantStatus(t, r0, http.StatusOK)
			rt0 := r0.str("refresh_token")

			r1 := token(t, srv, tt.ctype, tt.refresh(rt0))
			wantStatus(t, r1, http.StatusOK)
			rt1 := r1.str("refresh_token")
			if rt1 == "" || rt1 == rt0 {
				t.Fatalf("refresh token not rotated: %q then %q", rt0, rt1)
			}
			if r1.str("access_token") == r0.str("access_token") {
				t.Errorf("refresh returned the same access token")
			}
			if tt.name == "Standard" {
				wantField(t, r1, "scope", "a b")
			}
			wantStatus(t, resource(t, srv, bearer(r1)), http.StatusOK)

			r := token(t, srv, tt.ctype, tt.refresh(rt0)) // reuse
			wantStatus(t, r, tt.status)
			tt.check(t, r)

			srv.RejectRefresh(true)
			r = token(t, srv, tt.ctype, tt.refresh(rt1))
			wantStatus(t, r, tt.status)
			tt.check(t, r)

			srv.RejectRefresh(false) // a refused token was not spent
			r2 := token(t, srv, tt.ctype, tt.refresh(rt1))
			wantStatus(t, r2, http.StatusOK)

			// Reuse detection revokes the whole family.
			srv.RevokeOnRefreshReuse(true)
			wantStatus(t, token(t, srv, tt.ctype, tt.refresh(rt1)), tt.status)
			wantStatus(t, resource(t, srv, bearer(r2)), http.StatusUnauthorized)
			wantStatus(t, token(t, srv, tt.ctype, tt.refresh(r2.str("refresh_token"))), tt.status)

			if got, want := srv.Requests("refresh_token"), 6; got != want {
				t.Errorf("Requests(refresh_token) = %d, want %d", got, want)
			}
			if got, want := srv.Issued(), 3; got != want {
				t.Errorf("Issued = %d, want %d", got, want)
			}
		})
	}
}

func TestVaultID(t *testing.T) {
	const cnpj = "12345678000190"
	tests := []struct {
		name   string
		opts   sourcetest.Options
		bodies []string // sent in order; the last one is checked
		status int
		code   string
		expiry float64 // expires_in of a success
	}{
		{"OTP reuse", sourcetest.Options{}, []string{vaultIDReq("111111"), vaultIDReq("111111")}, 400, "invalid_grant", 0},
		{"OTP not numeric", sourcetest.Options{}, []string{vaultIDReq("12a456")}, 400, "invalid_grant", 0},
		{"OTP list", sourcetest.Options{OTPs: []string{"abc"}}, []string{vaultIDReq("abc")}, 200, "", 604800},
		{"OTP not in list", sourcetest.Options{OTPs: []string{"abc"}}, []string{vaultIDReq("123456")}, 400, "invalid_grant", 0},
		{"OTP list reuse", sourcetest.Options{OTPs: []string{"abc"}}, []string{vaultIDReq("abc"), vaultIDReq("abc")}, 400, "invalid_grant", 0},
		{"CPF lifetime max", sourcetest.Options{}, []string{vaultIDReq("123456", "lifetime", 604800)}, 200, "", 604800},
		{"CPF lifetime too long", sourcetest.Options{}, []string{vaultIDReq("123456", "lifetime", 604801)}, 400, "invalid_request", 0},
		{"CPF lifetime asked", sourcetest.Options{}, []string{vaultIDReq("123456", "lifetime", 60)}, 200, "", 60},
		{"CNPJ lifetime max", sourcetest.Options{Username: cnpj}, []string{vaultIDReq("123456", "lifetime", 2592000, "username", cnpj)}, 200, "", 2592000},
		{"CNPJ lifetime too long", sourcetest.Options{Username: cnpj}, []string{vaultIDReq("123456", "lifetime", 2592001, "username", cnpj)}, 400, "invalid_request", 0},
		{"lifetime not integer", sourcetest.Options{}, []string{vaultIDReq("123456", "lifetime", 1.5)}, 400, "invalid_request", 0},
		{"lifetime as string", sourcetest.Options{}, []string{vaultIDReq("123456", "lifetime", "60")}, 400, "invalid_request", 0},
		{"username not a CPF", sourcetest.Options{}, []string{vaultIDReq("123456", "username", "1234567890")}, 400, "invalid_request", 0},
		{"wrong user", sourcetest.Options{}, []string{vaultIDReq("123456", "username", "10987654321")}, 400, "invalid_grant", 0},
		{"wrong client", sourcetest.Options{}, []string{vaultIDReq("123456", "client_secret", "x")}, 401, "invalid_client", 0},
		{"grant_type", sourcetest.Options{}, []string{vaultIDReq("123456", "grant_type", "client_credentials")}, 400, "unsupported_grant_type", 0},
		// The documentation marks no field required, and a username "may be" a string:
		// a number is taken, its leading zeros put back.
		{"no provider", sourcetest.Options{}, []string{vaultIDReq("123456", "provider", nil)}, 200, "", 604800},
		{"provider not a string", sourcetest.Options{}, []string{vaultIDReq("123456", "provider", 7)}, 400, "invalid_request", 0},
		{"numeric CPF", sourcetest.Options{}, []string{vaultIDReq("123456", "username", 12345678901)}, 200, "", 604800},
		{"numeric CPF with a leading zero", sourcetest.Options{Username: "01234567890"}, []string{vaultIDReq("123456", "username", 1234567890)}, 200, "", 604800},
		{"numeric CNPJ", sourcetest.Options{Username: cnpj}, []string{vaultIDReq("123456", "username", 12345678000190, "lifetime", 2592000)}, 200, "", 2592000},
		{"numeric username too long", sourcetest.Options{}, []string{vaultIDReq("123456", "username", 123456789012345)}, 400, "invalid_request", 0},
		{"username not a number", sourcetest.Options{}, []string{vaultIDReq("123456", "username", 1.5)}, 400, "invalid_request", 0},
		{"server lifetime wins", sourcetest.Options{Lifetime: time.Minute}, []string{vaultIDReq("123456", "lifetime", 600)}, 200, "", 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := started(t, sourcetest.NewVaultID(tt.opts))
			var r reply
			for _, b := range tt.bodies {
				r = token(t, srv, jsonType, b)
			}
			wantStatus(t, r, tt.status)
			if tt.code != "" {
				rfcError(tt.code)(t, r)
			} else {
				wantField(t, r, "expires_in", tt.expiry)
			}
		})
	}

	t.Run("plain text errors", func(t *testing.T) {
		srv := started(t, sourcetest.NewVaultID(sourcetest.Options{}))
		srv.PlainTextErrors(true)
		wantStatus(t, token(t, srv, jsonType, vaultIDReq("222222")), http.StatusOK)
		r := token(t, srv, jsonType, vaultIDReq("222222"))
		wantStatus(t, r, http.StatusBadRequest)
		if got, want := r.header.Get("Content-Type"), "text/plain; charset=utf-8"; got != want {
			t.Errorf("Content-Type = %q, want %q", got, want)
		}
		if got, want := strings.TrimSpace(string(r.body)), "invalid_grant: OTP already used"; got != want {
			t.Errorf("body = %q, want %q", got, want)
		}
	})
}

func TestDirectLinkErrors(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		fail   int
		status int
		desc   string
	}{
		{"missing password", form("grant_type", "password", "username", sourcetest.DefaultUsername), 0, 400, "Bad Request"},
		{"wrong grant", form("grant_type", "client_credentials", "username", sourcetest.DefaultUsername, "password", sourcetest.DefaultPassword), 0, 400, "Bad Request"},
		{"wrong password", form("grant_type", "password", "username", sourcetest.DefaultUsername, "password", "x"), 0, 401, "Unauthorized"},
		{"unknown user", form("grant_type", "password", "username", "x", "password", sourcetest.DefaultPassword), 0, 401, "Unauthorized"},
		{"FailNext 500", directLinkReq, 500, 500, "Internal server error"},
		{"FailNext 503", directLinkReq, 503, 503, "Service Unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := started(t, sourcetest.NewDirectLink(sourcetest.Options{}))
			if tt.fail != 0 {
				srv.FailNext(1, tt.fail, "")
			}
			r := token(t, srv, formType, tt.body)
			wantStatus(t, r, tt.status)
			directLinkError(tt.status, tt.desc)(t, r)
			wantField(t, r, "error_uri", srv.URL+"/directlink/v1")
		})
	}
}

func TestScorePositivoErrors(t *testing.T) {
	tests := []struct {
		name   string
		body   any
		fail   int
		status int
		check  func(*testing.T, reply)
	}{
		{"wrong secret", map[string]any{"grant_type": "client_credentials", "client_id": sourcetest.DefaultClientID, "client_secret": "x"}, 0, 401, passportError("invalid_client")},
		{"wrong grant", map[string]any{"grant_type": "password", "client_id": sourcetest.DefaultClientID, "client_secret": sourcetest.DefaultClientSecret}, 0, 400, passportError("unsupported_grant_type")},
		{"missing client_id", map[string]any{"grant_type": "client_credentials", "client_secret": sourcetest.DefaultClientSecret}, 0, 400, passportError("invalid_request")},
		{"client_id not a string", map[string]any{"grant_type": "client_credentials", "client_id": 7, "client_secret": sourcetest.DefaultClientSecret}, 0, 400, passportError("invalid_request")},
		{"FailNext 500", scoreReq, 500, 500, func(t *testing.T, r reply) {
			if got, want := strings.TrimSpace(string(r.body)), `{"message":"Server Error"}`; got != want {
				t.Errorf("body = %s, want %s", got, want)
			}
		}},
		{"FailNext 429", scoreReq, 429, 429, func(t *testing.T, r reply) { wantField(t, r, "message", "Too Many Attempts.") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := started(t, sourcetest.NewScorePositivo(sourcetest.Options{}))
			if tt.fail != 0 {
				srv.FailNext(1, tt.fail, "")
			}
			body, ok := tt.body.(string)
			if !ok {
				body = jsonOf(tt.body)
			}
			r := token(t, srv, jsonType, body)
			wantStatus(t, r, tt.status)
			tt.check(t, r)
			if tt.name == "wrong secret" {
				wantField(t, r, "error_description", "Client authentication failed")
			}
		})
	}
}

func TestGestaoPlusErrors(t *testing.T) {
	req := func(kv ...any) string {
		m := map[string]any{"grant_type": "password", "client_id": "app", "client_secret": nil,
			"username": sourcetest.DefaultUsername, "password": sourcetest.DefaultPassword}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "DELETE" {
				delete(m, kv[i].(string))
				continue
			}
			m[kv[i].(string)] = kv[i+1]
		}
		return jsonOf(m)
	}
	tests := []struct {
		name   string
		opts   sourcetest.Options
		body   string
		hdr    []string
		status int
		title  string
	}{
		{"wrong password", sourcetest.Options{}, req("password", "x"), nil, 401, "invalid_grant"},
		{"wrong client_id", sourcetest.Options{}, req("client_id", "web"), nil, 400, "invalid_client"},
		{"string secret not configured", sourcetest.Options{}, req("client_secret", "s"), nil, 400, "invalid_client"},
		{"string secret configured", sourcetest.Options{ClientSecret: "s"}, req("client_secret", "s"), nil, 200, ""},
		{"null secret with secret configured", sourcetest.Options{ClientSecret: "s"}, req(), nil, 200, ""},
		{"wrong string secret", sourcetest.Options{ClientSecret: "s"}, req("client_secret", "t"), nil, 400, "invalid_client"},
		// The documentation has one 400, "invalid request body", titled invalid_client.
		{"missing client_secret", sourcetest.Options{}, req("client_secret", "DELETE"), nil, 400, "invalid_client"},
		{"missing username", sourcetest.Options{}, req("username", "DELETE"), nil, 400, "invalid_client"},
		{"unknown grant", sourcetest.Options{}, req("grant_type", "client_credentials"), nil, 400, "invalid_client"},
		{"unknown refresh token", sourcetest.Options{}, req("grant_type", "refresh_token", "refresh_token", "x"), nil, 401, "invalid_grant"},
		{"origin required", sourcetest.Options{RequireOrigin: "https://acme.gestao.plus"}, req(), nil, 400, "invalid_client"},
		{"wrong origin", sourcetest.Options{RequireOrigin: "https://acme.gestao.plus"}, req(), []string{"Origin", "https://evil.gestao.plus"}, 400, "invalid_client"},
		{"right origin", sourcetest.Options{RequireOrigin: "https://acme.gestao.plus"}, req(), []string{"Origin", "https://acme.gestao.plus"}, 200, ""},
		{"custom client id", sourcetest.Options{ClientID: "web"}, req("client_id", "web"), nil, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := started(t, sourcetest.NewGestaoPlus(tt.opts))
			r := token(t, srv, jsonType, tt.body, tt.hdr...)
			wantStatus(t, r, tt.status)
			if tt.title != "" {
				problem(tt.status, tt.title)(t, r)
			}
			if tt.name == "wrong password" {
				wantField(t, r, "detail", "Invalid username and password combination")
			}
		})
	}
	t.Run("FailNext 503", func(t *testing.T) {
		srv := started(t, sourcetest.NewGestaoPlus(sourcetest.Options{}))
		srv.FailNext(1, 503, "")
		r := token(t, srv, jsonType, gestaoReq)
		wantStatus(t, r, 503)
		problem(503, "server_error")(t, r)
	})
}

func TestSerproIDErrors(t *testing.T) {
	id, secret := sourcetest.DefaultClientID, sourcetest.DefaultClientSecret
	tests := []struct {
		name   string
		ctype  string
		body   string
		fail   int
		status int
		code   string
		msg    string
	}{
		{"missing grant_type", formType, form("client_id", id, "client_secret", secret), 0, 412, "CAMPO_OBRIGATORIO", "O campo grant_type é obrigatório"},
		{"missing client_id", formType, form("grant_type", "client_credentials", "client_secret", secret), 0, 412, "CAMPO_OBRIGATORIO", "O campo client_id é obrigatório"},
		{"missing client_secret", formType, form("grant_type", "client_credentials", "client_id", id), 0, 412, "CAMPO_OBRIGATORIO", "O campo client_secret é obrigatório"},
		{"wrong grant", formType, form("grant_type", "password", "client_id", id, "client_secret", secret), 0, 400, "VALOR_PARAMETRO_INVALIDO", "Valor do parâmetro grant_type inválido"},
		{"JSON body", jsonType, jsonOf(map[string]string{"grant_type": "client_credentials", "client_id": id, "client_secret": secret}), 0, 400, "VALOR_PARAMETRO_INVALIDO", ""},
		{"unknown client", formType, form("grant_type", "client_credentials", "client_id", "x", "client_secret", secret), 0, 412, "CLIENTE_OAUTH_NAO_IDENTIFICADO", "Não foi possível identificar a aplicação cliente."},
		{"wrong secret", formType, form("grant_type", "client_credentials", "client_id", id, "client_secret", "x"), 0, 401, "AUTENTICACAO_INVALIDA_CLIENT_OAUTH", "Falha na autenticidade do client_id e client_secret."},
		{"FailNext 500", formType, serproReq, 500, 500, "FALHA_TOKEN_MANUTENCAO_APLICACAO", "Erro interno na obtenção do token de manutenção da aplicação."},
		{"FailNext 502", formType, serproReq, 502, 502, "FALHA_TOKEN_MANUTENCAO_APLICACAO", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := started(t, sourcetest.NewSerproID(sourcetest.Options{}))
			if tt.fail != 0 {
				srv.FailNext(1, tt.fail, "")
			}
			r := token(t, srv, tt.ctype, tt.body)
			wantStatus(t, r, tt.status)
			serproError(tt.code, tt.msg)(t, r)
		})
	}
}

func TestFailNextRetryAfter(t *testing.T) {
	checks := map[string]func(*testing.T, reply){
		"Standard":      rfcError("temporarily_unavailable"),
		"VaultID":       rfcError("temporarily_unavailable"),
		"DirectLink":    directLinkError(429, "Too Many Requests"),
		"ScorePositivo": func(t *testing.T, r reply) { wantField(t, r, "message", "Too Many Attempts.") },
		"GestaoPlus":    problem(429, "temporarily_unavailable"),
		"SerproID":      serproError("LIMITE_REQUISICOES_EXCEDIDO", ""),
	}
	for i, e := range emulators {
		t.Run(e.name, func(t *testing.T) {
			srv := started(t, e.new(sourcetest.Options{}))
			srv.FailNext(2, http.StatusTooManyRequests, "7")
			for n := range 2 {
				r := token(t, srv, e.ctype, e.body(10*i+n))
				wantStatus(t, r, http.StatusTooManyRequests)
				if got := r.header.Get("Retry-After"); got != "7" {
					t.Errorf("Retry-After = %q, want 7", got)
				}
				checks[e.name](t, r)
			}
			r := token(t, srv, e.ctype, e.body(10*i+2))
			wantStatus(t, r, http.StatusOK)
			if got := r.header.Get("Retry-After"); got != "" {
				t.Errorf("Retry-After = %q on success", got)
			}
			if got, want := srv.TokenRequests(), 3; got != want {
				t.Errorf("TokenRequests = %d, want %d", got, want)
			}
			if got, want := srv.Requests(e.grant), 3; got != want {
				t.Errorf("Requests(%s) = %d, want %d", e.grant, got, want)
			}
			if got, want := srv.Issued(), 1; got != want {
				t.Errorf("Issued = %d, want %d", got, want)
			}
		})
	}
}

func TestFailNextWithoutRetryAfter(t *testing.T) {
	srv := started(t, sourcetest.NewStandard(sourcetest.Options{}))
	srv.FailNext(1, http.StatusInternalServerError, "")
	r := token(t, srv, formType, standardCC)
	wantStatus(t, r, http.StatusInternalServerError)
	rfcError("server_error")(t, r)
	if got := r.header.Get("Retry-After"); got != "" {
		t.Errorf("Retry-After = %q, want none", got)
	}
}

func TestResetNext(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(fmt.Sprint("TLS=", tls), func(t *testing.T) {
			srv := started(t, sourcetest.NewStandard(sourcetest.Options{TLS: tls}))
			srv.ResetNext(2)
			for range 2 {
				resp, err := srv.Client().Post(srv.TokenURL, formType, strings.NewReader(standardCC))
				if err == nil {
					resp.Body.Close()
					t.Fatalf("got status %d, want a network error", resp.StatusCode)
				}
			}
			wantStatus(t, token(t, srv, formType, standardCC), http.StatusOK)
			if got, want := srv.TokenRequests(), 3; got != want {
				t.Errorf("TokenRequests = %d, want %d", got, want)
			}
			if got, want := srv.Issued(), 1; got != want {
				t.Errorf("Issued = %d, want %d", got, want)
			}
		})
	}
}

func TestHangNext(t *testing.T) {
	t.Run("client timeout", func(t *testing.T) {
		srv := started(t, sourcetest.NewScorePositivo(sourcetest.Options{}))
		srv.HangNext(1)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.TokenURL, strings.NewReader(scoreReq))
		req.Header.Set("Content-Type", jsonType)
		start := time.Now()
		resp, err := srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("got status %d, want an error", resp.StatusCode)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %v, want about 100ms", d)
		}
		wantStatus(t, token(t, srv, jsonType, scoreReq), http.StatusOK)
	})
	t.Run("server close", func(t *testing.T) {
		srv := sourcetest.NewGestaoPlus(sourcetest.Options{TLS: true})
		srv.HangNext(1)
		errc := make(chan error, 1)
		go func() {
			resp, err := srv.Client().Post(srv.TokenURL, jsonType, strings.NewReader(gestaoReq))
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		for srv.TokenRequests() == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		closed := make(chan struct{})
		go func() { srv.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(3 * time.Second):
			t.Fatal("Close hangs on a hung request")
		}
		if err := <-errc; err == nil {
			t.Error("hung request got a response, want an error")
		}
	})
}

func TestCloseWaitsForInFlight(t *testing.T) {
	srv := sourcetest.NewStandard(sourcetest.Options{Latency: 5 * time.Second})
	done := make(chan int, 1)
	go func() {
		resp, err := srv.Client().Post(srv.TokenURL, formType, strings.NewReader(standardCC))
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	for srv.TokenRequests() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	srv.Close() // cuts the latency short, lets the reply out
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	if got, want := srv.Issued(), 1; got != want {
		t.Errorf("Issued = %d after Close, want %d: Close did not wait for the request in flight", got, want)
	}
	select {
	case status := <-done:
		if status != http.StatusOK {
			t.Errorf("request in flight: status %d, want 200", status)
		}
	case <-time.After(2 * time.Second):
		t.Error("the request in flight got no reply")
	}
}

func TestLatency(t *testing.T) {
	const latency = 300 * time.Millisecond
	srv := started(t, sourcetest.NewSerproID(sourcetest.Options{Latency: latency}))
	start := time.Now()
	wantStatus(t, token(t, srv, formType, serproReq), http.StatusOK)
	if d := time.Since(start); d < latency {
		t.Errorf("reply after %v, want at least %v", d, latency)
	}
	srv.SetLatency(0)
	start = time.Now()
	wantStatus(t, token(t, srv, formType, serproReq), http.StatusOK)
	if d := time.Since(start); d >= latency {
		t.Errorf("reply after %v with no latency", d)
	}
}

func TestRevoke(t *testing.T) {
	for i, e := range emulators {
		t.Run(e.name, func(t *testing.T) {
			srv := started(t, e.new(sourcetest.Options{}))
			r1 := token(t, srv, e.ctype, e.body(20*i+1))
			r2 := token(t, srv, e.ctype, e.body(20*i+2))
			wantStatus(t, resource(t, srv, e.auth(r1)), http.StatusOK)

			srv.Revoke(r1.str("access_token"))
			res := resource(t, srv, e.auth(r1))
			wantStatus(t, res, http.StatusUnauthorized)
			if got, want := res.header.Get("WWW-Authenticate"), `Bearer error="invalid_token"`; got != want {
				t.Errorf("WWW-Authenticate = %q, want %q", got, want)
			}
			wantField(t, res, "error", "invalid_token")
			wantStatus(t, resource(t, srv, e.auth(r2)), http.StatusOK)

			srv.RevokeAll()
			wantStatus(t, resource(t, srv, e.auth(r2)), http.StatusUnauthorized)
			r3 := token(t, srv, e.ctype, e.body(20*i+3))
			wantStatus(t, resource(t, srv, e.auth(r3)), http.StatusOK)
		})
	}
}

func TestRevokeAllRevokesRefreshTokens(t *testing.T) {
	srv := started(t, sourcetest.NewGestaoPlus(sourcetest.Options{}))
	r := token(t, srv, jsonType, gestaoReq)
	srv.RevokeAll()
	body := jsonOf(map[string]any{"grant_type": "refresh_token", "refresh_token": r.str("refresh_token"), "client_id": "app", "client_secret": nil})
	wantStatus(t, token(t, srv, jsonType, body), http.StatusUnauthorized)
}

func TestExpiry(t *testing.T) {
	for i, e := range emulators {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			srv := started(t, e.new(sourcetest.Options{}))
			srv.SetLifetime(100 * time.Millisecond)
			r := token(t, srv, e.ctype, e.body(30*i+1))
			wantStatus(t, r, http.StatusOK)
			if got := fmt.Sprint(r.json["expires_in"]); got != "1" {
				t.Errorf("expires_in = %s, want 1 (rounded up)", got)
			}
			wantStatus(t, resource(t, srv, e.auth(r)), http.StatusOK)
			time.Sleep(150 * time.Millisecond)
			res := resource(t, srv, e.auth(r))
			wantStatus(t, res, http.StatusUnauthorized)
			wantField(t, res, "error_description", "access token expired")

			srv.SetLifetime(0) // back to the provider's default
			r = token(t, srv, e.ctype, e.body(30*i+2))
			if got := fmt.Sprint(r.json["expires_in"]); got == "1" {
				t.Errorf("expires_in = %s after SetLifetime(0)", got)
			}
		})
	}
}

func TestResourceAuthorization(t *testing.T) {
	srv := started(t, sourcetest.NewStandard(sourcetest.Options{}))
	access := token(t, srv, formType, standardCC).str("access_token")
	tests := []struct {
		auth   string
		status int
	}{
		{"Bearer " + access, 200},
		{"bearer " + access, 200},
		{"BEARER " + access, 200},
		{"Bearer  " + access, 401},
		{"Bearer " + access + "x", 401},
		{"Basic " + access, 401},
		{access, 401},
		{"", 401},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.10q", tt.auth), func(t *testing.T) {
			r := resource(t, srv, tt.auth)
			wantStatus(t, r, tt.status)
			if strings.Contains(string(r.body), access) {
				t.Errorf("resource echoes the token: %s", r.body)
			}
		})
	}
}

func TestSetCredentials(t *testing.T) {
	srv := started(t, sourcetest.NewSerproID(sourcetest.Options{ClientSecret: "old"}))
	oldReq := form("grant_type", "client_credentials", "client_id", sourcetest.DefaultClientID, "client_secret", "old")
	newReq := form("grant_type", "client_credentials", "client_id", sourcetest.DefaultClientID, "client_secret", "new")
	r := token(t, srv, formType, oldReq)
	wantStatus(t, r, http.StatusOK)
	srv.SetCredentials(sourcetest.Options{ClientSecret: "new"})
	wantStatus(t, token(t, srv, formType, oldReq), http.StatusUnauthorized)
	wantStatus(t, token(t, srv, formType, newReq), http.StatusOK)
	wantStatus(t, resource(t, srv, bearer(r)), http.StatusOK) // issued tokens survive
}

func TestIssuedTokensAreUnique(t *testing.T) {
	srv := started(t, sourcetest.NewStandard(sourcetest.Options{}))
	for range 20 {
		token(t, srv, formType, standardCC)
	}
	seen := map[string]bool{}
	for _, tok := range srv.IssuedTokens() {
		if seen[tok] {
			t.Fatalf("token issued twice: %q", tok)
		}
		seen[tok] = true
	}
	if got, want := len(seen), 20; got != want {
		t.Errorf("IssuedTokens has %d tokens, want %d", got, want)
	}
}

func TestLastTokenRequestIsACopy(t *testing.T) {
	srv := started(t, sourcetest.NewStandard(sourcetest.Options{}))
	token(t, srv, formType, standardCC, "X-Test", "1")
	a := srv.LastTokenRequest()
	a.Header.Set("X-Test", "2")
	a.Body[0] = '!'
	b := srv.LastTokenRequest()
	if got := b.Header.Get("X-Test"); got != "1" {
		t.Errorf("header X-Test = %q after changing a copy, want 1", got)
	}
	if got := string(b.Body); got != standardCC {
		t.Errorf("body = %q after changing a copy, want %q", got, standardCC)
	}
}

// TestConcurrency runs clients and knobs at once; run it with -race.
func TestConcurrency(t *testing.T) {
	srv := started(t, sourcetest.NewStandard(sourcetest.Options{RefreshTokens: true}))
	const clients, each = 8, 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range clients {
		wg.Go(func() {
			for range each {
				resp, err := srv.Client().Post(srv.TokenURL, formType, strings.NewReader(standardPass))
				if err != nil {
					continue // a reset
				}
				var tok struct {
					AccessToken string `json:"access_token"`
				}
				json.NewDecoder(resp.Body).Decode(&tok)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					mu.Lock()
					ok++
					mu.Unlock()
					req, _ := http.NewRequest(http.MethodGet, srv.ResourceURL, nil)
					req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
					if resp, err := srv.Client().Do(req); err == nil {
						resp.Body.Close()
					}
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			srv.SetLatency(time.Duration(i%2) * time.Millisecond)
			srv.SetLifetime(time.Duration(i) * time.Second)
			srv.FailNext(1, 503, "1")
			srv.ResetNext(i % 2)
			srv.RejectRefresh(i%2 == 0)
			srv.SetCredentials(sourcetest.Options{})
			srv.RevokeAll()
			_ = srv.Issued() + srv.TokenRequests() + srv.ResourceRequests() + srv.Requests("password") + len(srv.IssuedTokens())
			_ = srv.LastTokenRequest()
		}
	})
	wg.Wait()
	if got, want := srv.TokenRequests(), clients*each; got != want {
		t.Errorf("TokenRequests = %d, want %d", got, want)
	}
	if got := srv.Issued(); got != ok {
		t.Errorf("Issued = %d, want %d (successful replies)", got, ok)
	}
}
