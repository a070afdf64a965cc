package source_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/source"
)

// Example_customDialect describes a provider the package does not know by
// filling a *source.Provider. The invented "acme" endpoint wants a JSON
// body with the client credentials renamed to appKey and appSecret, a
// fixed "version" and a "tenant" that is always null, an X-Api-Version
// header; it answers {"token", "ttl"} and says no with
// {"ok": false, "err": {"id", "text"}}.
func Example_customDialect() {
	const appKey, appSecret = "my-app", "s3cr3t-app-secret"
	const issued = "acme-token-123"

	// The acme endpoint and an API it protects.
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		err := json.NewDecoder(r.Body).Decode(&body)
		tenant, hasTenant := body["tenant"]
		switch {
		case err != nil, r.Header.Get("Content-Type") != "application/json",
			r.Header.Get("X-Api-Version") != "2", body["version"] != "2",
			!hasTenant || tenant != nil, body["grant_type"] != "client_credentials":
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"ok": false, "err": {"id": "BAD_REQUEST", "text": "malformed request"}}`)
		case body["appKey"] != appKey || body["appSecret"] != appSecret:
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"ok": false, "err": {"id": "BAD_KEY", "text": "unknown app key or secret"}}`)
		default:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"ok": true, "token": %q, "ttl": 600}`, issued)
		}
	})
	mux.HandleFunc("GET /orders", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+issued {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "3 orders")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	acme := &source.Provider{
		Name:      "acme",
		GrantType: source.ClientCredentials,
		Encoding:  source.JSONEncoding,
		AuthStyle: source.AuthInBody,
		Fields:    map[string]string{"client_id": "appKey", "client_secret": "appSecret"},
		Fixed:     map[string]any{"version": "2", "tenant": nil}, // nil is JSON null
		Header:    http.Header{"X-Api-Version": {"2"}},
		Reply:     source.ReplyFields{AccessToken: "token", ExpiresIn: "ttl"},
		DecodeError: func(status int, _ http.Header, body []byte) source.ErrorInfo {
			var e struct {
				Err struct{ ID, Text string }
			}
			json.Unmarshal(body, &e)
			info := source.ErrorInfo{Code: e.Err.ID, Description: e.Err.Text}
			switch e.Err.ID {
			case "BAD_KEY":
				info.Normalized = source.CodeInvalidClient
			case "BAD_REQUEST":
				info.Normalized = source.CodeInvalidRequest
			}
			return info
		},
	}

	src, err := source.New(source.Config{Provider: acme, TokenURL: srv.URL + "/auth",
		ClientID: appKey, ClientSecret: appSecret})
	if err != nil {
		fmt.Println("New:", err)
		return
	}
	defer src.Close()

	tok, err := src.Token(context.Background())
	if err != nil {
		fmt.Println("Token:", err)
		return
	}
	fmt.Println("token type:", tok.TokenType)
	fmt.Println("header is the issued token:", tok.HeaderValue() == "Bearer "+issued)
	fmt.Println("lifetime:", time.Until(tok.Expiry).Round(time.Minute))
	fmt.Println("extra fields:", tok.Extra["ok"])

	resp, err := tokenhttp.NewClient(src).Get(srv.URL + "/orders")
	if err != nil {
		fmt.Println("GET:", err)
		return
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println("orders:", resp.StatusCode, string(page))

	// A wrong secret: the dialect's own error shape becomes a *source.Error.
	bad, _ := source.New(source.Config{Provider: acme, TokenURL: srv.URL + "/auth",
		ClientID: appKey, ClientSecret: "wrong-" + appSecret})
	defer bad.Close()
	_, err = bad.Token(context.Background())
	var te *source.Error
	if errors.As(err, &te) {
		fmt.Println("refused:", te.StatusCode, te.Code, te.ProviderCode, te.Description)
	}
	fmt.Println("secret in the error:", strings.Contains(err.Error(), appSecret))

	// Output:
	// token type: Bearer
	// header is the issued token: true
	// lifetime: 10m0s
	// extra fields: true
	// orders: 200 3 orders
	// refused: 403 invalid_client BAD_KEY unknown app key or secret
	// secret in the error: false
}
