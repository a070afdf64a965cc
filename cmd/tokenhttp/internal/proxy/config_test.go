package proxy

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tokenhttp/tokenhttp/source"
)

const goodConfig = `listen: 127.0.0.1:8080
admin: 127.0.0.1:9090
routes:
  - prefix: /orders
    upstream: https://api.example.com/v1
    source:
      provider: serproid
      token_url: https://serpro.example/token
      grant: client_credentials
      client_id: my-client
      client_secret_file: /run/secrets/serpro
      scopes: [a, b]
      refresh_ahead: 30s
      retry_max_attempts: 2
      breaker_open_for: 10s
      endpoint_params: {audience: orders}
  - prefix: /billing/
    upstream: http://127.0.0.1:9999
    source:
      provider: gestaoplus
      token_url: https://x.gestao.plus/token
      username: u
      password_env: GESTAO_PASSWORD
store:
  redis: redis://127.0.0.1:6379/0
  key_file: /run/secrets/store-key
`

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Routes) != 2 || c.MaxReplayBody != DefaultMaxReplayBody || c.Unmatched != "reject" {
		t.Fatalf("parsed: %+v", c)
	}
	r := c.Routes[0]
	if r.Source.Provider != source.SerproID || r.Source.ClientID != "my-client" || len(r.Source.Scopes) != 2 ||
		r.Source.Retry.MaxAttempts != 2 || r.Source.EndpointParams.Get("audience") != "orders" || r.Source.Name != "/orders" {
		t.Errorf("route 0: %+v", r.Source)
	}
	if len(r.Secrets) != 1 || r.Secrets[0].Key != "client_secret" || r.Secrets[0].File != "/run/secrets/serpro" {
		t.Errorf("route 0 secrets: %+v", r.Secrets)
	}
	if c.Routes[1].Prefix != "/billing" || c.Routes[1].Secrets[0].Env != "GESTAO_PASSWORD" {
		t.Errorf("route 1: %+v", c.Routes[1])
	}
	if c.Store == nil || c.Store.Key == nil || c.Store.Key.File != "/run/secrets/store-key" {
		t.Errorf("store: %+v", c.Store)
	}
}

