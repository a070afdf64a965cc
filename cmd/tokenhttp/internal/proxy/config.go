// Package proxy is the credential-injecting egress proxy behind
// `tokenhttp proxy`: it routes requests by path prefix to upstreams, puts
// each upstream's token on them, and serves /livez, /readyz and /metrics
// on an admin listener.
package proxy

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"

	"github.com/tokenhttp/tokenhttp/internal/certs"
	"github.com/tokenhttp/tokenhttp/internal/safehttp"
	"github.com/tokenhttp/tokenhttp/source"
)

// DefaultMaxReplayBody is the largest request body buffered so that it
// can be replayed after an upstream 401, when the config sets none.
const DefaultMaxReplayBody = 1 << 20

// Config is a parsed proxy configuration file. Secrets are not in it: only
// where to read them (SecretRef). Build reads them.
type Config struct {
	Listen string
	Admin  string
	// Unmatched is "reject" (a 404 problem+json, the default) or
	// "pass_through" (forwarded to PassThrough as the client sent it).
	Unmatched   string
	PassThrough *url.URL
	// MaxReplayBody is the largest request body buffered for a replay
	// after a 401; larger bodies are streamed and not retried.
	MaxReplayBody int64
	Routes        []Route
	Store         *StoreConfig
}

// Route is one path prefix and the upstream it goes to.
type Route struct {
	Prefix   string
	Upstream *url.URL
	// StripPrefix drops Prefix from the path before it is joined to the
	// upstream's path; false keeps the whole path.
	StripPrefix bool
	// AllowInsecureUpstream lets the token go over cleartext http to an
	// upstream that is not loopback.
	AllowInsecureUpstream bool
	// Source is the source.Config without its secrets, and Secrets where
	// to read them.
	Source  source.Config
	Secrets []SecretRef
	// P12File is client_certificate_p12_file: a PKCS#12 client
	// certificate, decoded with the client_certificate_p12_password
	// secret when the source is built.
	P12File string
	// TokenRoots (source.ca_file) are the trust roots for the token
	// endpoint and discovery, and UpstreamRoots (upstream_ca_file) the
	// upstream's: the system roots plus the file's certificates. Nil
	// means the transport's own roots (the system roots by default).
	TokenRoots, UpstreamRoots *x509.CertPool
}

// StoreConfig shares tokens across replicas through Redis.
type StoreConfig struct {
	Redis    string // redis:// URL, without a password
	Password *SecretRef
	Key      *SecretRef // 16, 24 or 32 bytes; nil with Plaintext
	// Plaintext stores tokens unencrypted (redisstore.WithPlaintext).
	Plaintext bool
	Prefix    string
}

// SecretRef says where a secret comes from: a file (re-read when it
// changes) or an environment variable.
type SecretRef struct {
	Key  string // the config key it fills: "client_secret"
	File string
	Env  string
	set  func(*source.Config, string)
}

// ErrEmptySecret is ReadSecretFile's error for an empty file.
var ErrEmptySecret = errors.New("the secret file is empty")

// ReadSecretFile reads a secret from a file, without its final line
// break. An empty one is ErrEmptySecret; the CLI and the proxy share it.
func ReadSecretFile(name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	v := strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return "", ErrEmptySecret
	}
	return v, nil
}

// Read returns the secret, without a trailing newline.
func (s SecretRef) Read(getenv func(string) string) (string, error) {
	if s.File != "" {
		v, err := ReadSecretFile(s.File)
		switch {
		case errors.Is(err, ErrEmptySecret):
			return "", fmt.Errorf("%s_file %s is empty", s.Key, s.File)
		case err != nil:
			return "", fmt.Errorf("%s_file: %w", s.Key, errors.Unwrap(err))
		}
		return v, nil
	}
	v := getenv(s.Env)
	if v == "" {
		return "", fmt.Errorf("%s_env: the environment variable %s is empty or not set", s.Key, s.Env)
	}
	return v, nil
}

