package source

// SerproID is the client_credentials grant with a form body. Its
// errors {"code","msg","debug"} are mapped: AUTENTICACAO_INVALIDA_CLIENT_OAUTH
// to invalid_client; CAMPO_OBRIGATORIO, CLIENTE_OAUTH_NAO_IDENTIFICADO and
// VALOR_PARAMETRO_INVALIDO to invalid_request;
// FALHA_TOKEN_MANUTENCAO_APLICACAO to server_error. Error.ProviderCode
// keeps the provider's code.
var SerproID = &Provider{
	Name:      "serproid",
	TokenURL:  "https://serproid.serpro.gov.br/oauth/v0/oauth/client_token",
	GrantType: ClientCredentials,
	Encoding:  FormEncoding,
	AuthStyle: AuthInBody,
}
