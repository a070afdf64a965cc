package source

import (
	"strings"
	"time"
)

// VaultID is VaultID CESS: the password grant with a one-time password
// (Config.PasswordFunc, asked once per token request and never sent
// twice), a JSON body with the client credentials, the user's CPF (11
// digits) or CNPJ (14) as Username, and, when set, Config.Cloud (the
// "provider" field: the cloud the user belongs to) and
// Config.Lifetime (at most 7 days for a CPF, 30 for a CNPJ). The provider's
// documentation marks no field required: a field left empty is not sent.
// The reply's "Authorization" field ("VCSchema ...") is the header
// value, sent verbatim.
//
// Its default TokenURL, https://cess.lab.vaultid.com.br/oauth, is the
// endpoint the provider's documentation gives, a lab (test) host: in
// production, set Config.TokenURL to the endpoint VaultID gives you.
var VaultID = &Provider{
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
			return "", false, configError("Username", "Config.Username must be a CPF (11 digits) or a CNPJ (14 digits)")
		}
	}
	d := b.String()
	switch {
	case d == "" || len(d) > 14:
		return "", false, configError("Username", "Config.Username must be a CPF (11 digits) or a CNPJ (14 digits)")
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
		return configError("Lifetime", "Config.Lifetime %s is over the provider's limit of %s", cfg.Lifetime, kind)
	}
	if cfg.Lifetime > 0 && cfg.Lifetime < time.Second {
		return configError("Lifetime", "Config.Lifetime is in whole seconds: give at least 1s")
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
		delete(req.Params, "client_secret") // the provider marks no field required: send what is set
	}
	return nil
}
