package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tokenhttp/tokenhttp/source"
)

// providers are the --provider names.
var providers = map[string]*source.Provider{
	"standard":      source.Standard,
	"vaultid":       source.VaultID,
	"directlink":    source.DirectLink,
	"scorepositivo": source.ScorePositivo,
	"gestaoplus":    source.GestaoPlus,
	"serproid":      source.SerproID,
}

func providerNames() string {
	names := make([]string, 0, len(providers))
	for n := range providers {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// credFlags are the flags that describe a credential, shared by token and
// call.
type credFlags struct {
	provider, tokenURL, grant, clientID, username string
	secretEnv, secretFile                         string
	passwordEnv, passwordFile                     string
	passwordStdin                                 bool
	scopes                                        listFlag
	auth, encoding                                string
	lifetime                                      time.Duration
	cloud, origin                                 string
	insecure                                      bool
	timeout                                       time.Duration
}

func (c *credFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.provider, "provider", "standard", "the token endpoint's dialect: "+providerNames())
	fs.StringVar(&c.tokenURL, "token-url", "", "the token endpoint (required for standard and directlink; overrides the provider's default)")
	fs.StringVar(&c.grant, "grant", "", "grant type: client_credentials or password (default: the provider's)")
	fs.StringVar(&c.clientID, "client-id", "", "client id")
	fs.StringVar(&c.secretEnv, "client-secret-env", "TOKENHTTP_CLIENT_SECRET", "environment variable that holds the client secret")
	fs.StringVar(&c.secretFile, "client-secret-file", "", "file that holds the client secret (overrides the environment)")
	fs.StringVar(&c.username, "username", "", "resource owner's username, for the password grant")
	fs.StringVar(&c.passwordEnv, "password-env", "TOKENHTTP_PASSWORD", "environment variable that holds the password")
	fs.StringVar(&c.passwordFile, "password-file", "", "file that holds the password (overrides the environment)")
	fs.BoolVar(&c.passwordStdin, "password-stdin", false, "read the password (or one-time password) from the first line of standard input")
	fs.Var(&c.scopes, "scope", "scope to request; repeat the flag or separate scopes with spaces")
	fs.StringVar(&c.auth, "auth", "", "where client credentials go: header (HTTP Basic), body or none (default: the provider's)")
	fs.StringVar(&c.encoding, "encoding", "", "request body encoding: form or json (default: the provider's)")
	fs.DurationVar(&c.lifetime, "lifetime", 0, "token lifetime to ask for (vaultid)")
	fs.StringVar(&c.cloud, "cloud", "", "the user's cloud, sent as \"provider\" (vaultid)")
	fs.StringVar(&c.origin, "origin", "", "Origin header for token requests (gestaoplus: https://yourcompany.gestao.plus)")
	fs.BoolVar(&c.insecure, "insecure", false, "allow cleartext http to hosts that are not loopback")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "time limit of the whole command")
}

// listFlag is a repeatable flag whose values may also be space-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error {
	*l = append(*l, strings.Fields(v)...)
	return nil
}

