package source_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/retry"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// Credentials the emulators of these tests accept. They are distinctive so
// that a leak is found by searching for them.
const (
	pvSecret   = "pv-client-secret-Zq81wX"
	pvPassword = "pv-user-password-Kx42vB"
	pvCloud    = "SOLUTIHOM"
	pvOrigin   = "https://acme.gestao.plus"
)

// pvOTPSeq numbers the one-time passwords of every test in this file, so
// that no two requests anywhere send the same one.
var pvOTPSeq atomic.Int64

func init() { pvOTPSeq.Store(100000) }

// pvOTPs returns a PasswordFunc that hands out a new 6-digit OTP on each
// call, and the counter of its calls.
func pvOTPs() (func(context.Context) (string, error), *atomic.Int64) {
	var calls atomic.Int64
	return func(context.Context) (string, error) {
		calls.Add(1)
		return strconv.FormatInt(pvOTPSeq.Add(1), 10), nil
	}, &calls
}

// pvGet makes a GET with client and returns the status.
func pvGet(t *testing.T, client *http.Client, u string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET resource: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// pvNoSecret checks that neither err's text nor any string field of the
// *source.Error it wraps contains one of secrets.
func pvNoSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	texts := map[string]string{
		"Error()": err.Error(),
		"%v":      fmt.Sprintf("%v", err),
		"%+v":     fmt.Sprintf("%+v", err),
		"%#v":     fmt.Sprintf("%#v", err),
	}
	var te *source.Error
	if errors.As(err, &te) {
		v := reflect.ValueOf(te).Elem()
		for i := 0; i < v.NumField(); i++ {
			if f := v.Field(i); f.Kind() == reflect.String {
				texts["Error."+v.Type().Field(i).Name] = f.String()
			}
		}
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for where, text := range texts {
			if strings.Contains(text, s) {
				t.Errorf("%s = %q contains the secret %q", where, text, s)
			}
		}
	}
}

// pvWantError is the error a provider's failed Token call must return.
// providerCode and desc are checked when set.
type pvWantError struct {
	status                   int
	code, providerCode, desc string
}

// pvTokenError makes one Token call on a new source for cfg, checks that
// it fails with want and that its error shows none of secrets, and
// returns the *source.Error and the error as Token returned it.
func pvTokenError(t *testing.T, cfg source.Config, want pvWantError, secrets ...string) (*source.Error, error) {
	t.Helper()
	_, err := newSource(t, cfg).Token(t.Context())
	te := tokenError(t, err)
	if got, want := te.StatusCode, want.status; got != want {
		t.Errorf("StatusCode = %d, want %d", got, want)
	}
	if got, want := te.Code, want.code; got != want {
		t.Errorf("Code = %q, want %q (error %q)", got, want, err)
	}
	if got, want := te.ProviderCode, want.providerCode; want != "" && got != want {
		t.Errorf("ProviderCode = %q, want %q", got, want)
	}
	if got, want := te.Description, want.desc; want != "" && got != want {
		t.Errorf("Description = %q, want %q", got, want)
	}
	pvNoSecret(t, err, secrets...)
	return te, err
}

// pvJSON decodes a recorded JSON body.
func pvJSON(t *testing.T, rec sourcetest.RecordedRequest) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body, &m); err != nil {
		t.Fatalf("token request body is not a JSON object: %v", err)
	}
	return m
}

// pvForm decodes a recorded form body.
func pvForm(t *testing.T, rec sourcetest.RecordedRequest) url.Values {
	t.Helper()
	v, err := url.ParseQuery(string(rec.Body))
	if err != nil {
		t.Fatalf("token request body is not a form: %v", err)
	}
	return v
}

// pvJSONString checks that a JSON body field is the string want.
func pvJSONString(t *testing.T, body map[string]json.RawMessage, field, want string) {
	t.Helper()
	raw, ok := body[field]
	if !ok {
		t.Errorf("token request has no %q field, want %q", field, want)
		return
	}
	var got string
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Errorf("token request field %q = %s, want the JSON string %q", field, raw, want)
		return
	}
	if got != want {
		t.Errorf("token request field %q = %q, want %q", field, got, want)
	}
}