// secretKeys are the source.Config fields that hold a secret: each is
// read from "<key>_file" or "<key>_env", never inline. Adding one is one
// line.
var secretKeys = map[string]func(c *source.Config, v string){
	"client_secret": func(c *source.Config, v string) { c.ClientSecret = v },
	"password":      func(c *source.Config, v string) { c.Password = v },
	"refresh_token": func(c *source.Config, v string) { c.RefreshToken = v },
	"assertion":     func(c *source.Config, v string) { c.Assertion = constantToken(v) },
	"subject_token": func(c *source.Config, v string) { c.SubjectToken = constantToken(v) },
	"actor_token":   func(c *source.Config, v string) { c.Exchange.ActorToken = constantToken(v) },
	"private_key":   setPrivateKey, // PEM, for private_key_jwt
	// The password of client_certificate_p12_file; sourceConfig decodes
	// the file with it.
	"client_certificate_p12_password": func(*source.Config, string) {},
}

// isSecretName reports whether name, in any case, is the name of a
// secret: a key of secretKeys, or client_assertion. Such a name is
// refused inline: as a source key, in endpoint_params, and as a query
// parameter of the token or Redis URL.
func isSecretName(name string) bool {
	name = strings.ToLower(name)
	_, secret := secretKeys[name]
	return secret || name == "client_assertion"
}

// secretHint says which keys to write a secret with instead: the
// "_file" and "_env" forms of a secretKeys key; client_assertion has only
// client_assertion_file, read anew at each request, because an assertion
// is short-lived and an environment variable cannot change.
func secretHint(name string) string {
	name = strings.ToLower(name)
	if name == "client_assertion" {
		return "use the client_assertion_file key (re-read at each request)"
	}
	return fmt.Sprintf("use the %s_file or %s_env key", name, name)
}

// constantToken is a token read by the config (a file's change reloads
// the route, so a rotated projected token is picked up).
func constantToken(v string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return v, nil }
}

// sourceKeys are the plain source.Config fields, by config key. Adding
// one is one line.
var sourceKeys = map[string]func(c *source.Config, n *yaml.Node) error{
	"provider":             setProvider,
	"token_url":            setTokenURL,
	"grant":                setGrant,
	"client_id":            str(func(c *source.Config) *string { return &c.ClientID }),
	"username":             str(func(c *source.Config) *string { return &c.Username }),
	"scopes":               strs(func(c *source.Config) *[]string { return &c.Scopes }),
	"endpoint_params":      setEndpointParams,
	"encoding":             setEncoding,
	"auth_style":           setAuthStyle,
	"lifetime":             dur(func(c *source.Config) *time.Duration { return &c.Lifetime }),
	"cloud":                str(func(c *source.Config) *string { return &c.Cloud }),
	"origin":               str(func(c *source.Config) *string { return &c.Origin }),
	"refresh_ahead":        dur(func(c *source.Config) *time.Duration { return &c.RefreshAhead }),
	"fetch_timeout":        dur(func(c *source.Config) *time.Duration { return &c.FetchTimeout }),
	"retry_max_attempts":   num(func(c *source.Config) *int { return &c.Retry.MaxAttempts }),
	"retry_min_wait":       dur(func(c *source.Config) *time.Duration { return &c.Retry.MinWait }),
	"retry_max_wait":       dur(func(c *source.Config) *time.Duration { return &c.Retry.MaxWait }),
	"max_retry_after":      dur(func(c *source.Config) *time.Duration { return &c.Retry.MaxRetryAfter }),
	"breaker_failures":     num(func(c *source.Config) *int { return &c.Breaker.Failures }),
	"breaker_open_for":     dur(func(c *source.Config) *time.Duration { return &c.Breaker.OpenFor }),
	"breaker_disabled":     boolean(func(c *source.Config) *bool { return &c.Breaker.Disabled }),
	"store_key":            str(func(c *source.Config) *string { return &c.StoreKey }),
	"name":                 str(func(c *source.Config) *string { return &c.Name }),
	"allow_insecure_http":  boolean(func(c *source.Config) *bool { return &c.AllowInsecureHTTP }),
	"subject_token_type":   str(func(c *source.Config) *string { return &c.SubjectTokenType }),
	"actor_token_type":     str(func(c *source.Config) *string { return &c.Exchange.ActorTokenType }),
	"audience":             strs(func(c *source.Config) *[]string { return &c.Exchange.Audience }),
	"resource":             strs(func(c *source.Config) *[]string { return &c.Exchange.Resource }),
	"requested_token_type": str(func(c *source.Config) *string { return &c.Exchange.RequestedTokenType }),

	// mTLS and private_key_jwt (the key itself is the private_key secret).
	"client_certificate_files": setClientCertificate,
	"client_assertion_file":    setClientAssertionFile,
	"key_id":                   str(func(c *source.Config) *string { return &c.KeyID }),
	"assertion_audience":       str(func(c *source.Config) *string { return &c.AssertionAudience }),
	"signing_algorithm":        str(func(c *source.Config) *string { return &c.SigningAlgorithm }),
}

