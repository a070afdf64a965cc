package source_test

import (
	"context"
	"encoding/base64"
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
				if got := rec.Header.Get("Authorization"); got != "" {
					t.Errorf("token request Authorization = %q, want none (credentials in the body)", got)
				}
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
				for k, want := range map[string]string{
					"grant_type": "password", "username": sourcetest.DefaultUsername, "password": pvPassword,
				} {
					if got := f.Get(k); got != want {
						t.Errorf("token request %s = %q, want %q", k, got, want)
					}
				}
				for _, k := range []string{"client_id", "client_secret"} {
					if f.Has(k) {
						t.Errorf("token request has %s, want no client authentication", k)
					}
				}
				if got := rec.Header.Get("Authorization"); got != "" {
					t.Errorf("token request Authorization = %q, want no client authentication", got)
				}
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
				if got := rec.Header.Get("Authorization"); got != "" {
					t.Errorf("token request Authorization = %q, want none (credentials in the body)", got)
				}
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
				for k, want := range map[string]string{
					"grant_type": "client_credentials", "client_id": sourcetest.DefaultClientID, "client_secret": pvSecret,
				} {
					if got := f.Get(k); got != want {
						t.Errorf("token request %s = %q, want %q", k, got, want)
					}
				}
				if got := rec.Header.Get("Authorization"); got != "" {
					t.Errorf("token request Authorization = %q, want none (credentials in the body)", got)
				}
			},
			spoil:          func(c *source.Config) { c.ClientSecret = pvSecret + "-wrong" },
			wantCode:       source.CodeInvalidClient,
			revokeRequests: 1,
		},
	}
}

func TestProvidersHappyPath(t *testing.T) {
	for _, c := range pvCases() {
		t.Run(c.name, func(t *testing.T) {
			emu := newEmulator(t, c.start, c.opts)
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
			emu := newEmulator(t, c.start, c.opts)
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
			emu := newEmulator(t, c.start, c.opts)
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
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		shape(w, string(b))
	}))
	t.Cleanup(srv.Close)
	return srv
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
					srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						w.Header().Set("Content-Type", b.ctype)
						w.WriteHeader(s.status)
						io.WriteString(w, strings.ReplaceAll(b.body, "{{secret}}", secret))
					}))
					t.Cleanup(srv.Close)
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

