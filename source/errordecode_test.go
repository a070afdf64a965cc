package source_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/source"
)

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
			ts := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					if v == "<date in 2 minutes>" { // an HTTP date, as of the reply
						v = time.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat)
					}
					w.Header().Set(k, v)
				}
				writeReply(w, tt.status, tt.contentType, tt.body)
			})
			cfg := clientConfig(ts.URL)
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
			ts := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				writeReply(w, 400, tt.contentType, tt.body)
			})
			_, err := fetchToken(t, clientConfig(ts.URL))
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
		reply http.HandlerFunc
	}{
		{"secret in description", nil, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 401, `{"error":"invalid_client","error_description":"client secret `+secret+` is wrong"}`)
		}},
		{"secret as the code", nil, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 401, `{"error":"`+secret+`"}`)
		}},
		{"secret in error_uri", nil, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 401, `{"error":"invalid_client","error_uri":"https://docs.example/?s=`+secret+`"}`)
		}},
		{"password in problem detail", nil, func(w http.ResponseWriter, r *http.Request) {
			writeReply(w, 400, "application/problem+json", `{"title":"invalid_grant","status":400,"detail":"password `+pass+` rejected"}`)
		}},
		{"password in code,msg", nil, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 401, `{"code":"AUTENTICACAO_INVALIDA_CLIENT_OAUTH","msg":"`+pass+`","debug":"`+secret+`"}`)
		}},
		{"secret in message", nil, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 403, `{"message":"`+secret+`"}`)
		}},
		{"secret in plain text", nil, func(w http.ResponseWriter, r *http.Request) {
			writeReply(w, 401, "text/plain", "bad secret "+secret+" and password "+pass)
		}},
		{"secret in HTML", nil, func(w http.ResponseWriter, r *http.Request) {
			writeReply(w, 500, "text/html", "<html><body><pre>"+secret+"</pre></body></html>")
		}},
		{"secret in a 200 error", nil, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, `{"error":"invalid_client","error_description":"`+secret+`"}`)
		}},
		{"OTP in description", func(c *source.Config) {
			c.Password = ""
			c.PasswordFunc = func(context.Context) (string, error) { return otp, nil }
		}, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 400, `{"error":"invalid_grant","error_description":"otp `+otp+` used"}`)
		}},
		{"request body echoed", func(c *source.Config) { c.AuthStyle = source.AuthInBody }, func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			writeReply(w, 400, "text/plain", "cannot parse "+string(b))
		}},
		{"Basic header echoed", nil, func(w http.ResponseWriter, r *http.Request) {
			writeReply(w, 401, "text/plain", "bad header: "+r.Header.Get("Authorization"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newServer(t, tt.reply)
			cfg := passwordConfig(ts.URL)
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
		var mu sync.Mutex
		var grants []string // the grant_type of each request
		ts := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			mu.Lock()
			grants = append(grants, r.PostForm.Get("grant_type"))
			n := len(grants)
			mu.Unlock()
			if n == 1 {
				writeJSON(w, 200, tokenJSON("tok-1", 3600, refresh))
				return
			}
			writeJSON(w, 503, `{"error":"temporarily_unavailable","error_description":"cannot refresh `+refresh+`"}`)
		})
		src := newSource(t, clientConfig(ts.URL))
		tok, err := src.Token(context.Background())
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		src.Invalidate(tok)
		_, err = src.Token(context.Background())
		te := tokenError(t, err)
		mu.Lock()
		got := append([]string(nil), grants...)
		mu.Unlock()
		if len(got) < 2 || got[1] != "refresh_token" {
			t.Fatalf("request grant_types = %q, want the second refresh_token", got)
		}
		for _, out := range []string{err.Error(), te.Description, te.ProviderCode} {
			if strings.Contains(out, refresh) {
				t.Errorf("error shows the refresh token: %s", out)
			}
		}
	})
}
