package sourcetest

import (
	"slices"
	"time"
)

// A dialect is what differs between emulators: where the token endpoint
// lives, what it accepts, what it answers and how it says no. The
// plumbing around it (method and body checks, faults, counters, the token
// store and the protected resource) is shared.
type dialect struct {
	provider string        // Server.Provider
	path     string        // token endpoint path
	lifetime time.Duration // documented token lifetime
	defaults credentials   // taken where Options leaves a credential empty

	// token validates a POST to the token endpoint and, if it is
	// acceptable, issues a token and returns the reply body to encode
	// as JSON with status 200.
	token func(s *Server, q *tokenRequest) (reply any, e *tokenError)
	// writeError writes e in the provider's error shape.
	writeError func(s *Server, w responseWriter, e *tokenError)
}

// credentials returns the credentials o asks for, defaults filled in.
func (d *dialect) credentials(o Options) credentials {
	c := d.defaults
	if o.ClientID != "" {
		c.clientID = o.ClientID
	}
	if o.ClientSecret != "" {
		c.clientSecret = o.ClientSecret
	}
	if o.Username != "" {
		c.username = o.Username
	}
	if o.Password != "" {
		c.password = o.Password
	}
	c.otps = slices.Clone(o.OTPs)
	return c
}

// defaultCredentials are the credentials of every dialect but VaultID and
// GestaoPlus.
var defaultCredentials = credentials{
	clientID:     DefaultClientID,
	clientSecret: DefaultClientSecret,
	username:     DefaultUsername,
	password:     DefaultPassword,
}

// rfcReply is the RFC 6749 §5.1 token reply, used by every dialect whose
// reply is a subset of it.
type rfcReply struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

func newRFCReply(t issued) rfcReply {
	return rfcReply{
		AccessToken:  t.access,
		TokenType:    "Bearer",
		ExpiresIn:    t.expiresIn,
		Scope:        t.scope,
		RefreshToken: t.refresh,
	}
}

// owner checks the password grant's username and password against c. It
// returns the name of a missing parameter, or whether both match.
func owner(f fields, c credentials) (missing string, ok bool) {
	if m := f.missing("username", "password"); m != "" {
		return m, false
	}
	u, _ := f.str("username")
	p, _ := f.str("password")
	return "", u == c.username && p == c.password
}

// redeemParam spends the refresh_token parameter of a refresh grant. It
// returns the name of a missing parameter, or whether the refresh token
// was accepted.
func (s *Server) redeemParam(f fields) (rec refreshRecord, missing string, ok bool) {
	rt, present := f.str("refresh_token")
	if !present {
		return refreshRecord{}, "refresh_token", false
	}
	rec, ok = s.redeem(rt)
	return rec, "", ok
}
