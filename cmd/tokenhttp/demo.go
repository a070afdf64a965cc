package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/retry"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
	"github.com/tokenhttp/tokenhttp/telemetry"
)

const demoHelp = `Usage: tokenhttp demo

Start local emulators of six token endpoints (RFC 6749 and the five
providers' dialects, each with an API behind it) and an mTLS one on
loopback, and show in a transcript:
  1. each endpoint's token fetched once and reused across calls;
  1b. an mTLS token bound to the client certificate (PIX, Open Finance);
  2. a revoked token survived with one refresh and one retry;
  3. an outage of a token endpoint: the still-valid token keeps serving, the
     circuit breaker opens, calls then fail fast, and the endpoint recovers;
  4. the spans of the run, as a tracing dashboard would show them.
Nothing leaves the machine; it takes a few seconds.

Examples:
  tokenhttp demo
  go run ./cmd/tokenhttp demo     # from a checkout of the module
`

// transcript prints lines stamped with the time since the demo started.
type transcript struct {
	w     io.Writer
	start time.Time
	tel   telemetry.Providers // where the sources' spans go
	mu    sync.Mutex
}

func (t *transcript) say(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.w, "%6.2fs  %s\n", time.Since(t.start).Seconds(), fmt.Sprintf(format, args...))
}

func (t *transcript) title(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.w, "\n%s\n", s)
}

func runDemo(ctx context.Context, args []string, e env) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	pos, help, err := parseArgs(fs, args)
	switch {
	case help:
		printHelp(e.stdout, demoHelp, fs)
		return exitOK
	case err != nil:
		return flagError(e, "demo", err)
	case len(pos) > 0:
		return flagError(e, "demo", usagef("unexpected argument %q", pos[0]))
	}
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.WithoutCancel(ctx))
	t := &transcript{w: e.stdout, start: time.Now(), tel: telemetry.Providers{TracerProvider: tp}}
	fmt.Fprintln(e.stdout, "tokenhttp demo: six token endpoint emulators on loopback (RFC 6749 and five dialects); no secret is printed.")
	for _, step := range []func(context.Context, *transcript) error{demoProviders, demoMTLS, demoRevocation, demoOutage} {
		if err := step(ctx, t); err != nil {
			fmt.Fprintln(e.stderr, "tokenhttp demo:", err)
			return exitFailed
		}
	}
	printSpans(e.stdout, t.start, spans.Ended())
	fmt.Fprintf(e.stdout, "\ndemo finished in %.1fs\n", time.Since(t.start).Seconds())
	return exitOK
}