func TestVaultID(t *testing.T) {
	newEmu := func(t *testing.T) *sourcetest.Server {
		return newEmulator(t, sourcetest.NewVaultID, sourcetest.Options{ClientSecret: pvSecret})
	}
	config := func(emu *sourcetest.Server, otp func(context.Context) (string, error)) source.Config {
		return source.Config{Provider: source.VaultID, TokenURL: emu.TokenURL,
			ClientID: sourcetest.DefaultClientID, ClientSecret: pvSecret,
			Username: sourcetest.DefaultVaultIDUsername, PasswordFunc: otp, Cloud: pvCloud}
	}

	t.Run("header value sent verbatim", func(t *testing.T) {
		emu := newEmu(t)
		otp, _ := pvOTPs()
		src := newSource(t, config(emu, otp))
		tok, err := src.Token(t.Context())
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		if got, want := tok.TokenType, "Bearer"; got != want {
			t.Errorf("TokenType = %q, want %q (the reply says \"bearer\")", got, want)
		}
		if !strings.HasPrefix(tok.Authorization, "VCSchema ") {
			t.Fatalf("Authorization does not start with \"VCSchema \"")
		}
		if got, want := tok.HeaderValue(), tok.Authorization; got != want {
			t.Errorf("HeaderValue() is not Authorization")
		}
		dec, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(tok.Authorization, "VCSchema "))
		if err != nil || string(dec) != pvCloud+"-|"+tok.AccessToken {
			t.Errorf("Authorization credentials are not base64(cloud + \"-|\" + access token)")
		}
		if got, want := tok.Scope, "authentication_session"; got != want {
			t.Errorf("Scope = %q, want %q", got, want)
		}
		if got, want := tok.Extra["provider"], any(pvCloud); got != want {
			t.Errorf("Extra[provider] = %v, want %v", got, want)
		}
		pvAbout(t, "time to Expiry", time.Until(tok.Expiry), 7*24*time.Hour)

		rec := &pvRecorder{}
		client := tokenhttp.NewClient(src, tokenhttp.WithBase(rec))
		if got, want := pvGet(t, client, emu.ResourceURL), http.StatusOK; got != want {
			t.Fatalf("GET resource: status %d, want %d", got, want)
		}
		sent := rec.sent()
		if len(sent) != 1 || sent[0] != tok.Authorization {
			t.Errorf("the resource got another Authorization than the reply's (%d requests)", len(sent))
		}
	})

	t.Run("username padding", func(t *testing.T) {
		for _, tc := range []struct{ accepted, given string }{
			{"00012345678", "12345678"},
			{"12345678901", "123.456.789-01"},
			{"12345678000195", "12.345.678/0001-95"},
			{"00345678000195", "345678000195"},
		} {
			t.Run(tc.given, func(t *testing.T) {
				emu := newEmulator(t, sourcetest.NewVaultID, sourcetest.Options{ClientSecret: pvSecret, Username: tc.accepted})
				otp, _ := pvOTPs()
				cfg := config(emu, otp)
				cfg.Username = tc.given
				if _, err := newSource(t, cfg).Token(t.Context()); err != nil {
					t.Fatalf("Token: %v", err)
				}
				pvJSONString(t, pvJSON(t, emu.LastTokenRequest()), "username", tc.accepted)
			})
		}
	})

	t.Run("scopes", func(t *testing.T) {
		emu := newEmu(t)
		otp, _ := pvOTPs()
		cfg := config(emu, otp)
		cfg.Scopes = []string{"signature_session", "service_2fa"}
		tok, err := newSource(t, cfg).Token(t.Context())
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		pvJSONString(t, pvJSON(t, emu.LastTokenRequest()), "scope", "signature_session service_2fa")
		if got, want := tok.Scope, "signature_session service_2fa"; got != want {
			t.Errorf("Scope = %q, want %q", got, want)
		}
	})

	t.Run("OTP asked once per token request", func(t *testing.T) {
		emu := newEmu(t)
		otp, calls := pvOTPs()
		src := newSource(t, config(emu, otp))
		client := tokenhttp.NewClient(src)
		var sentOTPs []string
		lastOTP := func() string {
			var s string
			json.Unmarshal(pvJSON(t, emu.LastTokenRequest())["password"], &s)
			return s
		}

		tok, err := src.Token(t.Context())
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		sentOTPs = append(sentOTPs, lastOTP())
		for range 5 {
			if _, err := src.Token(t.Context()); err != nil {
				t.Fatalf("Token: %v", err)
			}
		}
		if got, want := calls.Load(), int64(1); got != want {
			t.Errorf("PasswordFunc calls = %d, want %d", got, want)
		}

		// Invalidated: the next fetch asks for a new OTP.
		if !source.Invalidator(src).Invalidate(tok) {
			t.Fatal("Invalidate(current token) = false, want true")
		}
		if _, err := src.Token(t.Context()); err != nil {
			t.Fatalf("Token after Invalidate: %v", err)
		}
		sentOTPs = append(sentOTPs, lastOTP())

		// Revoked at the provider: the Transport's 401 path asks for a new OTP.
		emu.RevokeAll()
		if got, want := pvGet(t, client, emu.ResourceURL), http.StatusOK; got != want {
			t.Fatalf("GET resource after RevokeAll: status %d, want %d", got, want)
		}
		sentOTPs = append(sentOTPs, lastOTP())

		// A failed request spends its OTP: it is not retried with it.
		emu.FailNext(1, http.StatusInternalServerError, "")
		tok2, _ := src.Token(t.Context())
		source.Invalidator(src).Invalidate(tok2)
		before := emu.TokenRequests()
		_, err = src.Token(t.Context())
		if te := tokenError(t, err); te.Code != source.CodeServerError {
			t.Errorf("Code = %q, want %q", te.Code, source.CodeServerError)
		}
		if got, want := emu.TokenRequests()-before, 1; got != want {
			t.Errorf("token requests for a 500 = %d, want %d (an OTP is never sent twice)", got, want)
		}
		sentOTPs = append(sentOTPs, lastOTP())
		if _, err := src.Token(t.Context()); err != nil {
			t.Fatalf("Token after a 500: %v", err)
		}
		sentOTPs = append(sentOTPs, lastOTP())

		if got, want := calls.Load(), int64(emu.TokenRequests()); got != want {
			t.Errorf("PasswordFunc calls = %d, want one per token request (%d)", got, want)
		}
		seen := map[string]bool{}
		for _, o := range sentOTPs {
			if seen[o] {
				t.Errorf("an OTP was sent twice (%d OTPs sent)", len(sentOTPs))
			}
			seen[o] = true
		}
	})

	t.Run("reused OTP refused", func(t *testing.T) {
		for _, plain := range []bool{false, true} {
			t.Run(fmt.Sprintf("plain text %v", plain), func(t *testing.T) {
				emu := newEmu(t)
				emu.PlainTextErrors(plain)
				const fixedOTP = "246810"
				src := newSource(t, config(emu, func(context.Context) (string, error) { return fixedOTP, nil }))
				tok, err := src.Token(t.Context())
				if err != nil {
					t.Fatalf("Token: %v", err)
				}
				source.Invalidator(src).Invalidate(tok)
				_, err = src.Token(t.Context())
				te := tokenError(t, err)
				if got, want := te.Code, source.CodeInvalidGrant; got != want {
					t.Errorf("Code = %q, want %q (error %q)", got, want, err)
				}
				if got, want := te.StatusCode, http.StatusBadRequest; got != want {
					t.Errorf("StatusCode = %d, want %d", got, want)
				}
				if !strings.Contains(te.Description, "OTP already used") {
					t.Errorf("Description = %q, want the provider's reason", te.Description)
				}
				pvNoSecret(t, err, pvSecret, fixedOTP)
			})
		}
	})

	t.Run("plain text errors", func(t *testing.T) {
		emu := newEmu(t)
		emu.PlainTextErrors(true)
		otp, _ := pvOTPs()
		cfg := config(emu, otp)
		cfg.ClientSecret = pvSecret + "-wrong"
		_, err := newSource(t, cfg).Token(t.Context())
		te := tokenError(t, err)
		if got, want := te.StatusCode, http.StatusUnauthorized; got != want {
			t.Errorf("StatusCode = %d, want %d", got, want)
		}
		if got, want := te.Code, source.CodeInvalidClient; got != want {
			t.Errorf("Code = %q, want %q", got, want)
		}
		if !strings.Contains(te.Description, "client authentication failed") {
			t.Errorf("Description = %q, want the provider's text", te.Description)
		}
		pvNoSecret(t, err, cfg.ClientSecret)
	})

	t.Run("lifetime limits at New", func(t *testing.T) {
		const day = 24 * time.Hour
		const cpf, cnpj = "12345678901", "12345678000195"
		for _, tc := range []struct {
			name     string
			username string
			lifetime time.Duration
			ok       bool
		}{
			{"CPF 7 days", cpf, 7 * day, true},
			{"CPF 7 days and a second", cpf, 7*day + time.Second, false},
			{"CPF 30 days", cpf, 30 * day, false},
			{"CNPJ 30 days", cnpj, 30 * day, true},
			{"CNPJ 30 days and a second", cnpj, 30*day + time.Second, false},
			{"CNPJ 31 days", cnpj, 31 * day, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				otp, _ := pvOTPs()
				src, err := source.New(source.Config{Provider: source.VaultID, ClientID: "id", ClientSecret: pvSecret,
					Username: tc.username, PasswordFunc: otp, Cloud: pvCloud, Lifetime: tc.lifetime})
				if src != nil {
					src.Close()
				}
				if tc.ok {
					if err != nil {
						t.Errorf("New: %v, want no error", err)
					}
					return
				}
				if !errors.Is(err, source.ErrInvalidConfig) {
					t.Fatalf("New: got %v, want an error matching ErrInvalidConfig", err)
				}
				if !strings.Contains(err.Error(), "Lifetime") {
					t.Errorf("New: %q, want it to name Config.Lifetime", err)
				}
			})
		}
	})

	t.Run("CNPJ 30 days against the emulator", func(t *testing.T) {
		emu := newEmulator(t, sourcetest.NewVaultID, sourcetest.Options{ClientSecret: pvSecret, Username: "12345678000195"})
		otp, _ := pvOTPs()
		cfg := config(emu, otp)
		cfg.Username, cfg.Lifetime = "12345678000195", 30*24*time.Hour
		tok, err := newSource(t, cfg).Token(t.Context())
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		if got, want := string(pvJSON(t, emu.LastTokenRequest())["lifetime"]), "2592000"; got != want {
			t.Errorf("lifetime sent = %s, want %s", got, want)
		}
		pvAbout(t, "time to Expiry", time.Until(tok.Expiry), 30*24*time.Hour)
	})

	t.Run("without Cloud", func(t *testing.T) {
		// The provider's documentation marks no field required: without Cloud, no "provider"
		// field is sent, and the endpoint picks the user's cloud.
		emu := newEmu(t)
		otp, _ := pvOTPs()
		cfg := config(emu, otp)
		cfg.Cloud = ""
		tok, err := newSource(t, cfg).Token(t.Context())
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		if _, sent := pvJSON(t, emu.LastTokenRequest())["provider"]; sent {
			t.Errorf("the request carries a provider field; want none without Config.Cloud")
		}
		if tok.Authorization == "" {
			t.Errorf("Authorization is empty; want the VCSchema value")
		}
	})
}

