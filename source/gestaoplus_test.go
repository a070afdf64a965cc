package source_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

func TestGestaoPlus(t *testing.T) {
	newEmu := func(t *testing.T, o sourcetest.Options) *sourcetest.Server {
		o.Password = pvPassword
		return newEmulator(t, sourcetest.NewGestaoPlus, o)
	}
	config := func(emu *sourcetest.Server) source.Config {
		return source.Config{Provider: source.GestaoPlus, TokenURL: emu.TokenURL,
			Username: sourcetest.DefaultUsername, Password: pvPassword}
	}
	// wantGrants checks how many refresh_token and password grants emu
	// has had.
	wantGrants := func(t *testing.T, emu *sourcetest.Server, refresh, password int) {
		t.Helper()
		if got, want := emu.Requests("refresh_token"), refresh; got != want {
			t.Errorf("Requests(refresh_token) = %d, want %d", got, want)
		}
		if got, want := emu.Requests("password"), password; got != want {
			t.Errorf("Requests(password) = %d, want %d", got, want)
		}
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
		wantGrants(t, emu, 1, 1)
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
		wantGrants(t, emu, 2, 1) // no fallback to the password grant
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
		wantGrants(t, emu, 1, 2)
		pvJSONString(t, lastBody(t, emu), "grant_type", "password")

		// The new password grant's refresh token is used next.
		emu.RejectRefresh(false)
		inv.Invalidate(tok2)
		if _, err := src.Token(t.Context()); err != nil {
			t.Fatalf("Token: %v", err)
		}
		pvJSONString(t, lastBody(t, emu), "refresh_token", tok2.RefreshToken)
		wantGrants(t, emu, 2, 2)
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
		te, _ := pvTokenError(t, cfg, pvWantError{status: http.StatusUnauthorized, code: source.CodeInvalidGrant,
			providerCode: "invalid_grant", desc: "Invalid username and password combination"}, cfg.Password, pvPassword)
		if got, want := te.URI, "http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html"; got != want {
			t.Errorf("URI = %q, want %q", got, want)
		}
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
