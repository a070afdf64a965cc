package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"strings"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

const emulateHelp = `Usage: tokenhttp emulate [provider...]

Start local emulators of the providers' token endpoints on loopback
(source/sourcetest: the same ones the tests and the demo use), each with a
protected resource that accepts the tokens it issued, and print for each
its token URL, credentials, resource, and a "tokenhttp call" line to paste
into another terminal. With no provider named, all six run. Ctrl-C stops
them. The credentials are the emulators' fixed test values, not secrets.

Providers: standard, vaultid, directlink, scorepositivo, gestaoplus, serproid

With --port N the emulators listen on 127.0.0.1 ports N, N+1, ... in the
order named, so that a config file (such as the proxy's) can name them.

Examples:
  tokenhttp emulate
  tokenhttp emulate gestaoplus vaultid
  tokenhttp emulate --port 8181 standard
`

// emulated is how to start and use one provider's emulator.
type emulated struct {
	start func(sourcetest.Options) *sourcetest.Server
	creds string // the credentials, for people
	env   string // the environment of the call line
	flags string // the call line's credential flags
	note  string
}

var emulators = map[string]emulated{
	"standard": {sourcetest.NewStandard, "client " + sourcetest.DefaultClientID + " / " + sourcetest.DefaultClientSecret + " (HTTP Basic)",
		"TOKENHTTP_CLIENT_SECRET=" + sourcetest.DefaultClientSecret, "--client-id " + sourcetest.DefaultClientID, ""},
	"vaultid": {sourcetest.NewVaultID, "client " + sourcetest.DefaultClientID + " / " + sourcetest.DefaultClientSecret + ", user " + sourcetest.DefaultVaultIDUsername + ", any 6-digit one-time password not used before",
		"TOKENHTTP_CLIENT_SECRET=" + sourcetest.DefaultClientSecret, "--client-id " + sourcetest.DefaultClientID + " --username " + sourcetest.DefaultVaultIDUsername + " --cloud EMULATED",
		"prompts for the one-time password (type any 6 digits; each is accepted once)"},
	"directlink": {sourcetest.NewDirectLink, "user " + sourcetest.DefaultUsername + " / " + sourcetest.DefaultPassword + ", no client credentials",
		"TOKENHTTP_PASSWORD=" + sourcetest.DefaultPassword, "--username " + sourcetest.DefaultUsername, ""},
	"scorepositivo": {sourcetest.NewScorePositivo, "client " + sourcetest.DefaultClientID + " / " + sourcetest.DefaultClientSecret + " (in the JSON body)",
		"TOKENHTTP_CLIENT_SECRET=" + sourcetest.DefaultClientSecret, "--client-id " + sourcetest.DefaultClientID, ""},
	"gestaoplus": {sourcetest.NewGestaoPlus, "user " + sourcetest.DefaultUsername + " / " + sourcetest.DefaultPassword + `, client_id "app", client_secret null`,
		"TOKENHTTP_PASSWORD=" + sourcetest.DefaultPassword, "--username " + sourcetest.DefaultUsername, ""},
	"serproid": {sourcetest.NewSerproID, "client " + sourcetest.DefaultClientID + " / " + sourcetest.DefaultClientSecret + " (in the form body)",
		"TOKENHTTP_CLIENT_SECRET=" + sourcetest.DefaultClientSecret, "--client-id " + sourcetest.DefaultClientID, ""},
}

func runEmulate(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("emulate", flag.ContinueOnError)
	port := fs.Int("port", 0, "listen on 127.0.0.1 from this `port` on, one port per emulator (0: free ports)")
	pos, help, err := parseArgs(fs, args)
	switch {
	case help:
		printHelp(e.stdout, emulateHelp, fs)
		return exitOK
	case err != nil:
		return flagError(e, "emulate", err)
	case *port < 0 || *port > 65535:
		return flagError(e, "emulate", usagef("--port %d is not a port; use 1 to 65535, or 0 for free ports", *port))
	}
	names := providerNames()
	if len(pos) > 0 {
		names = nil
		for _, n := range pos {
			n = strings.ToLower(n)
			if _, ok := emulators[n]; !ok {
				return flagError(e, "emulate", usagef("unknown provider %q; use any of %s", n, strings.Join(providerNames(), ", ")))
			}
			names = append(names, n)
		}
	}
	fmt.Fprintf(e.stdout, "tokenhttp emulate: %d token endpoints on loopback; Ctrl-C stops them.\n", len(names))
	for i, n := range names {
		em := emulators[n]
		var o sourcetest.Options
		if *port != 0 {
			o.Addr = fmt.Sprintf("127.0.0.1:%d", *port+i)
			if l, err := net.Listen("tcp", o.Addr); err != nil {
				return flagError(e, "emulate", usagef("--port: cannot listen on %s: %v", o.Addr, err))
			} else {
				l.Close()
			}
		}
		srv := em.start(o)
		defer srv.Close()
		fmt.Fprintf(e.stdout, "\n%s: %s\n", n, dialects[n].summary)
		fmt.Fprintf(e.stdout, "  token URL    %s\n", srv.TokenURL)
		fmt.Fprintf(e.stdout, "  credentials  %s\n", em.creds)
		fmt.Fprintf(e.stdout, "  resource     %s (200 with a token it issued, 401 otherwise)\n", srv.ResourceURL)
		if em.note != "" {
			fmt.Fprintf(e.stdout, "  note         %s\n", em.note)
		}
		fmt.Fprintf(e.stdout, "  try          %s tokenhttp call --provider %s --token-url %s %s %s -v\n", em.env, n, srv.TokenURL, em.flags, srv.ResourceURL)
	}
	<-ctx.Done()
	fmt.Fprintln(e.stdout, "\ntokenhttp emulate: stopped.")
	return exitOK
}
