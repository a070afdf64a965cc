package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/internal/safehttp"
)

const callHelp = `Usage: tokenhttp call [flags] URL [flags]

Make an authenticated request, like curl: the token is fetched with the
credential flags and attached; a 401 gets one new token and one retry.
The body goes to standard output; a binary body is refused at a terminal
unless -o FILE or -o - says where it goes. The exit code is 1 when the API
answers 400 or more. Flags may come before or after the URL.

Examples:
  tokenhttp call --token-url https://auth.example.com/oauth/token --client-id app https://api.example.com/orders
  tokenhttp call --provider scorepositivo --client-id app -d @query.json -H "Content-Type: application/json" https://api.example.com/score
  echo '{"id": 42}' | tokenhttp call --provider serproid --client-id app -d @- https://api.example.com/app
  tokenhttp call --provider serproid --client-id app https://api.example.com/report.pdf -o report.pdf
  tokenhttp call --provider gestaoplus --username u https://api.gestao.plus/v1/me -i -v
  tokenhttp call --token-url https://auth.example.com/token --client-id app --grant token-exchange --subject-token-file ./id.jwt --resource https://api.example.com/ https://api.example.com/orders
`

func runCall(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("call", flag.ContinueOnError)
	var cf credFlags
	cf.register(fs)
	method := fs.String("X", "", "request method (default GET, or POST with -d)")
	data := fs.String("d", "", "request body; @FILE reads it from a file, @- from standard input")
	var headers repeated
	fs.Var(&headers, "H", `request header "Name: value" (repeatable)`)
	include := fs.Bool("i", false, "print the response status and headers")
	output := fs.String("o", "", "write the body to FILE, or - for standard output even when it is binary")
	verbose := fs.Bool("v", false, "trace the token requests and the API request on standard error, secrets marked and tokens fingerprinted")
	show := fs.Bool("show-token", false, "with -v, show the API request's Authorization value as it is (a secret)")
	pos, help, err := parseArgs(fs, args)
	switch {
	case help:
		printHelp(e.stdout, callHelp, fs)
		return exitOK
	case err != nil:
		return flagError(e, "call", err)
	case len(pos) != 1:
		return flagError(e, "call", usagef("give exactly one URL, got %d", len(pos)))
	}
	cf.set = setFlags(fs)
	if *data == "@-" && cf.passwordStdin {
		return flagError(e, "call", usagef("-d @- and --password-stdin both read standard input; put the body in a file or the password in $%s", cf.passwordEnv))
	}
	req, err := buildRequest(ctx, e, pos[0], *method, *data, headers)
	if err != nil {
		return flagError(e, "call", err)
	}
	if req.URL.Scheme == "http" && !cf.insecure && !safehttp.IsLoopback(req.URL.Hostname()) {
		return flagError(e, "call", usagef("%s is cleartext http to a host that is not loopback: the token would cross the network in the clear; use https, or --insecure if the network is trusted", redactURL(req.URL.String())))
	}
	tr := newTracer(e.stderr, *verbose, *show)
	// The flags and secrets first: a prompt is not bounded by --timeout
	// (Ctrl-C ends it).
	src, pw, err := cf.newSource(ctx, e, tr)
	if err != nil {
		return fail(e, tr, "call", err, cf.timeout)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	// The token first, so that its errors have the token endpoint's exit
	// codes; the Transport then takes it from the cache.
	start := time.Now()
	if _, err := src.Token(ctx); err != nil {
		return fail(e, tr, "call", err, cf.timeout)
	}
	tr.printf("* token ready after %s", ms(time.Since(start)))
	base, closeBase := apiBase(src, cf.ca.roots)
	defer closeBase()
	opts := []tokenhttp.Option{tokenhttp.WithBase(tr.apiTransport(base))}
	if cf.insecure {
		opts = append(opts, tokenhttp.WithInsecureHTTP())
	}
	start = time.Now()
	resp, err := tokenhttp.NewClient(src, opts...).Do(req.WithContext(ctx))
	if err != nil {
		return apiFailure(e, tr, req, err, cf.timeout)
	}
	defer resp.Body.Close()
	tr.printf("* API call done after %s", ms(time.Since(start)))
	code := writeReply(e, resp, *include, *output)
	if code != exitOK {
		return code
	}
	if resp.StatusCode >= 400 {
		fmt.Fprintf(e.stderr, "tokenhttp call: the API answered %s\n", resp.Status)
		if err := pw.spentError(); resp.StatusCode == http.StatusUnauthorized && err != nil {
			fmt.Fprintf(e.stderr, "tokenhttp call: no new token after the 401: %s\n", cliText(err.Error()))
		}
		return exitFailed
	}
	return exitOK
}

// apiFailure reports a request that got no reply: the URL with its query
// redacted (an api_key there is a secret), and exit 1 (130 on Ctrl-C).
func apiFailure(e env, tr *tracer, req *http.Request, err error, timeout time.Duration) int {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := cliText(err.Error())
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "no reply within --timeout " + timeout.String()
	}
	fmt.Fprintf(e.stderr, "tokenhttp call: %s %s: %s\n", req.Method, redactURL(req.URL.String()), tr.scrub(msg))
	if errors.Is(err, context.Canceled) {
		return exitInterrupted
	}
	return exitFailed
}

