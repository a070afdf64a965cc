package sourcetest

import (
	"net/http"
	"strconv"
	"time"
)

// directLinkBase is DirectLink's API base path, also its token scope and
// error_uri (after the server URL).
const directLinkBase = "/directlink/v1"

// NewDirectLink starts a DirectLink token endpoint at
// /directlink/v1/oauth2/token (DirectLink's base URL is per customer). It
// takes a form body only, with grant_type "password", username and
// password; there is no client authentication. The access token is a
// JWT-shaped string (HS256 header; iss, sub, aud, exp, nbf, iat, jti
// claims; random signature) and the scope is URL + "/directlink/v1".
//
// Errors are {"error": <status as a number>, "error_description",
// "error_uri"}: 400 "Bad Request" for a missing or bad parameter or a
// wrong encoding, 401 "Unauthorized" for a wrong username or password,
// 500 "Internal server error".
func NewDirectLink(o Options) *Server {
	return newServer(o, &dialect{
		provider:   "directlink",
		path:       directLinkBase + "/oauth2/token",
		lifetime:   time.Hour,
		defaults:   defaultCredentials,
		token:      directLinkToken,
		writeError: writeDirectLinkError,
	})
}

func directLinkToken(s *Server, q *tokenRequest) (any, *tokenError) {
	f, e := q.fields(formType)
	if e != nil {
		return nil, e
	}
	if m := f.missing("grant_type", "username", "password"); m != "" {
		return nil, missingParam(m)
	}
	if gt, _ := f.str("grant_type"); gt != "password" {
		return nil, &tokenError{status: http.StatusBadRequest, code: "unsupported_grant_type", desc: `grant_type must be "password"`}
	}
	if _, ok := owner(f, s.credentials()); !ok {
		return nil, &tokenError{status: http.StatusUnauthorized, code: "invalid_grant", desc: "invalid username or password"}
	}
	user, _ := f.str("username")
	iss := s.URL + directLinkBase
	t := s.issue(grant{
		scope: iss,
		mint: func(now, exp time.Time) string {
			return jwt(`{"alg":"HS256","typ":"JWT"}`, map[string]any{
				"iss": iss, "sub": user, "aud": []string{iss},
				"exp": exp.Unix(), "nbf": now.Unix(), "iat": now.Unix(),
				"jti": strconv.FormatInt(now.UnixNano(), 10),
			}, 32)
		},
	})
	return newRFCReply(t), nil
}