func TestDirectLink(t *testing.T) {
	newEmu := func(t *testing.T) *sourcetest.Server {
		return newEmulator(t, sourcetest.NewDirectLink, sourcetest.Options{Password: pvPassword})
	}
	config := func(emu *sourcetest.Server) source.Config {
		return source.Config{Provider: source.DirectLink, TokenURL: emu.TokenURL,
			Username: sourcetest.DefaultUsername, Password: pvPassword}
	}

	t.Run("TokenURL required", func(t *testing.T) {
		_, err := source.New(source.Config{Provider: source.DirectLink, Username: "u", Password: pvPassword})
		if !errors.Is(err, source.ErrInvalidConfig) {
			t.Fatalf("New: got %v, want an error matching ErrInvalidConfig", err)
		}
		if !strings.Contains(err.Error(), "TokenURL") {
			t.Errorf("New: %q, want it to name TokenURL", err)
		}
		if got := source.DirectLink.TokenURL; got != "" {
			t.Errorf("DirectLink.TokenURL = %q, want none (the host is per customer)", got)
		}
	})

	t.Run("JWT and URL scope", func(t *testing.T) {
		emu := newEmu(t)
		tok, err := newSource(t, config(emu)).Token(t.Context())
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		if got, want := strings.Count(tok.AccessToken, "."), 2; got != want {
			t.Errorf("access token has %d dots, want a JWT (%d)", got, want)
		}
		if got, want := tok.Scope, emu.URL+"/directlink/v1"; got != want {
			t.Errorf("Scope = %q, want %q", got, want)
		}
	})

	for _, tc := range []struct {
		name         string
		edit         func(cfg *source.Config, emu *sourcetest.Server)
		status       int
		code         string
		providerCode string
		requests     int
	}{
		{
			name:   "wrong password",
			edit:   func(cfg *source.Config, _ *sourcetest.Server) { cfg.Password = "not-" + pvPassword },
			status: 401, code: source.CodeInvalidGrant, providerCode: "401", requests: 1,
		},
		{
			name:   "unknown user",
			edit:   func(cfg *source.Config, _ *sourcetest.Server) { cfg.Username = "nobody" },
			status: 401, code: source.CodeInvalidGrant, providerCode: "401", requests: 1,
		},
		{
			name:   "bad request",
			edit:   func(cfg *source.Config, _ *sourcetest.Server) { cfg.Encoding = source.JSONEncoding },
			status: 400, code: source.CodeInvalidRequest, providerCode: "400", requests: 1,
		},
		{
			name: "server error after retries",
			edit: func(_ *source.Config, emu *sourcetest.Server) {
				emu.FailNext(retry.DefaultMaxAttempts+2, http.StatusInternalServerError, "")
			},
			status: 500, code: source.CodeServerError, providerCode: "500", requests: retry.DefaultMaxAttempts,
		},
		{
			name: "server error without retries",
			edit: func(cfg *source.Config, emu *sourcetest.Server) {
				emu.FailNext(1, http.StatusInternalServerError, "")
				cfg.Retry = retry.Policy{MaxAttempts: 1}
			},
			status: 500, code: source.CodeServerError, providerCode: "500", requests: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emu := newEmu(t)
			cfg := config(emu)
			tc.edit(&cfg, emu)
			_, err := newSource(t, cfg).Token(t.Context())
			te := tokenError(t, err)
			if got, want := te.StatusCode, tc.status; got != want {
				t.Errorf("StatusCode = %d, want %d", got, want)
			}
			if got, want := te.Code, tc.code; got != want {
				t.Errorf("Code = %q, want %q", got, want)
			}
			if got, want := te.ProviderCode, tc.providerCode; got != want {
				t.Errorf("ProviderCode = %q, want %q", got, want)
			}
			if got, want := te.URI, emu.URL+"/directlink/v1"; got != want {
				t.Errorf("URI = %q, want %q", got, want)
			}
			if got, want := emu.TokenRequests(), tc.requests; got != want {
				t.Errorf("TokenRequests() = %d, want %d", got, want)
			}
			pvNoSecret(t, err, cfg.Password, pvPassword)
		})
	}
}

