package source

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
)

// grantKeyOf is keyOf with the grant's identity, as New computes it.
func grantKeyOf(t *testing.T, cfg Config) string {
	t.Helper()
	cfg.TokenURL, cfg.ClientID = "http://127.0.0.1:1/token", "id"
	r, err := cfg.validate()
	if err != nil {
		t.Fatalf("validate: %v", err)
	}
	if r.grantID, err = grantIdentity(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return storeKey(r)
}

func constant(v string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return v, nil }
}

// jwtOf is an unsigned JWT with the given payload (the key reads it
// without verifying).
func jwtOf(payload string) string {
	return "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig"
}

// The store key covers each part of the grant that decides the token, and
// an assertion's identity, not its signature or jti.
func TestStoreKeyCoversGrants(t *testing.T) {
	jb := func(payload string) Config {
		return Config{GrantType: JWTBearer, Assertion: constant(jwtOf(payload))}
	}
	te := func(mod func(*Config)) Config {
		c := Config{GrantType: TokenExchange, SubjectToken: constant("opaque-subject")}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	differ := []struct {
		name string
		a, b Config
	}{
		{"refresh token", Config{GrantType: RefreshToken, RefreshToken: "a"}, Config{GrantType: RefreshToken, RefreshToken: "b"}},
		{"assertion iss", jb(`{"iss":"a","sub":"s"}`), jb(`{"iss":"b","sub":"s"}`)},
		{"assertion sub", jb(`{"iss":"a","sub":"s"}`), jb(`{"iss":"a","sub":"t"}`)},
		{"subject", te(nil), te(func(c *Config) { c.SubjectToken = constant("other") })},
		{"subject type", te(nil), te(func(c *Config) { c.SubjectTokenType = TokenTypeJWT })},
		{"audience", te(nil), te(func(c *Config) { c.Exchange.Audience = []string{"x"} })},
		{"resource", te(func(c *Config) { c.Exchange.Resource = []string{"a", "b"} }), te(func(c *Config) { c.Exchange.Resource = []string{"a"} })},
		{"requested", te(nil), te(func(c *Config) { c.Exchange.RequestedTokenType = TokenTypeJWT })},
		{"actor", te(nil), te(func(c *Config) { c.Exchange.ActorToken = constant("actor") })},
	}
	for _, tc := range differ {
		if grantKeyOf(t, tc.a) == grantKeyOf(t, tc.b) {
			t.Errorf("%s: same key", tc.name)
		}
	}
	if grantKeyOf(t, jb(`{"iss":"a","sub":"s","jti":"1"}`)) != grantKeyOf(t, jb(`{"iss":"a","sub":"s","jti":"2"}`)) {
		t.Error("two assertions of one identity got different keys")
	}
	if k := grantKeyOf(t, Config{GrantType: RefreshToken, RefreshToken: "rt-secret"}); strings.Contains(k, "rt-secret") {
		t.Error("the key holds the refresh token")
	}
}
