package source

// ScorePositivo is the client_credentials grant with a JSON body.
// Its one-hour tokens are reused until they are about to expire, as
// the provider asks.
var ScorePositivo = &Provider{
	Name:      "scorepositivo",
	TokenURL:  "https://core.scorepositivo.com.br/oauth/token",
	GrantType: ClientCredentials,
	Encoding:  JSONEncoding,
	AuthStyle: AuthInBody,
}
