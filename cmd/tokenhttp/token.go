package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tokenhttp/tokenhttp/source"
)

const tokenHelp = `Usage: tokenhttp token [flags]

Fetch a token and print its metadata (type, scope, expiry, lifetime). The
token itself is printed only with --show-token. Secrets are read from the
environment, a file, standard input or a prompt that does not echo, never
from flags. Flags may come in any order.

Examples:
  TOKENHTTP_CLIENT_SECRET=s3cret tokenhttp token --token-url https://auth.example.com/oauth/token --client-id app --scope "orders:read"
  tokenhttp token --provider serproid --client-id my-app --client-secret-file ./secret.txt --json
  tokenhttp token --provider vaultid --client-id app --username 12345678901 --cloud MYCLOUD   # prompts for the OTP
  tokenhttp token --provider gestaoplus --username 12345678901 --password-stdin --show-token < pw.txt
  tokenhttp token --provider gestaoplus --username u -v     # why was it refused? every field, secrets marked
  tokenhttp token --token-url https://auth.example.com/token --client-id app --grant refresh_token --refresh-token-file ./rt.txt
  tokenhttp token --token-url https://auth.example.com/token --client-id app --grant jwt-bearer --assertion-file /var/run/secrets/tokens/sa
  tokenhttp token --token-url https://auth.example.com/token --client-id app --grant token-exchange --subject-token-file ./id.jwt --audience orders
  tokenhttp token --token-url https://pix.bank.example/oauth/token --client-id app --client-cert c.pem --client-key k.pem   # mTLS (PIX)
`

func runToken(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	var cf credFlags
	cf.register(fs)
	show := fs.Bool("show-token", false, "also print the Authorization header value (a secret)")
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	verbose := fs.Bool("v", false, "trace the token requests and replies on standard error, secrets marked and tokens fingerprinted")
	pos, help, err := parseArgs(fs, args)
	switch {
	case help:
		printHelp(e.stdout, tokenHelp, fs)
		return exitOK
	case err != nil:
		return flagError(e, "token", err)
	case len(pos) > 0:
		return flagError(e, "token", usagef("unexpected argument %q", pos[0]))
	}
	cf.set = setFlags(fs)
	tr := newTracer(e.stderr, *verbose, *show)
	// The flags and secrets first: a prompt is not bounded by --timeout
	// (Ctrl-C ends it).
	src, _, err := cf.newSource(ctx, e, tr)
	if err != nil {
		return fail(e, tr, "token", err, cf.timeout)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	start := time.Now()
	tok, err := src.Token(ctx)
	if err != nil {
		return fail(e, tr, "token", err, cf.timeout)
	}
	tr.printf("* token ready after %s", ms(time.Since(start)))
	printToken(e.stdout, strings.ToLower(cf.provider), tok, *show, *asJSON)
	return exitOK
}

// fail prints a token error, mapped for a command-line user and scrubbed
// of every secret the command knows, and returns its exit code.
func fail(e env, tr *tracer, cmd string, err error, timeout time.Duration) int {
	code := tokenExit(err)
	msg := tr.scrub(tokenMessage(err, timeout.String()))
	if code == exitUsage {
		return flagError(e, cmd, usagef("%s", msg))
	}
	fmt.Fprintf(e.stderr, "tokenhttp %s: %s\n", cmd, msg)
	if code == exitRefused && !tr.verbose {
		fmt.Fprintf(e.stderr, "Run again with -v to see each field sent and where its value came from.\n")
	}
	return code
}

// newSource builds the Config from the flags and the source from it.
func (c *credFlags) newSource(ctx context.Context, e env, tr *tracer) (*source.CachedSource, *passwords, error) {
	p, err := c.providerOf()
	if err != nil {
		return nil, nil, err
	}
	tr.begin(c, p)
	cfg, pw, err := c.config(ctx, e, tr)
	if err != nil {
		return nil, nil, err
	}
	src, err := source.New(cfg)
	return src, pw, err
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
			"fingerprint": fingerprint(tok.HeaderValue()),
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
	fmt.Fprintf(w, "fingerprint:   %s\n", fingerprint(tok.HeaderValue()))
	if show {
		fmt.Fprintf(w, "authorization: %s\n", tok.HeaderValue())
	}
}
