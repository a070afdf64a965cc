package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/term"

	"github.com/tokenhttp/tokenhttp/cmd/tokenhttp/internal/proxy"
	"github.com/tokenhttp/tokenhttp/source"
)

// Secrets come from, in this order: a file (--client-secret-file,
// --password-file), standard input (--password-stdin), an environment
// variable ($TOKENHTTP_CLIENT_SECRET, $TOKENHTTP_PASSWORD, or the one
// --client-secret-env and --password-env name), or a prompt at the
// terminal that does not echo. Never from argv.

// errOTPSpent is the error of a second token request when the one-time
// password given was spent by the first and no terminal can ask for a new
// one.
var errOTPSpent = errors.New("a second token request needs a new one-time password; run again with a new one, or at a terminal to be prompted for each")

// clientSecret returns the client secret and tells tr where it came from.
//
// A secret found only in the default environment variable is not sent to
// a provider whose client authentication is "none" (gestao.plus wants
// client_secret null; DirectLink sends none): a secret exported for
// another provider would otherwise be sent, and refused, silently. Naming
// the variable with --client-secret-env, or giving a file, sends it.
func (c *credFlags) clientSecret(e env, p *source.Provider, tr *tracer) (string, error) {
	if c.secretFile != "" {
		v, err := readSecretFile(c.secretFile, "--client-secret-file")
		if err != nil {
			return "", err
		}
		label := "client_secret from --client-secret-file " + c.secretFile
		tr.learn(v, label)
		tr.origin("client secret", "["+label+"]")
		return v, nil
	}
	if c.secretEnv == "" {
		tr.origin("client secret", "none")
		return "", nil
	}
	v := e.getenv(c.secretEnv)
	if v == "" {
		tr.origin("client secret", "none ($"+c.secretEnv+" is not set)")
		return "", nil
	}
	if c.authOf(p) == source.AuthNone && !c.set["client-secret-env"] {
		tr.learn(v, "client_secret from $"+c.secretEnv+", not sent")
		tr.origin("client secret", fmt.Sprintf("none: $%s is set but not sent, because the %s provider authenticates no client%s; give --client-secret-env %s or --client-secret-file to send one",
			c.secretEnv, p.Name, dialectOf(p).secretNote, c.secretEnv))
		return "", nil
	}
	label := "client_secret from $" + c.secretEnv
	tr.learn(v, label)
	if c.ca.describe() != "" && !c.set["client-secret-env"] { // clientAuthFlags.apply drops it
		tr.origin("client secret", fmt.Sprintf("none: $%s is set but not sent, because a certificate or an assertion authenticates the client; give --client-secret-env %s to send it too", c.secretEnv, c.secretEnv))
		return v, nil
	}
	tr.origin("client secret", "["+label+"]")
	return v, nil
}

// checkFile is a usage error unless the file name can be opened: a file
// read only when a token is requested (an assertion, a subject token) is
// checked when the flags are.
func checkFile(name, flagName string) error {
	f, err := os.Open(name)
	if err != nil {
		return usagef("%s: %v", flagName, err)
	}
	return f.Close()
}

// readSecretFile reads a secret from a file (proxy.ReadSecretFile), with
// flagName in its usage errors.
func readSecretFile(name, flagName string) (string, error) {
	v, err := proxy.ReadSecretFile(name)
	switch {
	case errors.Is(err, proxy.ErrEmptySecret):
		return "", usagef("%s: the file %s is empty", flagName, name)
	case err != nil:
		return "", usagef("%s: reading the secret file: %v", flagName, err)
	}
	return v, nil
}

// passwords supplies the password grant's password. A reusable password
// is read once. A one-time password given by a file, standard input or
// the environment is used for one token request only; a second request
// (after the API's 401, say) prompts for a new one at a terminal, or
// fails with errOTPSpent.
type passwords struct {
	ctx  context.Context // the command's: a prompt ends on Ctrl-C
	e    env
	tr   *tracer
	user string
	otp  bool

	mu     sync.Mutex // guards the fields below
	first  string     // the password given, "" once a one-time one is spent
	origin string     // where first came from
	asked  int        // prompts shown
	spent  error      // set when a second one-time password could not be had
}

