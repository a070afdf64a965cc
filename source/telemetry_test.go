package source_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tokenhttp/tokenhttp/internal/testsupport"
	"github.com/tokenhttp/tokenhttp/retry"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
	"github.com/tokenhttp/tokenhttp/telemetry"
)

// Secrets the telemetry tests configure. Each is long and unusual enough
// that finding it in a recording cannot be a coincidence.
const (
	telSecret      = "tel-client-secret-Zq8vK2"
	telWrongSecret = "tel-wrong-secret-Hx4pL9"
	telRotated     = "tel-rotated-secret-Mw7nB3"
	telPassword    = "tel-password-Rt5yU1"
)

// telSDK is an OpenTelemetry SDK that keeps every span and metric in
// memory.
type telSDK struct{ *testsupport.OTel }

func newTelSDK(t testing.TB) *telSDK { return &telSDK{testsupport.NewOTel(t)} }

// fetchSpans returns the ended SpanFetch spans, in the order they ended.
func (s *telSDK) fetchSpans() []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, sp := range s.Spans.Ended() {
		if sp.Name() == telemetry.SpanFetch {
			out = append(out, sp)
		}
	}
	return out
}

func (s *telSDK) collect(t testing.TB) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := s.Reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	return rm
}

// dump serializes everything recorded: every span (name, attributes,
// events and their attributes, status, links, resource, scope) and every
// metric (names, descriptions, units, data points with their attribute
// sets and exemplars).
func (s *telSDK) dump(t testing.TB, rm metricdata.ResourceMetrics) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // keep the text as recorded
	for _, spans := range [][]sdktrace.ReadOnlySpan{s.Spans.Ended(), telReadOnly(s.Spans.Started())} {
		if err := enc.Encode(tracetest.SpanStubsFromReadOnlySpans(spans)); err != nil {
			t.Fatalf("encoding spans: %v", err)
		}
	}
	// Attribute values as their plain text too, in case JSON escaped any.
	for _, sp := range s.Spans.Ended() {
		fmt.Fprintf(&b, "%s %q\n", sp.Name(), sp.Status().Description)
		for _, kv := range sp.Attributes() {
			fmt.Fprintf(&b, "%s=%s\n", kv.Key, kv.Value.String())
		}
		for _, ev := range sp.Events() {
			fmt.Fprintf(&b, "event %s\n", ev.Name)
			for _, kv := range ev.Attributes {
				fmt.Fprintf(&b, "%s=%s\n", kv.Key, kv.Value.String())
			}
		}
	}
	if err := enc.Encode(rm); err != nil {
		t.Fatalf("encoding metrics: %v", err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			fmt.Fprintf(&b, "metric %s %s %s\n", m.Name, m.Description, m.Unit)
			for _, set := range telDataPointSets(m) {
				fmt.Fprintf(&b, "  %s\n", set.Encoded(attribute.DefaultEncoder()))
			}
		}
	}
	return b.String()
}

func telReadOnly(spans []sdktrace.ReadWriteSpan) []sdktrace.ReadOnlySpan {
	out := make([]sdktrace.ReadOnlySpan, len(spans))
	for i, s := range spans {
		out[i] = s
	}
	return out
}

// telDataPointSets returns the attribute sets of m's data points.
func telDataPointSets(m metricdata.Metrics) []attribute.Set {
	var out []attribute.Set
	telPoints(m, func(set attribute.Set, _ string) { out = append(out, set) })
	return out
}

// telMetricValues returns metric name's data points as "attr set" -> value
// text (for a histogram, its count).
func telMetricValues(rm metricdata.ResourceMetrics, name string) map[string]string {
	out := map[string]string{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				telPoints(m, func(set attribute.Set, v string) { out[telSetKey(set)] = v })
			}
		}
	}
	return out
}

// telPoints calls f with the attribute set and the value text (for a
// histogram, its count) of each of m's data points.
func telPoints(m metricdata.Metrics, f func(set attribute.Set, value string)) {
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		telValues(d.DataPoints, f)
	case metricdata.Sum[float64]:
		telValues(d.DataPoints, f)
	case metricdata.Gauge[int64]:
		telValues(d.DataPoints, f)
	case metricdata.Gauge[float64]:
		telValues(d.DataPoints, f)
	case metricdata.Histogram[int64]:
		telCounts(d.DataPoints, f)
	case metricdata.Histogram[float64]:
		telCounts(d.DataPoints, f)
	}
}

func telValues[N int64 | float64](dps []metricdata.DataPoint[N], f func(attribute.Set, string)) {
	for _, dp := range dps {
		switch v := any(dp.Value).(type) {
		case int64:
			f(dp.Attributes, strconv.FormatInt(v, 10))
		case float64:
			f(dp.Attributes, strconv.FormatFloat(v, 'f', -1, 64))
		}
	}
}

