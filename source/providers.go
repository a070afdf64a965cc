package source

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// The dialects of the providers in the project's seed documents. Each
// works with a Config of a few lines; see the README's provider table.
var (
	// VaultID is VaultID CESS: the password grant with a one-time password
	// (Config.PasswordFunc, asked once per token request and never sent
	// twice), a JSON body with the client credentials, the user's CPF (11
	// digits) or CNPJ (14) as Username, and, when set, Config.Cloud (the
	// "provider" field: the cloud the user belongs to) and
	// Config.Lifetime (at most 7 days for a CPF, 30 for a CNPJ). The seed
	// document marks no field required: a field left empty is not sent.
	// The reply's "Authorization" field ("VCSchema ...") is the header
	// value, sent verbatim.
	//
	// Its default TokenURL, https://cess.lab.vaultid.com.br/oauth, is the
	// endpoint the provider's documentation gives, a lab (test) host: in
	// production, set Config.TokenURL to the endpoint VaultID gives you.
	VaultID = &Provider{
		Name:            "vaultid",
		TokenURL:        "https://cess.lab.vaultid.com.br/oauth",
		GrantType:       Password,
		Encoding:        JSONEncoding,
		AuthStyle:       AuthInBody,
		OneTimePassword: true,
		Reply:           ReplyFields{HeaderValue: "Authorization"},
		Validate:        validateVaultID,
		Prepare:         prepareVaultID,
	}

	// DirectLink is the password grant with a form body and no client
	// credentials. It has no default host: Config.TokenURL is your
	// customer's "https://<your-domain>/directlink/v1/oauth2/token". Its
	// errors carry the status as a number: 400 is invalid_request, 401
	// invalid_grant (unknown user or wrong password), 5xx server_error.
	DirectLink = &Provider{
		Name:        "directlink",
		GrantType:   Password,
		Encoding:    FormEncoding,
		AuthStyle:   AuthNone,
		DecodeError: decodeDirectLinkError,
	}

	// ScorePositivo is the client_credentials grant with a JSON body.
	// Its one-hour tokens are reused until they are about to expire, as
	// the provider asks.
	ScorePositivo = &Provider{
		Name:      "scorepositivo",
		TokenURL:  "https://core.scorepositivo.com.br/oauth/token",
		GrantType: ClientCredentials,
		Encoding:  JSONEncoding,
		AuthStyle: AuthInBody,
	}

	// GestaoPlus is gestao.plus: the password grant in JSON, with
	// client_id "app" and client_secret null unless the Config gives
	// them, expires_in as a string, refresh tokens used for renewal, and
	// the optional Origin header from Config.Origin
	// ("https://yourcompany.gestao.plus"). Its errors are problem+json
	// whose title is the OAuth2 code.
	GestaoPlus = &Provider{
		Name:      "gestaoplus",
		TokenURL:  "https://api.gestao.plus/oauth",
		GrantType: Password,
		Encoding:  JSONEncoding,
		AuthStyle: AuthNone,
		Prepare:   prepareGestaoPlus,
	}

	// SerproID is the client_credentials grant with a form body. Its
	// errors {"code","msg","debug"} are mapped: AUTENTICACAO_INVALIDA_CLIENT_OAUTH
	// to invalid_client; CAMPO_OBRIGATORIO, CLIENTE_OAUTH_NAO_IDENTIFICADO and
	// VALOR_PARAMETRO_INVALIDO to invalid_request;
	// FALHA_TOKEN_MANUTENCAO_APLICACAO to server_error. Error.ProviderCode
	// keeps the provider's code.
	SerproID = &Provider{
		Name:      "serproid",
		TokenURL:  "https://serproid.serpro.gov.br/oauth/v0/oauth/client_token",
		GrantType: ClientCredentials,
		Encoding:  FormEncoding,
		AuthStyle: AuthInBody,
	}
)

// VaultID lifetime limits, by the kind of user.
const (
	vaultIDMaxLifetimeCPF  = 7 * 24 * time.Hour
	vaultIDMaxLifetimeCNPJ = 30 * 24 * time.Hour
)

// vaultIDUser returns the CPF or CNPJ in username, digits only and
// zero-padded to 11 (CPF) or 14 (CNPJ) digits. Punctuation ("123.456.789-09",
// "12.345.678/0001-95") is dropped.
func vaultIDUser(username string) (digits string, cnpj bool, err error) {
	var b strings.Builder
	for _, r := range username {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '.' || r == '-' || r == '/' || r == ' ':
		default:
			return "", false, errors.New("Config.Username must be a CPF (11 digits) or a CNPJ (14 digits)")
		}
	}
	d := b.String()
	switch {
	case d == "" || len(d) > 14:
		return "", false, errors.New("Config.Username must be a CPF (11 digits) or a CNPJ (14 digits)")
	case len(d) <= 11:
		return strings.Repeat("0", 11-len(d)) + d, false, nil
	default:
		return strings.Repeat("0", 14-len(d)) + d, true, nil
	}
}

func validateVaultID(cfg *Config) error {
	_, cnpj, err := vaultIDUser(cfg.Username)
	if err != nil {
		return err
	}
	limit, kind := vaultIDMaxLifetimeCPF, "7 days for a CPF"
	if cnpj {
		limit, kind = vaultIDMaxLifetimeCNPJ, "30 days for a CNPJ"
	}
	if cfg.Lifetime > limit {
		return fmt.Errorf("Config.Lifetime %s is over the provider's limit of %s", cfg.Lifetime, kind)
	}
	if cfg.Lifetime > 0 && cfg.Lifetime < time.Second {
		return errors.New("Config.Lifetime is in whole seconds: give at least 1s")
	}
	return nil
}

func prepareVaultID(cfg *Config, req *TokenRequest) error {
	if req.Grant != Password {
		return nil
	}
	user, _, err := vaultIDUser(cfg.Username)
	if err != nil {
		return err
	}
	req.Params["username"] = user
	if cfg.Lifetime > 0 {
		req.Params["lifetime"] = int64(cfg.Lifetime / time.Second)
	}
	if cfg.Cloud != "" {
		req.Params["provider"] = cfg.Cloud
	}
	if cfg.ClientSecret == "" {
		delete(req.Params, "client_secret") // the seed marks no field required: send what is set
	}
	return nil
}

func prepareGestaoPlus(cfg *Config, req *TokenRequest) error {
	req.Params["client_id"] = "app"
	if cfg.ClientID != "" {
		req.Params["client_id"] = cfg.ClientID
	}
	req.Params["client_secret"] = nil // JSON null, as the provider documents
	if cfg.ClientSecret != "" {
		req.Params["client_secret"] = cfg.ClientSecret
	}
	return nil
}

// decodeDirectLinkError reads {"error": 400, "error_description",
// "error_uri"}, where error is the status as a number.
func decodeDirectLinkError(status int, h http.Header, body []byte) ErrorInfo {
	info, _ := decodeErrorBody(h.Get("Content-Type"), body)
	code := info.Code
	if code == "" {
		code = fmt.Sprint(status)
	}
	switch code {
	case "400":
		info.Normalized = CodeInvalidRequest
	case "401":
		info.Normalized = CodeInvalidGrant
	default:
		info.Normalized = normalizeCode(status, code)
	}
	info.Code = code
	return info
}
