package source_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/source"
)

const (
	cfgSecret   = "cs-Hh72kQ9secret"
	cfgPassword = "pw-Rr38jW1secret"
)

func secretConfig() source.Config {
	return source.Config{
		TokenURL:     "https://auth.example.com/oauth/token",
		GrantType:    source.Password,
		ClientID:     "my-client-id",
		ClientSecret: cfgSecret,
		Username:     "alice",
		Password:     cfgPassword,
		Scopes:       []string{"read"},
	}
}

func TestConfigRedaction(t *testing.T) {
	cfg := secretConfig()
	type withValue struct {
		Name string
		Cfg  source.Config
	}
	type withPtr struct{ Cfg *source.Config }
	tests := []struct {
		name string
		out  func() string
	}{
		{"String", func() string { return cfg.String() }},
		{"GoString", func() string { return cfg.GoString() }},
		{"%v", func() string { return fmt.Sprintf("%v", cfg) }},
		{"%+v", func() string { return fmt.Sprintf("%+v", cfg) }},
		{"%#v", func() string { return fmt.Sprintf("%#v", cfg) }},
		{"%s", func() string { return fmt.Sprintf("%s", cfg) }},
		{"%q", func() string { return fmt.Sprintf("%q", cfg) }},
		{"pointer %+v", func() string { return fmt.Sprintf("%+v", &cfg) }},
		{"Sprint", func() string { return fmt.Sprint(cfg) }},
		{"field %v", func() string { return fmt.Sprintf("%v", withValue{"x", cfg}) }},
		{"field %+v", func() string { return fmt.Sprintf("%+v", withValue{"x", cfg}) }},
		{"field %#v", func() string { return fmt.Sprintf("%#v", withValue{"x", cfg}) }},
		{"pointer field %+v", func() string { return fmt.Sprintf("%+v", withPtr{&cfg}) }},
		{"slice %+v", func() string { return fmt.Sprintf("%+v", []source.Config{cfg}) }},
		{"slog JSON", func() string { return slogJSON("cfg", cfg) }},
		{"slog JSON pointer", func() string { return slogJSON("cfg", &cfg) }},
		{"slog text", func() string { return slogText("cfg", cfg) }},
		{"slog JSON field", func() string { return slogJSON("holder", withValue{"x", cfg}) }},
		{"json.Marshal", func() string { return jsonString(cfg) }},
		{"json.Marshal pointer", func() string { return jsonString(&cfg) }},
		{"json.Marshal field", func() string { return jsonString(withValue{"x", cfg}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNoSecret(t, tt.out(), "my-client-id", cfgSecret, cfgPassword)
		})
	}
}

// TestConfigRedactsTokenURL checks that a credential carried by the token
// URL does not show either: config.go's redactURL says it "hides a
// password or query a URL may carry".
func TestConfigRedactsTokenURL(t *testing.T) {
	tests := []struct {
		name, url, secret string
	}{
		{"user password", "https://user:urlpw-Tt61secret@auth.example.com/token", "urlpw-Tt61secret"},
		{"query", "https://auth.example.com/token?api_key=qk-Pp07secret", "qk-Pp07secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := source.Config{TokenURL: tt.url, ClientID: "my-client-id"}
			for _, out := range []string{fmt.Sprintf("%+v", cfg), jsonString(cfg), slogJSON("cfg", cfg)} {
				checkNoSecret(t, out, "my-client-id", tt.secret)
			}
		})
	}
}

// closeSource closes src if New returned one.
func closeSource(src *source.CachedSource) {
	if src != nil {
		_ = src.Close()
	}
}

