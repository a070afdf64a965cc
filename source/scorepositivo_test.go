package source_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/retry"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

func TestScorePositivo(t *testing.T) {
	pv := pvProvider(t, "ScorePositivo")
	newEmu, config := pv.emulator, pv.config

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
			pvTokenError(t, cfg, pvWantError{status: tc.status, code: tc.code}, cfg.ClientSecret, pvSecret)
		})
	}
}