// providers are the dialects by config name.
var providers = map[string]*source.Provider{
	"standard": source.Standard, "vaultid": source.VaultID, "directlink": source.DirectLink,
	"scorepositivo": source.ScorePositivo, "gestaoplus": source.GestaoPlus, "serproid": source.SerproID,
	"openfinancebrasil": source.OpenFinanceBrasil,
}

// fileConfig is the file's shape; "source" is decoded by the key tables.
type fileConfig struct {
	Listen        scalarAt    `yaml:"listen"`
	Admin         scalarAt    `yaml:"admin"`
	Unmatched     string      `yaml:"unmatched"`
	PassThrough   scalarAt    `yaml:"pass_through_upstream"`
	MaxReplayBody scalarAt    `yaml:"max_replay_body"`
	Routes        []fileRoute `yaml:"routes"`
	Store         *fileStore  `yaml:"store"`
}

type fileRoute struct {
	Prefix   scalarAt  `yaml:"prefix"`
	Upstream scalarAt  `yaml:"upstream"`
	UpCA     scalarAt  `yaml:"upstream_ca_file"`
	Strip    bool      `yaml:"strip_prefix"`
	Insecure bool      `yaml:"allow_insecure_upstream"`
	Source   yaml.Node `yaml:"source"`
}

type fileStore struct {
	Redis        scalarAt `yaml:"redis"`
	PasswordFile string   `yaml:"password_file"`
	PasswordEnv  string   `yaml:"password_env"`
	KeyFile      string   `yaml:"key_file"`
	KeyEnv       string   `yaml:"key_env"`
	Plaintext    bool     `yaml:"plaintext"`
	Prefix       string   `yaml:"prefix"`
	// Inline secrets, refused with a clear error.
	Password yaml.Node `yaml:"password"`
	Key      yaml.Node `yaml:"key"`
}

// scalarAt is a string value with the line it is on, for errors; Line is
// 0 when the key is absent.
type scalarAt struct {
	Value string
	Line  int
}

func (s *scalarAt) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: must be a single value, not a list or a mapping", n.Line)}}
	}
	s.Value, s.Line = n.Value, n.Line
	return nil
}

