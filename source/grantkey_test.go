package source

import (
	"context"
	"errors"
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
	return storeKey(r)
}

func constant(v string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return v, nil }
}

// The store key covers each part of the grant that decides the token;
// whose assertion or subject token it is, StoreKey says (the functions are
// never called to name a key).
func TestStoreKeyCoversGrants(t *testing.T) {
	jb := func(storeKey string) Config {
		return Config{GrantType: JWTBearer, Assertion: constant("a.b.c"), StoreKey: storeKey}
	}
	te := func(mod func(*Config)) Config {
		c := Config{GrantType: TokenExchange, SubjectToken: constant("opaque-subject"), StoreKey: "subject"}
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
		{"assertion's StoreKey", jb("workload-a"), jb("workload-b")},
		{"subject's StoreKey", te(nil), te(func(c *Config) { c.StoreKey = "other" })},
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
	if grantKeyOf(t, jb("w")) != grantKeyOf(t, Config{GrantType: JWTBearer, Assertion: constant("x.y.z"), StoreKey: "w"}) {
		t.Error("two assertion functions with one StoreKey got different keys")
	}
	if k := grantKeyOf(t, Config{GrantType: RefreshToken, RefreshToken: "rt-secret"}); strings.Contains(k, "rt-secret") {
		t.Error("the key holds the refresh token")
	}
}

// TestStoreKeyNeverCallsGrantFunctions: with a Store, New calls neither
// Assertion nor SubjectToken (each is called once per token request
// attempt only), and without a StoreKey it says the key cannot name them.
func TestStoreKeyNeverCallsGrantFunctions(t *testing.T) {
	calls := 0
	count := func(context.Context) (string, error) { calls++; return "a.b.c", nil }
	for _, cfg := range []Config{
		{GrantType: JWTBearer, Assertion: count},
		{GrantType: TokenExchange, SubjectToken: count, Exchange: ExchangeParams{ActorToken: count}},
	} {
		cfg.TokenURL, cfg.ClientID, cfg.Store = "http://127.0.0.1:1/token", "id", NewMemoryStore()
		_, err := New(cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != "StoreKey" {
			t.Errorf("New(%s with a Store, no StoreKey) = %v, want a ConfigError for StoreKey", cfg.GrantType, err)
		}
		cfg.StoreKey = "workload"
		src, err := New(cfg)
		if err != nil {
			t.Fatalf("New(%s with a Store and a StoreKey) = %v", cfg.GrantType, err)
		}
		src.Close()
	}
	if calls != 0 {
		t.Errorf("New called the grant's functions %d times, want 0", calls)
	}
}