// password finds the password for the password grant.
func (c *credFlags) password(ctx context.Context, e env, p *source.Provider, tr *tracer) (*passwords, error) {
	pw := &passwords{ctx: ctx, e: e, tr: tr, user: c.username, otp: p.OneTimePassword}
	what := "password"
	if pw.otp {
		what = "one-time password"
	}
	switch {
	case c.passwordFile != "":
		v, err := readSecretFile(c.passwordFile, "--password-file")
		if err != nil {
			return nil, err
		}
		pw.first, pw.origin = v, "--password-file "+c.passwordFile
	case c.passwordStdin && e.terminal():
		v, err := promptPassword(ctx, e, fmt.Sprintf("%s for %s (not echoed): ", what, c.username))
		if err != nil {
			return nil, err
		}
		pw.first, pw.origin = v, "the terminal (--password-stdin)"
	case c.passwordStdin:
		v, err := readLine(e.stdin)
		if err != nil {
			return nil, err
		}
		pw.first, pw.origin = v, "standard input"
	case c.passwordEnv != "" && e.getenv(c.passwordEnv) != "":
		pw.first, pw.origin = e.getenv(c.passwordEnv), "$"+c.passwordEnv
	case e.terminal():
		// The first one now, before --timeout starts; a one-time
		// password for a later token request is asked for by next.
		v, err := promptPassword(ctx, e, fmt.Sprintf("%s for %s (not echoed): ", what, c.username))
		if err != nil {
			return nil, err
		}
		pw.first, pw.origin = v, "the terminal"
	default:
		return nil, usagef("the password grant needs a %s and standard input is not a terminal to ask for it: set $%s, or use --password-file or --password-stdin",
			what, c.passwordEnv)
	}
	label := what + " from " + pw.origin
	if pw.otp {
		label = "one-time password from " + pw.origin
	}
	tr.learn(pw.first, label)
	tr.origin("password", "["+label+"]")
	return pw, nil
}

// apply sets cfg's password: a fixed one, or a function for a one-time
// password, asked for each token request.
func (p *passwords) apply(cfg *source.Config) {
	if !p.otp {
		cfg.Password = p.first
		return
	}
	cfg.PasswordFunc = p.next
}

// next returns a one-time password for one token request.
func (p *passwords) next(context.Context) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.first != "" {
		v := p.first
		p.first = "" // used once, never sent again
		return v, nil
	}
	if !p.e.terminal() {
		p.spent = fmt.Errorf("%w (the one from %s was used by the first)", errOTPSpent, p.origin)
		return "", p.spent
	}
	prompt := fmt.Sprintf("one-time password for %s (not echoed): ", p.user)
	if p.asked > 0 || p.origin != "" {
		prompt = fmt.Sprintf("a new one-time password for %s is needed for another token request (not echoed): ", p.user)
	}
	p.asked++
	v, err := promptPassword(p.ctx, p.e, prompt)
	if err != nil {
		return "", err
	}
	p.tr.learn(v, fmt.Sprintf("one-time password #%d typed at the terminal", p.asked))
	return v, nil
}

// spentError is the error of a second one-time password that could not
// be had, or nil.
func (p *passwords) spentError() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.spent
}

// readLine reads the first line of r (the password on standard input).
func readLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return "", usagef("--password-stdin: nothing was given on standard input")
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usagef("--password-stdin: the first line of standard input is empty")
	}
	return line, nil
}

// promptPassword shows prompt on standard error and reads a line from the
// terminal without echo (golang.org/x/term). Ctrl-C or the end of ctx
// restores the terminal.
func promptPassword(ctx context.Context, e env, prompt string) (string, error) {
	if !e.terminal() {
		return "", usagef("standard input is not a terminal to type a password at")
	}
	state, err := term.GetState(e.stdinFD)
	if err != nil {
		return "", usagef("reading the terminal: %v", err)
	}
	fmt.Fprint(e.stderr, prompt)
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := term.ReadPassword(e.stdinFD)
		ch <- result{b, err}
	}()
	select {
	case r := <-ch:
		fmt.Fprintln(e.stderr)
		if r.err != nil {
			return "", usagef("reading the password from the terminal: %v", r.err)
		}
		v := strings.TrimRight(string(r.b), "\r\n")
		if v == "" {
			return "", usagef("no password was typed")
		}
		return v, nil
	case <-ctx.Done():
		_ = term.Restore(e.stdinFD, state)
		fmt.Fprintln(e.stderr)
		return "", ctx.Err()
	}
}