func TestNewRejects(t *testing.T) {
	otp := func(context.Context) (string, error) { return "123456", nil }
	cc := func(mod func(*source.Config)) source.Config {
		c := source.Config{TokenURL: "https://auth.example.com/token", ClientID: "id", ClientSecret: cfgSecret}
		mod(&c)
		return c
	}
	pw := func(mod func(*source.Config)) source.Config {
		c := source.Config{TokenURL: "https://auth.example.com/token", GrantType: source.Password,
			ClientID: "id", Username: "alice", Password: cfgPassword}
		mod(&c)
		return c
	}
	vault := func(user string, life time.Duration) source.Config {
		return source.Config{Provider: source.VaultID, ClientID: "id", ClientSecret: cfgSecret,
			Username: user, PasswordFunc: otp, Lifetime: life, Cloud: "cloud-a"}
	}
	const day = 24 * time.Hour
	tests := []struct {
		name string
		cfg  source.Config
		want []string // each must appear in the error
	}{
		{"standard without token URL", source.Config{ClientID: "id", ClientSecret: cfgSecret},
			[]string{"Config.TokenURL", "standard"}},
		{"directlink without token URL", source.Config{Provider: source.DirectLink, Username: "u", Password: cfgPassword},
			[]string{"Config.TokenURL", "directlink"}},
		{"relative token URL", cc(func(c *source.Config) { c.TokenURL = "/oauth/token" }), []string{"Config.TokenURL"}},
		{"ftp token URL", cc(func(c *source.Config) { c.TokenURL = "ftp://auth.example.com/token" }), []string{"Config.TokenURL"}},
		{"token URL with credentials", cc(func(c *source.Config) { c.TokenURL = "https://u:" + cfgPassword + "@auth.example.com/token" }),
			[]string{"Config.TokenURL"}},
		{"unknown grant", cc(func(c *source.Config) { c.GrantType = "authorization_code" }), []string{"Config.GrantType", "authorization_code"}},
		{"refresh_token grant without a refresh token", cc(func(c *source.Config) { c.GrantType = source.RefreshToken }), []string{"Config.RefreshToken"}},
		{"jwt-bearer without an assertion", cc(func(c *source.Config) { c.GrantType = source.JWTBearer }), []string{"Config.Assertion"}},
		{"token exchange without a subject", cc(func(c *source.Config) { c.GrantType = source.TokenExchange }), []string{"Config.SubjectToken"}},
		{"exchange fields on another grant", cc(func(c *source.Config) { c.Exchange.Audience = []string{"a"} }), []string{"Config.Exchange"}},
		{"grant the provider does not take", source.Config{Provider: source.ScorePositivo, GrantType: source.Password,
			ClientID: "id", ClientSecret: cfgSecret, Username: "u", Password: cfgPassword}, []string{"GrantType", "password"}},
		{"client_credentials without client id", cc(func(c *source.Config) { c.ClientID = "" }), []string{"Config.ClientID"}},
		{"client_credentials without secret", cc(func(c *source.Config) { c.ClientSecret = "" }), []string{"Config.ClientSecret"}},
		{"password without client id", pw(func(c *source.Config) { c.ClientID = "" }), []string{"Config.ClientID"}},
		{"password without username", pw(func(c *source.Config) { c.Username = "" }), []string{"Config.Username"}},
		{"password without password", pw(func(c *source.Config) { c.Password = "" }), []string{"Config.Password"}},
		{"http to a remote host", cc(func(c *source.Config) { c.TokenURL = "http://auth.example.com/token" }),
			[]string{"Config.TokenURL", "AllowInsecureHTTP"}},
		{"http to a private address", cc(func(c *source.Config) { c.TokenURL = "http://10.0.0.7:8080/token" }),
			[]string{"Config.TokenURL", "AllowInsecureHTTP"}},
		{"http to a name that starts with localhost", cc(func(c *source.Config) { c.TokenURL = "http://localhost.example.com/token" }),
			[]string{"Config.TokenURL", "AllowInsecureHTTP"}},
		{"http to a name that starts with 127", cc(func(c *source.Config) { c.TokenURL = "http://127.0.0.1.example.com/token" }),
			[]string{"Config.TokenURL", "AllowInsecureHTTP"}},
		{"empty scope", cc(func(c *source.Config) { c.Scopes = []string{"read", ""} }), []string{"Config.Scopes"}},
		{"scope with a space", cc(func(c *source.Config) { c.Scopes = []string{"read write"} }), []string{"Config.Scopes"}},
		{"scope with a quote", cc(func(c *source.Config) { c.Scopes = []string{`re"ad`} }), []string{"Config.Scopes"}},
		{"scope with a newline", cc(func(c *source.Config) { c.Scopes = []string{"read\n"} }), []string{"Config.Scopes"}},
		{"negative fetch timeout", cc(func(c *source.Config) { c.FetchTimeout = -time.Second }), []string{"FetchTimeout"}},
		{"negative refresh ahead", cc(func(c *source.Config) { c.RefreshAhead = -time.Second }), []string{"RefreshAhead"}},
		{"unknown auth style", cc(func(c *source.Config) { c.AuthStyle = 42 }), []string{"Config.AuthStyle"}},
		{"unknown encoding", cc(func(c *source.Config) { c.Encoding = 42 }), []string{"Config.Encoding"}},
		{"origin with a line break", cc(func(c *source.Config) { c.Origin = "https://a.example\r\nX-Evil: 1" }), []string{"Config.Origin"}},
		{"vaultid CPF over 7 days", vault("123.456.789-09", 7*day+time.Second), []string{"Config.Lifetime", "7 days"}},
		{"vaultid CPF 8 days", vault("12345678909", 8*day), []string{"Config.Lifetime", "CPF"}},
		{"vaultid CNPJ over 30 days", vault("12.345.678/0001-95", 30*day+time.Second), []string{"Config.Lifetime", "30 days"}},
		{"vaultid username not a CPF", vault("alice", 0), []string{"Config.Username"}},
		{"vaultid username too long", vault("123456789012345", 0), []string{"Config.Username"}},
		{"vaultid without PasswordFunc", source.Config{Provider: source.VaultID, ClientID: "id", ClientSecret: cfgSecret,
			Username: "12345678909", Password: cfgPassword, Cloud: "cloud-a"}, []string{"Config.PasswordFunc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := source.New(tt.cfg)
			if err == nil {
				closeSource(src)
				t.Fatalf("New(%v) = nil error, want an error naming %q", tt.cfg, tt.want)
			}
			if src != nil {
				t.Errorf("New returned a source with its error: %v", src)
			}
			if !errors.Is(err, source.ErrInvalidConfig) {
				t.Errorf("errors.Is(%v, ErrInvalidConfig) = false, want true", err)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not name %q", msg, w)
				}
			}
			for _, s := range []string{cfgSecret, cfgPassword} {
				if strings.Contains(msg, s) {
					t.Errorf("error %q shows a secret", msg)
				}
			}
		})
	}
}