func telCounts[N int64 | float64](dps []metricdata.HistogramDataPoint[N], f func(attribute.Set, string)) {
	for _, dp := range dps {
		f(dp.Attributes, strconv.FormatUint(dp.Count, 10))
	}
}

func telSetKey(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.String())
	}
	return strings.Join(parts, ",")
}

func telAttrs(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// telCapture is the HTTP client's transport of a test: it passes requests
// on and keeps every secret that crossed it — the Authorization header,
// the secret fields of request bodies, and the tokens of replies.
type telCapture struct {
	base http.RoundTripper

	mu      sync.Mutex // guards secrets
	secrets []string
}

func (c *telCapture) keep(s string) {
	if s == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Contains(c.secrets, s) {
		c.secrets = append(c.secrets, s)
	}
}

func (c *telCapture) seen() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.secrets)
}

func (c *telCapture) RoundTrip(req *http.Request) (*http.Response, error) {
	if h := req.Header.Get("Authorization"); h != "" {
		c.keep(h)
		if _, cred, ok := strings.Cut(h, " "); ok {
			c.keep(cred)
		}
	}
	if req.GetBody != nil {
		if body, err := req.GetBody(); err == nil {
			b, _ := io.ReadAll(body)
			body.Close()
			c.keepFields(b, "client_secret", "password", "refresh_token")
		}
	}
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	if err != nil {
		return resp, nil // the client sees the short body; nothing to keep
	}
	c.keepFields(b, "access_token", "refresh_token")
	return resp, nil
}

// keepFields keeps the named fields of a form or JSON body.
func (c *telCapture) keepFields(b []byte, names ...string) {
	var m map[string]any
	if json.Unmarshal(b, &m) == nil {
		for _, n := range names {
			if s, ok := m[n].(string); ok {
				c.keep(s)
			}
		}
		return
	}
	if q, err := url.ParseQuery(string(b)); err == nil {
		for _, n := range names {
			c.keep(q.Get(n))
		}
	}
}

// telRun is one scenario: an emulator (or an echoing server), the source
// over it, the SDK it records to.
type telRun struct {
	t    *testing.T
	emu  *sourcetest.Server // nil for the echoing endpoint
	echo *httptest.Server   // nil unless the echoing endpoint
	sdk  *telSDK
	cap  *telCapture
	cfg  source.Config
	src  *source.CachedSource
}

func (r *telRun) token() (*source.Token, error) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return r.src.Token(ctx)
}

func (r *telRun) mustToken() *source.Token {
	r.t.Helper()
	tok, err := r.token()
	if err != nil {
		r.t.Fatalf("Token: %v", err)
	}
	return tok
}

func (r *telRun) mustFail() error {
	r.t.Helper()
	tok, err := r.token()
	if err == nil {
		r.t.Fatalf("Token = %v, want an error", tok)
	}
	return err
}