func TestScorePositivo(t *testing.T) {
	newEmu := func(t *testing.T) *sourcetest.Server {
		return newEmulator(t, sourcetest.NewScorePositivo, sourcetest.Options{ClientSecret: pvSecret})
	}
	config := func(emu *sourcetest.Server) source.Config {
		return source.Config{Provider: source.ScorePositivo, TokenURL: emu.TokenURL,
			ClientID: sourcetest.DefaultClientID, ClientSecret: pvSecret}
	}

	t.Run("default TokenURL", func(t *testing.T) {
		if got, want := source.ScorePositivo.TokenURL, "https://core.scorepositivo.com.br/oauth/token"; got != want {
			t.Errorf("ScorePositivo.TokenURL = %q, want %q", got, want)
		}
		src, err := source.New(source.Config{Provider: source.ScorePositivo, ClientID: "id", ClientSecret: pvSecret})
		if err != nil {
			t.Fatalf("New without TokenURL: %v", err)
		}
		src.Close()
	})

	t.Run("one token for 100 calls", func(t *testing.T) {
		emu := newEmu(t)
		src := newSource(t, config(emu))
		client := tokenhttp.NewClient(src)
		for i := range 100 {
			if got, want := pvGet(t, client, emu.ResourceURL), http.StatusOK; got != want {
				t.Fatalf("GET resource #%d: status %d, want %d", i+1, got, want)
			}
		}
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				if _, err := src.Token(context.Background()); err != nil {
					t.Errorf("concurrent Token: %v", err)
				}
			})
		}
		wg.Wait()
		if got, want := emu.TokenRequests(), 1; got != want {
			t.Errorf("TokenRequests() = %d, want %d", got, want)
		}
		if got, want := emu.ResourceRequests(), 100; got != want {
			t.Errorf("ResourceRequests() = %d, want %d", got, want)
		}
	})

	for _, tc := range []struct {
		name   string
		edit   func(cfg *source.Config, emu *sourcetest.Server)
		status int
		code   string
	}{
		{"wrong secret", func(cfg *source.Config, _ *sourcetest.Server) { cfg.ClientSecret = "x" + pvSecret }, 401, source.CodeInvalidClient},
		{"unknown client", func(cfg *source.Config, _ *sourcetest.Server) { cfg.ClientID = "someone-else" }, 401, source.CodeInvalidClient},
		{"form body", func(cfg *source.Config, _ *sourcetest.Server) {
			cfg.Provider = &source.Provider{Name: "scorepositivo", GrantType: source.ClientCredentials, AuthStyle: source.AuthInBody}
		}, 400, source.CodeInvalidRequest},
		{"server error", func(cfg *source.Config, emu *sourcetest.Server) {
			emu.FailNext(1, http.StatusInternalServerError, "")
			cfg.Retry = retry.Policy{MaxAttempts: 1}
		}, 500, source.CodeServerError},
		{"too many requests", func(cfg *source.Config, emu *sourcetest.Server) {
			emu.FailNext(1, http.StatusTooManyRequests, "")
			cfg.Retry = retry.Policy{MaxAttempts: 1}
		}, 429, source.CodeTemporarilyUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emu := newEmu(t)
			cfg := config(emu)
			tc.edit(&cfg, emu)
			_, err := newSource(t, cfg).Token(t.Context())
			te := tokenError(t, err)
			if got, want := te.StatusCode, tc.status; got != want {
				t.Errorf("StatusCode = %d, want %d", got, want)
			}
			if got, want := te.Code, tc.code; got != want {
				t.Errorf("Code = %q, want %q (error %q)", got, want, err)
			}
			pvNoSecret(t, err, cfg.ClientSecret, pvSecret)
		})
	}
}

