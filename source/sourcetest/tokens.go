package sourcetest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"
	"time"
)

// issued is an access token the server issued.
type issued struct {
	access    string
	header    string // the exact Authorization value the resource expects; "" means "Bearer <access>"
	refresh   string // "" if none was issued
	scope     string
	expiry    time.Time
	expiresIn int // seconds, as reported
	family    int // tokens descended from one grant share a family
	revoked   bool
}

// refreshRecord is what a live refresh token carries over to the token it
// is exchanged for.
type refreshRecord struct {
	scope  string
	family int
}

// grant describes a token to issue.
type grant struct {
	requested time.Duration // lifetime the client asked for (VaultID); 0: default
	scope     string
	refresh   bool // issue a refresh token
	family    int  // the family a refresh continues; 0 starts one
	// mint makes the access token; nil means a random opaque token.
	mint func(now, expiry time.Time) string
	// header makes the Authorization value the resource will accept; nil
	// means "Bearer <access>".
	header func(access string) string
}

// issue issues a token for g and returns a copy of it.
func (s *Server) issue(g grant) issued {
	s.mu.Lock()
	defer s.mu.Unlock()
	life := s.lifetime
	if life <= 0 {
		life = g.requested
	}
	if life <= 0 {
		life = s.d.lifetime
	}
	now := time.Now()
	t := &issued{
		scope:     g.scope,
		expiry:    now.Add(life),
		expiresIn: int((life + time.Second - 1) / time.Second),
		family:    g.family,
	}
	if t.family == 0 {
		s.nextFamily++
		t.family = s.nextFamily
	}
	mint := g.mint
	if mint == nil {
		mint = func(time.Time, time.Time) string { return opaqueToken() }
	}
	t.access = mint(now, t.expiry)
	if g.header != nil {
		t.header = g.header(t.access)
		s.headers[t.header] = t
	}
	if g.refresh {
		t.refresh = opaqueToken()
		s.refresh[t.refresh] = refreshRecord{scope: t.scope, family: t.family}
	}
	s.tokens[t.access] = t
	s.issuedN++
	s.issuedList = append(s.issuedList, t.access)
	return *t
}

// redeem spends refresh token rt: it is invalid afterwards. It fails for
// an unknown, spent or revoked token, and while RejectRefresh is on (the
// token is then not spent). A spent token presented again revokes its
// family when RevokeOnRefreshReuse is on.
func (s *Server) redeem(rt string) (refreshRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rejectRefresh {
		return refreshRecord{}, false
	}
	rec, ok := s.refresh[rt]
	if !ok {
		if family, spent := s.spent[rt]; spent && s.reuseRevokes {
			s.revokeFamily(family)
		}
		return refreshRecord{}, false
	}
	delete(s.refresh, rt)
	s.spent[rt] = rec.family
	return rec, true
}

// revokeFamily revokes every access and refresh token of family. s.mu
// must be held.
func (s *Server) revokeFamily(family int) {
	for _, t := range s.tokens {
		if t.family == family {
			t.revoked = true
		}
	}
	for rt, rec := range s.refresh {
		if rec.family == family {
			delete(s.refresh, rt)
		}
	}
}

// useOTP spends a VaultID one-time password, or says why it cannot.
func (s *Server) useOTP(otp string) (reason string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.usedOTPs[otp]:
		return "OTP already used", false
	case len(s.creds.otps) > 0 && !slices.Contains(s.creds.otps, otp),
		len(s.creds.otps) == 0 && !(len(otp) == 6 && digits(otp)):
		return "invalid OTP", false
	}
	s.usedOTPs[otp] = true
	return "", true
}

// opaqueToken returns a random token of 43 URL-safe characters.
func opaqueToken() string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(32))
}

// hexToken returns a random token of 40 hex digits.
func hexToken() string {
	return hex.EncodeToString(randomBytes(20))
}

// jwt returns a JWT-shaped token: header and claims are real, the
// signature is sigLen random bytes.
func jwt(header string, claims any, sigLen int) string {
	c, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString(c) + "." + enc.EncodeToString(randomBytes(sigLen))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return b
}

func digits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