// waitSpans waits until n fetch spans have ended.
func (r *telRun) waitSpans(n int) {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(r.sdk.fetchSpans()) < n {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %d fetch spans; have %d", n, len(r.sdk.fetchSpans()))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// telSpan is what one fetch span must show. In attrs, "" means absent.
type telSpan struct {
	attrs   map[string]string
	retries []map[string]string // the EventRetry events' attributes
	breaker []string            // the EventBreakerState events, "from->to"
	// fallbacks are the EventGrantFallback events' attributes.
	fallbacks []map[string]string
	desc      string // the status description; "" means status Unset
}

// span expectations shared by the cases.
func telOK(grant, reason, attempts string) map[string]string {
	return map[string]string{
		telemetry.AttrProvider: "standard", telemetry.AttrGrantType: grant, telemetry.AttrRefreshReason: reason,
		telemetry.AttrServerAddress: "127.0.0.1", telemetry.AttrHTTPStatusCode: "200",
		telemetry.AttrAttempts: attempts, telemetry.AttrOutcome: telemetry.OutcomeSuccess,
		telemetry.AttrErrorType: "", telemetry.AttrOAuthError: "",
	}
}

func telFail(grant, reason, attempts, status, outcome, errType, oauth string) map[string]string {
	return map[string]string{
		telemetry.AttrProvider: "standard", telemetry.AttrGrantType: grant, telemetry.AttrRefreshReason: reason,
		telemetry.AttrServerAddress: "127.0.0.1", telemetry.AttrHTTPStatusCode: status,
		telemetry.AttrAttempts: attempts, telemetry.AttrOutcome: outcome,
		telemetry.AttrErrorType: errType, telemetry.AttrOAuthError: oauth,
	}
}

const (
	telCC = source.ClientCredentials
	telPW = source.Password
	telRT = source.RefreshToken
)

type telCase struct {
	name string
	// opts and cfg adjust the emulator's options and the Config.
	opts func(*sourcetest.Options)
	cfg  func(*source.Config)
	// echo, if set, replaces the emulator with an endpoint that answers
	// every request with this handler.
	echo http.HandlerFunc
	run  func(r *telRun)
	want []telSpan
	// metrics: metric name -> data points ("k=v,k=v" -> value); checked
	// exactly when set, after Close.
	metrics map[string]map[string]string
}

func telCases() []telCase {
	key := func(kv ...string) string {
		var parts []string
		for i := 0; i < len(kv); i += 2 {
			parts = append(parts, kv[i]+"="+kv[i+1])
		}
		return strings.Join(parts, ",")
	}
	std := func(outcome, reason string) string {
		return key(telemetry.AttrOutcome, outcome, telemetry.AttrProvider, "standard", telemetry.AttrRefreshReason, reason, telemetry.AttrSource, "tel")
	}
	durKey := func(outcome string) string {
		return key(telemetry.AttrOutcome, outcome, telemetry.AttrProvider, "standard", telemetry.AttrSource, "tel")
	}
	miss := key(telemetry.AttrProvider, "standard")
	return []telCase{
		{
			name: "success, then cached hits",
			run: func(r *telRun) {
				want := r.mustToken()
				for range 10 {
					if got := r.mustToken(); got != want {
						r.t.Errorf("cached Token = %p, want %p", got, want)
					}
				}
			},
			want: []telSpan{{attrs: telOK(telCC, telemetry.ReasonCold, "1")}},
			metrics: map[string]map[string]string{
				telemetry.MetricFetches:       {std(telemetry.OutcomeSuccess, telemetry.ReasonCold): "1"},
				telemetry.MetricFetchDuration: {durKey(telemetry.OutcomeSuccess): "1"},
				telemetry.MetricCacheMisses:   {miss: "1"},
				telemetry.MetricTokenTTL:      {}, // unregistered by Close
				telemetry.MetricBreakerState:  {},
			},
		},
		{
			name: "wrong client secret: 401",
			cfg:  func(c *source.Config) { c.ClientSecret = telWrongSecret },
			run:  func(r *telRun) { r.mustFail() },
			want: []telSpan{{
				attrs: telFail(telCC, telemetry.ReasonCold, "1", "401", telemetry.OutcomeRefused, "invalid_client", "invalid_client"),
				desc:  "invalid_client",
			}},
			metrics: map[string]map[string]string{
				telemetry.MetricFetches:       {std(telemetry.OutcomeRefused, telemetry.ReasonCold): "1"},
				telemetry.MetricFetchDuration: {durKey(telemetry.OutcomeRefused): "1"},
			},
		},
		{
			name: "credentials rotated: rejected token, then 401",
			run: func(r *telRun) {
				tok := r.mustToken()
				r.emu.SetCredentials(sourcetest.Options{ClientSecret: telRotated})
				r.emu.RevokeAll()
				if !r.src.Invalidate(tok) {
					r.t.Fatal("Invalidate = false, want true")
				}
				r.mustFail()
			},
			want: []telSpan{
				{attrs: telOK(telCC, telemetry.ReasonCold, "1")},
				{
					attrs: telFail(telCC, telemetry.ReasonRejected, "1", "401", telemetry.OutcomeRefused, "invalid_client", "invalid_client"),
					desc:  "invalid_client",
				},
			},
			metrics: map[string]map[string]string{
				telemetry.MetricFetches: {
					std(telemetry.OutcomeSuccess, telemetry.ReasonCold):     "1",
					std(telemetry.OutcomeRefused, telemetry.ReasonRejected): "1",
				},
				telemetry.MetricCacheMisses: {miss: "2"},
			},
		},
		{
			name: "two 503s, then success",
			run: func(r *telRun) {
				r.emu.FailNext(2, http.StatusServiceUnavailable, "")
				r.mustToken()
			},
			want: []telSpan{{
				attrs: telOK(telCC, telemetry.ReasonCold, "3"),
				retries: []map[string]string{
					{telemetry.AttrRetryCount: "1", telemetry.AttrHTTPStatusCode: "503", telemetry.AttrErrorType: ""},
					{telemetry.AttrRetryCount: "2", telemetry.AttrHTTPStatusCode: "503", telemetry.AttrErrorType: ""},
				},
			}},
		},
		{
			name: "5xx every time",
			run: func(r *telRun) {
				r.emu.FailNext(3, http.StatusInternalServerError, "")
				r.mustFail()
			},
			want: []telSpan{{
				attrs: telFail(telCC, telemetry.ReasonCold, "3", "500", telemetry.OutcomeUnavailable, "server_error", "server_error"),
				retries: []map[string]string{
					{telemetry.AttrRetryCount: "1", telemetry.AttrHTTPStatusCode: "500"},
					{telemetry.AttrRetryCount: "2", telemetry.AttrHTTPStatusCode: "500"},
				},
				desc: "server_error",
			}},
			metrics: map[string]map[string]string{
				telemetry.MetricFetches: {std(telemetry.OutcomeUnavailable, telemetry.ReasonCold): "1"},
			},
		},
		{
			name: "429 with Retry-After: 1 honored",
			run: func(r *telRun) {
				r.emu.FailNext(1, http.StatusTooManyRequests, "1")
				r.mustToken()
			},
			want: []telSpan{{
				attrs: telOK(telCC, telemetry.ReasonCold, "2"),
				retries: []map[string]string{
					{telemetry.AttrRetryCount: "1", telemetry.AttrHTTPStatusCode: "429", telemetry.AttrRetryWait: "1000"},
				},
			}},
		},
		{
			name: "429 with a Retry-After over the cap",
			run: func(r *telRun) {
				r.emu.FailNext(1, http.StatusTooManyRequests, "120")
				r.mustFail()
			},
			want: []telSpan{{
				attrs: telFail(telCC, telemetry.ReasonCold, "1", "429", telemetry.OutcomeUnavailable,
					"temporarily_unavailable", "temporarily_unavailable"),
				desc: "temporarily_unavailable",
			}},
		},
		{
			name: "connection reset, then success",
			run: func(r *telRun) {
				r.emu.ResetNext(1)
				r.mustToken()
			},
			want: []telSpan{{
				attrs: telOK(telCC, telemetry.ReasonCold, "2"),
				retries: []map[string]string{
					{telemetry.AttrRetryCount: "1", telemetry.AttrHTTPStatusCode: "", telemetry.AttrErrorType: "network"},
				},
			}},
		},
		{
			name: "connection reset every time",
			run: func(r *telRun) {
				r.emu.ResetNext(3)
				r.mustFail()
			},
			want: []telSpan{{
				attrs: telFail(telCC, telemetry.ReasonCold, "3", "", telemetry.OutcomeUnavailable, "network", ""),
				retries: []map[string]string{
					{telemetry.AttrRetryCount: "1", telemetry.AttrErrorType: "network"},
					{telemetry.AttrRetryCount: "2", telemetry.AttrErrorType: "network"},
				},
				desc: "network",
			}},
		},
		{
			name: "hang past FetchTimeout",
			cfg:  func(c *source.Config) { c.FetchTimeout = 300 * time.Millisecond },
			run: func(r *telRun) {
				r.emu.HangNext(1)
				err := r.mustFail()
				if !errors.Is(err, context.DeadlineExceeded) {
					r.t.Errorf("Token = %v, want context.DeadlineExceeded", err)
				}
			},
			want: []telSpan{{
				attrs: telFail(telCC, telemetry.ReasonCold, "1", "", telemetry.OutcomeUnavailable, "timeout", ""),
				desc:  "timeout",
			}},
		},
		{
			name: "breaker opens, refuses, probes and closes",
			cfg: func(c *source.Config) {
				c.Retry.MaxAttempts = 1
				c.Breaker = retry.BreakerSettings{Failures: 1, OpenFor: 300 * time.Millisecond}
			},
			run: func(r *telRun) {
				r.emu.FailNext(1, http.StatusInternalServerError, "")
				r.mustFail()
				if err := r.mustFail(); !errors.Is(err, source.ErrBreakerOpen) {
					r.t.Errorf("Token = %v, want ErrBreakerOpen", err)
				}
				time.Sleep(400 * time.Millisecond)
				r.mustToken()
			},
			want: []telSpan{
				{
					attrs:   telFail(telCC, telemetry.ReasonCold, "1", "500", telemetry.OutcomeUnavailable, "server_error", "server_error"),
					breaker: []string{"closed->open"},
					desc:    "server_error",
				},
				{
					attrs: telFail(telCC, telemetry.ReasonCold, "0", "", telemetry.OutcomeBreakerOpen, "breaker_open", ""),
					desc:  "breaker_open",
				},
				{
					attrs:   telOK(telCC, telemetry.ReasonCold, "1"),
					breaker: []string{"open->half-open", "half-open->closed"},
				},
			},
			metrics: map[string]map[string]string{
				telemetry.MetricFetches: {
					std(telemetry.OutcomeUnavailable, telemetry.ReasonCold): "1",
					std(telemetry.OutcomeBreakerOpen, telemetry.ReasonCold): "1",
					std(telemetry.OutcomeSuccess, telemetry.ReasonCold):     "1",
				},
			},
		},
		{
			name: "password grant, token rejected, renewed with the refresh token",
			opts: func(o *sourcetest.Options) { o.RefreshTokens = true },
			cfg: func(c *source.Config) {
				c.GrantType = source.Password
				c.Username = sourcetest.DefaultUsername
				c.Password = telPassword
			},
			run: func(r *telRun) {
				tok := r.mustToken()
				if tok.RefreshToken == "" {
					r.t.Fatal("no refresh token issued")
				}
				if !r.src.Invalidate(tok) {
					r.t.Fatal("Invalidate = false, want true")
				}
				if got := r.mustToken(); got == tok {
					r.t.Error("Token after Invalidate returned the rejected token")
				}
				if got, want := r.emu.Requests(source.RefreshToken), 1; got != want {
					r.t.Errorf("refresh_token requests = %d, want %d", got, want)
				}
			},
			want: []telSpan{
				{attrs: telOK(telPW, telemetry.ReasonCold, "1")},
				{attrs: telOK(telRT, telemetry.ReasonRejected, "1")},
			},
			metrics: map[string]map[string]string{
				telemetry.MetricFetches: {
					std(telemetry.OutcomeSuccess, telemetry.ReasonCold):     "1",
					std(telemetry.OutcomeSuccess, telemetry.ReasonRejected): "1",
				},
			},
		},
		{
			name: "password grant, refresh token revoked, falls back to the password grant",
			opts: func(o *sourcetest.Options) { o.RefreshTokens = true },
			cfg: func(c *source.Config) {
				c.GrantType = source.Password
				c.Username = sourcetest.DefaultUsername
				c.Password = telPassword
			},
			run: func(r *telRun) {
				tok := r.mustToken()
				r.emu.RejectRefresh(true)
				r.src.Invalidate(tok)
				r.mustToken()
				if got, want := r.emu.Requests(source.Password), 2; got != want {
					r.t.Errorf("password requests = %d, want %d", got, want)
				}
			},
			want: []telSpan{
				{attrs: telOK(telPW, telemetry.ReasonCold, "1")},
				// The token came from the password grant: the span says so,
				// and an event says the refresh token was refused first.
				{attrs: telOK(telPW, telemetry.ReasonRejected, "2"), fallbacks: []map[string]string{{
					telemetry.AttrGrantType: telRT, telemetry.AttrOAuthError: "invalid_grant",
					telemetry.AttrErrorType: "invalid_grant", telemetry.AttrHTTPStatusCode: "400",
				}}},
			},
			metrics: map[string]map[string]string{
				telemetry.MetricFetches: {
					std(telemetry.OutcomeSuccess, telemetry.ReasonCold):     "1",
					std(telemetry.OutcomeSuccess, telemetry.ReasonRejected): "1",
				},
			},
		},
		{
			name: "renewal ahead of expiry",
			opts: func(o *sourcetest.Options) { o.Lifetime = 2 * time.Second },
			cfg:  func(c *source.Config) { c.RefreshAhead = time.Second },
			run: func(r *telRun) {
				first := r.mustToken()
				time.Sleep(1100 * time.Millisecond) // past the refresh time, before the token goes stale
				if got := r.mustToken(); got != first {
					r.t.Error("Token during the renewal did not return the current token")
				}
				r.waitSpans(2)
			},
			want: []telSpan{
				{attrs: telOK(telCC, telemetry.ReasonCold, "1")},
				{attrs: telOK(telCC, telemetry.ReasonAhead, "1")},
			},
			metrics: map[string]map[string]string{
				telemetry.MetricFetches: {
					std(telemetry.OutcomeSuccess, telemetry.ReasonCold):  "1",
					std(telemetry.OutcomeSuccess, telemetry.ReasonAhead): "1",
				},
				telemetry.MetricCacheMisses: {miss: "1"}, // the renewal ahead kept serving
			},
		},
		{
			name: "token expired before it was renewed",
			opts: func(o *sourcetest.Options) { o.Lifetime = time.Second },
			run: func(r *telRun) {
				r.mustToken()
				time.Sleep(1100 * time.Millisecond)
				r.mustToken()
			},
			want: []telSpan{
				{attrs: telOK(telCC, telemetry.ReasonCold, "1")},
				{attrs: telOK(telCC, telemetry.ReasonExpired, "1")},
			},
		},
		{
			name: "PasswordFunc fails with the password in its error",
			cfg: func(c *source.Config) {
				c.GrantType = source.Password
				c.Username = sourcetest.DefaultUsername
				c.PasswordFunc = func(context.Context) (string, error) {
					return "", errors.New("vault refused: " + telPassword)
				}
			},
			run: func(r *telRun) { r.mustFail() },
			want: []telSpan{{
				attrs: telFail(telPW, telemetry.ReasonCold, "0", "", telemetry.OutcomeError, "hook", ""),
				desc:  "hook",
			}},
		},
		{
			name: "endpoint echoes the request in its error description",
			cfg: func(c *source.Config) {
				c.GrantType = source.Password
				c.Username = sourcetest.DefaultUsername
				c.Password = telPassword
			},
			echo: func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				json.NewEncoder(w).Encode(map[string]string{
					"error":             "invalid_request",
					"error_description": "bad request: " + r.Header.Get("Authorization") + " " + string(body) + " " + telSecret + " " + telPassword,
				})
			},
			run: func(r *telRun) { r.mustFail() },
			want: []telSpan{{
				attrs: telFail(telPW, telemetry.ReasonCold, "1", "400", telemetry.OutcomeRefused, "invalid_request", "invalid_request"),
				desc:  "invalid_request",
			}},
		},
		{
			name: "endpoint echoes the secret as its error code",
			echo: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				fmt.Fprintf(w, `{"error":%q,"error_description":%q}`, telSecret, r.Header.Get("Authorization"))
			},
			run: func(r *telRun) { r.mustFail() },
			want: []telSpan{{
				attrs: telFail(telCC, telemetry.ReasonCold, "1", "401", telemetry.OutcomeRefused, "invalid_client", "invalid_client"),
				desc:  "invalid_client",
			}},
		},
		{
			name: "endpoint echoes the request in a 500 page",
			cfg:  func(c *source.Config) { c.Retry.MaxAttempts = 1 },
			echo: func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusInternalServerError)
				fmt.Fprintf(w, "<html><body>crash: %s %s</body></html>", r.Header.Get("Authorization"), body)
			},
			run: func(r *telRun) { r.mustFail() },
			want: []telSpan{{
				attrs: telFail(telCC, telemetry.ReasonCold, "1", "500", telemetry.OutcomeUnavailable, "server_error", "server_error"),
				desc:  "server_error",
			}},
		},
	}
}