func TestGestaoPlus(t *testing.T) {
	newEmu := func(t *testing.T, o sourcetest.Options) *sourcetest.Server {
		o.Password = pvPassword
		return newEmulator(t, sourcetest.NewGestaoPlus, o)
	}
	config := func(emu *sourcetest.Server) source.Config {
		return source.Config{Provider: source.GestaoPlus, TokenURL: emu.TokenURL,
			Username: sourcetest.DefaultUsername, Password: pvPassword}
	}
	// lastBody returns the last token request's JSON body.
	lastBody := func(t *testing.T, emu *sourcetest.Server) map[string]json.RawMessage {
		return pvJSON(t, emu.LastTokenRequest())
	}

	t.Run("expires_in as a string", func(t *testing.T) {
		emu := newEmu(t, sourcetest.Options{})
		tok, err := newSource(t, config(emu)).Token(t.Context())
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		pvAbout(t, "time to Expiry", time.Until(tok.Expiry), 12*time.Hour)
		if tok.RefreshToken == "" {
			t.Error("RefreshToken is empty, want the reply's")
		}
		if raw, ok := lastBody(t, emu)["client_secret"]; !ok || string(raw) != "null" {
			t.Errorf("client_secret = %s, want JSON null", raw)
		}
		if got := emu.LastTokenRequest().Header.Get("Origin"); got != "" {
			t.Errorf("Origin = %q, want none when Config.Origin is empty", got)
		}
	})

	t.Run("refresh keeps the rotated token", func(t *testing.T) {
		emu := newEmu(t, sourcetest.Options{})
		emu.RevokeOnRefreshReuse(true) // sending a spent refresh token would revoke everything
		cfg := config(emu)
		cfg.Origin = pvOrigin
		src := newSource(t, cfg)
		inv := source.Invalidator(src)
		tok1, err := src.Token(t.Context())
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		if !inv.Invalidate(tok1) {
			t.Fatal("Invalidate(current token) = false, want true")
		}
		tok2, err := src.Token(t.Context())
		if err != nil {
			t.Fatalf("Token after Invalidate: %v", err)
		}
		if got, want := emu.Requests("refresh_token"), 1; got != want {
			t.Errorf("Requests(refresh_token) = %d, want %d", got, want)
		}
		if got, want := emu.Requests("password"), 1; got != want {
			t.Errorf("Requests(password) = %d, want %d", got, want)
		}
		b := lastBody(t, emu)
		pvJSONString(t, b, "grant_type", "refresh_token")
		pvJSONString(t, b, "refresh_token", tok1.RefreshToken)
		pvJSONString(t, b, "client_id", "app")
		if raw, ok := b["client_secret"]; !ok || string(raw) != "null" {
			t.Errorf("refresh request client_secret = %s, want JSON null", raw)
		}
		if _, ok := b["password"]; ok {
			t.Error("refresh request carries the password, want only the refresh token")
		}
		if got, want := emu.LastTokenRequest().Header.Get("Origin"), pvOrigin; got != want {
			t.Errorf("refresh request Origin = %q, want %q", got, want)
		}
		if tok2.RefreshToken == "" || tok2.RefreshToken == tok1.RefreshToken {
			t.Error("RefreshToken after a refresh is not the rotated one")
		}

		// The rotated refresh token is the one used next.
		inv.Invalidate(tok2)
		if _, err := src.Token(t.Context()); err != nil {
			t.Fatalf("second refresh: %v", err)
		}
		pvJSONString(t, lastBody(t, emu), "refresh_token", tok2.RefreshToken)
		if got, want := emu.Requests("refresh_token"), 2; got != want {
			t.Errorf("Requests(refresh_token) = %d, want %d", got, want)
		}
		if got, want := emu.Requests("password"), 1; got != want {
			t.Errorf("Requests(password) = %d, want %d (no fallback)", got, want)
		}
		client := tokenhttp.NewClient(src)
		if got, want := pvGet(t, client, emu.ResourceURL), http.StatusOK; got != want {
			t.Fatalf("GET resource with the refreshed token: status %d, want %d", got, want)
		}
		if got, want := emu.Issued(), 3; got != want {
			t.Errorf("Issued() = %d, want %d", got, want)
		}
	})

	t.Run("refused refresh falls back to the password once", func(t *testing.T) {
		emu := newEmu(t, sourcetest.Options{})
		src := newSource(t, config(emu))
		inv := source.Invalidator(src)
		tok1, err := src.Token(t.Context())
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		emu.RejectRefresh(true)
		inv.Invalidate(tok1)
		tok2, err := src.Token(t.Context())
		if err != nil {
			t.Fatalf("Token with the refresh refused: %v", err)
		}
		if got, want := emu.Requests("refresh_token"), 1; got != want {
			t.Errorf("Requests(refresh_token) = %d, want %d", got, want)
		}
		if got, want := emu.Requests("password"), 2; got != want {
			t.Errorf("Requests(password) = %d, want %d", got, want)
		}
		pvJSONString(t, lastBody(t, emu), "grant_type", "password")

		// The new password grant's refresh token is used next.
		emu.RejectRefresh(false)
		inv.Invalidate(tok2)
		if _, err := src.Token(t.Context()); err != nil {
			t.Fatalf("Token: %v", err)
		}
		pvJSONString(t, lastBody(t, emu), "refresh_token", tok2.RefreshToken)
		if got, want := emu.Requests("refresh_token"), 2; got != want {
			t.Errorf("Requests(refresh_token) = %d, want %d", got, want)
		}
		if got, want := emu.Requests("password"), 2; got != want {
			t.Errorf("Requests(password) = %d, want %d", got, want)
		}
	})

	t.Run("refused refresh and wrong password", func(t *testing.T) {
		emu := newEmu(t, sourcetest.Options{})
		src := newSource(t, config(emu))
		tok, err := src.Token(t.Context())
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		emu.RejectRefresh(true)
		emu.SetCredentials(sourcetest.Options{Password: "changed-" + pvPassword})
		source.Invalidator(src).Invalidate(tok)
		_, err = src.Token(t.Context())
		if te := tokenError(t, err); te.Code != source.CodeInvalidGrant {
			t.Errorf("Code = %q, want %q", te.Code, source.CodeInvalidGrant)
		}
		if got, want := emu.TokenRequests(), 3; got != want {
			t.Errorf("TokenRequests() = %d, want %d (password, refresh, password once)", got, want)
		}
		pvNoSecret(t, err, pvPassword, tok.RefreshToken, tok.AccessToken)
	})

	t.Run("wrong password", func(t *testing.T) {
		emu := newEmu(t, sourcetest.Options{})
		cfg := config(emu)
		cfg.Password = "wrong-" + pvPassword
		_, err := newSource(t, cfg).Token(t.Context())
		te := tokenError(t, err)
		if got, want := te.StatusCode, http.StatusUnauthorized; got != want {
			t.Errorf("StatusCode = %d, want %d", got, want)
		}
		if got, want := te.Code, source.CodeInvalidGrant; got != want {
			t.Errorf("Code = %q, want %q", got, want)
		}
		if got, want := te.ProviderCode, "invalid_grant"; got != want {
			t.Errorf("ProviderCode = %q, want %q", got, want)
		}
		if got, want := te.Description, "Invalid username and password combination"; got != want {
			t.Errorf("Description = %q, want %q", got, want)
		}
		if got, want := te.URI, "http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html"; got != want {
			t.Errorf("URI = %q, want %q", got, want)
		}
		pvNoSecret(t, err, cfg.Password, pvPassword)
	})

	t.Run("RequireOrigin", func(t *testing.T) {
		for _, tc := range []struct {
			name, origin string
			ok           bool
		}{
			{"matching", pvOrigin, true},
			{"missing", "", false},
			{"other", "https://evil.gestao.plus", false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				emu := newEmu(t, sourcetest.Options{RequireOrigin: pvOrigin})
				cfg := config(emu)
				cfg.Origin = tc.origin
				tok, err := newSource(t, cfg).Token(t.Context())
				if got := emu.LastTokenRequest().Header.Get("Origin"); got != tc.origin {
					t.Errorf("Origin sent = %q, want %q", got, tc.origin)
				}
				if tc.ok {
					if err != nil || !tok.Valid() {
						t.Fatalf("Token: %v, want a valid token", err)
					}
					return
				}
				te := tokenError(t, err)
				if got, want := te.Code, source.CodeInvalidClient; got != want {
					t.Errorf("Code = %q, want %q", got, want)
				}
				if got, want := te.StatusCode, http.StatusBadRequest; got != want {
					t.Errorf("StatusCode = %d, want %d", got, want)
				}
			})
		}
	})
}

