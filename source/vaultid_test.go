package source_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

func TestVaultIDRequest(t *testing.T) {
	var (
		mu          sync.Mutex // guards the three below
		requests    int
		contentType string
		body        []byte
	)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		requests++
		contentType, body = r.Header.Get("Content-Type"), b
		mu.Unlock()
		writeJSON(w, 200, `{"Authorization":"VCSchema vc-abc.def","token_type":"bearer","expires_in":3600,"scope":"authentication_session"}`)
	})
	cfg := source.Config{Provider: source.VaultID, TokenURL: srv.URL + "/oauth/token", ClientID: testClientID,
		ClientSecret: testClientSecret, Username: "123.456.789-09", Lifetime: 2 * time.Hour, Cloud: "cloud-a",
		PasswordFunc: func(context.Context) (string, error) { return "654321", nil }}
	tok, err := fetchToken(t, cfg)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if got, want := tok.HeaderValue(), "VCSchema vc-abc.def"; got != want {
		t.Errorf("HeaderValue() = %q, want %q", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if requests != 1 {
		t.Fatalf("token requests = %d, want 1", requests)
	}
	form, obj := requestFields(contentType, body)
	if obj == nil {
		t.Fatalf("body %q is not JSON", body)
	}
	want := map[string]string{"grant_type": "password", "client_id": testClientID, "client_secret": testClientSecret,
		"username": "12345678909", "password": "654321", "lifetime": "7200", "provider": "cloud-a"}
	for k, v := range want {
		if got := form.Get(k); got != v {
			t.Errorf("body field %q = %q, want %q", k, got, v)
		}
	}
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
		te, _ := pvTokenError(t, cfg, pvWantError{status: http.StatusUnauthorized, code: source.CodeInvalidClient}, cfg.ClientSecret)
		if !strings.Contains(te.Description, "client authentication failed") {
			t.Errorf("Description = %q, want the provider's text", te.Description)
		}
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