// TestTelemetryScenarios runs a source over an emulator through successes
// and every failure mode, with an SDK injected through Config.Telemetry,
// and checks the fetch spans, the metrics, and that nothing recorded
// holds a secret.
func TestTelemetryScenarios(t *testing.T) {
	var all strings.Builder // everything recorded by every case
	var secrets []string    // every secret of every case
	for _, tc := range telCases() {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			r := &telRun{t: t, sdk: newTelSDK(t)}

			var client *http.Client
			tokenURL := ""
			if tc.echo != nil {
				r.echo = httptest.NewServer(tc.echo)
				defer r.echo.Close()
				client, tokenURL = r.echo.Client(), r.echo.URL+"/token"
			} else {
				o := sourcetest.Options{ClientSecret: telSecret, Password: telPassword}
				if tc.opts != nil {
					tc.opts(&o)
				}
				r.emu = sourcetest.NewStandard(o)
				defer r.emu.Close()
				client, tokenURL = r.emu.Client(), r.emu.TokenURL
			}
			r.cap = &telCapture{base: client.Transport}
			r.cfg = source.Config{
				TokenURL:     tokenURL,
				ClientID:     sourcetest.DefaultClientID,
				ClientSecret: telSecret,
				HTTPClient:   &http.Client{Transport: r.cap},
				Retry:        fastRetry,
				Telemetry:    r.sdk.Providers(),
				Name:         "tel",
			}
			if tc.cfg != nil {
				tc.cfg(&r.cfg)
			}
			ts, err := source.New(r.cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			r.src = ts
			defer r.src.Close()

			tc.run(r)

			// Gauges while the source is open: the TTL of a cached token, and
			// the breaker state.
			if tc.echo == nil {
				rm := r.sdk.collect(t)
				ttl := telMetricValues(rm, telemetry.MetricTokenTTL)
				last := tc.want[len(tc.want)-1].attrs[telemetry.AttrOutcome]
				if last == telemetry.OutcomeSuccess {
					v, ok := ttl[telemetry.AttrProvider+"=standard,"+telemetry.AttrSource+"=tel"]
					f, _ := strconv.ParseFloat(v, 64)
					if !ok || len(ttl) != 1 || f <= 0 || f > 3600 {
						t.Errorf("%s = %v, want one positive value for provider standard", telemetry.MetricTokenTTL, ttl)
					}
				} else if len(ttl) != 0 {
					t.Errorf("%s = %v with no token cached, want no data point", telemetry.MetricTokenTTL, ttl)
				}
				if got, want := telMetricValues(rm, telemetry.MetricBreakerState), map[string]string{telemetry.AttrProvider + "=standard," + telemetry.AttrSource + "=tel": "0"}; !maps.Equal(got, want) {
					t.Errorf("%s = %v, want %v", telemetry.MetricBreakerState, got, want)
				}
			}
			r.src.Close()

			spans := r.sdk.fetchSpans()
			if got, want := len(spans), len(tc.want); got != want {
				t.Fatalf("fetch spans = %d, want %d", got, want)
			}
			if got, want := len(r.sdk.Spans.Started()), len(spans); got != want {
				t.Errorf("spans started = %d, ended = %d: a span was left open", got, want)
			}
			port := ""
			if u, err := url.Parse(r.cfg.TokenURL); err == nil {
				port = u.Port()
			}
			for k, w := range tc.want {
				sp := spans[k]
				what := fmt.Sprintf("span %d", k)
				got := telAttrs(sp.Attributes())
				want := w.attrs
				if want[telemetry.AttrServerAddress] != "" {
					want[telemetry.AttrServerPort] = port
				}
				for key, wv := range want {
					gv, ok := got[key]
					switch {
					case wv == "" && ok:
						t.Errorf("%s: %s = %q, want it absent", what, key, gv)
					case wv != "" && gv != wv:
						t.Errorf("%s: %s = %q, want %q", what, key, gv, wv)
					}
				}
				var retries []map[string]string
				var breaker []string
				var fallbacks []map[string]string
				for _, ev := range sp.Events() {
					a := telAttrs(ev.Attributes)
					switch ev.Name {
					case telemetry.EventGrantFallback:
						fallbacks = append(fallbacks, a)
					case telemetry.EventRetry:
						retries = append(retries, a)
					case telemetry.EventBreakerState:
						breaker = append(breaker, a[telemetry.AttrBreakerFrom]+"->"+a[telemetry.AttrBreakerTo])
					default:
						t.Errorf("%s: unexpected event %q", what, ev.Name)
					}
				}
				if got, want := len(retries), len(w.retries); got != want {
					t.Errorf("%s: %s events = %d, want %d", what, telemetry.EventRetry, got, want)
				} else {
					for i, wa := range w.retries {
						for key, wv := range wa {
							if gv, ok := retries[i][key]; wv == "" && ok || wv != "" && gv != wv {
								t.Errorf("%s: retry event %d: %s = %q, want %q", what, i, key, gv, wv)
							}
						}
					}
				}
				if got, want := len(fallbacks), len(w.fallbacks); got != want {
					t.Errorf("%s: %s events = %d, want %d", what, telemetry.EventGrantFallback, got, want)
				} else {
					for i, wa := range w.fallbacks {
						if !maps.Equal(fallbacks[i], wa) {
							t.Errorf("%s: fallback event %d = %v, want %v", what, i, fallbacks[i], wa)
						}
					}
				}
				if !slices.Equal(breaker, w.breaker) {
					t.Errorf("%s: breaker events = %q, want %q", what, breaker, w.breaker)
				}
				wantCode := codes.Unset
				if w.desc != "" {
					wantCode = codes.Error
				}
				if got := sp.Status(); got.Code != wantCode || got.Description != w.desc {
					t.Errorf("%s: status = %v %q, want %v %q", what, got.Code, got.Description, wantCode, w.desc)
				}
			}

			rm := r.sdk.collect(t)
			for name, want := range tc.metrics {
				if got := telMetricValues(rm, name); !maps.Equal(got, want) {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
			allowed := []string{telemetry.AttrProvider, telemetry.AttrSource, telemetry.AttrOutcome, telemetry.AttrRefreshReason}
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					for _, set := range telDataPointSets(m) {
						for _, kv := range set.ToSlice() {
							if !slices.Contains(allowed, string(kv.Key)) {
								t.Errorf("metric %s has attribute %s; want only %q", m.Name, kv.Key, allowed)
							}
						}
					}
				}
			}

			// Nothing recorded holds a secret.
			rec := r.sdk.dump(t, rm)
			if !strings.Contains(rec, telemetry.SpanFetch) || !strings.Contains(rec, telemetry.MetricFetches) {
				t.Fatalf("the recording misses the fetch span or metric:\n%s", rec)
			}
			sec := telSecretsOf(r)
			if len(sec) < 2 {
				t.Fatalf("secrets to look for = %d, want at least the client secret and the Basic value", len(sec))
			}
			telNoSecret(t, rec, sec)
			all.WriteString(rec)
			secrets = append(secrets, sec...)
		})
	}
	t.Run("everything recorded", func(t *testing.T) {
		rec := all.String()
		if rec == "" {
			t.Fatal("nothing was recorded")
		}
		for _, want := range []string{
			telemetry.ReasonCold, telemetry.ReasonAhead, telemetry.ReasonRejected, telemetry.ReasonExpired,
			telemetry.EventRetry, telemetry.EventBreakerState, "invalid_client", "timeout", "network", "breaker_open",
		} {
			if !strings.Contains(rec, want) {
				t.Errorf("the recordings of all cases never mention %q", want)
			}
		}
		telNoSecret(t, rec, secrets)
	})
}

