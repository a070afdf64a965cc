package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/internal/safehttp"
)

const callHelp = `Usage: tokenhttp call [flags] URL

Make an authenticated request, like curl: the token is fetched with the
credential flags and attached; a 401 gets one refresh and one retry.
The exit code is 1 when the API answers 400 or more.

Examples:
  tokenhttp call --token-url https://auth.example.com/oauth/token --client-id app https://api.example.com/orders
  tokenhttp call --provider scorepositivo --client-id app -X POST -d @query.json -H "Content-Type: application/json" https://api.example.com/score
  tokenhttp call --provider serproid --client-id app -i -v https://api.example.com/app

Flags:
`

// headerFlag is a repeatable -H "Name: value".
type headerFlag []string

func (h *headerFlag) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlag) Set(v string) error { *h = append(*h, v); return nil }

func runCall(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("call", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(e.stderr, callHelp); fs.PrintDefaults() }
	var cf credFlags
	cf.register(fs)
	method := fs.String("X", "", "request method (default GET, or POST with -d)")
	data := fs.String("d", "", "request body; @file reads it from a file")
	var headers headerFlag
	fs.Var(&headers, "H", `request header "Name: value" (repeatable)`)
	include := fs.Bool("i", false, "print the response status and headers")
	verbose := fs.Bool("v", false, "show the token traffic and the request (redacted) on standard error")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(e.stderr, "tokenhttp call: give exactly one URL (flags go before it)")
		return exitUsage
	}
	req, err := buildRequest(ctx, fs.Arg(0), *method, *data, headers)
	if err != nil {
		return exitCode(e, err)
	}
	if req.URL.Scheme == "http" && !cf.insecure && !safehttp.IsLoopback(req.URL.Hostname()) {
		return exitCode(e, usagef("%q is cleartext http to a host that is not loopback: the token would cross the network in the clear; use https, or --insecure if the network is trusted", req.URL.Redacted()))
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	src, _, err := cf.newSource(e, *verbose)
	if err != nil {
		return exitCode(e, err)
	}
	defer closeSource(src)
	var base http.RoundTripper = http.DefaultTransport
	if *verbose {
		base = logTransport{base: base, w: e.stderr, prefix: "api"}
	}
	opts := []tokenhttp.Option{tokenhttp.WithBase(base)}
	if cf.insecure {
		opts = append(opts, tokenhttp.WithInsecureHTTP())
	}
	resp, err := tokenhttp.NewClient(src, opts...).Do(req.WithContext(ctx))
	if err != nil {
		return exitCode(e, err)
	}
	defer resp.Body.Close()
	if *include {
		fmt.Fprintf(e.stdout, "%s %s\n", resp.Proto, resp.Status)
		names := make([]string, 0, len(resp.Header))
		for k := range resp.Header {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			for _, v := range resp.Header[k] {
				fmt.Fprintf(e.stdout, "%s: %s\n", k, v)
			}
		}
		fmt.Fprintln(e.stdout)
	}
	if _, err := io.Copy(e.stdout, resp.Body); err != nil {
		fmt.Fprintln(e.stderr, "tokenhttp: reading the response:", err)
		return exitFailed
	}
	if resp.StatusCode >= 400 {
		fmt.Fprintf(e.stderr, "tokenhttp: the API answered %s\n", resp.Status)
		return exitFailed
	}
	return exitOK
}

// buildRequest checks the URL and builds a request whose body can be
// replayed (for the retry after a 401).
func buildRequest(ctx context.Context, rawURL, method, data string, headers []string) (*http.Request, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("%q is not an absolute http(s) URL", rawURL)
	}
	var body []byte
	if strings.HasPrefix(data, "@") {
		if body, err = os.ReadFile(data[1:]); err != nil {
			return nil, usagef("reading the body file: %v", err)
		}
	} else if data != "" {
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