// sizeUnits are the units a size may end with.
var sizeUnits = []struct {
	suffix string
	n      int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

// parseSize reads a number of bytes, bare or with a unit: 1048576,
// 512KiB, 1MiB, 2 GiB.
func parseSize(v string) (int64, error) {
	num, mult := strings.TrimSpace(v), int64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.n
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	switch {
	case err != nil || num == "" || num[0] == '+' || num[0] == '-' && n == 0:
		return 0, fmt.Errorf("%q is not a size: write a number of bytes (1048576), or one with KiB, MiB or GiB (1MiB)", v)
	case n < 0:
		return 0, fmt.Errorf("%q must not be negative", v)
	case n > math.MaxInt64/mult:
		return 0, fmt.Errorf("%q is too large", v)
	}
	return n * mult, nil
}

// at is "line N: ", or "" for a key that is absent.
func at(line int) string {
	if line == 0 {
		return ""
	}
	return fmt.Sprintf("line %d: ", line)
}

// LoadConfig reads and parses the file at name.
func LoadConfig(name string) (*Config, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	return c, nil
}

// ParseConfig parses a YAML configuration strictly: an unknown key, an
// inline secret or a missing required key is an error that names the key
// and its line. It reads no secret.
func ParseConfig(data []byte) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f fileConfig
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the config is empty: it needs at least `routes:` with one route: its prefix, upstream and source (see the Proxy section of the README)")
		}
		return nil, cleanYAMLError(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, fmt.Errorf("a second YAML document (after ---): %w; a config is one document: remove the --- and what follows, or merge it into the first", cleanYAMLError(err))
	default:
		return nil, fmt.Errorf("%sa second YAML document starts here (---); a config is one document: remove the --- and what follows, or merge it into the first", at(extra.Line))
	}
	c := &Config{Listen: f.Listen.Value, Admin: f.Admin.Value, Unmatched: f.Unmatched, MaxReplayBody: DefaultMaxReplayBody}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Admin == "" {
		c.Admin = DefaultAdmin
	}
	if err := checkAddrs(c, f.Listen.Line, f.Admin.Line); err != nil {
		return nil, err
	}
	switch c.Unmatched {
	case "":
		c.Unmatched = "reject"
	case "reject":
	case "pass_through":
		u, err := parseUpstream(f.PassThrough.Value)
		if err != nil {
			return nil, fmt.Errorf("%spass_through_upstream: %w (required with unmatched: pass_through)", at(f.PassThrough.Line), err)
		}
		c.PassThrough = u
	default:
		return nil, fmt.Errorf("unmatched: %q is not reject or pass_through", c.Unmatched)
	}
	if f.PassThrough.Value != "" && c.PassThrough == nil {
		return nil, errors.New("pass_through_upstream is set but unmatched is not pass_through")
	}
	if f.MaxReplayBody.Line != 0 {
		n, err := parseSize(f.MaxReplayBody.Value)
		if err != nil {
			return nil, fmt.Errorf("%smax_replay_body: %w", at(f.MaxReplayBody.Line), err)
		}
		c.MaxReplayBody = n
	}
	if len(f.Routes) == 0 {
		return nil, errors.New("routes: at least one route is required")
	}
	seen := map[string]int{}
	for i, fr := range f.Routes {
		r, err := parseRoute(fr)
		if err != nil {
			return nil, fmt.Errorf("routes[%d]: %w", i, err)
		}
		if prev, dup := seen[r.Prefix]; dup {
			return nil, fmt.Errorf("routes[%d]: prefix %q is the same as routes[%d]'s", i, r.Prefix, prev)
		}
		seen[r.Prefix] = i
		c.Routes = append(c.Routes, r)
	}
	if f.Store != nil {
		s, err := parseStore(f.Store)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		c.Store = s
	}
	return c, nil
}

// cleanYAMLError drops the decoder's Go type names from strict-mode errors.
func cleanYAMLError(err error) error {
	msg := err.Error()
	for _, t := range []string{"proxy.fileConfig", "proxy.fileRoute", "proxy.fileStore"} {
		msg = strings.ReplaceAll(msg, " in type "+t, "")
		msg = strings.ReplaceAll(msg, " into "+t, " into a mapping of keys")
	}
	msg = strings.ReplaceAll(msg, "field ", "unknown key ")
	msg = strings.ReplaceAll(msg, " not found", "")
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n")
	lines := strings.Split(msg, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return errors.New(strings.Join(lines, "; "))
}

// DefaultListen and DefaultAdmin are the addresses of the proxy and of
// its admin endpoints when the config gives none.
const (
	DefaultListen = "127.0.0.1:8080"
	DefaultAdmin  = "127.0.0.1:9090"
)

// checkAddrs refuses a listen or admin address that net.Listen would
// refuse at start, and the two on the same port where they would collide.
func checkAddrs(c *Config, listenLine, adminLine int) error {
	lhost, lport, err := splitAddr(c.Listen)
	if err != nil {
		return fmt.Errorf("%slisten: %w", at(listenLine), err)
	}
	ahost, aport, err := splitAddr(c.Admin)
	if err != nil {
		return fmt.Errorf("%sadmin: %w", at(adminLine), err)
	}
	if lport != 0 && lport == aport && (lhost == ahost || anyHost(lhost) || anyHost(ahost)) {
		line := adminLine
		if line == 0 {
			line = listenLine
		}
		listen := "listen " + c.Listen
		if listenLine == 0 {
			listen = "listen (default " + c.Listen + ")"
		}
		admin := "admin " + c.Admin
		if adminLine == 0 {
			admin = "admin (default " + c.Admin + ")"
		}
		return fmt.Errorf("%sadmin: %s and %s are the same address: the second would fail to listen; give each its own port", at(line), admin, listen)
	}
	return nil
}

// splitAddr splits a listen address into its host and port.
func splitAddr(addr string) (host string, port int, err error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port; write it as 127.0.0.1:8080, or :8080 for every interface", addr)
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%q: the port %q is not a number from 0 to 65535", addr, p)
	}
	return host, port, nil
}