// telSecretsOf lists every secret of a run: the configured ones, the
// ones that crossed the wire, and every token the emulator issued.
func telSecretsOf(r *telRun) []string {
	sec := []string{telSecret, telWrongSecret, telRotated, telPassword, r.cfg.ClientSecret, r.cfg.Password}
	sec = append(sec, r.cap.seen()...)
	if r.emu != nil {
		sec = append(sec, r.emu.IssuedTokens()...)
	}
	var out []string
	for _, s := range sec {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func telNoSecret(t *testing.T, rec string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if len(s) < 8 {
			t.Errorf("secret %q is too short to search for", s)
			continue
		}
		if i := strings.Index(rec, s); i >= 0 {
			lo, hi := max(i-80, 0), min(i+len(s)+80, len(rec))
			t.Errorf("the recording holds the secret %q: ...%s...", s, rec[lo:hi])
		}
	}
}

// TestTelemetryCachedHitNoCost checks that with an SDK installed, cached
// Token calls start no span, record no metric and allocate nothing.
func TestTelemetryCachedHitNoCost(t *testing.T) {
	leakCheck(t)
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
	sdk := newTelSDK(t)
	src := newSource(t, source.Config{
		TokenURL: emu.TokenURL, ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret,
		HTTPClient: emu.Client(), Telemetry: sdk.Providers(),
	})
	ctx := context.Background()
	want, err := src.Token(ctx)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	started := len(sdk.Spans.Started())
	if started != 1 {
		t.Fatalf("spans after the first fetch = %d, want 1", started)
	}
	misses := telMetricValues(sdk.collect(t), telemetry.MetricCacheMisses)

	for range 1000 {
		if tok, err := src.Token(ctx); tok != want || err != nil {
			t.Fatalf("cached Token = %p, %v; want %p, nil", tok, err, want)
		}
	}
	if got := len(sdk.Spans.Started()) - started; got != 0 {
		t.Errorf("spans started by 1000 cached calls = %d, want 0", got)
	}
	if got := telMetricValues(sdk.collect(t), telemetry.MetricCacheMisses); !maps.Equal(got, misses) {
		t.Errorf("%s after cached calls = %v, want %v", telemetry.MetricCacheMisses, got, misses)
	}
	var bad int
	allocs := testing.AllocsPerRun(1000, func() {
		if tok, err := src.Token(ctx); tok != want || err != nil {
			bad++
		}
	})
	if allocs != 0 {
		t.Errorf("allocations per cached Token call with an SDK installed = %v, want 0", allocs)
	}
	if bad != 0 {
		t.Errorf("%d cached calls returned another token or an error", bad)
	}
	if got := emu.TokenRequests(); got != 1 {
		t.Errorf("token requests = %d, want 1", got)
	}
}

// BenchmarkCachedHitTelemetry measures a cached Token call with the
// OpenTelemetry globals (no-op unless a program installs an SDK) and with
// an SDK injected.
func BenchmarkCachedHitTelemetry(b *testing.B) {
	for _, bc := range []struct {
		name string
		tel  func(b *testing.B) telemetry.Providers
	}{
		{"noop", func(*testing.B) telemetry.Providers { return telemetry.Providers{} }},
		{"sdk", func(b *testing.B) telemetry.Providers { return newTelSDK(b).Providers() }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			emu := newEmulator(b, sourcetest.NewStandard, sourcetest.Options{})
			ts := newSource(b, source.Config{
				TokenURL: emu.TokenURL, ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret,
				HTTPClient: emu.Client(), Telemetry: bc.tel(b),
			})
			ctx := context.Background()
			if _, err := ts.Token(ctx); err != nil {
				b.Fatalf("Token: %v", err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ts.Token(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
