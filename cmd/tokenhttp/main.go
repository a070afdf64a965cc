// Command tokenhttp fetches OAuth2 tokens from the providers tokenhttp
// speaks, makes authenticated calls with them, and runs the project's demo.
//
//	tokenhttp demo                                     # five emulated providers, revocation, an outage
//	tokenhttp token --provider serproid --client-id ID # secret from $TOKENHTTP_CLIENT_SECRET
//	tokenhttp call --token-url URL --client-id ID https://api.example.com/orders
//
// Secrets never come from the command line alone: they are read from
// environment variables, a file, or standard input (a one-time password is
// prompted for on a terminal).
//
// Exit codes: 0 success; 1 the request failed (no reply, or a status of 400
// or more from the API); 2 usage (a bad flag or URL); 3 the token endpoint
// refused the credentials; 4 the token endpoint is unavailable (5xx, 429,
// unreachable, circuit breaker open).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/tokenhttp/tokenhttp/source"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitRefused     = 3
	exitUnavailable = 4
)

// env is the process environment and standard streams, so that tests run
// the commands in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	isTerminal     bool // stdin is a terminal: prompt for a one-time password
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	e := env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, isTerminal: isTerminal(os.Stdin)}
	os.Exit(run(ctx, os.Args[1:], e))
}

const usage = `tokenhttp: OAuth2 tokens from real-world token endpoints.

Usage:
  tokenhttp demo                 run the demo against local emulators of five providers
  tokenhttp token [flags]        fetch a token and print its metadata
  tokenhttp call [flags] URL     make an authenticated request
  tokenhttp proxy --config FILE  run a credential-injecting egress proxy
  tokenhttp help [command]       show help for a command

Exit codes: 0 ok, 1 request failed, 2 usage, 3 token refused, 4 token endpoint unavailable.
`

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return exitUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "demo":
		return runDemo(ctx, rest, e)
	case "token":
		return runToken(ctx, rest, e)
	case "call":
		return runCall(ctx, rest, e)
	case "proxy":
		return runProxy(ctx, rest, e.stdout, e.stderr, e.getenv)
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 {
			return run(ctx, []string{rest[0], "--help"}, e)
		}
		fmt.Fprint(e.stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(e.stderr, "tokenhttp: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
}

// usageError is a bad flag, argument or URL: exit code 2.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// flagNames rewrites the library's Config field names to this tool's
// flags in configuration errors.
var flagNames = strings.NewReplacer(
	"Config.TokenURL", "--token-url", "Config.ClientID", "--client-id",
	"Config.ClientSecret", "the client secret ($TOKENHTTP_CLIENT_SECRET or --client-secret-file)",
	"Config.Username", "--username", "Config.Password or Config.PasswordFunc", "a password (see --password-stdin)",
	"Config.GrantType", "--grant", "Config.Scopes", "--scope", "Config.Lifetime", "--lifetime",
	"Config.Cloud", "--cloud", "Config.Origin", "--origin", "set AllowInsecureHTTP", "use --insecure",
	"Config.AuthStyle", "--auth",
)

// exitCode maps an error to the documented exit codes and prints it.
func exitCode(e env, err error) int {
	if err == nil {
		return exitOK
	}
	msg := err.Error()
	if errors.Is(err, source.ErrInvalidConfig) {
		msg = flagNames.Replace(msg)
	}
	fmt.Fprintln(e.stderr, "tokenhttp:", msg)
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return tokenExit(err)
}