// config builds the source.Config. Secrets come from files, the
// environment or standard input, never from argv.
func (c *credFlags) config(e env, httpClient *http.Client) (source.Config, error) {
	p, ok := providers[strings.ToLower(c.provider)]
	if !ok {
		return source.Config{}, usagef("unknown --provider %q; use one of %s", c.provider, providerNames())
	}
	cfg := source.Config{
		Provider: p, TokenURL: c.tokenURL, GrantType: c.grant, ClientID: c.clientID,
		Username: c.username, Scopes: c.scopes, Lifetime: c.lifetime, Cloud: c.cloud,
		Origin: c.origin, AllowInsecureHTTP: c.insecure, HTTPClient: httpClient,
	}
	switch c.auth {
	case "":
	case "header":
		cfg.AuthStyle = source.AuthInHeader
	case "body":
		cfg.AuthStyle = source.AuthInBody
	case "none":
		cfg.AuthStyle = source.AuthNone
	default:
		return cfg, usagef("--auth %q: use header, body or none", c.auth)
	}
	switch c.encoding {
	case "", "form":
	case "json":
		cfg.Encoding = source.JSONEncoding
	default:
		return cfg, usagef("--encoding %q: use form or json", c.encoding)
	}
	var err error
	if cfg.ClientSecret, err = secret(e, c.secretFile, c.secretEnv); err != nil {
		return cfg, err
	}
	grant := cfg.GrantType
	if grant == "" {
		grant = p.GrantType
	}
	if grant != source.Password {
		return cfg, nil
	}
	switch {
	case c.passwordFile != "":
		cfg.Password, err = secret(e, c.passwordFile, "")
	case c.passwordStdin:
		cfg.Password, err = readLine(e.stdin)
	case e.getenv(c.passwordEnv) != "":
		cfg.Password = e.getenv(c.passwordEnv)
	case e.isTerminal:
		cfg.PasswordFunc = prompt(e, c.username)
	}
	if err != nil {
		return cfg, err
	}
	if p.OneTimePassword && cfg.PasswordFunc == nil && cfg.Password != "" {
		otp := cfg.Password // one invocation, one request: the OTP is used once
		cfg.Password, cfg.PasswordFunc = "", func(context.Context) (string, error) { return otp, nil }
	}
	if cfg.Password == "" && cfg.PasswordFunc == nil {
		return cfg, usagef("the password grant needs a password: set $%s, or use --password-file or --password-stdin", c.passwordEnv)
	}
	return cfg, nil
}

// secret reads a secret from file (if set) or the environment variable.
func secret(e env, file, envName string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", usagef("reading the secret file: %v", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if envName == "" {
		return "", nil
	}
	return e.getenv(envName), nil
}

func readLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return "", usagef("reading the password from standard input: nothing was given")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// prompt asks for a one-time password on the terminal, once per token
// request.
func prompt(e env, user string) func(context.Context) (string, error) {
	in := bufio.NewReader(e.stdin)
	return func(context.Context) (string, error) {
		fmt.Fprintf(e.stderr, "password or one-time password for %s: ", user)
		line, err := in.ReadString('\n')
		if err != nil && line == "" {
			return "", errors.New("no password was typed")
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
}

const tokenHelp = `Usage: tokenhttp token [flags]

Fetch a token and print its metadata (type, scope, expiry, lifetime). Secrets
are read from the environment, a file, or standard input, never from flags.

Examples:
  TOKENHTTP_CLIENT_SECRET=s3cret tokenhttp token --token-url https://auth.example.com/oauth/token --client-id app --scope "orders:read"
  tokenhttp token --provider serproid --client-id my-app --client-secret-file ./secret.txt --json
  tokenhttp token --provider vaultid --client-id app --username 12345678901 --cloud MYCLOUD   # prompts for the OTP
  tokenhttp token --provider gestaoplus --username 12345678901 --password-stdin --show-token < pw.txt

Flags:
`

func runToken(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(e.stderr, tokenHelp); fs.PrintDefaults() }
	var cf credFlags
	cf.register(fs)
	show := fs.Bool("show-token", false, "also print the Authorization header value (a secret)")
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	verbose := fs.Bool("v", false, "show the token traffic (redacted) on standard error")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "tokenhttp token: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	src, cfg, err := cf.newSource(e, *verbose)
	if err != nil {
		return exitCode(e, err)
	}
	defer closeSource(src)
	tok, err := src.Token(ctx)
	if err != nil {
		return exitCode(e, err)
	}
	printToken(e.stdout, cfg.Provider.Name, tok, *show, *asJSON)
	return exitOK
}

// newSource builds the Config from the flags and the source from it; with
// verbose, token traffic is logged (redacted).
func (c *credFlags) newSource(e env, verbose bool) (*source.CachedSource, source.Config, error) {
	cfg, err := c.config(e, tokenClient(e, verbose))
	if err != nil {
		return nil, cfg, err
	}
	src, err := source.New(cfg)
	return src, cfg, err
}

// parseFlags parses args; done is true when the command must end with
// code (help was asked for, or a flag was bad).
func parseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		return exitOK, true
	default:
		return exitUsage, true
	}
}