func pvContentType(t *testing.T, rec sourcetest.RecordedRequest, want string) {
	t.Helper()
	if got := rec.ContentType; !strings.HasPrefix(got, want) {
		t.Errorf("token request Content-Type = %q, want %q", got, want)
	}
	if got := rec.Method; got != http.MethodPost {
		t.Errorf("token request method = %q, want POST", got)
	}
}

// pvFormFields checks that the form body f has each of fields.
func pvFormFields(t *testing.T, f url.Values, fields map[string]string) {
	t.Helper()
	for k, want := range fields {
		if got := f.Get(k); got != want {
			t.Errorf("token request %s = %q, want %q", k, got, want)
		}
	}
}

// pvNoAuthorization checks that the token request has no Authorization
// header; want says what it should have instead.
func pvNoAuthorization(t *testing.T, rec sourcetest.RecordedRequest, want string) {
	t.Helper()
	if got := rec.Header.Get("Authorization"); got != "" {
		t.Errorf("token request Authorization = %q, want %s", got, want)
	}
}

// pvAbout checks that d is want, give or take a minute.
func pvAbout(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	if diff := got - want; diff < -time.Minute || diff > time.Minute {
		t.Errorf("%s = %v, want about %v", what, got.Round(time.Second), want)
	}
}

// pvCase is one provider against its emulator.
type pvCase struct {
	name  string
	start func(sourcetest.Options) *sourcetest.Server
	opts  sourcetest.Options
	// config is the five-line Config for emu.
	config func(emu *sourcetest.Server) source.Config
	// life is the lifetime of the emulator's tokens for that Config.
	life time.Duration
	// wire checks the last token request of a password or
	// client_credentials grant.
	wire func(t *testing.T, rec sourcetest.RecordedRequest)
	// spoil makes cfg's credentials wrong; wantCode is the error then.
	spoil    func(cfg *source.Config)
	wantCode string
	// revokeRequests is how many token requests it takes to get a new
	// token after RevokeAll.
	revokeRequests int
}