// anyHost reports whether host listens on every interface.
func anyHost(host string) bool {
	return host == "" || host == "0.0.0.0" || host == "::"
}

func parseUpstream(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("%q is not an absolute http(s) URL", safehttp.RedactURL(raw, "[redacted]"))
	}
	if u.User != nil {
		return nil, errors.New("the upstream URL must not carry credentials")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("the upstream URL must not have a query or fragment")
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%q has no host name", raw)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%q: the port %s is not a number from 1 to 65535", raw, p)
		}
	}
	return u, nil
}

func parseRoute(fr fileRoute) (Route, error) {
	r := Route{StripPrefix: fr.Strip, AllowInsecureUpstream: fr.Insecure}
	raw, line := fr.Prefix.Value, at(fr.Prefix.Line)
	if !strings.HasPrefix(raw, "/") {
		return r, fmt.Errorf("%sprefix %q must start with /", line, raw)
	}
	prefix, err := decodePrefix(raw)
	if err != nil {
		return r, fmt.Errorf("%sprefix %q: %w", line, raw, err)
	}
	if clean := path.Clean(prefix); clean != prefix && clean+"/" != prefix {
		return r, fmt.Errorf("%sprefix %q is not a clean path; use %q", line, raw, clean)
	}
	r.Prefix = path.Clean(prefix)
	u, err := parseUpstream(fr.Upstream.Value)
	if err != nil {
		return r, fmt.Errorf("%supstream: %w", at(fr.Upstream.Line), err)
	}
	if u.Scheme == "http" && !safehttp.IsLoopback(u.Hostname()) && !fr.Insecure {
		return r, fmt.Errorf("%supstream: %s is cleartext http to a host that is not loopback: the token would cross the network in the clear, so every request would be refused; use https, or set allow_insecure_upstream: true on the route if the network is trusted",
			at(fr.Upstream.Line), u.Redacted())
	}
	r.Upstream = u
	if fr.UpCA.Line != 0 {
		if u.Scheme != "https" {
			return r, fmt.Errorf("%supstream_ca_file: the upstream is not https; drop the key, or use https", at(fr.UpCA.Line))
		}
		if r.UpstreamRoots, err = loadCA(fr.UpCA.Value); err != nil {
			return r, fmt.Errorf("%supstream_ca_file: %w", at(fr.UpCA.Line), err)
		}
	}
	if fr.Source.Kind == 0 {
		return r, errors.New("source: required")
	}
	if fr.Source.Kind != yaml.MappingNode {
		return r, fmt.Errorf("line %d: source must be a mapping", fr.Source.Line)
	}
	r.Source.Name = r.Prefix
	have := map[string]int{}
	for i := 0; i+1 < len(fr.Source.Content); i += 2 {
		k, v := fr.Source.Content[i], fr.Source.Content[i+1]
		key := k.Value
		if prev, dup := have[key]; dup {
			return r, fmt.Errorf("line %d: source.%s is repeated (first on line %d)", k.Line, key, prev)
		}
		have[key] = k.Line
		if isSecretName(key) {
			return r, fmt.Errorf("line %d: source.%s: a secret must not be written in the config; %s", k.Line, key, secretHint(key))
		}
		if base, kind, ok := secretRef(key); ok {
			if v.Kind != yaml.ScalarNode || v.Value == "" {
				return r, fmt.Errorf("line %d: source.%s must be a non-empty string", v.Line, key)
			}
			ref := SecretRef{Key: base, set: secretKeys[base]}
			for _, other := range r.Secrets {
				if other.Key == base {
					return r, fmt.Errorf("line %d: source.%s: give %s_file or %s_env, not both", k.Line, key, base, base)
				}
			}
			if kind == "file" {
				ref.File = v.Value
			} else {
				ref.Env = v.Value
			}
			r.Secrets = append(r.Secrets, ref)
			continue
		}
		if key == "client_assertion_env" {
			return r, fmt.Errorf("line %d: source.client_assertion_env: %s: a client assertion is short-lived, and an environment variable cannot change", k.Line, secretHint("client_assertion"))
		}
		if key == "ca_file" {
			v, err := scalar(v)
			if err == nil {
				r.TokenRoots, err = loadCA(v)
			}
			if err != nil {
				return r, fmt.Errorf("line %d: source.ca_file: %w", k.Line, err)
			}
			continue
		}
		if key == "client_certificate_p12_file" {
			if v.Kind != yaml.ScalarNode || v.Value == "" {
				return r, fmt.Errorf("line %d: source.%s must be a non-empty string", v.Line, key)
			}
			if _, err := os.Stat(v.Value); err != nil {
				return r, fmt.Errorf("line %d: source.%s: %w", v.Line, key, err)
			}
			r.P12File = v.Value
			continue
		}
		set, known := sourceKeys[key]
		if !known {
			return r, fmt.Errorf("line %d: unknown key source.%s", k.Line, key)
		}
		if err := set(&r.Source, v); err != nil {
			return r, fmt.Errorf("line %d: source.%s: %w", v.Line, key, err)
		}
	}
	hasPass := slices.ContainsFunc(r.Secrets, func(s SecretRef) bool { return s.Key == "client_certificate_p12_password" })
	switch {
	case r.P12File != "" && r.Source.ClientCertificate != nil:
		return r, errors.New("source: give client_certificate_files or client_certificate_p12_file, not both")
	case r.P12File != "" && !hasPass:
		return r, errors.New("source.client_certificate_p12_file needs client_certificate_p12_password_file or client_certificate_p12_password_env")
	case r.P12File == "" && hasPass:
		return r, errors.New("source.client_certificate_p12_password_file or _env needs client_certificate_p12_file")
	}
	return r, nil
}