// writeReply writes the status and headers (-i) and the body where -o
// says. At a terminal, a binary body is refused, as curl does.
func writeReply(e env, resp *http.Response, include bool, output string) int {
	var w io.Writer = e.stdout
	if output != "" && output != "-" {
		f, err := os.Create(output)
		if err != nil {
			fmt.Fprintf(e.stderr, "tokenhttp call: -o: %v\n", err)
			return exitFailed
		}
		defer f.Close()
		w = f
	}
	if include {
		fmt.Fprintf(w, "%s %s\n", resp.Proto, resp.Status)
		names := make([]string, 0, len(resp.Header))
		for k := range resp.Header {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			for _, v := range resp.Header[k] {
				fmt.Fprintf(w, "%s: %s\n", k, sanitize(v))
			}
		}
		fmt.Fprintln(w)
	}
	body := bufio.NewReaderSize(resp.Body, 8<<10)
	if output == "" && e.stdoutTerminal {
		head, _ := body.Peek(8 << 10)
		if binary(head) {
			fmt.Fprintf(e.stderr, "tokenhttp call: the body (%s) is binary and standard output is a terminal, which it could garble; use -o FILE to save it, or -o - to print it anyway\n",
				resp.Header.Get("Content-Type"))
			return exitFailed
		}
		w = &ttyGuard{w: w}
	}
	if _, err := io.Copy(w, body); err != nil {
		fmt.Fprintln(e.stderr, "tokenhttp call: writing the body:", err)
		return exitFailed
	}
	return exitOK
}

// binary reports bytes that do not belong on a terminal: NUL, escape and
// the other control characters but tab, line feed and carriage return.
func binary(b []byte) bool {
	return bytes.ContainsFunc(b, func(r rune) bool {
		return (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f
	})
}

// ttyGuard stops a body that turns binary after its first bytes.
type ttyGuard struct{ w io.Writer }

var errBinary = errors.New("the rest of the body is binary; use -o FILE to save it, or -o - to print it anyway")

func (g *ttyGuard) Write(p []byte) (int, error) {
	if binary(p) {
		return 0, errBinary
	}
	return g.w.Write(p)
}

// buildRequest checks the URL and builds a request whose body can be
// replayed (for the retry after a 401).
func buildRequest(ctx context.Context, e env, rawURL, method, data string, headers []string) (*http.Request, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("%q is not an absolute http(s) URL", redactURL(rawURL))
	}
	var body []byte
	switch {
	case data == "@-":
		if body, err = io.ReadAll(e.stdin); err != nil {
			return nil, usagef("-d @-: reading standard input: %v", err)
		}
	case strings.HasPrefix(data, "@"):
		if body, err = os.ReadFile(data[1:]); err != nil {
			return nil, usagef("-d: reading the body file: %v", err)
		}
	case data != "":
		body = []byte(data)
	}
	if method == "" {
		method = http.MethodGet
		if body != nil {
			method = http.MethodPost
		}
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, strings.ToUpper(method), u.String(), r)
	if err != nil {
		return nil, usagef("bad request: %v", err)
	}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, usagef("-H %q: use \"Name: value\"", h)
		}
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return req, nil
}