func pvCases() []pvCase {
	return []pvCase{
		{
			name:  "VaultID",
			start: sourcetest.NewVaultID,
			opts:  sourcetest.Options{ClientSecret: pvSecret, Username: "00012345678"},
			config: func(emu *sourcetest.Server) source.Config {
				otp, _ := pvOTPs()
				return source.Config{Provider: source.VaultID, TokenURL: emu.TokenURL,
					ClientID: sourcetest.DefaultClientID, ClientSecret: pvSecret,
					Username: "12345678", PasswordFunc: otp, Cloud: pvCloud, Lifetime: 2 * time.Hour}
			},
			life: 2 * time.Hour,
			wire: func(t *testing.T, rec sourcetest.RecordedRequest) {
				pvContentType(t, rec, "application/json")
				b := pvJSON(t, rec)
				pvJSONString(t, b, "client_id", sourcetest.DefaultClientID)
				pvJSONString(t, b, "client_secret", pvSecret)
				pvJSONString(t, b, "grant_type", "password")
				pvJSONString(t, b, "username", "00012345678") // zero-padded CPF
				pvJSONString(t, b, "provider", pvCloud)
				if got, want := string(b["lifetime"]), "7200"; got != want {
					t.Errorf("token request lifetime = %s, want the number %s (seconds)", got, want)
				}
				var otp string
				if json.Unmarshal(b["password"], &otp) != nil || len(otp) != 6 {
					t.Errorf("token request password = %s, want a 6-digit OTP", b["password"])
				}
				if raw, ok := b["scope"]; ok {
					t.Errorf("token request scope = %s, want none (the provider's default)", raw)
				}
				pvNoAuthorization(t, rec, "none (credentials in the body)")
			},
			spoil:          func(c *source.Config) { c.ClientSecret = pvSecret + "-wrong" },
			wantCode:       source.CodeInvalidClient,
			revokeRequests: 1,
		},
		{
			name:  "DirectLink",
			start: sourcetest.NewDirectLink,
			opts:  sourcetest.Options{Password: pvPassword},
			config: func(emu *sourcetest.Server) source.Config {
				return source.Config{Provider: source.DirectLink, TokenURL: emu.TokenURL,
					Username: sourcetest.DefaultUsername, Password: pvPassword}
			},
			life: time.Hour,
			wire: func(t *testing.T, rec sourcetest.RecordedRequest) {
				pvContentType(t, rec, "application/x-www-form-urlencoded")
				f := pvForm(t, rec)
				pvFormFields(t, f, map[string]string{
					"grant_type": "password", "username": sourcetest.DefaultUsername, "password": pvPassword,
				})
				for _, k := range []string{"client_id", "client_secret"} {
					if f.Has(k) {
						t.Errorf("token request has %s, want no client authentication", k)
					}
				}
				pvNoAuthorization(t, rec, "no client authentication")
			},
			spoil:          func(c *source.Config) { c.Password = pvPassword + "-wrong" },
			wantCode:       source.CodeInvalidGrant,
			revokeRequests: 1,
		},
		{
			name:  "ScorePositivo",
			start: sourcetest.NewScorePositivo,
			opts:  sourcetest.Options{ClientSecret: pvSecret},
			config: func(emu *sourcetest.Server) source.Config {
				return source.Config{Provider: source.ScorePositivo, TokenURL: emu.TokenURL,
					ClientID: sourcetest.DefaultClientID, ClientSecret: pvSecret}
			},
			life: time.Hour,
			wire: func(t *testing.T, rec sourcetest.RecordedRequest) {
				pvContentType(t, rec, "application/json")
				b := pvJSON(t, rec)
				pvJSONString(t, b, "grant_type", "client_credentials")
				pvJSONString(t, b, "client_id", sourcetest.DefaultClientID)
				pvJSONString(t, b, "client_secret", pvSecret)
				pvNoAuthorization(t, rec, "none (credentials in the body)")
			},
			spoil:          func(c *source.Config) { c.ClientSecret = pvSecret + "-wrong" },
			wantCode:       source.CodeInvalidClient,
			revokeRequests: 1,
		},
		{
			name:  "GestaoPlus",
			start: sourcetest.NewGestaoPlus,
			opts:  sourcetest.Options{Password: pvPassword},
			config: func(emu *sourcetest.Server) source.Config {
				return source.Config{Provider: source.GestaoPlus, TokenURL: emu.TokenURL,
					Username: sourcetest.DefaultUsername, Password: pvPassword, Origin: pvOrigin}
			},
			life: 12 * time.Hour,
			wire: func(t *testing.T, rec sourcetest.RecordedRequest) {
				pvContentType(t, rec, "application/json")
				b := pvJSON(t, rec)
				pvJSONString(t, b, "grant_type", "password")
				pvJSONString(t, b, "client_id", "app")
				pvJSONString(t, b, "username", sourcetest.DefaultUsername)
				pvJSONString(t, b, "password", pvPassword)
				if raw, ok := b["client_secret"]; !ok || string(raw) != "null" {
					t.Errorf("token request client_secret = %s (present %v), want JSON null", raw, ok)
				}
				if got, want := rec.Header.Get("Origin"), pvOrigin; got != want {
					t.Errorf("token request Origin = %q, want %q", got, want)
				}
			},
			spoil:    func(c *source.Config) { c.Password = pvPassword + "-wrong" },
			wantCode: source.CodeInvalidGrant,
			// RevokeAll also revokes the refresh token: the refresh is
			// refused, then the password grant runs once.
			revokeRequests: 2,
		},
		{
			name:  "SerproID",
			start: sourcetest.NewSerproID,
			opts:  sourcetest.Options{ClientSecret: pvSecret},
			config: func(emu *sourcetest.Server) source.Config {
				return source.Config{Provider: source.SerproID, TokenURL: emu.TokenURL,
					ClientID: sourcetest.DefaultClientID, ClientSecret: pvSecret}
			},
			life: time.Hour,
			wire: func(t *testing.T, rec sourcetest.RecordedRequest) {
				pvContentType(t, rec, "application/x-www-form-urlencoded")
				f := pvForm(t, rec)
				pvFormFields(t, f, map[string]string{
					"grant_type": "client_credentials", "client_id": sourcetest.DefaultClientID, "client_secret": pvSecret,
				})
				pvNoAuthorization(t, rec, "none (credentials in the body)")
			},
			spoil:          func(c *source.Config) { c.ClientSecret = pvSecret + "-wrong" },
			wantCode:       source.CodeInvalidClient,
			revokeRequests: 1,
		},
	}
}