func TestSerproID(t *testing.T) {
	newEmu := func(t *testing.T) *sourcetest.Server {
		return newEmulator(t, sourcetest.NewSerproID, sourcetest.Options{ClientSecret: pvSecret})
	}
	config := func(emu *sourcetest.Server) source.Config {
		return source.Config{Provider: source.SerproID, TokenURL: emu.TokenURL,
			ClientID: sourcetest.DefaultClientID, ClientSecret: pvSecret}
	}
	// noSecretField is SerproID's dialect with client_secret left out, to
	// provoke CAMPO_OBRIGATORIO.
	noSecretField := *source.SerproID
	noSecretField.Fixed = map[string]any{"client_secret": nil}

	for _, tc := range []struct {
		name         string
		edit         func(cfg *source.Config, emu *sourcetest.Server)
		status       int
		code         string
		providerCode string
		desc         string
	}{
		{
			name:   "wrong secret",
			edit:   func(cfg *source.Config, _ *sourcetest.Server) { cfg.ClientSecret = "wrong-" + pvSecret },
			status: 401, code: source.CodeInvalidClient, providerCode: "AUTENTICACAO_INVALIDA_CLIENT_OAUTH",
			desc: "Falha na autenticidade do client_id e client_secret.",
		},
		{
			name:   "unknown client id",
			edit:   func(cfg *source.Config, _ *sourcetest.Server) { cfg.ClientID = "unknown-app" },
			status: 412, code: source.CodeInvalidRequest, providerCode: "CLIENTE_OAUTH_NAO_IDENTIFICADO",
			desc: "Não foi possível identificar a aplicação cliente.",
		},
		{
			name:   "missing field",
			edit:   func(cfg *source.Config, _ *sourcetest.Server) { cfg.Provider = &noSecretField },
			status: 412, code: source.CodeInvalidRequest, providerCode: "CAMPO_OBRIGATORIO",
			desc: "O campo client_secret é obrigatório",
		},
		{
			name:   "invalid value",
			edit:   func(cfg *source.Config, _ *sourcetest.Server) { cfg.Encoding = source.JSONEncoding },
			status: 400, code: source.CodeInvalidRequest, providerCode: "VALOR_PARAMETRO_INVALIDO",
		},
		{
			name: "maintenance failure",
			edit: func(cfg *source.Config, emu *sourcetest.Server) {
				emu.FailNext(1, http.StatusInternalServerError, "")
				cfg.Retry = retry.Policy{MaxAttempts: 1}
			},
			status: 500, code: source.CodeServerError, providerCode: "FALHA_TOKEN_MANUTENCAO_APLICACAO",
			desc: "Erro interno na obtenção do token de manutenção da aplicação.",
		},
		{
			name: "maintenance failure after retries",
			edit: func(_ *source.Config, emu *sourcetest.Server) {
				emu.FailNext(retry.DefaultMaxAttempts, http.StatusInternalServerError, "")
			},
			status: 500, code: source.CodeServerError, providerCode: "FALHA_TOKEN_MANUTENCAO_APLICACAO",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emu := newEmu(t)
			cfg := config(emu)
			tc.edit(&cfg, emu)
			_, err := newSource(t, cfg).Token(t.Context())
			te := tokenError(t, err)
			if got, want := te.StatusCode, tc.status; got != want {
				t.Errorf("StatusCode = %d, want %d", got, want)
			}
			if got, want := te.Code, tc.code; got != want {
				t.Errorf("Code = %q, want %q", got, want)
			}
			if got, want := te.ProviderCode, tc.providerCode; got != want {
				t.Errorf("ProviderCode = %q, want %q", got, want)
			}
			if tc.desc != "" && te.Description != tc.desc {
				t.Errorf("Description = %q, want %q", te.Description, tc.desc)
			}
			if !strings.Contains(err.Error(), tc.providerCode) {
				t.Errorf("Error() = %q, want it to show the provider code", err)
			}
			pvNoSecret(t, err, cfg.ClientSecret, pvSecret)
		})
	}

	t.Run("provider recovers", func(t *testing.T) {
		emu := newEmu(t)
		emu.FailNext(1, http.StatusInternalServerError, "")
		cfg := config(emu)
		cfg.Retry = retry.Policy{MaxAttempts: 1}
		src := newSource(t, cfg)
		if _, err := src.Token(t.Context()); err == nil {
			t.Fatal("Token: got no error during the failure")
		}
		client := tokenhttp.NewClient(src)
		if got, want := pvGet(t, client, emu.ResourceURL), http.StatusOK; got != want {
			t.Fatalf("GET resource: status %d, want %d", got, want)
		}
		if got, want := emu.TokenRequests(), 2; got != want {
			t.Errorf("TokenRequests() = %d, want %d", got, want)
		}
	})
}
