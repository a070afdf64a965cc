package source

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// keyOf returns the store key of cfg over a loopback token URL.
func keyOf(t *testing.T, cfg Config) string {
	t.Helper()
	if cfg.TokenURL == "" {
		cfg.TokenURL = "http://127.0.0.1:1/token"
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "id"
	}
	cfg.ClientSecret = "secret"
	r, err := cfg.validate()
	if err != nil {
		t.Fatalf("validate: %v", err)
	}
	return storeKey(r)
}

// Two configs that differ in anything that decides the issued token get
// different store keys, and the encoding of the parts is unambiguous.
func TestStoreKeyCoversEverything(t *testing.T) {
	custom := func(mod func(p *Provider)) *Provider {
		p := &Provider{Name: "custom"}
		if mod != nil {
			mod(p)
		}
		return p
	}
	base := Config{Provider: custom(nil)}
	for _, tc := range []struct {
		name string
		a, b Config
	}{
		{"Fixed", Config{Provider: custom(func(p *Provider) { p.Fixed = map[string]any{"resource": "a"} })},
			Config{Provider: custom(func(p *Provider) { p.Fixed = map[string]any{"resource": "b"} })}},
		{"Fixed type", Config{Provider: custom(func(p *Provider) { p.Fixed = map[string]any{"n": 1} })},
			Config{Provider: custom(func(p *Provider) { p.Fixed = map[string]any{"n": "1"} })}},
		{"Fixed nil", base, Config{Provider: custom(func(p *Provider) { p.Fixed = map[string]any{"x": nil} })}},
		{"Header", base, Config{Provider: custom(func(p *Provider) { p.Header = http.Header{"X-Tenant": {"a"}} })}},
		{"Header values", Config{Provider: custom(func(p *Provider) { p.Header = http.Header{"X-A": {"b", "c"}} })},
			Config{Provider: custom(func(p *Provider) { p.Header = http.Header{"X-A": {"b\x00c"}} })}},
		{"Fields", base, Config{Provider: custom(func(p *Provider) { p.Fields = map[string]string{"client_id": "clientId"} })}},
		{"Reply", base, Config{Provider: custom(func(p *Provider) { p.Reply.HeaderValue = "Authorization" })}},
		{"Reply names", Config{Provider: custom(func(p *Provider) { p.Reply.AccessToken = "a" })},
			Config{Provider: custom(func(p *Provider) { p.Reply.TokenType = "a" })}},
		{"Encoding", base, Config{Provider: custom(func(p *Provider) { p.Encoding = JSONEncoding })}},
		{"Config.Encoding", base, Config{Provider: custom(nil), Encoding: JSONEncoding}},
		{"AuthStyle", base, Config{Provider: custom(func(p *Provider) { p.AuthStyle = AuthInBody })}},
		{"OneTimePassword", Config{Provider: custom(nil), GrantType: Password, Username: "u", Password: "p", PasswordFunc: func(context.Context) (string, error) { return "", nil }},
			Config{Provider: custom(func(p *Provider) { p.OneTimePassword = true }), GrantType: Password, Username: "u", PasswordFunc: func(context.Context) (string, error) { return "", nil }}},
		{"DefaultLifetime", base, Config{Provider: custom(func(p *Provider) { p.DefaultLifetime = time.Hour })}},
		{"Name", base, Config{Provider: &Provider{Name: "other"}}},
		{"StoreKey", base, Config{Provider: custom(nil), StoreKey: "tenant-a"}},
		{"EndpointParams separator", Config{EndpointParams: url.Values{"aud": {"x=y"}}},
			Config{EndpointParams: url.Values{"aud=x": {"y"}}}},
		{"EndpointParams values", Config{EndpointParams: url.Values{"aud": {"a", "b"}}},
			Config{EndpointParams: url.Values{"aud": {"a\x00b"}}}},
		{"EndpointParams pairs", Config{EndpointParams: url.Values{"a": {"b\x01c=d"}}},
			Config{EndpointParams: url.Values{"a": {"b"}, "c": {"d"}}}},
		{"ClientID and Username", Config{GrantType: Password, ClientID: "a\x00b", Password: "p", Username: "c"},
			Config{GrantType: Password, ClientID: "a", Username: "b\x00c", Password: "p"}},
		{"Scopes", Config{Scopes: []string{"a", "b"}}, Config{Scopes: []string{"ab"}}},
		{"Origin and Cloud", Config{Origin: "a", Cloud: ""}, Config{Origin: "", Cloud: "a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if a, b := keyOf(t, tc.a), keyOf(t, tc.b); a == b {
				t.Errorf("configs that get different tokens share the store key %s", a)
			}
		})
	}
	// The same config, built twice, has the same key (map order aside).
	mk := func() Config {
		return Config{Provider: custom(func(p *Provider) {
			p.Fixed = map[string]any{"a": 1, "b": "x", "c": nil}
			p.Header = http.Header{"X-A": {"1"}, "X-B": {"2"}}
		}), EndpointParams: url.Values{"a": {"1"}, "b": {"2"}, "c": {"3"}}}
	}
	for range 10 {
		if a, b := keyOf(t, mk()), keyOf(t, mk()); a != b {
			t.Fatal("one config has two store keys")
		}
	}
}

// A Provider.Prepare hook can change the request where the store key does
// not see: with a Store, New asks for a StoreKey naming it.
func TestStoreKeyRequiredWithPrepare(t *testing.T) {
	p := &Provider{Name: "hooked", Prepare: func(*Config, *TokenRequest) error { return nil }}
	cfg := Config{Provider: p, TokenURL: "http://127.0.0.1:1/token", ClientID: "id", ClientSecret: "secret", Store: NewMemoryStore()}
	_, err := New(cfg)
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New with a Prepare hook, a Store and no StoreKey: %v, want ErrInvalidConfig", err)
	}
	if got := err.Error(); !strings.Contains(got, "Config.StoreKey") {
		t.Errorf("error %q does not name Config.StoreKey", got)
	}
	cfg.StoreKey = "tenant-a"
	src, err := New(cfg)
	if err != nil {
		t.Fatalf("New with a StoreKey: %v", err)
	}
	src.Close()
	cfg.Store, cfg.StoreKey = nil, ""
	src, err = New(cfg)
	if err != nil {
		t.Fatalf("New with a Prepare hook and no Store: %v", err)
	}
	src.Close()
	for _, p := range []*Provider{VaultID, GestaoPlus} { // their hooks read only what the key covers
		if p.Prepare == nil {
			continue
		}
		c := Config{Provider: p, ClientID: "id", ClientSecret: "s", Username: "12345678909", Password: "p",
			PasswordFunc: func(context.Context) (string, error) { return "", nil }, Cloud: "c", Store: NewMemoryStore()}
		if _, err := c.validate(); err != nil && strings.Contains(err.Error(), "StoreKey") {
			t.Errorf("%s: %v", p.Name, err)
		}
	}
}
