package sourcetest

import (
	"encoding/hex"
	"net/http"
	"time"
)

// NewScorePositivo starts a Score Positivo token endpoint at /oauth/token.
// It takes a JSON body only, with grant_type "client_credentials" and
// client_id and client_secret as strings. The reply carries token_type
// "Bearer", expires_in 3600 and a long JWT-shaped access token.
//
// Score Positivo does not document its errors; they take the shape of
// Laravel Passport, on which it runs: {"error","error_description",
// "message"} (and "hint") with 401 invalid_client, 400
// unsupported_grant_type or invalid_request; {"message":"Server Error"}
// for 5xx and {"message":"Too Many Attempts."} for 429.
func NewScorePositivo(o Options) *Server {
	return newServer(o, &dialect{
		provider:   "scorepositivo",
		path:       "/oauth/token",
		lifetime:   time.Hour,
		defaults:   defaultCredentials,
		token:      scorePositivoToken,
		writeError: writePassportError,
	})
}

func scorePositivoToken(s *Server, q *tokenRequest) (any, *tokenError) {
	f, e := q.fields(jsonType)
	if e != nil {
		return nil, e
	}
	if gt, _ := f.str("grant_type"); gt != "client_credentials" {
		return nil, &tokenError{status: http.StatusBadRequest, code: "unsupported_grant_type", desc: "grant_type must be client_credentials"}
	}
	if m := f.missing("client_id", "client_secret"); m != "" {
		return nil, missingParam(m)
	}
	c := s.credentials()
	id, _ := f.str("client_id")
	secret, _ := f.str("client_secret")
	if id != c.clientID || secret != c.clientSecret {
		return nil, &tokenError{status: http.StatusUnauthorized, code: "invalid_client", desc: "client authentication failed"}
	}
	t := s.issue(grant{
		mint: func(now, exp time.Time) string {
			return jwt(`{"typ":"JWT","alg":"RS256"}`, map[string]any{
				"aud": id, "jti": hex.EncodeToString(randomBytes(40)),
				"iat": now.Unix(), "nbf": now.Unix(), "exp": exp.Unix(),
				"sub": "", "scopes": []string{},
			}, 512)
		},
	})
	return newRFCReply(t), nil
}