// decodePrefix is prefix with its percent-escapes decoded: routing
// matches the decoded path, so "/caf%C3%A9" and "/café" are one prefix.
// A prefix is refused if it does not decode, or if its decoding would
// split segments differently or holds what routing refuses in a path
// (%2F, a backslash, %5C, a control character): no request would match.
func decodePrefix(prefix string) (string, error) {
	if strings.ContainsAny(prefix, "?#") {
		return "", errors.New("a prefix matches the path, never the query or fragment: remove what starts at ? or # (write %3F or %23 for one in the path)")
	}
	if strings.ContainsRune(prefix, '\\') {
		return "", errors.New("a backslash is refused in a request path, so no request would match; remove it")
	}
	d, err := url.PathUnescape(prefix)
	if err != nil {
		return "", errors.New("its percent-escapes do not decode; write each as % and two hex digits, or the character itself")
	}
	if strings.Count(d, "/") != strings.Count(prefix, "/") || strings.ContainsRune(d, '\\') {
		return "", errors.New("%2F or %5C decodes to a separator: a request path with one gets no credential, so no request would match; write / to separate segments")
	}
	if l := strings.ToLower(d); strings.Contains(l, "%2f") || strings.Contains(l, "%5c") {
		return "", errors.New("it decodes to %2F or %5C (encoded twice): an upstream that decodes again would split it; write / to separate segments")
	}
	if strings.ContainsFunc(d, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", errors.New("it decodes to a control character; remove it")
	}
	return d, nil
}

// loadCA is the system roots plus the PEM certificates of the file name
// (a ca_file key).
func loadCA(name string) (*x509.CertPool, error) {
	if name == "" {
		return nil, errors.New("must be the name of a PEM file of CA certificates")
	}
	pool, err := certs.CAPool(name, certs.SystemPool())
	if err != nil {
		return nil, fmt.Errorf("%w; give a PEM file of the CA certificates to trust", err)
	}
	return pool, nil
}

// secretRef splits "client_secret_file" into "client_secret" and "file".
func secretRef(key string) (base, kind string, ok bool) {
	for _, kind := range []string{"file", "env"} {
		if b, found := strings.CutSuffix(key, "_"+kind); found {
			if _, secret := secretKeys[b]; secret {
				return b, kind, true
			}
		}
	}
	return "", "", false
}

