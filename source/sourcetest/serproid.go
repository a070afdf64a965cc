package sourcetest

import (
	"net/http"
	"time"
)

// NewSerproID starts a SerproID token endpoint at
// /oauth/v0/oauth/client_token. It takes a form body only, with
// grant_type "client_credentials", client_id and client_secret, and
// replies {"access_token","token_type":"Bearer","expires_in":3600}.
//
// Errors are {"code","msg","debug"}: 412 CAMPO_OBRIGATORIO for a missing
// field, 400 VALOR_PARAMETRO_INVALIDO for another grant_type or a wrong
// Content-Type, 412 CLIENTE_OAUTH_NAO_IDENTIFICADO for an unknown
// client_id, 401 AUTENTICACAO_INVALIDA_CLIENT_OAUTH for a wrong secret,
// FALHA_TOKEN_MANUTENCAO_APLICACAO for 5xx, and (undocumented, made up)
// LIMITE_REQUISICOES_EXCEDIDO for 429.
func NewSerproID(o Options) *Server {
	return newServer(o, &dialect{
		provider:   "serproid",
		path:       "/oauth/v0/oauth/client_token",
		lifetime:   time.Hour,
		defaults:   defaultCredentials,
		token:      serproIDToken,
		writeError: writeSerproError,
	})
}

func serproIDToken(s *Server, q *tokenRequest) (any, *tokenError) {
	f, e := q.fields(formType)
	if e != nil {
		return nil, e
	}
	if m := f.missing("grant_type", "client_id", "client_secret"); m != "" {
		return nil, &tokenError{status: http.StatusPreconditionFailed, code: "invalid_request", param: m, native: serproRequired}
	}
	if gt, _ := f.str("grant_type"); gt != "client_credentials" {
		return nil, &tokenError{status: http.StatusBadRequest, code: "unsupported_grant_type", param: "grant_type", native: serproInvalidValue}
	}
	c := s.credentials()
	if id, _ := f.str("client_id"); id != c.clientID {
		return nil, &tokenError{status: http.StatusPreconditionFailed, code: "invalid_client", native: serproUnknownApp}
	}
	if secret, _ := f.str("client_secret"); secret != c.clientSecret {
		return nil, &tokenError{status: http.StatusUnauthorized, code: "invalid_client", native: serproBadSecret}
	}
	t := s.issue(grant{})
	return newRFCReply(t), nil
}
