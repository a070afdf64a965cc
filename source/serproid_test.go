package source_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/retry"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

func TestSerproID(t *testing.T) {
	pv := pvProvider(t, "SerproID")
	newEmu, config := pv.emulator, pv.config
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
			_, err := pvTokenError(t, cfg, pvWantError{status: tc.status, code: tc.code, providerCode: tc.providerCode, desc: tc.desc},
				cfg.ClientSecret, pvSecret)
			if !strings.Contains(err.Error(), tc.providerCode) {
				t.Errorf("Error() = %q, want it to show the provider code", err)
			}
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