// printSpans prints the token fetch spans of the run as a table; runs of
// identical rows are one row with a count and the range of their times.
func printSpans(w io.Writer, start time.Time, spans []sdktrace.ReadOnlySpan) {
	fmt.Fprintf(w, "\n4. The spans of the run (%s), as a tracing dashboard would show them\n", telemetry.SpanFetch)
	type row struct {
		cells      []string
		first, end time.Duration // start times of the first and last span, from the demo's start
		lo, hi     time.Duration // shortest and longest duration
		n          int
	}
	var rows []*row
	for _, s := range spans {
		a := map[string]string{}
		for _, kv := range s.Attributes() {
			a[string(kv.Key)] = kv.Value.String()
		}
		var events []string
		for _, ev := range s.Events() {
			name := map[string]string{telemetry.EventRetry: "retry", telemetry.EventBreakerState: "breaker"}[ev.Name]
			for _, kv := range ev.Attributes {
				if kv.Key == telemetry.AttrBreakerTo {
					name += "->" + kv.Value.String()
				}
			}
			events = append(events, name)
		}
		cells := []string{a[telemetry.AttrProvider], a[telemetry.AttrGrantType],
			a[telemetry.AttrRefreshReason], a[telemetry.AttrAttempts], a[telemetry.AttrHTTPStatusCode],
			a[telemetry.AttrOutcome], a[telemetry.AttrErrorType], strings.Join(events, ",")}
		at, d := s.StartTime().Sub(start), s.EndTime().Sub(s.StartTime())
		if n := len(rows); n > 0 && slices.Equal(rows[n-1].cells, cells) {
			r := rows[n-1]
			r.n++
			r.end, r.lo, r.hi = at, min(r.lo, d), max(r.hi, d)
			continue
		}
		rows = append(rows, &row{cells: cells, first: at, end: at, lo: d, hi: d, n: 1})
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  at\tprovider\tgrant\treason\tattempts\tstatus\toutcome\terror.type\tevents\tduration")
	for _, r := range rows {
		at, d, n := fmt.Sprintf("%.2fs", r.first.Seconds()), ms(r.lo), ""
		if r.n > 1 {
			at = fmt.Sprintf("%.2f–%.2fs", r.first.Seconds(), r.end.Seconds())
			n = fmt.Sprintf("  × %d", r.n)
			if ms(r.lo) != ms(r.hi) {
				d = ms(r.lo) + "–" + ms(r.hi)
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s%s\n", at, strings.Join(r.cells, "\t"), d, n)
	}
	tw.Flush()
}

// demoProvider is one emulated provider and the Config a user would write.
type demoProvider struct {
	name string
	emu  *sourcetest.Server
	cfg  source.Config
	rec  *recorder // its token traffic, for the quirk line
}

// recorder keeps the last token request and reply that went through it.
type recorder struct {
	mu                sync.Mutex
	reqType, respType string
	req, resp         []byte
	basic             bool
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.GetBody != nil {
		if rc, err := req.GetBody(); err == nil {
			body, _ = io.ReadAll(rc)
			rc.Close()
		}
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _, r.basic = req.BasicAuth()
	r.reqType, r.req = req.Header.Get("Content-Type"), body
	r.respType, r.resp = resp.Header.Get("Content-Type"), b
	return resp, err
}

// quirk describes, in one line, what the last exchange shows of the
// dialect: the body's encoding, where the client credentials went, and
// what is unusual in the reply. It names fields, never their values,
// except a string expires_in.
func (r *recorder) quirk() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	req, kind := parseBody(r.reqType, r.req)
	var parts []string
	body := map[string]string{"json": "JSON body", "form": "form body"}[kind]
	switch v, has := req["client_secret"]; {
	case r.basic:
		body += ", client id and secret by HTTP Basic"
	case has && v == nil:
		body += `, "client_secret": null`
	case has:
		body += ", client_id and client_secret in the body"
	default:
		body += ", no client credentials"
	}
	parts = append(parts, body)
	reply, _ := parseBody(r.respType, r.resp)
	if v, ok := reply["expires_in"].(string); ok {
		parts = append(parts, fmt.Sprintf("reply: \"expires_in\": %q, a string", v))
	}
	if v, ok := reply["Authorization"].(string); ok {
		scheme, _, _ := strings.Cut(v, " ")
		parts = append(parts, fmt.Sprintf("reply: \"Authorization\": \"%s …\", sent verbatim as the header", scheme))
	}
	if v, ok := reply["access_token"].(string); ok && strings.HasPrefix(v, "eyJ") {
		parts = append(parts, "reply: the access token is a JWT")
	}
	if _, ok := reply["refresh_token"]; ok {
		parts = append(parts, "reply: a refresh token")
	}
	return strings.Join(parts, "; ")
}

func startProviders(tel telemetry.Providers) []demoProvider {
	otp := 100000
	var mu sync.Mutex
	nextOTP := func(context.Context) (string, error) { // a new one-time password each time
		mu.Lock()
		defer mu.Unlock()
		otp++
		return fmt.Sprint(otp), nil
	}
	standard := sourcetest.NewStandard(sourcetest.Options{})
	vault := sourcetest.NewVaultID(sourcetest.Options{})
	direct := sourcetest.NewDirectLink(sourcetest.Options{})
	score := sourcetest.NewScorePositivo(sourcetest.Options{})
	gestao := sourcetest.NewGestaoPlus(sourcetest.Options{})
	serpro := sourcetest.NewSerproID(sourcetest.Options{})
	ps := []demoProvider{
		{"Standard", standard, source.Config{Provider: source.Standard, TokenURL: standard.TokenURL,
			ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret}, nil},
		{"VaultID CESS", vault, source.Config{Provider: source.VaultID, TokenURL: vault.TokenURL,
			ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret,
			Username: sourcetest.DefaultVaultIDUsername, PasswordFunc: nextOTP, Cloud: "DEMOCLOUD"}, nil},
		{"DirectLink", direct, source.Config{Provider: source.DirectLink, TokenURL: direct.TokenURL,
			Username: sourcetest.DefaultUsername, Password: sourcetest.DefaultPassword}, nil},
		{"Score Positivo", score, source.Config{Provider: source.ScorePositivo, TokenURL: score.TokenURL,
			ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret}, nil},
		{"gestao.plus", gestao, source.Config{Provider: source.GestaoPlus, TokenURL: gestao.TokenURL,
			Username: sourcetest.DefaultUsername, Password: sourcetest.DefaultPassword}, nil},
		{"SerproID", serpro, source.Config{Provider: source.SerproID, TokenURL: serpro.TokenURL,
			ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret}, nil},
	}
	for i := range ps {
		ps[i].cfg.Telemetry = tel
		ps[i].rec = &recorder{}
		ps[i].cfg.HTTPClient = &http.Client{Transport: ps[i].rec}
	}
	return ps
}

// get calls url and returns the status, or the error's text.
func get(ctx context.Context, c *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func demoProviders(ctx context.Context, t *transcript) error {
	t.title("1. RFC 6749 and each provider's dialect: one token request, reused across calls")
	ps := startProviders(t.tel)
	defer func() {
		for _, p := range ps {
			p.emu.Close()
		}
	}()
	for _, p := range ps {
		src, err := source.New(p.cfg)
		if err != nil {
			return err
		}
		client := tokenhttp.NewClient(src)
		statuses := ""
		for range 3 {
			status, err := get(ctx, client, p.emu.ResourceURL)
			if err != nil {
				src.Close()
				return fmt.Errorf("%s: %w", p.name, err)
			}
			statuses += fmt.Sprint(" ", status)
		}
		tok, _ := src.Token(ctx)
		scheme := "Bearer"
		if tok.Authorization != "" {
			scheme = "provider's own header (" + firstWord(tok.Authorization) + " …)"
		}
		t.say("%-15s 3 API calls:%s   token requests: %d   lifetime: %-10s header: %s",
			p.name, statuses, p.emu.TokenRequests(), lifetime(time.Until(tok.Expiry)), scheme)
		t.say("%-15s quirk: %s", "", p.rec.quirk())
		src.Close()
	}
	return nil
}

// demoMTLS shows an mTLS provider (PIX style): tls_client_auth, a token
// bound to the certificate, API calls that present it.
func demoMTLS(ctx context.Context, t *transcript) error {
	t.title("1b. mTLS (PIX, Open Finance Brasil): the client certificate authenticates, and the token is bound to it")
	emu := sourcetest.NewMTLS(sourcetest.Options{}, sourcetest.MTLSOptions{})
	defer emu.Close()
	cert := emu.CA.ClientCertificate(sourcetest.DefaultClientID)
	roots := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: emu.CA.Pool}}}
	src, err := source.New(source.Config{TokenURL: emu.TokenURL, ClientID: sourcetest.DefaultClientID, HTTPClient: roots, Telemetry: t.tel,
		ClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }})
	if err != nil {
		return err
	}
	defer src.Close()
	client := tokenhttp.NewClient(src) // no WithBase: it presents the certificate too
	defer client.CloseIdleConnections()
	statuses := ""
	for range 3 {
		status, err := get(ctx, client, emu.ResourceURL)
		if err != nil {
			return fmt.Errorf("mtls: %w", err)
		}
		statuses += fmt.Sprint(" ", status)
	}
	tok, err := src.Token(ctx)
	if err != nil {
		return err
	}
	cnf, _ := tok.Extra["cnf"].(map[string]any)
	t.say("%-15s 3 API calls:%s   token requests: %d   token bound to the certificate (cnf x5t#S256 %.8s…)",
		"mtls", statuses, emu.TokenRequests(), fmt.Sprint(cnf["x5t#S256"]))
	return nil
}

