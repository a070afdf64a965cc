// Command tokenhttp fetches OAuth2 tokens from the providers tokenhttp
// speaks, makes authenticated calls with them, runs local emulators of
// those providers, and runs the project's demo.
//
//	tokenhttp emulate                                  # eight token endpoints on loopback (two with mTLS), with call lines to paste
//	tokenhttp token --provider serproid --client-id ID # secret from $TOKENHTTP_CLIENT_SECRET
//	tokenhttp call --token-url URL --client-id ID https://api.example.com/orders -v
//	tokenhttp demo                                     # six emulated providers, revocation, an outage
//
// Secrets never come from the command line: they are read from
// environment variables, a file, or standard input, or typed at a
// terminal prompt that does not echo. -v traces every request with each
// secret replaced by a marker naming where it came from.
//
// Exit codes: 0 ok; 1 the API call failed; 2 usage (nothing was sent);
// 3 the token endpoint refused the credentials; 4 the token endpoint is
// unavailable (5xx, 429, unreachable, --timeout, circuit breaker); 5 the
// token URL is not a token endpoint (404, 405, a redirect, a web page);
// 130 interrupted. "tokenhttp help" prints the table.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

// env is the process environment and standard streams, so that tests run
// the commands in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// stdinFD is standard input's file descriptor when it is a terminal
	// (prompts read it without echo), or -1.
	stdinFD int
	// stdoutTerminal reports that standard output is a terminal: a binary
	// body is refused unless -o says where it goes.
	stdoutTerminal bool
}

// osEnv is env over real files: terminals are detected with
// golang.org/x/term (a character device such as /dev/null is not one).
func osEnv(stdin, stdout, stderr *os.File, getenv func(string) string) env {
	e := env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv, stdinFD: -1}
	if fd := int(stdin.Fd()); term.IsTerminal(fd) {
		e.stdinFD = fd
	}
	e.stdoutTerminal = term.IsTerminal(int(stdout.Fd()))
	return e
}

// terminal reports whether standard input is a terminal.
func (e env) terminal() bool { return e.stdinFD >= 0 }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], osEnv(os.Stdin, os.Stdout, os.Stderr, os.Getenv)))
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, e env) int
}

// commands are the subcommands, in the order the usage lists them.
var commands []command

func init() {
	commands = []command{
		{"token", "fetch a token and print its metadata", runToken},
		{"call", "make an authenticated request, like curl", runCall},
		{"emulate", "run local emulators of the providers' token endpoints", runEmulate},
		{"demo", "a transcript of caching, revocation and an outage, on emulators", runDemo},
		{"proxy", "run a credential-injecting egress proxy from a config file", func(ctx context.Context, args []string, e env) int {
			return runProxy(ctx, args, e.stdout, e.stderr, e.getenv)
		}},
		{"version", "print the version and build of this binary", runVersion},
		{"help", "show help for a command", runHelp},
	}
}

func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage())
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help":
		name = "help"
	case "-version", "--version":
		name = "version"
	}
	c, ok := lookup(name)
	if !ok {
		fmt.Fprintf(e.stderr, "tokenhttp: unknown command %q\n\n%s", name, usage())
		return exitUsage
	}
	return c.run(ctx, rest, e)
}