func parseStore(f *fileStore) (*StoreConfig, error) {
	if f.Password.Kind != 0 {
		return nil, fmt.Errorf("line %d: store.password: a secret must not be written in the config; use password_file or password_env", f.Password.Line)
	}
	if f.Key.Kind != 0 {
		return nil, fmt.Errorf("line %d: store.key: a secret must not be written in the config; use key_file or key_env", f.Key.Line)
	}
	if err := checkRedisURL(f.Redis.Value); err != nil {
		return nil, fmt.Errorf("%sstore.redis: %w", at(f.Redis.Line), err)
	}
	s := &StoreConfig{Redis: f.Redis.Value, Plaintext: f.Plaintext, Prefix: f.Prefix}
	var err error
	ref := func(key, file, env string) (*SecretRef, error) {
		switch {
		case file != "" && env != "":
			return nil, fmt.Errorf("give %s_file or %s_env, not both", key, key)
		case file != "" || env != "":
			return &SecretRef{Key: key, File: file, Env: env}, nil
		}
		return nil, nil
	}
	if s.Password, err = ref("password", f.PasswordFile, f.PasswordEnv); err != nil {
		return nil, err
	}
	if s.Key, err = ref("key", f.KeyFile, f.KeyEnv); err != nil {
		return nil, err
	}
	if s.Key == nil && !s.Plaintext {
		return nil, errors.New("key_file or key_env is required (or plaintext: true to store tokens unencrypted)")
	}
	if s.Key != nil && s.Plaintext {
		return nil, errors.New("key and plaintext: true exclude each other")
	}
	return s, nil
}

// checkRedisURL refuses a Redis URL that holds a secret or that go-redis
// would not parse at start. Its errors show neither the URL nor a query
// value.
func checkRedisURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return fmt.Errorf("%q is not a redis:// or rediss:// URL", safehttp.RedactURL(raw, "[redacted]"))
	}
	if _, hasPw := u.User.Password(); hasPw {
		return errors.New("the URL must not carry a password; use password_file or password_env")
	}
	q := u.Query()
	for name := range q {
		if isSecretName(name) {
			return fmt.Errorf("the URL must not carry a secret (its query parameter %q); use password_file or password_env", name)
		}
	}
	if _, err := redis.ParseURL(raw); err != nil { // its text may hold a query value
		return fmt.Errorf("the URL does not parse as a go-redis URL; check its port and its query options (%s)", strings.Join(slices.Sorted(maps.Keys(q)), ", "))
	}
	return nil
}

// Value setters for sourceKeys.

func scalar(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", errors.New("must be a single value")
	}
	return n.Value, nil
}

func str(field func(*source.Config) *string) func(*source.Config, *yaml.Node) error {
	return func(c *source.Config, n *yaml.Node) error {
		v, err := scalar(n)
		*field(c) = v
		return err
	}
}

func strs(field func(*source.Config) *[]string) func(*source.Config, *yaml.Node) error {
	return func(c *source.Config, n *yaml.Node) error {
		var v []string
		if err := n.Decode(&v); err != nil {
			return errors.New("must be a list of strings")
		}
		*field(c) = v
		return nil
	}
}

func num(field func(*source.Config) *int) func(*source.Config, *yaml.Node) error {
	return func(c *source.Config, n *yaml.Node) error {
		if err := n.Decode(field(c)); err != nil {
			return errors.New("must be an integer")
		}
		return nil
	}
}

func boolean(field func(*source.Config) *bool) func(*source.Config, *yaml.Node) error {
	return func(c *source.Config, n *yaml.Node) error {
		if err := n.Decode(field(c)); err != nil {
			return errors.New("must be true or false")
		}
		return nil
	}
}

func dur(field func(*source.Config) *time.Duration) func(*source.Config, *yaml.Node) error {
	return func(c *source.Config, n *yaml.Node) error {
		v, err := scalar(n)
		if err != nil {
			return err
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("%q is not a duration such as 30s or 5m", v)
		}
		*field(c) = d
		return nil
	}
}

func setProvider(c *source.Config, n *yaml.Node) error {
	v, err := scalar(n)
	if err != nil {
		return err
	}
	p, ok := ProviderNamed(v)
	if !ok {
		return fmt.Errorf("%q is not a known provider (%s)", v, strings.Join(ProviderNames(), ", "))
	}
	c.Provider = p
	return nil
}

// ProviderNamed is the provider of a config or --provider name, in any
// letter case.
func ProviderNamed(name string) (*source.Provider, bool) {
	p, ok := providers[strings.ToLower(name)]
	return p, ok
}

// ProviderNames are the provider names, sorted.
func ProviderNames() []string { return slices.Sorted(maps.Keys(providers)) }

func setEncoding(c *source.Config, n *yaml.Node) error {
	v, err := scalar(n)
	if err != nil {
		return err
	}
	e, ok := ParseEncoding(v)
	if !ok {
		return fmt.Errorf("%q is not form or json", v)
	}
	c.Encoding = e
	return nil
}

