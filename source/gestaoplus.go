package source

// GestaoPlus is gestao.plus: the password grant in JSON, with
// client_id "app" and client_secret null unless the Config gives
// them, expires_in as a string, refresh tokens used for renewal, and
// the optional Origin header from Config.Origin
// ("https://yourcompany.gestao.plus"). Its errors are problem+json
// whose title is the OAuth2 code.
var GestaoPlus = &Provider{
	Name:      "gestaoplus",
	TokenURL:  "https://api.gestao.plus/oauth",
	GrantType: Password,
	Encoding:  JSONEncoding,
	AuthStyle: AuthNone,
	Prepare:   prepareGestaoPlus,
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
