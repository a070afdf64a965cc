package sourcetest

import (
	"io"
	"net/http"
)

// tokenError is a refusal by a token endpoint, before the dialect gives
// it its shape.
type tokenError struct {
	status int    // HTTP status
	code   string // RFC 6749 §5.2 code: invalid_request, invalid_client, ...
	desc   string // human-readable description; never holds a secret
	param  string // the parameter at fault, if any
	native string // the provider's own code, where the dialect has one (SerproID)
}

// missingParam is the error for a parameter that is absent, empty or of
// the wrong JSON type.
func missingParam(name string) *tokenError {
	return &tokenError{status: http.StatusBadRequest, code: "invalid_request",
		desc: "missing or invalid parameter " + name, param: name}
}

// faultError is the error FailNext injects for status.
func faultError(status int) *tokenError {
	if status < 100 || status > 999 {
		status = http.StatusInternalServerError
	}
	code := "invalid_request"
	switch {
	case status == http.StatusUnauthorized:
		code = "invalid_client"
	case status == http.StatusForbidden:
		code = "access_denied"
	case status == http.StatusTooManyRequests:
		code = "temporarily_unavailable"
	case status >= 500:
		code = "server_error"
	}
	return &tokenError{status: status, code: code, desc: "injected fault: " + http.StatusText(status)}
}

// writeRFCError writes RFC 6749 §5.2 JSON.
func writeRFCError(_ *Server, w http.ResponseWriter, e *tokenError) {
	writeJSON(w, e.status, jsonType, struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{e.code, e.desc})
}

// writeStandardError writes RFC 6749 JSON, with a Basic challenge on 401
// (RFC 6749 §5.2, invalid_client).
func writeStandardError(s *Server, w http.ResponseWriter, e *tokenError) {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="sourcetest"`)
	}
	writeRFCError(s, w, e)
}

// writeVaultIDError writes RFC 6749 JSON, or "code: description" as
// text/plain while PlainTextErrors is on. VaultID does not document its
// errors; a client must cope with both.
func writeVaultIDError(s *Server, w http.ResponseWriter, e *tokenError) {
	s.mu.Lock()
	plain := s.plainText
	s.mu.Unlock()
	if !plain {
		writeRFCError(s, w, e)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(e.status)
	io.WriteString(w, e.code+": "+e.desc+"\n")
}

// writeDirectLinkError writes DirectLink's shape, whose "error" is the
// HTTP status as a number.
func writeDirectLinkError(s *Server, w http.ResponseWriter, e *tokenError) {
	desc := http.StatusText(e.status)
	if e.status == http.StatusInternalServerError {
		desc = "Internal server error" // sic, as documented
	}
	writeJSON(w, e.status, jsonType, struct {
		Error       int    `json:"error"`
		Description string `json:"error_description"`
		URI         string `json:"error_uri"`
	}{e.status, desc, s.URL + directLinkBase})
}

// Descriptions and hints of league/oauth2-server, which Laravel Passport
// answers with.
var passportText = map[string]struct{ desc, hint string }{
	"invalid_client":          {"Client authentication failed", ""},
	"invalid_request":         {"The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed.", ""},
	"unsupported_grant_type":  {"The authorization grant type is not supported by the authorization server.", "Check that all required parameters have been provided"},
	"invalid_grant":           {"The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.", ""},
	"access_denied":           {"The resource owner or authorization server denied the request.", ""},
	"temporarily_unavailable": {"The authorization server is temporarily unavailable.", ""},
}

// writePassportError writes the Laravel Passport shape ScorePositivo is
// built on: {"error","error_description","hint","message"} for OAuth
// errors, Laravel's {"message"} for 429 and 5xx.
func writePassportError(_ *Server, w http.ResponseWriter, e *tokenError) {
	switch {
	case e.status >= 500:
		writeJSON(w, e.status, jsonType, map[string]string{"message": "Server Error"})
		return
	case e.status == http.StatusTooManyRequests:
		writeJSON(w, e.status, jsonType, map[string]string{"message": "Too Many Attempts."})
		return
	}
	t, ok := passportText[e.code]
	if !ok {
		t.desc = e.desc
	}
	if e.code == "invalid_request" && e.param != "" {
		t.hint = "Check the `" + e.param + "` parameter"
	}
	writeJSON(w, e.status, jsonType, struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Hint        string `json:"hint,omitempty"`
		Message     string `json:"message"`
	}{e.code, t.desc, t.hint, t.desc})
}

// problemType is the "type" member of every gestao.plus problem.
const problemType = "http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html"

// writeProblemError writes gestao.plus's RFC 7807 problem, with the OAuth
// code as its title. The provider documents one 400, "Corpo da requisição
// inválido" (an invalid request body), whose title is invalid_client:
// every 400 has that title.
func writeProblemError(_ *Server, w http.ResponseWriter, e *tokenError) {
	title := e.code
	if e.status == http.StatusBadRequest {
		title = "invalid_client"
	}
	writeJSON(w, e.status, "application/problem+json", struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}{problemType, title, e.status, e.desc})
}

// SerproID's error codes. All but serproTooMany are documented; SerproID
// documents no code for 429, so sourcetest makes one up.
const (
	serproRequired     = "CAMPO_OBRIGATORIO"
	serproInvalidValue = "VALOR_PARAMETRO_INVALIDO"
	serproUnknownApp   = "CLIENTE_OAUTH_NAO_IDENTIFICADO"
	serproBadSecret    = "AUTENTICACAO_INVALIDA_CLIENT_OAUTH"
	serproInternal     = "FALHA_TOKEN_MANUTENCAO_APLICACAO"
	serproTooMany      = "LIMITE_REQUISICOES_EXCEDIDO"
)

// writeSerproError writes SerproID's {"code","msg","debug"}. Errors the
// dialect did not code itself (faults, method, size, content type) get the
// documented code that fits their status.
func writeSerproError(_ *Server, w http.ResponseWriter, e *tokenError) {
	code := e.native
	if code == "" {
		switch {
		case e.status >= 500:
			code = serproInternal
		case e.status == http.StatusTooManyRequests:
			code = serproTooMany
		case e.status == http.StatusUnauthorized || e.status == http.StatusForbidden:
			code = serproBadSecret
		case e.status == http.StatusPreconditionFailed:
			code = serproRequired
		default:
			code = serproInvalidValue
		}
	}
	var msg string
	switch code {
	case serproRequired:
		msg = "O campo " + e.param + " é obrigatório"
	case serproInvalidValue:
		msg = "Valor do parâmetro " + e.param + " inválido"
		if e.param == "" {
			msg = "Valor do parâmetro inválido"
		}
	case serproUnknownApp:
		msg = "Não foi possível identificar a aplicação cliente."
	case serproBadSecret:
		msg = "Falha na autenticidade do client_id e client_secret."
	case serproInternal:
		msg = "Erro interno na obtenção do token de manutenção da aplicação."
	case serproTooMany:
		msg = "Limite de requisições excedido."
	}
	writeJSON(w, e.status, jsonType, struct {
		Code  string `json:"code"`
		Msg   string `json:"msg"`
		Debug string `json:"debug"`
	}{code, msg, e.desc})
}
