package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/tokenhttp/tokenhttp/cmd/tokenhttp/internal/proxy"
	"github.com/tokenhttp/tokenhttp/internal/certs"
	"github.com/tokenhttp/tokenhttp/internal/jwtsign"
	"github.com/tokenhttp/tokenhttp/source"
)

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
	grants                                        grantFlags
	ca                                            clientAuthFlags

	set map[string]bool // the flags given on the command line
}

func (c *credFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.provider, "provider", "standard", "the token endpoint's dialect: "+strings.Join(proxy.ProviderNames(), ", ")+" (openfinancebrasil: --token-url is the issuer; needs a client certificate)")
	fs.StringVar(&c.tokenURL, "token-url", "", "the token endpoint (required for standard and directlink; overrides the provider's default)")
	fs.StringVar(&c.grant, "grant", "", "grant type: client_credentials, password, refresh_token, jwt-bearer or token-exchange (default: the provider's)")
	fs.StringVar(&c.clientID, "client-id", "", "client id")
	fs.StringVar(&c.secretEnv, "client-secret-env", "TOKENHTTP_CLIENT_SECRET", "environment variable that holds the client secret")
	fs.StringVar(&c.secretFile, "client-secret-file", "", "file that holds the client secret (wins over the environment)")
	fs.StringVar(&c.username, "username", "", "resource owner's username, for the password grant")
	fs.StringVar(&c.passwordEnv, "password-env", "TOKENHTTP_PASSWORD", "environment variable that holds the password")
	fs.StringVar(&c.passwordFile, "password-file", "", "file that holds the password (wins over the environment)")
	fs.BoolVar(&c.passwordStdin, "password-stdin", false, "read the password (or one-time password) from standard input; at a terminal it is not echoed")
	fs.Var(&c.scopes, "scope", "scope to request; repeat the flag or separate scopes with spaces")
	fs.StringVar(&c.auth, "auth", "", "where client credentials go: header (HTTP Basic), body or none (default: the provider's)")
	fs.StringVar(&c.encoding, "encoding", "", "request body encoding: form or json (default: the provider's; a JSON provider refuses form)")
	fs.DurationVar(&c.lifetime, "lifetime", 0, "token lifetime to ask for (vaultid)")
	fs.StringVar(&c.cloud, "cloud", "", "the user's cloud, sent as \"provider\" (vaultid)")
	fs.StringVar(&c.origin, "origin", "", "Origin header for token requests (gestaoplus: https://yourcompany.gestao.plus)")
	fs.BoolVar(&c.insecure, "insecure", false, "allow cleartext http to hosts that are not loopback")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "time limit of the token requests and the call (a prompt is not counted)")
	c.grants.register(fs)
	c.ca.register(fs)
}

// listFlag is a repeatable flag whose values may also be space-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error {
	*l = append(*l, strings.Fields(v)...)
	return nil
}

// repeated is a repeatable flag, one value per use (-H "Name: value",
// --audience).
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ", ") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

// secretFlags are flags people try that would put a secret on argv. They
// are refused with a pointer to where the secret goes instead.
var secretFlags = map[string]string{
	"client-secret": "use $TOKENHTTP_CLIENT_SECRET, --client-secret-env NAME or --client-secret-file FILE",
	"secret":        "use $TOKENHTTP_CLIENT_SECRET, --client-secret-env NAME or --client-secret-file FILE",
	"password":      "use $TOKENHTTP_PASSWORD, --password-file FILE or --password-stdin (or type it at the prompt)",
	"otp":           "use --password-stdin, $TOKENHTTP_PASSWORD, or type it at the prompt",
	"token":         "tokenhttp fetches the token itself; see 'tokenhttp help call'",
}

