package sourcetest

import (
	"cmp"
	"net/http"
	"net/url"
	"time"
)

// NewStandard starts an RFC 6749 token endpoint at /token. It accepts a
// form or a JSON body; the client authenticates with HTTP Basic (id and
// secret form-url-encoded first, RFC 6749 §2.3.1) or with client_id and
// client_secret in the body, not both. It grants client_credentials,
// password and, when o.RefreshTokens is set, refresh_token. Refresh tokens
// rotate: each refresh returns a new one and the old one is spent. The
// access token a refresh replaces stays valid until it expires.
//
// Errors are RFC 6749 §5.2 JSON: 401 invalid_client (with
// WWW-Authenticate: Basic realm="sourcetest"), 400 invalid_grant,
// invalid_request or unsupported_grant_type. Replies carry
// Cache-Control: no-store.
func NewStandard(o Options) *Server {
	return newServer(o, &dialect{
		provider:   "standard",
		path:       "/token",
		lifetime:   time.Hour,
		defaults:   defaultCredentials,
		token:      standardToken,
		writeError: writeStandardError,
	})
}

func standardToken(s *Server, q *tokenRequest) (any, *tokenError) {
	f, e := q.fields(formType, jsonType)
	if e != nil {
		return nil, e
	}
	id, secret, e := standardClient(q.r, f)
	if e != nil {
		return nil, e
	}
	c := s.credentials()
	gt, _ := f.str("grant_type")
	if id != c.clientID || secret != c.clientSecret && !s.publicClient(q.r, gt, secret) {
		return nil, &tokenError{status: http.StatusUnauthorized, code: "invalid_client", desc: "client authentication failed"}
	}
	var g grant
	g.scope, _ = f.str("scope")
	switch gt {
	case "":
		return nil, missingParam("grant_type")
	case "client_credentials":
	case "password":
		if m, ok := owner(f, c); m != "" {
			return nil, missingParam(m)
		} else if !ok {
			return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_grant", desc: "invalid username or password"}
		}
		g.refresh = s.refreshEnabled()
	case "refresh_token":
		rec, m, ok := s.redeemParam(f)
		if m != "" {
			return nil, missingParam(m)
		} else if !ok {
			return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_grant", desc: "invalid refresh token"}
		}
		g.scope = cmp.Or(g.scope, rec.scope)
		g.family, g.refresh = rec.family, true
	case JWTBearerGrant:
		return s.jwtBearer(f, g)
	case TokenExchangeGrant:
		return s.tokenExchange(f, g)
	default:
		return nil, &tokenError{status: http.StatusBadRequest, code: "unsupported_grant_type", desc: "grant_type not supported"}
	}
	return newRFCReply(s.issue(g)), nil
}

// standardClient returns the client credentials of an RFC 6749 request:
// from HTTP Basic, or from the body, but not from both.
func standardClient(r *http.Request, f fields) (id, secret string, e *tokenError) {
	bodyID, hasID := f.str("client_id")
	bodySecret, hasSecret := f.str("client_secret")
	user, pass, basic := r.BasicAuth()
	if !basic {
		if !hasID {
			return "", "", &tokenError{status: http.StatusUnauthorized, code: "invalid_client", desc: "client authentication required"}
		}
		return bodyID, bodySecret, nil
	}
	id, err1 := url.QueryUnescape(user)
	secret, err2 := url.QueryUnescape(pass)
	if err1 != nil || err2 != nil {
		return "", "", &tokenError{status: http.StatusBadRequest, code: "invalid_request", desc: "malformed Basic credentials"}
	}
	// A client_id in the body naming the same client is harmless (RFC
	// 6749 §3.2.1); a second secret, or another client, is two methods.
	if hasSecret || hasID && bodyID != id {
		return "", "", &tokenError{status: http.StatusBadRequest, code: "invalid_request", desc: "more than one client authentication method"}
	}
	return id, secret, nil
}