func TestNewAccepts(t *testing.T) {
	otp := func(context.Context) (string, error) { return "123456", nil }
	cc := func(url string) source.Config {
		return source.Config{TokenURL: url, ClientID: "id", ClientSecret: cfgSecret}
	}
	const day = 24 * time.Hour
	tests := []struct {
		name string
		cfg  source.Config
	}{
		{"https", cc("https://auth.example.com/oauth/token")},
		{"http to 127.0.0.1", cc("http://127.0.0.1:8080/token")},
		{"http to 127.1.2.3", cc("http://127.1.2.3/token")},
		{"http to localhost", cc("http://localhost:9000/token")},
		{"http to LOCALHOST.", cc("http://LOCALHOST./token")},
		{"http to [::1]", cc("http://[::1]:9000/token")},
		{"http to a remote host, opted in", func() source.Config {
			c := cc("http://auth.internal/token")
			c.AllowInsecureHTTP = true
			return c
		}()},
		{"password grant without a client secret", source.Config{TokenURL: "https://a.example/token",
			GrantType: source.Password, ClientID: "id", Username: "u", Password: cfgPassword}},
		{"password grant with PasswordFunc", source.Config{TokenURL: "https://a.example/token",
			GrantType: source.Password, ClientID: "id", Username: "u", PasswordFunc: otp}},
		{"scopes", func() source.Config {
			c := cc("https://a.example/token")
			c.Scopes = []string{"read", "write:all", "https://api.example/.default"}
			return c
		}()},
		{"directlink with token URL", source.Config{Provider: source.DirectLink,
			TokenURL: "https://customer.example/directlink/v1/oauth2/token", Username: "u", Password: cfgPassword}},
		{"scorepositivo", source.Config{Provider: source.ScorePositivo, ClientID: "id", ClientSecret: cfgSecret}},
		{"serproid", source.Config{Provider: source.SerproID, ClientID: "id", ClientSecret: cfgSecret}},
		{"gestaoplus", source.Config{Provider: source.GestaoPlus, Username: "u", Password: cfgPassword}},
		{"vaultid CPF 7 days", source.Config{Provider: source.VaultID, ClientID: "id", ClientSecret: cfgSecret,
			Username: "123.456.789-09", PasswordFunc: otp, Lifetime: 7 * day, Cloud: "cloud-a"}},
		{"vaultid CNPJ 30 days", source.Config{Provider: source.VaultID, ClientID: "id", ClientSecret: cfgSecret,
			Username: "12.345.678/0001-95", PasswordFunc: otp, Lifetime: 30 * day, Cloud: "cloud-a"}},
		{"vaultid CNPJ 8 days", source.Config{Provider: source.VaultID, ClientID: "id", ClientSecret: cfgSecret,
			Username: "12345678000195", PasswordFunc: otp, Lifetime: 8 * day, Cloud: "cloud-a"}},
		// The provider's documentation marks no VaultID field required.
		{"vaultid without Cloud", source.Config{Provider: source.VaultID, ClientID: "id", ClientSecret: cfgSecret,
			Username: "12345678909", PasswordFunc: otp}},
		{"vaultid without ClientSecret", source.Config{Provider: source.VaultID, ClientID: "id",
			Username: "12345678909", PasswordFunc: otp}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := source.New(tt.cfg)
			if err != nil {
				t.Fatalf("New(%v) = %v, want no error", tt.cfg, err)
			}
			defer closeSource(src)
			if _, ok := any(src).(source.Invalidator); !ok {
				t.Errorf("New returned %T, which is not an Invalidator", src)
			}
		})
	}
}