// TestConfigErrors: every error names the key, with its line where the
// YAML has one; an inline secret never appears in the error.
func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name, edit, want string
	}{
		{"inline client secret", "      client_secret_file: /run/secrets/serpro\n|      client_secret: s3cr3t-inline\n", "line 12: source.client_secret: a secret must not be written"},
		{"inline password", "      password_env: GESTAO_PASSWORD\n|      password: s3cr3t-inline\n", "line 24: source.password: a secret must not be written"},
		{"inline store key", "  key_file: /run/secrets/store-key\n|  key: s3cr3t-inline\n", "line 27: store.key: a secret must not be written"},
		{"password in the redis URL", "redis://127.0.0.1:6379/0|redis://:s3cr3t-inline@127.0.0.1:6379/0", "must not carry a password"},
		{"unknown top-level key", "admin: 127.0.0.1:9090\n|admn: x\n", "line 3: unknown key admn"},
		{"unknown route key", "    upstream: https://api.example.com/v1\n|    upstreem: x\n", "line 6: unknown key upstreem"},
		{"unknown source key", "      grant: client_credentials\n|      grnat: x\n", "line 10: unknown key source.grnat"},
		{"unknown store key", "  key_file: /run/secrets/store-key\n|  keyfile: x\n", "line 27: unknown key keyfile"},
		{"file and env", "      client_secret_file: /run/secrets/serpro\n|      client_secret_env: X\n", "not both"},
		{"bad duration", "refresh_ahead: 30s|refresh_ahead: soon", "line 13: source.refresh_ahead"},
		{"bad provider", "provider: serproid|provider: acme", "line 7: source.provider: \"acme\" is not a known provider"},
		{"bad prefix", "prefix: /orders|prefix: orders", "prefix \"orders\" must start with /"},
		{"no routes", "routes:|routes: []\nx:", "unknown key x"},
		{"a secret in endpoint_params", "endpoint_params: {audience: orders}|endpoint_params: {client_secret: s3cr3t-inline}", "line 16: source.endpoint_params: \"client_secret\" is a secret"},
		{"a client assertion in endpoint_params", "endpoint_params: {audience: orders}|endpoint_params: {client_assertion: s3cr3t-inline}", "is a secret"},
		{"credentials in a bad upstream URL", "upstream: https://api.example.com/v1|upstream: ftp://u:s3cr3t-inline@api.example.com/", "is not an absolute http(s) URL"},
		{"credentials in a bad redis URL", "redis://127.0.0.1:6379/0|http://:s3cr3t-inline@127.0.0.1:6379/0", "is not a redis:// or rediss:// URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			old, add, _ := strings.Cut(c.edit, "|")
			text := goodConfig
			if strings.HasSuffix(old, "\n") {
				text = strings.Replace(text, old, old+add, 1)
			} else {
				text = strings.Replace(text, old, add, 1)
			}
			if text == goodConfig {
				t.Fatal("the edit did not apply")
			}
			_, err := ParseConfig([]byte(text))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ParseConfig: %v, want an error containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), "s3cr3t-inline") {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	sec := filepath.Join(dir, "secret")
	if err := os.WriteFile(sec, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := "routes:\n  - prefix: /a\n    upstream: https://a.example\n    source:\n      token_url: https://t.example/token\n      client_id: c\n      client_secret_file: " + sec + "\n"
	c, err := ParseConfig([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(c, func(string) string { return "" }); err != nil {
		t.Errorf("Check: %v", err)
	}
	c.Routes[0].Secrets[0].File = filepath.Join(dir, "missing")
	if err := Check(c, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "client_secret_file") {
		t.Errorf("Check with a missing secret file: %v", err)
	}
	c, _ = ParseConfig([]byte(strings.Replace(text, "      client_id: c\n", "", 1)))
	if err := Check(c, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "ClientID") {
		t.Errorf("Check without a client id: %v", err)
	}
}

func TestSecretFromEnv(t *testing.T) {
	text := "routes:\n  - prefix: /a\n    upstream: https://a.example\n    source:\n      token_url: https://t.example/token\n      client_id: c\n      client_secret_env: A_SECRET\n"
	c, err := ParseConfig([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"A_SECRET": "from-env"}
	if err := Check(c, func(k string) string { return env[k] }); err != nil {
		t.Errorf("Check with the variable set: %v", err)
	}
	err = Check(c, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "client_secret_env") || !strings.Contains(err.Error(), "A_SECRET") {
		t.Errorf("Check without the variable: %v, want an error naming client_secret_env and A_SECRET", err)
	}
	p := &Proxy{opts: Options{Getenv: func(k string) string { return env[k] }}, tel: &Telemetry{}}
	sc, err := p.sourceConfig(c.Routes[0], &generation{files: map[string][32]byte{}})
	if err != nil || sc.ClientSecret != "from-env" {
		t.Errorf("sourceConfig: %v, secret set: %v", err, sc.ClientSecret == "from-env")
	}
}

// TestGrantKeys: the refresh_token, jwt-bearer and token-exchange keys;
// their tokens only through *_file or *_env.
func TestGrantKeys(t *testing.T) {
	route := func(src string) string {
		return "routes:\n  - prefix: /a\n    upstream: https://a.example\n    source:\n      token_url: https://t.example/token\n      client_id: c\n" + src
	}
	env := map[string]string{"RT": "rt-value", "ASSERTION": "jwt-value", "SUBJECT": "subject-value", "ACTOR": "actor-value"}
	p := &Proxy{opts: Options{Getenv: func(k string) string { return env[k] }}, tel: &Telemetry{}}
	build := func(t *testing.T, text string) source.Config {
		t.Helper()
		c, err := ParseConfig([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		sc, err := p.sourceConfig(c.Routes[0], &generation{files: map[string][32]byte{}})
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	t.Run("refresh_token", func(t *testing.T) {
		sc := build(t, route("      grant: refresh_token\n      refresh_token_env: RT\n"))
		if sc.GrantType != source.RefreshToken || sc.RefreshToken != "rt-value" {
			t.Errorf("got grant %q, refresh token set %v", sc.GrantType, sc.RefreshToken == "rt-value")
		}
	})
	t.Run("jwt-bearer", func(t *testing.T) {
		sc := build(t, route("      grant: "+source.JWTBearer+"\n      assertion_env: ASSERTION\n"))
		if v, _ := sc.Assertion(context.Background()); v != "jwt-value" {
			t.Error("assertion not set")
		}
	})
	t.Run("short grant names", func(t *testing.T) {
		for short, full := range map[string]string{"jwt-bearer": source.JWTBearer, "token-exchange": source.TokenExchange, "refresh-token": source.RefreshToken} {
			c, err := ParseConfig([]byte("routes:\n  - prefix: /a\n    upstream: https://api.example.com\n    source:\n      token_url: https://auth.example.com/token\n      client_id: c\n      grant: " + short + "\n"))
			if err != nil {
				t.Fatalf("grant: %s: %v", short, err)
			}
			if got := c.Routes[0].Source.GrantType; got != full {
				t.Errorf("grant: %s = %q, want %q", short, got, full)
			}
		}
	})
	t.Run("token-exchange", func(t *testing.T) {
		sc := build(t, route("      grant: "+source.TokenExchange+"\n      subject_token_env: SUBJECT\n      subject_token_type: "+source.TokenTypeJWT+
			"\n      actor_token_env: ACTOR\n      actor_token_type: "+source.TokenTypeJWT+"\n      audience: [orders]\n      resource: [https://a.example/, https://b.example/]\n      requested_token_type: "+source.TokenTypeAccessToken+"\n"))
		s, _ := sc.SubjectToken(context.Background())
		a, _ := sc.Exchange.ActorToken(context.Background())
		x := sc.Exchange
		if s != "subject-value" || a != "actor-value" || sc.SubjectTokenType != source.TokenTypeJWT || x.ActorTokenType != source.TokenTypeJWT ||
			len(x.Audience) != 1 || len(x.Resource) != 2 || x.RequestedTokenType != source.TokenTypeAccessToken {
			t.Errorf("exchange fields: %+v", x)
		}
	})
	for _, key := range []string{"refresh_token", "assertion", "subject_token", "actor_token"} {
		_, err := ParseConfig([]byte(route("      " + key + ": s3cr3t-inline\n")))
		if err == nil || !strings.Contains(err.Error(), "a secret must not be written") || strings.Contains(err.Error(), "s3cr3t-inline") {
			t.Errorf("inline %s: %v", key, err)
		}
	}
}

// edit applies "old|new" to text: with old ending in a newline, new is
// inserted after it; otherwise old is replaced by new.
func edit(t *testing.T, text, e string) string {
	t.Helper()
	old, add, _ := strings.Cut(e, "|")
	out := strings.Replace(text, old, add, 1)
	if strings.HasSuffix(old, "\n") {
		out = strings.Replace(text, old, old+add, 1)
	}
	if out == text {
		t.Fatalf("the edit %q did not apply", e)
	}
	return out
}

// TestConfigRefusesWhatFailsLater: a config that --check would pass but
// that fails at start (an address that does not listen) or on every
// request (an upstream the token may not go to) is refused by
// ParseConfig, naming the key and its line, without the secret.
func TestConfigRefusesWhatFailsLater(t *testing.T) {
	cases := []struct {
		name, edit string
		want       []string
	}{
		{"listen is not an address", "listen: 127.0.0.1:8080|listen: not-an-address", []string{"line 1: listen:", "host:port"}},
		{"listen is a port alone", "listen: 127.0.0.1:8080|listen: 8080", []string{"line 1: listen:", ":8080"}},
		{"listen port out of range", "listen: 127.0.0.1:8080|listen: 127.0.0.1:99999", []string{"line 1: listen:", "0 to 65535"}},
		{"admin is not an address", "admin: 127.0.0.1:9090|admin: 9090", []string{"line 2: admin:", "host:port"}},
		{"admin is listen", "admin: 127.0.0.1:9090|admin: 127.0.0.1:8080", []string{"line 2: admin:", "listen", "own port"}},
		{"admin on every interface, same port", "admin: 127.0.0.1:9090|admin: :8080", []string{"line 2: admin:", "listen"}},
		{"a password in the redis query", "redis://127.0.0.1:6379/0|redis://127.0.0.1:6379/0?password=s3cr3t-inline", []string{"line 25: store.redis:", "password_file"}},
		{"a secret-named redis query option in capitals", "redis://127.0.0.1:6379/0|redis://127.0.0.1:6379/0?Password=s3cr3t-inline", []string{"line 25: store.redis:", "password_file"}},
		{"an unknown redis query option", "redis://127.0.0.1:6379/0|redis://127.0.0.1:6379/0?dial_timeot=s3cr3t-inline", []string{"line 25: store.redis:", "dial_timeot"}},
		{"cleartext upstream not on loopback", "upstream: https://api.example.com/v1|upstream: http://api.example.com/v1", []string{"line 5: upstream:", "allow_insecure_upstream"}},
		{"upstream port out of range", "upstream: https://api.example.com/v1|upstream: http://127.0.0.1:99999/", []string{"line 5: upstream:", "port"}},
		{"upstream port zero", "upstream: https://api.example.com/v1|upstream: https://api.example.com:0/", []string{"line 5: upstream:", "port"}},
		{"upstream without a host name", "upstream: https://api.example.com/v1|upstream: https://:443/", []string{"line 5: upstream:"}},
		{"pass-through port out of range", "admin: 127.0.0.1:9090\n|unmatched: pass_through\npass_through_upstream: http://127.0.0.1:99999/\n", []string{"line 4: pass_through_upstream:", "port"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(edit(t, goodConfig, c.edit)))
			if err == nil {
				t.Fatalf("ParseConfig: no error, want one containing %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ParseConfig: %v, want an error containing %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t-inline") {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
	t.Run("admin is the default listen", func(t *testing.T) {
		text := strings.Replace(strings.Replace(goodConfig, "listen: 127.0.0.1:8080\n", "", 1), "admin: 127.0.0.1:9090", "admin: 127.0.0.1:8080", 1)
		_, err := ParseConfig([]byte(text))
		if err == nil || !strings.Contains(err.Error(), "line 1: admin:") || !strings.Contains(err.Error(), "127.0.0.1:8080") {
			t.Errorf("ParseConfig: %v, want an error naming admin on line 1 and the default listen address", err)
		}
	})
	for _, ok := range []string{
		"upstream: https://api.example.com/v1|upstream: http://api.example.com/v1\n    allow_insecure_upstream: true",
		"upstream: https://api.example.com/v1|upstream: http://localhost:8443/v1",
		"listen: 127.0.0.1:8080|listen: :8080",
		"admin: 127.0.0.1:9090|admin: 127.0.0.1:9091",
		"redis://127.0.0.1:6379/0|rediss://127.0.0.1:6379/0?dial_timeout=3s&db=1",
	} {
		if _, err := ParseConfig([]byte(edit(t, goodConfig, ok))); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	// Port 0 (any free port) may repeat: each listener gets its own.
	zero := strings.NewReplacer("127.0.0.1:8080", "127.0.0.1:0", "127.0.0.1:9090", "127.0.0.1:0").Replace(goodConfig)
	if _, err := ParseConfig([]byte(zero)); err != nil {
		t.Errorf("listen and admin on port 0: %v", err)
	}
}

// TestConfigOneDocument: a second YAML document is refused with its
// line, not ignored; an empty config says what it needs.
func TestConfigOneDocument(t *testing.T) {
	_, err := ParseConfig([]byte(goodConfig + "---\nfoo: bar\n"))
	if err == nil || !strings.Contains(err.Error(), "line 27:") || !strings.Contains(err.Error(), "second YAML document") {
		t.Errorf("a second document: %v, want an error naming line 27 (the ---) and the second document", err)
	}
	_, err = ParseConfig([]byte(goodConfig + "---\n"))
	if err == nil || !strings.Contains(err.Error(), "second YAML document") {
		t.Errorf("an empty second document: %v, want an error naming the second document", err)
	}
	for name, text := range map[string]string{"empty": "", "a newline": "\n", "a comment": "# nothing\n"} {
		_, err := ParseConfig([]byte(text))
		if err == nil || !strings.Contains(err.Error(), "the config is empty") || !strings.Contains(err.Error(), "routes") {
			t.Errorf("%s: %v, want an error saying the config is empty and needs routes", name, err)
		}
	}
}

// TestConfigNotAMapping: a config that is a list is refused without the
// decoder's Go type names.
func TestConfigNotAMapping(t *testing.T) {
	_, err := ParseConfig([]byte("- a\n- b\n"))
	if err == nil || !strings.Contains(err.Error(), "line 1:") || strings.Contains(err.Error(), "proxy.") {
		t.Errorf("a list: %v, want an error on line 1 without Go type names", err)
	}
}

// TestInlineSecretGaps: a secret in the token URL, a secret-named
// endpoint parameter in any case, and an inline client_assertion are
// refused naming the key, without the secret.
func TestInlineSecretGaps(t *testing.T) {
	cases := []struct{ name, keys, want string }{
		{"client_secret in the token URL query", "      token_url: https://t.example/token?client_secret=s3cr3t-inline\n", "line 5: source.token_url:"},
		{"a secret name in capitals in the token URL query", "      token_url: https://t.example/token?aud=x&Client_Secret=s3cr3t-inline\n", "line 5: source.token_url:"},
		{"credentials in the token URL", "      token_url: https://c:s3cr3t-inline@t.example/token\n", "line 5: source.token_url:"},
		{"endpoint_params in capitals", "      endpoint_params: {Client_Secret: s3cr3t-inline}\n", "line 7: source.endpoint_params: \"Client_Secret\" is a secret"},
		{"an inline client_assertion", "      client_assertion: s3cr3t-inline\n", "line 7: source.client_assertion: a secret must not be written"},
		{"a source key in capitals", "      Client_Secret: s3cr3t-inline\n", "line 7: source.Client_Secret: a secret must not be written"},
		{"client_assertion_env", "      client_assertion_env: CA\n", "line 7: source.client_assertion_env: use the client_assertion_file key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := routeWith(c.keys)
			if strings.HasPrefix(c.keys, "      token_url:") {
				text = strings.Replace(routeWith(""), "      token_url: https://t.example/token\n", c.keys, 1)
			}
			_, err := ParseConfig([]byte(text))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ParseConfig: %v, want an error containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), "s3cr3t-inline") {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

// suggested are the keys an error tells the user to write instead.
var suggested = regexp.MustCompile(`\b[a-z0-9_]+_(?:file|env)\b`)

// TestInlineSecretHints: every key an inline-secret error suggests is a
// key the config takes, so following the hint never gives "unknown key".
func TestInlineSecretHints(t *testing.T) {
	f := filepath.Join(t.TempDir(), "value")
	if err := os.WriteFile(f, []byte("v\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	names := slices.Collect(maps.Keys(secretKeys))
	names = append(names, "client_assertion")
	var hints int
	for _, name := range names {
		for _, keys := range []string{
			"      " + name + ": s3cr3t-inline\n",
			"      endpoint_params: {" + name + ": s3cr3t-inline}\n",
			"      token_url: https://t.example/token?" + name + "=s3cr3t-inline\n",
		} {
			text := routeWith(keys)
			if strings.HasPrefix(keys, "      token_url:") {
				text = strings.Replace(routeWith(""), "      token_url: https://t.example/token\n", keys, 1)
			}
			_, err := ParseConfig([]byte(text))
			if err == nil {
				t.Errorf("%s: no error", strings.TrimSpace(keys))
				continue
			}
			hint := suggested.FindAllString(err.Error(), -1)
			if len(hint) == 0 {
				t.Errorf("%s: %v, want an error naming the key to use", strings.TrimSpace(keys), err)
			}
			for _, k := range hint {
				hints++
				_, err := ParseConfig([]byte(routeWith("      " + k + ": " + f + "\n")))
				if err != nil && strings.Contains(err.Error(), "unknown key") {
					t.Errorf("the error for %s suggests %s, which is an unknown key: %v", strings.TrimSpace(keys), k, err)
				}
			}
		}
	}
	for _, e := range []string{"  key_file: /run/secrets/store-key\n|  key: s3cr3t-inline\n", "  key_file: /run/secrets/store-key\n|  password: s3cr3t-inline\n",
		"redis://127.0.0.1:6379/0|redis://:s3cr3t-inline@127.0.0.1:6379/0", "redis://127.0.0.1:6379/0|redis://127.0.0.1:6379/0?password=s3cr3t-inline"} {
		_, err := ParseConfig([]byte(edit(t, goodConfig, e)))
		hint := suggested.FindAllString(fmt.Sprint(err), -1)
		if len(hint) == 0 {
			t.Errorf("%q: %v, want an error naming the key to use", e, err)
		}
		for _, k := range hint {
			hints++
			text := strings.Replace(goodConfig, "  key_file: /run/secrets/store-key\n", "  "+k+": "+f+"\n", 1)
			if _, err := ParseConfig([]byte(text)); err != nil && strings.Contains(err.Error(), "unknown key") {
				t.Errorf("the error for %q suggests %s, which is an unknown key: %v", e, k, err)
			}
		}
	}
	if hints == 0 {
		t.Fatal("no hint checked")
	}
}

// TestMaxReplayBodySize: max_replay_body takes bytes or a size with a
// unit; anything else is an error that names the key, its line and the
// forms it takes.
func TestMaxReplayBodySize(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  int64
		err   string // "" for none
	}{
		{"0", 0, ""},
		{"64", 64, ""},
		{"512KiB", 512 << 10, ""},
		{"1MiB", 1 << 20, ""},
		{"2 GiB", 2 << 30, ""},
		{"100B", 100, ""},
		{"1MB", 0, "line 1: max_replay_body: \"1MB\" is not a size"},
		{"1.5MiB", 0, "is not a size"},
		{"MiB", 0, "is not a size"},
		{"+5", 0, "is not a size"},
		{"-1", 0, "must not be negative"},
		{"9999999999GiB", 0, "too large"},
	} {
		c, err := ParseConfig([]byte("max_replay_body: " + tt.value + "\n" + goodConfig))
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("max_replay_body: %s: %v, want %d", tt.value, err, tt.want)
		case tt.err == "" && c.MaxReplayBody != tt.want:
			t.Errorf("max_replay_body: %s = %d, want %d", tt.value, c.MaxReplayBody, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("max_replay_body: %s: error %v, want one containing %q", tt.value, err, tt.err)
		}
	}
}