func firstWord(s string) string {
	for i, r := range s {
		if r == ' ' {
			return s[:i]
		}
	}
	return s
}

func demoRevocation(ctx context.Context, t *transcript) error {
	t.title("2. The API revokes gestao.plus's access token")
	emu := sourcetest.NewGestaoPlus(sourcetest.Options{})
	defer emu.Close()
	src, err := source.New(source.Config{Provider: source.GestaoPlus, TokenURL: emu.TokenURL,
		Username: sourcetest.DefaultUsername, Password: sourcetest.DefaultPassword, Telemetry: t.tel})
	if err != nil {
		return err
	}
	defer src.Close()
	client := tokenhttp.NewClient(src, tokenhttp.WithTelemetry(t.tel))
	status, err := get(ctx, client, emu.ResourceURL)
	if err != nil {
		return err
	}
	t.say("call: %d   token requests: password %d", status, emu.Requests("password"))
	tok, _ := src.Token(ctx)
	emu.Revoke(tok.AccessToken)
	t.say("the API revoked the access token (its refresh token still works)")
	status, err = get(ctx, client, emu.ResourceURL)
	if err != nil {
		return err
	}
	t.say("call: %d   the API said 401; the Transport dropped that token, renewed it, retried once", status)
	t.say("token requests: password %d, refresh_token %d   API calls: %d (one was the 401)",
		emu.Requests("password"), emu.Requests("refresh_token"), emu.ResourceRequests())
	return nil
}

