package sourcetest

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
)

// maxAssertionLife is how far past iat, and past now, an assertion's exp
// may be.
const maxAssertionLife = 60 * time.Second

// checkAssertion verifies a private_key_jwt client assertion.
func (m *mtlsState) checkAssertion(assertion, clientID string, replayed bool, now time.Time) *tokenError {
	if m.pub == nil {
		return invalidClient("no key registered for private_key_jwt")
	}
	tok, err := josejwt.ParseSigned(assertion, m.algs)
	if err != nil {
		return invalidClient("malformed client assertion, or its algorithm is not accepted")
	}
	var claims map[string]json.RawMessage
	if err := tok.Claims(m.pub, &claims); err != nil {
		return invalidClient("client assertion signature does not verify")
	}
	if alg := jose.SignatureAlgorithm(tok.Headers[0].Algorithm); strings.HasPrefix(string(alg), "PS") && !pssSaltIsHashSize(assertion, alg, m.pub) {
		return invalidClient("client assertion PSS salt is not the size of the hash (RFC 7518 §3.5)")
	}
	str := func(name string) string {
		var s string
		json.Unmarshal(claims[name], &s)
		return s
	}
	num := func(name string) (int64, bool) {
		var n json.Number
		d := json.NewDecoder(bytes.NewReader(claims[name]))
		d.UseNumber()
		if d.Decode(&n) != nil {
			return 0, false
		}
		i, err := n.Int64()
		return i, err == nil
	}
	if str("iss") != clientID || str("sub") != clientID {
		return invalidClient("client assertion iss and sub must be the client id")
	}
	aud := claims["aud"]
	if len(aud) == 0 || aud[0] != '"' {
		return invalidClient("client assertion aud must be a single string")
	}
	if !slices.Contains(m.audiences, str("aud")) {
		return invalidClient("client assertion aud is not this server")
	}
	exp, ok := num("exp")
	switch {
	case !ok:
		return invalidClient("client assertion has no exp")
	case now.Unix() >= exp:
		return invalidClient("client assertion expired")
	case exp > now.Add(maxAssertionLife+time.Second).Unix():
		return invalidClient("client assertion exp more than 60 s ahead")
	}
	if iat, ok := num("iat"); ok && exp-iat > int64(maxAssertionLife/time.Second) {
		return invalidClient("client assertion lives more than 60 s (exp - iat)")
	}
	if str("jti") == "" {
		return invalidClient("client assertion has no jti")
	}
	if replayed {
		return invalidClient("client assertion replayed: jti already used")
	}
	return nil
}

// pssSaltIsHashSize verifies a PS* signature with the salt length RFC 7518
// §3.5 fixes; go-jose accepts any salt length.
func pssSaltIsHashSize(assertion string, alg jose.SignatureAlgorithm, pub crypto.PublicKey) bool {
	rk, ok := pub.(*rsa.PublicKey)
	if !ok {
		return false
	}
	i := strings.LastIndexByte(assertion, '.')
	sig, err := base64.RawURLEncoding.DecodeString(assertion[i+1:])
	if err != nil {
		return false
	}
	var h crypto.Hash
	switch alg {
	case jose.PS256:
		h = crypto.SHA256
	case jose.PS384:
		h = crypto.SHA384
	case jose.PS512:
		h = crypto.SHA512
	default:
		return false
	}
	hh := h.New()
	hh.Write([]byte(assertion[:i]))
	return rsa.VerifyPSS(rk, h, hh.Sum(nil), sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
}

// unverifiedJTI returns the jti claim of a compact JWS, unverified, or "".
func unverifiedJTI(assertion string) string {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		JTI string `json:"jti"`
	}
	json.Unmarshal(b, &c)
	return c.JTI
}