// ParseEncoding is the Encoding named "form" or "json".
func ParseEncoding(v string) (source.Encoding, bool) {
	switch v {
	case "form":
		return source.FormEncoding, true
	case "json":
		return source.JSONEncoding, true
	}
	return source.EncodingDefault, false
}

func setAuthStyle(c *source.Config, n *yaml.Node) error {
	v, err := scalar(n)
	if err != nil {
		return err
	}
	a, ok := ParseAuthStyle(v)
	if !ok {
		return fmt.Errorf("%q is not header, body or none", v)
	}
	c.AuthStyle = a
	return nil
}

// ParseAuthStyle is the AuthStyle named "header", "body" or "none".
func ParseAuthStyle(v string) (source.AuthStyle, bool) {
	for _, a := range []source.AuthStyle{source.AuthInHeader, source.AuthInBody, source.AuthNone} {
		if a.String() == v {
			return a, true
		}
	}
	return source.AuthDefault, false
}

// setTokenURL is token_url: no credentials and no secret-named query
// parameter in it (source.New checks the rest when the route is built).
func setTokenURL(c *source.Config, n *yaml.Node) error {
	v, err := scalar(n)
	if err != nil {
		return err
	}
	u, err := url.Parse(v)
	if err != nil {
		return fmt.Errorf("%q is not a URL", safehttp.RedactURL(v, "[redacted]"))
	}
	if u.User != nil {
		return errors.New("the URL must not carry credentials; use client_id, and client_secret_file or client_secret_env")
	}
	for name := range u.Query() {
		if isSecretName(name) {
			return fmt.Errorf("the URL's query parameter %q is a secret: it must not be written in the config; %s", name, secretHint(name))
		}
	}
	c.TokenURL = v
	return nil
}

func setEndpointParams(c *source.Config, n *yaml.Node) error {
	var m map[string][]string
	if err := n.Decode(&m); err != nil {
		var one map[string]string
		if err := n.Decode(&one); err != nil {
			return errors.New("must map names to a string or a list of strings")
		}
		m = map[string][]string{}
		for k, v := range one {
			m[k] = []string{v}
		}
	}
	for k := range m {
		if isSecretName(k) {
			return fmt.Errorf("%q is a secret: it must not be written in the config; %s", k, secretHint(k))
		}
	}
	c.EndpointParams = url.Values(m)
	return nil
}

// Check validates what ParseConfig cannot: it reads every secret and
// builds every source (without fetching a token), then closes them.
func Check(cfg *Config, getenv func(string) string) error {
	p := &Proxy{opts: Options{Getenv: getenv}, tel: &Telemetry{}}
	for i, rc := range cfg.Routes {
		g := &generation{files: map[string][32]byte{}}
		sc, err := p.sourceConfig(rc, g)
		if err != nil {
			return fmt.Errorf("routes[%d] (%s): %w", i, rc.Prefix, err)
		}
		var src source.TokenSource
		if src, err = source.New(sc); err != nil {
			return fmt.Errorf("routes[%d] (%s): %w", i, rc.Prefix, err)
		}
		if c, ok := src.(interface{ Close() error }); ok {
			_ = c.Close()
		}
	}
	if cfg.Store != nil {
		for _, ref := range []*SecretRef{cfg.Store.Password, cfg.Store.Key} {
			if ref == nil {
				continue
			}
			v, err := ref.Read(getenv)
			if err != nil {
				return fmt.Errorf("store: %w", err)
			}
			if ref.Key == "key" {
				if _, err := decodeKey(v); err != nil {
					return fmt.Errorf("store: key: %w", err)
				}
			}
		}
	}
	return nil
}

// grantAliases are the short names of the extension grants, taken by the
// CLI's --grant and the proxy's grant key alike.
var grantAliases = map[string]string{
	"jwt-bearer":     source.JWTBearer,
	"token-exchange": source.TokenExchange,
	"refresh-token":  source.RefreshToken,
}

// GrantName resolves a short grant name ("jwt-bearer", "token-exchange",
// "refresh-token"); any other name is returned as it is.
func GrantName(g string) string {
	if full, ok := grantAliases[g]; ok {
		return full
	}
	return g
}

func setGrant(c *source.Config, n *yaml.Node) error {
	g, err := scalar(n)
	c.GrantType = GrantName(g)
	return err
}
