package source_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/tokenhttp/tokenhttp/retry"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

func TestDirectLink(t *testing.T) {
	pv := pvProvider(t, "DirectLink")
	newEmu, config := pv.emulator, pv.config

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
			te, _ := pvTokenError(t, cfg, pvWantError{status: tc.status, code: tc.code, providerCode: tc.providerCode},
				cfg.Password, pvPassword)
			if got, want := te.URI, emu.URL+"/directlink/v1"; got != want {
				t.Errorf("URI = %q, want %q", got, want)
			}
			if got, want := emu.TokenRequests(), tc.requests; got != want {
				t.Errorf("TokenRequests() = %d, want %d", got, want)
			}
		})
	}
}
