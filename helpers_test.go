package tokenhttp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/tokenhttp/tokenhttp/internal/testsupport"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
	"github.com/tokenhttp/tokenhttp/telemetry"
)

// The harness every root test uses: one leak check, one emulator, one
// source, and the doubles of a TokenSource and a RoundTripper.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// checkLeaks is testsupport.CheckLeaks: call it first.
func checkLeaks(t *testing.T) { t.Helper(); testsupport.CheckLeaks(t) }

// newEmulator starts an RFC 6749 token endpoint and protected resource,
// closed when tb ends.
func newEmulator(tb testing.TB, o sourcetest.Options) *sourcetest.Server {
	tb.Helper()
	emu := sourcetest.NewStandard(o)
	tb.Cleanup(emu.Close)
	return emu
}

// newSource returns a source.New source for emu's client_credentials grant,
// closed when tb ends. mods change the Config first.
func newSource(tb testing.TB, emu *sourcetest.Server, mods ...func(*source.Config)) *source.CachedSource {
	tb.Helper()
	cfg := source.Config{
		TokenURL:     emu.TokenURL,
		ClientID:     sourcetest.DefaultClientID,
		ClientSecret: sourcetest.DefaultClientSecret,
		HTTPClient:   emu.Client(),
	}
	for _, mod := range mods {
		mod(&cfg)
	}
	src, err := source.New(cfg)
	if err != nil {
		tb.Fatalf("source.New: %v", err)
	}
	tb.Cleanup(func() { src.Close() })
	return src
}

// roundTripperFunc is a RoundTripper double.
type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// sourceFunc is a TokenSource double.
type sourceFunc func(context.Context) (*source.Token, error)

func (f sourceFunc) Token(ctx context.Context) (*source.Token, error) { return f(ctx) }

// staticSource always returns tok.
func staticSource(tok *source.Token) sourceFunc {
	return func(context.Context) (*source.Token, error) { return tok, nil }
}

// errSource always fails with err.
func errSource(err error) sourceFunc {
	return func(context.Context) (*source.Token, error) { return nil, err }
}

// reply builds a response a base double returns.
func reply(req *http.Request, status int, body string) *http.Response {
	return &http.Response{
		StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: req,
	}
}

// telemetrySDK is an SDK that keeps spans and metrics in memory.
func telemetrySDK(t *testing.T) (*tracetest.SpanRecorder, *sdkmetric.ManualReader, telemetry.Providers) {
	t.Helper()
	o := testsupport.NewOTel(t)
	return o.Spans, o.Reader, o.Providers()
}

// metricPoints returns metric name's int64 sums as "attribute set" -> value.
func metricPoints(t *testing.T, reader *sdkmetric.ManualReader, name string) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s is a %T, want an int64 sum", name, m.Data)
			}
			for _, dp := range sum.DataPoints {
				out[string(dp.Attributes.Encoded(attribute.DefaultEncoder()))] = dp.Value
			}
		}
	}
	return out
}

// recorded is everything rec and reader hold, as text to search for
// secrets: the ended spans as JSON, then every metric.
func recorded(t *testing.T, rec *tracetest.SpanRecorder, reader *sdkmetric.ManualReader) string {
	t.Helper()
	var all bytes.Buffer
	enc := json.NewEncoder(&all)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(tracetest.SpanStubsFromReadOnlySpans(rec.Ended())); err != nil {
		t.Fatalf("encoding the spans: %v", err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			fmt.Fprintf(&all, "%+v\n", m)
		}
	}
	return all.String()
}
