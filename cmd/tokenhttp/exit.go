package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/tokenhttp/tokenhttp/source"
)

// Exit codes. exitTable documents them; keep the two in step.
const (
	exitOK          = 0
	exitFailed      = 1   // the API call failed, or its output was not written
	exitUsage       = 2   // a bad flag, argument, URL or missing secret: nothing was sent
	exitRefused     = 3   // the token endpoint refused the credentials
	exitUnavailable = 4   // the token endpoint is unavailable
	exitWrongURL    = 5   // the token URL is not a token endpoint
	exitInterrupted = 130 // Ctrl-C or SIGTERM
)

const exitTable = `Exit codes:
  0    ok
  1    the API call failed: no reply, a status of 400 or more, or the body was not written
  2    usage: a bad flag, argument or URL, or a missing secret; nothing was sent
  3    the token endpoint refused the credentials (invalid_client, invalid_grant, other 4xx)
  4    the token endpoint is unavailable: 5xx, 429, connection refused or reset,
       no reply within --timeout, circuit breaker open
  5    the token URL is wrong: the endpoint answered 404, 405, 410, a redirect, or a
       reply that is not a token (the credentials were not checked)
  130  interrupted (Ctrl-C, SIGTERM)
`

// usageError is a bad flag, argument or URL: exit code 2.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// tokenExit maps an error from getting a token to an exit code.
func tokenExit(err error) int {
	var te *source.Error
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue), errors.Is(err, source.ErrInvalidConfig), errors.Is(err, errOTPSpent):
		return exitUsage
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &te):
		switch {
		case te.NotTokenEndpoint():
			return exitWrongURL
		case te.Temporary():
			return exitUnavailable
		}
		return exitRefused
	case errors.Is(err, source.ErrBreakerOpen), errors.As(err, new(*source.FetchError)),
		errors.Is(err, context.DeadlineExceeded):
		return exitUnavailable
	}
	return exitFailed
}

// tokenMessage is the text of a token error for a command-line user: the
// library's field names mapped to flags, and what the exit code means.
func tokenMessage(err error, timeout string) string {
	msg := cliText(err.Error())
	var te *source.Error
	switch {
	case errors.As(err, &te) && te.NotTokenEndpoint():
		what := fmt.Sprintf("answered HTTP %d", te.StatusCode)
		if te.StatusCode >= 200 && te.StatusCode < 300 {
			what = fmt.Sprintf("answered HTTP %d with something that is not a token", te.StatusCode)
		}
		msg = fmt.Sprintf("the %s token URL %s (%s): it is not a token endpoint; check --token-url (the credentials were not checked)",
			te.Provider, what, cliText(te.Description))
	case errors.Is(err, context.DeadlineExceeded) && !errors.As(err, new(*source.FetchError)):
		msg = "the token endpoint did not answer within --timeout " + timeout + " (" + msg + ")"
	case errors.Is(err, context.DeadlineExceeded):
		msg += " (--timeout " + timeout + ")"
	case te != nil && te.Hint() != "":
		msg += "; " + cliText(te.Hint())
	}
	return msg
}

// fieldFlags maps the library's Config fields to this tool's flags.
var fieldFlags = map[string]string{
	"TokenURL": "--token-url", "ClientID": "--client-id",
	"ClientSecret": "the client secret ($TOKENHTTP_CLIENT_SECRET or --client-secret-file)",
	"Username":     "--username", "Password": "the password", "PasswordFunc": "the password",
	"GrantType": "--grant", "Scopes": "--scope", "Lifetime": "--lifetime", "Cloud": "--cloud",
	"Origin": "--origin", "AuthStyle": "--auth", "Encoding": "--encoding",
	"AllowInsecureHTTP": "--insecure", "FetchTimeout": "--timeout", "Provider": "--provider",
	"RefreshToken": "--refresh-token-file", "Assertion": "--assertion-file", "SubjectToken": "--subject-token-file",
	"SubjectTokenType": "--subject-token-type", "Exchange": "the token exchange flags",
	"ClientAssertion": "--client-assertion-file", "PrivateKey": "--private-key", "KeyID": "--key-id",
	"AssertionAudience": "--assertion-audience", "SigningAlgorithm": "--signing-alg",
	"ClientCertificate": "--client-cert or --p12",
}

// phrases rewrites whole phrases first, where a field-by-field rewrite
// would read badly.
var phrases = strings.NewReplacer(
	"check Config.ClientID and ClientSecret, and how the provider wants them sent (Config.AuthStyle)",
	"check --client-id and the client secret ($TOKENHTTP_CLIENT_SECRET, --client-secret-env or --client-secret-file), and where it goes (--auth)",
	"Config.Password or Config.PasswordFunc is required", "a password is required ($TOKENHTTP_PASSWORD, --password-file or --password-stdin)",
	"check Config.Username and the password (or one-time password)", "check --username and the password (or one-time password)",
	"set AllowInsecureHTTP if the network is trusted", "use --insecure if the network is trusted",
	"check the Provider and Config", "check --provider and the flags",
	"; leave GrantType empty", "; leave out --grant",
	"use source.ClientCredentials, Password, RefreshToken, JWTBearer or TokenExchange", "use client_credentials, password, refresh_token, jwt-bearer or token-exchange",
	"source.ClientCredentials", "client_credentials", "source.Password", "password",
	"Provider.", "the provider's ", "Config.PasswordFunc: ", "",
)

var configField = regexp.MustCompile(`\bConfig\.([A-Za-z]+)`)

// cliText rewrites a library error for a command-line user: no Go
// identifiers, no package prefixes.
func cliText(msg string) string {
	msg = phrases.Replace(msg)
	msg = configField.ReplaceAllStringFunc(msg, func(m string) string {
		if f, ok := fieldFlags[strings.TrimPrefix(m, "Config.")]; ok {
			return f
		}
		return m
	})
	for _, p := range []string{"source: invalid config: ", "source: ", "tokenhttp: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	return msg
}
