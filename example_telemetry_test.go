package tokenhttp_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
	"github.com/tokenhttp/tokenhttp/telemetry"
)

// Tracing token traffic with OpenTelemetry, composed with otelhttp: the
// client is
//
//	otelhttp.NewTransport(tokenhttp.NewTransport(src))
//
// so each request gets an otelhttp client span ("HTTP GET"), and a token
// fetch the request has to wait for is a child of that span. A cached
// token records nothing. When the API rejects the token (here, every
// token is revoked), the Transport fetches a new one ("rejected") and
// retries once; the retry is an event on the request's span.
//
// The spans go to the stdout exporter, written to a buffer; the example
// prints their names and a few attributes, without the timestamps and IDs.
// Nothing recorded ever holds a token or a secret.
func Example_telemetry() {
	idp := sourcetest.NewStandard(sourcetest.Options{}) // a token endpoint and an API for this example
	defer idp.Close()

	var out bytes.Buffer // os.Stdout in a program
	exp, err := stdouttrace.New(stdouttrace.WithWriter(&out), stdouttrace.WithoutTimestamps())
	if err != nil {
		fmt.Println(err)
		return
	}
	// WithSyncer exports each span as it ends; a program would use
	// WithBatcher.
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	// Leave Providers empty to use the globals (otel.SetTracerProvider).
	tel := telemetry.Providers{TracerProvider: tp}

	src, err := source.New(source.Config{
		TokenURL:     idp.TokenURL,
		ClientID:     sourcetest.DefaultClientID,
		ClientSecret: sourcetest.DefaultClientSecret,
		Telemetry:    tel, // the token fetch spans
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer src.Close()

	client := &http.Client{Transport: otelhttp.NewTransport(
		tokenhttp.NewTransport(src,
			tokenhttp.WithTelemetry(tel), // the 401 retry event and count
			tokenhttp.WithBase(idp.Client().Transport)),
		otelhttp.WithTracerProvider(tp))}

	get := func() {
		resp, err := client.Get(idp.ResourceURL)
		if err != nil {
			fmt.Println(err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get()           // no token yet: a fetch, as a child of the request's span
	get()           // the cached token: no span of ours
	idp.RevokeAll() // the API now rejects the cached token
	get()           // 401, a new token, the request retried once

	printSpans(&out)
	// Output:
	// tokenhttp.token.fetch provider=standard grant=client_credentials reason=cold outcome=success attempts=1 parent="HTTP GET"
	// HTTP GET status=200
	// HTTP GET status=200
	// tokenhttp.token.fetch provider=standard grant=client_credentials reason=rejected outcome=success attempts=1 parent="HTTP GET"
	// HTTP GET status=200 events=[tokenhttp.unauthorized_retry]
}

// exportedSpan is the part of the stdout exporter's JSON the example
// prints.
type exportedSpan struct {
	Name        string
	SpanContext struct{ SpanID string }
	Parent      struct{ SpanID string }
	Attributes  []struct {
		Key   string
		Value struct{ Value any }
	}
	Events []struct{ Name string }
}

// printSpans prints the spans the stdout exporter wrote, one a line, in
// the order they ended, with their parent's name.
func printSpans(r io.Reader) {
	var spans []exportedSpan
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var s exportedSpan
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			fmt.Println("bad exporter output:", err)
			return
		}
		spans = append(spans, s)
	}
	names := map[string]string{}
	for _, s := range spans {
		names[s.SpanContext.SpanID] = s.Name
	}
	for _, s := range spans {
		attr := map[string]any{}
		for _, kv := range s.Attributes {
			attr[kv.Key] = kv.Value.Value
		}
		line := s.Name
		if s.Name == telemetry.SpanFetch {
			line += fmt.Sprintf(" provider=%v grant=%v reason=%v outcome=%v attempts=%v",
				attr[telemetry.AttrProvider], attr[telemetry.AttrGrantType], attr[telemetry.AttrRefreshReason],
				attr[telemetry.AttrOutcome], attr[telemetry.AttrAttempts])
		} else {
			line += fmt.Sprintf(" status=%v", attr[telemetry.AttrHTTPStatusCode])
		}
		if p, ok := names[s.Parent.SpanID]; ok {
			line += fmt.Sprintf(" parent=%q", p)
		}
		if len(s.Events) > 0 {
			var evs []string
			for _, e := range s.Events {
				evs = append(evs, e.Name)
			}
			line += fmt.Sprintf(" events=%v", evs)
		}
		fmt.Println(line)
	}
}

// telemetrySDK is an SDK that keeps spans and metrics in memory.
func telemetrySDK(t *testing.T) (*tracetest.SpanRecorder, *sdkmetric.ManualReader, telemetry.Providers) {
	t.Helper()
	rec, reader := tracetest.NewSpanRecorder(), sdkmetric.NewManualReader()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	return rec, reader, telemetry.Providers{TracerProvider: tp, MeterProvider: mp}
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

// TestTelemetryUnauthorizedRetry checks that the Transport's retry after a
// 401 is an event on the request's span and counts once, and that the
// fetch it causes is a child of that span.
func TestTelemetryUnauthorizedRetry(t *testing.T) {
	tests := []struct {
		name        string
		revoke      bool
		wantEvents  int
		wantRetries map[string]int64
		wantReasons []string // of the fetch spans, in order
	}{
		{"token accepted", false, 0, map[string]int64{}, []string{telemetry.ReasonCold}},
		{"token revoked", true, 1, map[string]int64{"": 1}, []string{telemetry.ReasonCold, telemetry.ReasonRejected}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			idp := sourcetest.NewStandard(sourcetest.Options{})
			defer idp.Close()
			rec, reader, tel := telemetrySDK(t)
			src, err := source.New(source.Config{
				TokenURL: idp.TokenURL, ClientID: sourcetest.DefaultClientID,
				ClientSecret: sourcetest.DefaultClientSecret, HTTPClient: idp.Client(), Telemetry: tel,
			})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer src.Close()
			if _, err := src.Token(context.Background()); err != nil {
				t.Fatalf("Token: %v", err)
			}
			if tt.revoke {
				idp.RevokeAll()
			}
			client := &http.Client{Transport: tokenhttp.NewTransport(src,
				tokenhttp.WithTelemetry(tel), tokenhttp.WithBase(idp.Client().Transport))}

			ctx, parent := tel.TracerProvider.Tracer("test").Start(context.Background(), "request")
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, idp.ResourceURL, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			parent.End()
			if got, want := resp.StatusCode, http.StatusOK; got != want {
				t.Errorf("status = %d, want %d", got, want)
			}

			var reasons []string
			var events int
			for _, sp := range rec.Ended() {
				switch sp.Name() {
				case telemetry.SpanFetch:
					for _, kv := range sp.Attributes() {
						if kv.Key == telemetry.AttrRefreshReason {
							reasons = append(reasons, kv.Value.AsString())
						}
					}
					if tt.revoke && len(reasons) == 2 {
						if got, want := sp.Parent().SpanID(), parent.SpanContext().SpanID(); got != want {
							t.Errorf("the rejected fetch's parent = %v, want the request's span %v", got, want)
						}
					}
				case "request":
					for _, ev := range sp.Events() {
						if ev.Name == telemetry.EventUnauthorizedRetry {
							events++
						}
					}
				}
			}
			if !slices.Equal(reasons, tt.wantReasons) {
				t.Errorf("fetch reasons = %q, want %q", reasons, tt.wantReasons)
			}
			if events != tt.wantEvents {
				t.Errorf("%s events on the request's span = %d, want %d", telemetry.EventUnauthorizedRetry, events, tt.wantEvents)
			}
			got := metricPoints(t, reader, telemetry.MetricUnauthorizedRetries)
			if len(got) != len(tt.wantRetries) {
				t.Errorf("%s = %v, want %v", telemetry.MetricUnauthorizedRetries, got, tt.wantRetries)
			}
			for k, w := range tt.wantRetries {
				if got[k] != w {
					t.Errorf("%s{%s} = %d, want %d", telemetry.MetricUnauthorizedRetries, k, got[k], w)
				}
			}
		})
	}
}

// TestTelemetryMiddlewareRejection checks that the Middleware counts the
// requests it answers itself, by status, without a secret.
func TestTelemetryMiddlewareRejection(t *testing.T) {
	const secret = "tel-gateway-secret-Pn3xQ8"
	tests := []struct {
		name       string
		fail       func(*sourcetest.Server)
		secret     string
		wantStatus int
	}{
		{"credentials refused", func(*sourcetest.Server) {}, secret, http.StatusBadGateway},
		{"endpoint unavailable", func(s *sourcetest.Server) { s.FailNext(3, http.StatusServiceUnavailable, "") },
			sourcetest.DefaultClientSecret, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			idp := sourcetest.NewStandard(sourcetest.Options{})
			defer idp.Close()
			tt.fail(idp)
			rec, reader, tel := telemetrySDK(t)
			src, err := source.New(source.Config{
				TokenURL: idp.TokenURL, ClientID: sourcetest.DefaultClientID, ClientSecret: tt.secret,
				HTTPClient: idp.Client(), Telemetry: tel,
			})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer src.Close()
			h := tokenhttp.Middleware(src, tokenhttp.WithTelemetry(tel))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
				t.Error("next handler called without a token")
			}))
			ctx, span := tel.TracerProvider.Tracer("test").Start(context.Background(), "server")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequestWithContext(ctx, http.MethodGet, "/", nil))
			span.End()
			if got := w.Code; got != tt.wantStatus {
				t.Errorf("status = %d, want %d", got, tt.wantStatus)
			}
			got := metricPoints(t, reader, telemetry.MetricGatewayRejections)
			if len(got) != 1 {
				t.Fatalf("%s = %v, want one data point", telemetry.MetricGatewayRejections, got)
			}
			for k, v := range got {
				if want := fmt.Sprintf("%s=%d", telemetry.AttrHTTPStatusCode, tt.wantStatus); !strings.Contains(k, want) || v != 1 {
					t.Errorf("%s = {%s: %d}, want a count of 1 with %s", telemetry.MetricGatewayRejections, k, v, want)
				}
			}
			var all bytes.Buffer
			enc := json.NewEncoder(&all)
			enc.SetEscapeHTML(false)
			enc.Encode(tracetest.SpanStubsFromReadOnlySpans(rec.Ended()))
			fmt.Fprint(&all, got)
			if strings.Contains(all.String(), tt.secret) {
				t.Errorf("the recording holds the client secret:\n%s", all.String())
			}
		})
	}
}