func closeSource(src *source.CachedSource) {
	if src != nil {
		src.Close()
	}
}

// printToken prints tok's metadata; the header value only with show.
func printToken(w io.Writer, provider string, tok *source.Token, show, asJSON bool) {
	scheme, _, _ := strings.Cut(tok.HeaderValue(), " ")
	var life time.Duration
	if !tok.Expiry.IsZero() {
		life = time.Until(tok.Expiry).Round(time.Second)
	}
	if asJSON {
		out := map[string]any{
			"provider": provider, "token_type": tok.TokenType, "scope": tok.Scope,
			"header_scheme": scheme, "refresh_token": tok.RefreshToken != "",
		}
		if !tok.Expiry.IsZero() {
			out["expiry"] = tok.Expiry.UTC().Format(time.RFC3339)
			out["expires_in"] = int(life.Seconds())
		}
		if show {
			out["authorization"] = tok.HeaderValue()
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return
	}
	fmt.Fprintf(w, "provider:      %s\n", provider)
	fmt.Fprintf(w, "token type:    %s\n", tok.TokenType)
	fmt.Fprintf(w, "header scheme: %s\n", scheme)
	fmt.Fprintf(w, "scope:         %s\n", tok.Scope)
	if tok.Expiry.IsZero() {
		fmt.Fprintf(w, "expiry:        none given\n")
	} else {
		fmt.Fprintf(w, "expiry:        %s (in %s)\n", tok.Expiry.Local().Format(time.RFC3339), life)
	}
	fmt.Fprintf(w, "refresh token: %v\n", tok.RefreshToken != "")
	if show {
		fmt.Fprintf(w, "authorization: %s\n", tok.HeaderValue())
	}
}

// tokenExit maps a token or request error to an exit code.
func tokenExit(err error) int {
	var te *source.Error
	var fe *source.FetchError
	switch {
	case errors.Is(err, source.ErrInvalidConfig):
		return exitUsage
	case errors.As(err, &te):
		if te.Temporary() {
			return exitUnavailable
		}
		return exitRefused
	case errors.Is(err, source.ErrBreakerOpen), errors.As(err, &fe):
		return exitUnavailable
	}
	return exitFailed
}

// tokenClient is the HTTP client for token requests; with verbose it logs
// each exchange, redacted.
func tokenClient(e env, verbose bool) *http.Client {
	if !verbose {
		return nil
	}
	return &http.Client{Transport: logTransport{base: http.DefaultTransport, w: e.stderr, prefix: "token"}}
}

// logTransport prints method, URL without query, status and time of each
// request; never a header value or a body.
type logTransport struct {
	base   http.RoundTripper
	w      io.Writer
	prefix string
}

func (l logTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	u := *req.URL
	u.RawQuery, u.User = "", nil
	_, hasAuth := req.Header["Authorization"]
	fmt.Fprintf(l.w, "* %s > %s %s (content-type %q, authorization %v)\n", l.prefix, req.Method, u.String(), req.Header.Get("Content-Type"), hasAuth)
	resp, err := l.base.RoundTrip(req)
	if err != nil {
		fmt.Fprintf(l.w, "* %s < error after %s\n", l.prefix, time.Since(start).Round(time.Millisecond))
		return nil, err
	}
	fmt.Fprintf(l.w, "* %s < %s in %s\n", l.prefix, resp.Status, time.Since(start).Round(time.Millisecond))
	return resp, nil
}