func demoOutage(ctx context.Context, t *transcript) error {
	t.title("3. Score Positivo's token endpoint goes down while its token is still valid")
	emu := sourcetest.NewScorePositivo(sourcetest.Options{Lifetime: 3 * time.Second})
	defer emu.Close()
	src, err := source.New(source.Config{Provider: source.ScorePositivo, TokenURL: emu.TokenURL,
		ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret,
		Telemetry:    t.tel,
		RefreshAhead: 2 * time.Second, // renew from the first second of a 3 s token
		Retry:        retry.Policy{MaxAttempts: 2, MinWait: 50 * time.Millisecond, MaxWait: 100 * time.Millisecond},
		Breaker: retry.BreakerSettings{Failures: 2, OpenFor: 2 * time.Second,
			OnStateChange: func(from, to string) { t.say("circuit breaker: %s -> %s", from, to) }},
	})
	if err != nil {
		return err
	}
	defer src.Close()
	client := tokenhttp.NewClient(src)
	if _, err := get(ctx, client, emu.ResourceURL); err != nil {
		return err
	}
	tok, _ := src.Token(ctx)
	t.say("token fetched, valid for %s; it is renewed in the background ahead of expiry", time.Until(tok.Expiry).Round(100*time.Millisecond))
	emu.FailNext(1<<30, http.StatusServiceUnavailable, "")
	t.say("the token endpoint now answers 503 to everything")

	deadline := time.Now().Add(6 * time.Second)
	healed := false
	last := ""
	for time.Now().Before(deadline) {
		start := time.Now()
		status, err := get(ctx, client, emu.ResourceURL)
		kind, line := "ok", fmt.Sprintf("calls: %d, with the still-valid token", status)
		if healed {
			line = fmt.Sprintf("calls: %d, with a new token", status)
		}
		if err != nil {
			kind = shortError(err)
			line = fmt.Sprintf("calls fail fast (%s): %s", sinceShort(start), kind)
			if oe := (*source.BreakerOpenError)(nil); errors.As(err, &oe) {
				line += fmt.Sprintf("; next try in %s", time.Until(oe.Until).Round(100*time.Millisecond))
			}
		}
		if kind != last {
			t.say("%s   token requests so far: %d", line, emu.TokenRequests())
			last = kind
		}
		if err != nil && !healed {
			if !errors.Is(err, source.ErrBreakerOpen) {
				continue
			}
			emu.FailNext(0, 0, "")
			healed = true
			t.say("the token endpoint is back; the breaker lets one probe through when its open time ends")
		}
		if healed && err == nil {
			t.say("recovered: the probe got a new token and calls succeed again")
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return errors.New("the outage scenario did not recover in time")
}

// shortError names the kind of failure without the whole chain.
func shortError(err error) string {
	var oe *source.BreakerOpenError
	var te *source.Error
	switch {
	case errors.As(err, &oe):
		return "circuit breaker open, no request sent"
	case errors.As(err, &te):
		return fmt.Sprintf("token endpoint said %s (HTTP %d)", te.Code, te.StatusCode)
	}
	return err.Error()
}

// sinceShort is the time since start.
func sinceShort(start time.Time) string { return "in " + ms(time.Since(start)) }

// lifetime writes a token lifetime the way people say it.
func lifetime(d time.Duration) string {
	switch d = d.Round(time.Minute); {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", d/time.Hour)
	default:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
}