// pvProvider returns the pvCase of the provider called name.
func pvProvider(t *testing.T, name string) pvCase {
	t.Helper()
	for _, c := range pvCases() {
		if c.name == name {
			return c
		}
	}
	t.Fatalf("pvProvider(%q): no such case", name)
	return pvCase{}
}

// emulator starts c's emulator for the test.
func (c pvCase) emulator(t *testing.T) *sourcetest.Server {
	return newEmulator(t, c.start, c.opts)
}

func TestProvidersHappyPath(t *testing.T) {
	for _, c := range pvCases() {
		t.Run(c.name, func(t *testing.T) {
			emu := c.emulator(t)
			src := newSource(t, c.config(emu))

			tok, err := src.Token(t.Context())
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			c.wire(t, emu.LastTokenRequest())
			again, err := src.Token(t.Context())
			if err != nil {
				t.Fatalf("second Token: %v", err)
			}
			if again != tok {
				t.Errorf("second Token returned another token, want the cached one")
			}
			if !tok.Valid() {
				t.Errorf("Token().Valid() = false, want true")
			}
			if got, want := tok.TokenType, "Bearer"; got != want {
				t.Errorf("TokenType = %q, want %q", got, want)
			}
			pvAbout(t, "time to Expiry", time.Until(tok.Expiry), c.life)

			client := tokenhttp.NewClient(src)
			for i := range 3 {
				if got, want := pvGet(t, client, emu.ResourceURL), http.StatusOK; got != want {
					t.Fatalf("GET resource #%d: status %d, want %d", i+1, got, want)
				}
			}
			if got, want := emu.TokenRequests(), 1; got != want {
				t.Errorf("TokenRequests() = %d, want %d (the token is reused)", got, want)
			}
			if got, want := emu.ResourceRequests(), 3; got != want {
				t.Errorf("ResourceRequests() = %d, want %d", got, want)
			}
		})
	}
}

func TestProvidersSurviveRevocation(t *testing.T) {
	for _, c := range pvCases() {
		t.Run(c.name, func(t *testing.T) {
			emu := c.emulator(t)
			src := newSource(t, c.config(emu))
			client := tokenhttp.NewClient(src)
			if got, want := pvGet(t, client, emu.ResourceURL), http.StatusOK; got != want {
				t.Fatalf("GET resource: status %d, want %d", got, want)
			}
			reqs, issued := emu.TokenRequests(), emu.Issued()

			emu.RevokeAll()
			if got, want := pvGet(t, client, emu.ResourceURL), http.StatusOK; got != want {
				t.Fatalf("GET resource after RevokeAll: status %d, want %d", got, want)
			}
			if got, want := emu.TokenRequests()-reqs, c.revokeRequests; got != want {
				t.Errorf("token requests after RevokeAll = %d, want %d", got, want)
			}
			if got, want := emu.Issued()-issued, 1; got != want {
				t.Errorf("tokens issued after RevokeAll = %d, want %d", got, want)
			}
			if got, want := pvGet(t, client, emu.ResourceURL), http.StatusOK; got != want {
				t.Fatalf("GET resource with the new token: status %d, want %d", got, want)
			}
			if got, want := emu.Issued()-issued, 1; got != want {
				t.Errorf("tokens issued after the next call = %d, want %d (the new token is reused)", got, want)
			}
		})
	}
}

// TestProvidersErrorsHoldNoSecret refuses each provider's credentials and
// searches the error for every secret that was sent.
func TestProvidersErrorsHoldNoSecret(t *testing.T) {
	for _, c := range pvCases() {
		t.Run(c.name, func(t *testing.T) {
			emu := c.emulator(t)
			var otps []string
			cfg := c.config(emu)
			if cfg.PasswordFunc != nil {
				f := cfg.PasswordFunc
				cfg.PasswordFunc = func(ctx context.Context) (string, error) {
					otp, err := f(ctx)
					otps = append(otps, otp)
					return otp, err
				}
			}
			c.spoil(&cfg)
			cfg.Retry = retry.Policy{MaxAttempts: 1}
			src := newSource(t, cfg)
			_, err := src.Token(t.Context())
			te := tokenError(t, err)
			if got, want := te.Code, c.wantCode; got != want {
				t.Errorf("Code = %q, want %q (error %q)", got, want, err)
			}
			if got, want := te.Provider, cfg.Provider.Name; got != want {
				t.Errorf("Provider = %q, want %q", got, want)
			}
			pvNoSecret(t, err, append(otps, cfg.ClientSecret, cfg.Password, pvSecret, pvPassword)...)

			// Through the Transport as well.
			_, err = tokenhttp.NewClient(src).Get(emu.ResourceURL)
			if err == nil {
				t.Fatal("GET resource: got no error, want the token error")
			}
			tokenError(t, err)
			pvNoSecret(t, err, append(otps, cfg.ClientSecret, cfg.Password, pvSecret, pvPassword)...)
		})
	}
}

