package sourcetest

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// VaultID lifetime limits, by the kind of user.
const (
	vaultIDMaxCPF  = 7 * 24 * 60 * 60  // 11-digit CPF: a person
	vaultIDMaxCNPJ = 30 * 24 * 60 * 60 // 14-digit CNPJ: a company
)

// NewVaultID starts a VaultID CESS token endpoint at /oauth. It takes a
// JSON body only, with client_id, client_secret, username (a CPF of 11
// digits or a CNPJ of 14 as a zero-padded string, or as a JSON number,
// whose lost leading zeros are put back), password (a one-time password,
// accepted once; see Options.OTPs), grant_type "password", and optionally
// provider (the user's cloud; default "SOLUTIHOM", the provider's documented example),
// scope (default "authentication_session") and lifetime (seconds, at most
// 7 days for a CPF and 30 for a CNPJ; default 604800). The provider's
// documentation marks no field required; those the emulator needs to authenticate are.
//
// The reply carries token_type "bearer", the provider, and an
// Authorization value "VCSchema " + base64(provider + "-|" + access_token),
// which is the only header the protected resource accepts.
//
// VaultID does not document its errors: they are RFC 6749 JSON (401
// invalid_client; 400 invalid_request, invalid_grant for a wrong user or
// an invalid or reused OTP, unsupported_grant_type), or text/plain
// "code: description" after PlainTextErrors(true).
func NewVaultID(o Options) *Server {
	d := &dialect{
		provider:   "vaultid",
		path:       "/oauth",
		lifetime:   vaultIDMaxCPF * time.Second,
		defaults:   defaultCredentials,
		token:      vaultIDToken,
		writeError: writeVaultIDError,
	}
	d.defaults.username = DefaultVaultIDUsername
	return newServer(o, d)
}

type vaultIDReply struct {
	AccessToken   string `json:"access_token"`
	ExpiresIn     int    `json:"expires_in"`
	TokenType     string `json:"token_type"`
	Scope         string `json:"scope"`
	Provider      string `json:"provider"`
	Authorization string `json:"Authorization"`
}

func vaultIDToken(s *Server, q *tokenRequest) (any, *tokenError) {
	f, e := q.fields(jsonType)
	if e != nil {
		return nil, e
	}
	if m := f.missing("client_id", "client_secret", "password", "grant_type"); m != "" {
		return nil, missingParam(m)
	}
	if gt, _ := f.str("grant_type"); gt != "password" {
		return nil, &tokenError{status: http.StatusBadRequest, code: "unsupported_grant_type", desc: `grant_type must be "password"`}
	}
	c := s.credentials()
	id, _ := f.str("client_id")
	secret, _ := f.str("client_secret")
	if id != c.clientID || secret != c.clientSecret {
		return nil, &tokenError{status: http.StatusUnauthorized, code: "invalid_client", desc: "client authentication failed"}
	}
	user, ok := vaultIDUsername(f)
	if !ok {
		return nil, missingParam("username")
	}
	limit := 0
	switch {
	case len(user) == 11 && digits(user):
		limit = vaultIDMaxCPF
	case len(user) == 14 && digits(user):
		limit = vaultIDMaxCNPJ
	default:
		return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_request",
			desc: "username must be a CPF (11 digits) or a CNPJ (14 digits)", param: "username"}
	}
	var lifetime int
	if v, ok := f["lifetime"]; ok && v.kind != kindNull {
		n, err := strconv.Atoi(string(v.raw))
		if v.kind != kindOther || err != nil || n <= 0 {
			return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_request",
				desc: "lifetime must be a positive integer of seconds", param: "lifetime"}
		}
		if n > limit {
			return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_request",
				desc: fmt.Sprintf("lifetime above the limit of %d seconds", limit), param: "lifetime"}
		}
		lifetime = n
	}
	scope := "authentication_session"
	if v, ok := f["scope"]; ok && v.kind == kindOther {
		return nil, missingParam("scope")
	} else if sc, ok := f.str("scope"); ok {
		scope = sc
	}
	if user != c.username {
		return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_grant", desc: "invalid username or OTP"}
	}
	otp, _ := f.str("password")
	if reason, ok := s.useOTP(otp); !ok {
		return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_grant", desc: reason}
	}
	provider, ok := f.str("provider")
	if v, present := f["provider"]; present && v.kind == kindOther {
		return nil, missingParam("provider")
	}
	if !ok {
		provider = vaultIDDefaultCloud
	}
	t := s.issue(grant{
		requested: time.Duration(lifetime) * time.Second,
		scope:     scope,
		mint:      func(time.Time, time.Time) string { return hexToken() },
		header: func(access string) string {
			return "VCSchema " + base64.StdEncoding.EncodeToString([]byte(provider+"-|"+access))
		},
	})
	return vaultIDReply{
		AccessToken:   t.access,
		ExpiresIn:     t.expiresIn,
		TokenType:     "bearer",
		Scope:         t.scope,
		Provider:      provider,
		Authorization: t.header,
	}, nil
}

// vaultIDDefaultCloud is the cloud of a request without "provider": the
// provider's documented example.
const vaultIDDefaultCloud = "SOLUTIHOM"

// vaultIDUsername returns the username as a string: a JSON string as it
// is, or a JSON number of up to 14 digits ("Pode ser do tipo string":
// a number loses its leading zeros, which are put back to 11 digits for a
// CPF or 14 for a CNPJ).
func vaultIDUsername(f fields) (string, bool) {
	if u, ok := f.str("username"); ok {
		return u, true
	}
	v, ok := f["username"]
	if !ok || v.kind != kindOther {
		return "", false
	}
	n := string(v.raw)
	if n == "" || len(n) > 14 || !digits(n) {
		return n, true // not a CPF or CNPJ: refused as such below
	}
	switch {
	case len(n) <= 11:
		return strings.Repeat("0", 11-len(n)) + n, true
	default:
		return strings.Repeat("0", 14-len(n)) + n, true
	}
}