// parseArgs parses args with fs, accepting flags after positional
// arguments (call URL -v) as well as before; "--" ends the flags. It
// returns the positional arguments. A nil error with help set means
// --help was asked for.
func parseArgs(fs *flag.FlagSet, args []string) (pos []string, help bool, err error) {
	for _, a := range args {
		if a == "--" {
			break
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && secretFlags[name] != "" && fs.Lookup(name) == nil {
			return nil, false, usagef("--%s: a secret on the command line is visible to other users and kept in shell history; %s", name, secretFlags[name])
		}
	}
	fs.SetOutput(io.Discard) // errors are printed by the caller, without the whole flag list
	fs.Usage = func() {}
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, true, nil
			}
			return nil, false, usagef("%v", err)
		}
		rest := fs.Args()
		if consumed := args[:len(args)-len(rest)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(pos, rest...), false, nil
		}
		if len(rest) == 0 {
			return pos, false, nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// setFlags returns the names of the flags given on the command line.
func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// printHelp prints a command's help and its flags to w.
func printHelp(w io.Writer, help string, fs *flag.FlagSet) {
	fmt.Fprint(w, help)
	fmt.Fprintln(w, "\nFlags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// flagError prints a usage error and where to find the flags.
func flagError(e env, cmd string, err error) int {
	fmt.Fprintf(e.stderr, "tokenhttp %s: %s\nRun 'tokenhttp help %s' for the flags and examples.\n", cmd, cliText(err.Error()), cmd)
	return exitUsage
}

// providerOf returns the --provider's dialect.
func (c *credFlags) providerOf() (*source.Provider, error) {
	p, ok := proxy.ProviderNamed(c.provider)
	if !ok {
		return nil, usagef("unknown --provider %q; use one of %s", c.provider, strings.Join(proxy.ProviderNames(), ", "))
	}
	return p, nil
}

// grantOf is the grant the request will use.
func (c *credFlags) grantOf(p *source.Provider) string {
	switch {
	case c.grant != "":
		return proxy.GrantName(c.grant)
	case p.GrantType != "":
		return p.GrantType
	}
	return source.ClientCredentials
}

// authOf is where the client credentials will go.
func (c *credFlags) authOf(p *source.Provider) source.AuthStyle {
	if a, ok := proxy.ParseAuthStyle(c.auth); ok {
		return a
	}
	if p.AuthStyle == source.AuthDefault {
		return source.AuthInHeader
	}
	return p.AuthStyle
}

// config builds the source.Config from the flags and the secrets (see
// secrets.go). Secrets come from files, the environment, standard input
// or a terminal prompt, never from argv; tr learns each one's origin.
func (c *credFlags) config(ctx context.Context, e env, tr *tracer) (source.Config, *passwords, error) {
	p, err := c.providerOf()
	if err != nil {
		return source.Config{}, nil, err
	}
	cfg := source.Config{
		Provider: p, TokenURL: c.tokenURL, GrantType: proxy.GrantName(c.grant), ClientID: c.clientID,
		Username: c.username, Scopes: c.scopes, Lifetime: c.lifetime, Cloud: c.cloud,
		Origin: c.origin, AllowInsecureHTTP: c.insecure, FetchTimeout: c.timeout,
		HTTPClient: tr.tokenClient(),
	}
	if c.auth != "" {
		a, ok := proxy.ParseAuthStyle(c.auth)
		if !ok {
			return cfg, nil, usagef("--auth %q: use header, body or none", c.auth)
		}
		cfg.AuthStyle = a
	}
	if c.encoding != "" {
		enc, ok := proxy.ParseEncoding(c.encoding)
		switch {
		case !ok:
			return cfg, nil, usagef("--encoding %q: use form or json", c.encoding)
		case enc == source.FormEncoding && p.Encoding == source.JSONEncoding:
			return cfg, nil, usagef("--encoding form: the %s endpoint takes a JSON body only; leave out --encoding", p.Name)
		}
		cfg.Encoding = enc
	}
	sec, err := c.clientSecret(e, p, tr)
	if err != nil {
		return cfg, nil, err
	}
	cfg.ClientSecret = sec
	if err := c.grants.apply(&cfg, tr); err != nil {
		return cfg, nil, err
	}
	if err := c.ca.apply(&cfg, e, c.set); err != nil {
		return cfg, nil, err
	}
	switch { // apply set an HTTPClient over an *http.Transport
	case cfg.ClientCertificate != nil:
		tr.traceTLS(cfg.HTTPClient.Transport.(*http.Transport), cfg.ClientCertificate)
	case c.ca.roots != nil:
		cfg.HTTPClient.Transport = tr.tokenTransport(cfg.HTTPClient.Transport)
	}
	if c.grantOf(p) != source.Password {
		return cfg, nil, nil
	}
	pw, err := c.password(ctx, e, p, tr)
	if err != nil {
		return cfg, nil, err
	}
	pw.apply(&cfg)
	return cfg, pw, nil
}

// clientAuthFlags are the flags of mTLS and private_key_jwt.
type clientAuthFlags struct {
	cert, key, p12, p12PassEnv, p12PassFile string
	privateKey, keyID, audience, alg        string
	assertionFile, caFile                   string
	roots                                   *x509.CertPool // --ca-file's, once apply has run
}

func (a *clientAuthFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.cert, "client-cert", "", "mTLS: PEM client certificate chain file (reloaded when it changes); with --client-key")
	fs.StringVar(&a.key, "client-key", "", "mTLS: PEM private key file of --client-cert (default: --client-cert's file)")
	fs.StringVar(&a.p12, "p12", "", "mTLS: PKCS#12 (.p12, .pfx) client certificate file, password from --p12-password-env or --p12-password-file")
	fs.StringVar(&a.p12PassEnv, "p12-password-env", "TOKENHTTP_P12_PASSWORD", "environment variable that holds the --p12 password")
	fs.StringVar(&a.p12PassFile, "p12-password-file", "", "file that holds the --p12 password (wins over the environment)")
	fs.StringVar(&a.privateKey, "private-key", "", "private_key_jwt: PEM private key file (RSA: PS256, P-256: ES256, Ed25519: EdDSA); no client secret is sent")
	fs.StringVar(&a.keyID, "key-id", "", "private_key_jwt: the assertion's kid")
	fs.StringVar(&a.audience, "assertion-audience", "", "private_key_jwt: the assertion's aud (default: the token URL)")
	fs.StringVar(&a.alg, "signing-alg", "", "private_key_jwt: algorithm, e.g. RS256 (default: from the key)")
	fs.StringVar(&a.assertionFile, "client-assertion-file", "", "client assertion minted elsewhere (a Kubernetes or SPIFFE JWT), read from this file at each request")
	fs.StringVar(&a.caFile, "ca-file", "", "PEM CA certificates to trust for the token endpoint and the call (default: the system roots)")
}

// apply sets cfg's client authentication from the flags. A client secret
// found only in the default environment variable is not sent with a
// certificate or an assertion.
func (a *clientAuthFlags) apply(cfg *source.Config, e env, set map[string]bool) error {
	var err error
	switch {
	case a.cert != "" && a.p12 != "":
		return usagef("--client-cert and --p12: give one client certificate")
	case a.cert != "":
		key := a.key
		if key == "" {
			key = a.cert
		}
		if cfg.ClientCertificate, err = source.ClientCertificateFiles(a.cert, key); err != nil {
			return usagef("--client-cert: %v", err)
		}
	case a.key != "":
		return usagef("--client-key needs --client-cert")
	case a.p12 != "":
		pass := e.getenv(a.p12PassEnv)
		if a.p12PassFile != "" {
			if pass, err = readSecretFile(a.p12PassFile, "--p12-password-file"); err != nil {
				return err
			}
		}
		if cfg.ClientCertificate, err = source.ClientCertificatePKCS12(a.p12, pass); err != nil {
			return usagef("--p12: %v", err)
		}
	}
	if a.privateKey != "" {
		b, err := os.ReadFile(a.privateKey)
		if err != nil {
			return usagef("--private-key: %v", err)
		}
		if cfg.PrivateKey, err = certs.ParsePrivateKey(b); err != nil {
			return usagef("--private-key %s: %v", a.privateKey, err)
		}
	}
	if a.assertionFile != "" {
		if err := checkFile(a.assertionFile, "--client-assertion-file"); err != nil {
			return err
		}
		cfg.ClientAssertion = source.AssertionFile(a.assertionFile)
	}
	cfg.KeyID, cfg.AssertionAudience, cfg.SigningAlgorithm = a.keyID, a.audience, a.alg
	if (cfg.ClientCertificate != nil || cfg.PrivateKey != nil || cfg.ClientAssertion != nil) &&
		!set["client-secret-env"] && !set["client-secret-file"] {
		cfg.ClientSecret = ""
	}
	if a.caFile != "" || cfg.ClientCertificate != nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		if a.caFile != "" {
			pool, err := certs.CAPool(a.caFile, nil)
			if err != nil {
				return usagef("--ca-file: %v", err)
			}
			a.roots = pool
			t.TLSClientConfig = &tls.Config{RootCAs: pool}
		}
		cfg.HTTPClient = &http.Client{Transport: t} // with a certificate, traced by traceTLS
	}
	return nil
}

// describe says, for the trace, how the client authenticates with a
// certificate or an assertion; "" when it does neither. It shows file
// names, never what is in them.
func (a *clientAuthFlags) describe() string {
	var cert string
	switch {
	case a.cert != "":
		key := a.key
		if key == "" {
			key = a.cert
		}
		cert = "the client certificate from --client-cert " + a.cert + " (key from " + key + ")"
	case a.p12 != "":
		cert = "the client certificate from --p12 " + a.p12
	}
	var auth string
	switch {
	case a.privateKey != "":
		alg := a.alg
		if alg == "" {
			alg = "from the key"
			if b, err := os.ReadFile(a.privateKey); err == nil {
				if k, err := certs.ParsePrivateKey(b); err == nil {
					if def, err := jwtsign.Algorithm(k.Public(), ""); err == nil {
						alg = string(def) + " (the key's default)"
					} else {
						alg = "with no default algorithm for this key (set --signing-alg)"
					}
				}
			}
		}
		kid := "no kid"
		if a.keyID != "" {
			kid = fmt.Sprintf("kid %q", a.keyID)
		}
		aud := "the token URL"
		if a.audience != "" {
			aud = fmt.Sprintf("%q", a.audience)
		}
		auth = fmt.Sprintf("private_key_jwt: a client_assertion signed %s, %s, aud %s, key from --private-key %s", alg, kid, aud, a.privateKey)
	case a.assertionFile != "":
		auth = "client assertion (private_key_jwt) read from --client-assertion-file " + a.assertionFile + " at each request"
	case cert != "":
		return "tls_client_auth: " + cert + "; client_id in the body, no client secret"
	default:
		return ""
	}
	if cert != "" {
		auth += "; over mTLS with " + cert
	}
	return auth
}

// apiBase is the RoundTripper under the call: one that presents src's
// client certificate, if it has one, and trusts roots (--ca-file's) if
// not nil; done closes its connections.
func apiBase(src *source.CachedSource, roots *x509.CertPool) (rt http.RoundTripper, done func()) {
	tc := src.TLSClientConfig()
	if tc == nil && roots == nil {
		return http.DefaultTransport, func() {}
	}
	if tc == nil {
		tc = &tls.Config{}
	}
	if roots != nil {
		tc.RootCAs = roots
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tc
	return t, t.CloseIdleConnections
}