// pvEcho is a token endpoint that refuses every request with an error in
// a provider's shape whose text is the request body: what a server that
// quotes the bad parameter back does.
func pvEcho(t *testing.T, shape func(w http.ResponseWriter, body string)) *httptest.Server {
	t.Helper()
	return newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		shape(w, string(b))
	})
}

func pvWriteJSON(w http.ResponseWriter, status int, ctype string, v any) {
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// pvEchoShapes are error shapes, per provider, that quote the request.
var pvEchoShapes = map[string]func(w http.ResponseWriter, body string){
	"VaultID": func(w http.ResponseWriter, body string) {
		pvWriteJSON(w, 400, "application/json", map[string]any{"error": "invalid_grant", "error_description": body})
	},
	"DirectLink": func(w http.ResponseWriter, body string) {
		pvWriteJSON(w, 400, "application/json", map[string]any{"error": 400, "error_description": body, "error_uri": "https://x.example/?" + body})
	},
	"ScorePositivo": func(w http.ResponseWriter, body string) {
		pvWriteJSON(w, 401, "application/json", map[string]any{"error": "invalid_client", "error_description": body, "hint": body, "message": body})
	},
	"GestaoPlus": func(w http.ResponseWriter, body string) {
		pvWriteJSON(w, 401, "application/problem+json", map[string]any{"type": "https://x.example/?" + body, "title": "invalid_grant", "status": 401, "detail": body})
	},
	"SerproID": func(w http.ResponseWriter, body string) {
		pvWriteJSON(w, 400, "application/json", map[string]any{"code": "VALOR_PARAMETRO_INVALIDO", "msg": body, "debug": body})
	},
}

// pvEchoErr sends one token request of c's provider, with the given
// credentials, to an endpoint that quotes the request back in its error,
// and returns the OTPs sent and the error.
func pvEchoErr(t *testing.T, c pvCase, shape func(http.ResponseWriter, string), secret, password string) ([]string, error) {
	t.Helper()
	echo := pvEcho(t, shape)
	var otps []string
	cfg := c.config(&sourcetest.Server{TokenURL: echo.URL + "/token"})
	if cfg.ClientSecret != "" {
		cfg.ClientSecret = secret
	}
	if cfg.Password != "" {
		cfg.Password = password
	}
	if cfg.PasswordFunc != nil {
		cfg.PasswordFunc = func(context.Context) (string, error) {
			otp := strconv.FormatInt(pvOTPSeq.Add(1), 10)
			otps = append(otps, otp)
			return otp, nil
		}
	}
	cfg.Retry = retry.Policy{MaxAttempts: 1}
	_, err := newSource(t, cfg).Token(t.Context())
	tokenError(t, err)
	return otps, err
}

// TestProvidersEchoedSecretsScrubbed: an endpoint that quotes the request
// body in its error (in the provider's own shape, and as plain text) must
// not get a secret into the *source.Error.
func TestProvidersEchoedSecretsScrubbed(t *testing.T) {
	plain := func(w http.ResponseWriter, body string) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "rejected: "+body)
	}
	for _, c := range pvCases() {
		for shapeName, shape := range map[string]func(http.ResponseWriter, string){
			"own shape": pvEchoShapes[c.name], "plain text": plain,
		} {
			t.Run(c.name+"/"+shapeName, func(t *testing.T) {
				otps, err := pvEchoErr(t, c, shape, pvSecret, pvPassword)
				pvNoSecret(t, err, append(otps, pvSecret, pvPassword)...)
			})
		}
	}
}

