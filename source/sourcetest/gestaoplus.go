package sourcetest

import (
	"net/http"
	"strconv"
	"time"
)

// NewGestaoPlus starts a gestao.plus token endpoint at /oauth. It takes a
// JSON body only, with client_id "app" (or o.ClientID) and client_secret
// JSON null (or the string o.ClientSecret, when set), and either
// grant_type "password" with username and password, or grant_type
// "refresh_token" with refresh_token. When o.RequireOrigin is set the
// Origin header must equal it.
//
// The reply carries expires_in as a string ("43200"), scope "" and a
// refresh token, which rotates as with NewStandard. Errors are
// application/problem+json {"type","title","status","detail"} whose title
// is the OAuth code, as the provider's documentation has it: 400 invalid_client for any
// bad request (a malformed body, a missing field, an unknown grant, a
// wrong client or Origin), 401 invalid_grant for a wrong password or
// refresh token, 5xx server_error.
func NewGestaoPlus(o Options) *Server {
	d := &dialect{
		provider:   "gestaoplus",
		path:       "/oauth",
		lifetime:   12 * time.Hour,
		defaults:   defaultCredentials,
		token:      gestaoPlusToken,
		writeError: writeProblemError,
	}
	d.defaults.clientID, d.defaults.clientSecret = "app", ""
	return newServer(o, d)
}

type gestaoPlusReply struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    string `json:"expires_in"`
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
	RefreshToken string `json:"refresh_token"`
}

func gestaoPlusToken(s *Server, q *tokenRequest) (any, *tokenError) {
	if want := s.requiredOrigin(); want != "" && q.r.Header.Get("Origin") != want {
		return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_client", desc: "Origin not allowed", param: "Origin"}
	}
	f, e := q.fields(jsonType)
	if e != nil {
		return nil, e
	}
	c := s.credentials()
	id, ok := f.str("client_id")
	if !ok {
		return nil, missingParam("client_id")
	}
	secret, present := f["client_secret"]
	switch {
	case !present || secret.kind == kindOther:
		return nil, missingParam("client_secret")
	case id != c.clientID,
		secret.kind == kindString && (c.clientSecret == "" || secret.s != c.clientSecret):
		return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_client", desc: "Client authentication failed"}
	}
	var g grant
	switch gt, _ := f.str("grant_type"); gt {
	case "":
		return nil, missingParam("grant_type")
	case "password":
		if m, ok := owner(f, c); m != "" {
			return nil, missingParam(m)
		} else if !ok {
			return nil, &tokenError{status: http.StatusUnauthorized, code: "invalid_grant", desc: "Invalid username and password combination"}
		}
	case "refresh_token":
		rec, m, ok := s.redeemParam(f)
		if m != "" {
			return nil, missingParam(m)
		} else if !ok {
			return nil, &tokenError{status: http.StatusUnauthorized, code: "invalid_grant", desc: "Invalid refresh token"}
		}
		g.family = rec.family
	default:
		return nil, &tokenError{status: http.StatusBadRequest, code: "unsupported_grant_type", desc: "The authorization grant type is not supported by the authorization server."}
	}
	g.refresh = true
	t := s.issue(g)
	return gestaoPlusReply{
		AccessToken:  t.access,
		ExpiresIn:    strconv.Itoa(t.expiresIn),
		TokenType:    "Bearer",
		Scope:        "",
		RefreshToken: t.refresh,
	}, nil
}