// TestProvidersEchoedEncodedSecretsScrubbed is the same with secrets that
// change when they are form- or JSON-encoded: the echo then carries the
// encoded form, which is the secret all the same.
func TestProvidersEchoedEncodedSecretsScrubbed(t *testing.T) {
	const secret, password = "pv&secret/Zq+81 <wX>", "pv&password/Kx+42 <vB>"
	encoded := func(s string) []string {
		j, _ := json.Marshal(s)
		return []string{s, url.QueryEscape(s), strings.Trim(string(j), `"`)}
	}
	for _, c := range pvCases() {
		t.Run(c.name, func(t *testing.T) {
			_, err := pvEchoErr(t, c, pvEchoShapes[c.name], secret, password)
			pvNoSecret(t, err, append(encoded(secret), encoded(password)...)...)
		})
	}
}

// TestProvidersUndocumentedErrorBodies: HTML pages, plain text and foreign
// JSON become a *source.Error with the status, a bounded, scrubbed
// snippet, and a code from the status.
func TestProvidersUndocumentedErrorBodies(t *testing.T) {
	bodies := []struct {
		name, ctype, body, snippet string
		html                       bool
	}{
		{
			name:  "HTML",
			ctype: "text/html; charset=utf-8",
			body: "<!DOCTYPE html>\n<html><head><title>Gateway Error</title></head><body>\n" +
				"<h1>Gateway Error</h1><p>upstream rejected credential={{secret}}</p>\n" +
				strings.Repeat("<p>padding padding padding padding</p>\n", 200) + "</body></html>",
			snippet: "Gateway Error",
			html:    true,
		},
		{
			name:    "plain text",
			ctype:   "text/plain",
			body:    "Request rejected by gateway; credential {{secret}} " + strings.Repeat("x", 4000),
			snippet: "Request rejected by gateway",
		},
		{
			name:  "other JSON",
			ctype: "application/json",
			body: `{"fault":{"faultstring":"Rate limit quota violation","detail":{"errorcode":"policies.ratelimit.QuotaViolation"}},` +
				`"echo":"{{secret}}","pad":"` + strings.Repeat("y", 4000) + `"}`,
			snippet: "Rate limit quota violation",
		},
	}
	statuses := []struct {
		status int
		want   string
	}{
		{400, source.CodeInvalidRequest},
		{401, source.CodeInvalidClient},
		{500, source.CodeServerError},
		{503, source.CodeServerError},
	}
	for _, c := range pvCases() {
		for _, b := range bodies {
			for _, s := range statuses {
				t.Run(fmt.Sprintf("%s/%s/%d", c.name, b.name, s.status), func(t *testing.T) {
					var secret string // the config's secret, which the page quotes
					srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
						w.Header().Set("Content-Type", b.ctype)
						w.WriteHeader(s.status)
						io.WriteString(w, strings.ReplaceAll(b.body, "{{secret}}", secret))
					})
					cfg := c.config(&sourcetest.Server{TokenURL: srv.URL + "/token"})
					secret = cfg.ClientSecret + cfg.Password // one of them is set
					cfg.Retry = retry.Policy{MaxAttempts: 1}
					_, err := newSource(t, cfg).Token(t.Context())
					te := tokenError(t, err)
					want := s.want
					if c.name == "DirectLink" && s.status == 401 {
						want = source.CodeInvalidGrant // DirectLink's 401 is a wrong user or password
					}
					if got := te.Code; got != want {
						t.Errorf("Code = %q, want %q", got, want)
					}
					if got := te.StatusCode; got != s.status {
						t.Errorf("StatusCode = %d, want %d", got, s.status)
					}
					if !strings.Contains(te.Description, b.snippet) {
						t.Errorf("Description = %q, want it to contain %q", te.Description, b.snippet)
					}
					if got, max := len(te.Description), 300; got > max {
						t.Errorf("len(Description) = %d, want at most %d", got, max)
					}
					if b.html && strings.ContainsAny(te.Description, "<>") {
						t.Errorf("Description = %q, want the page's text without tags", te.Description)
					}
					if strings.ContainsFunc(te.Description, func(r rune) bool { return r < ' ' }) {
						t.Errorf("Description = %q has control characters", te.Description)
					}
					pvNoSecret(t, err, secret)
				})
			}
		}
	}
}

// pvRecorder records the Authorization header of each request it sends.
type pvRecorder struct {
	mu   sync.Mutex
	auth []string
}

func (r *pvRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.auth = append(r.auth, req.Header.Get("Authorization"))
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func (r *pvRecorder) sent() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.auth...)
}
