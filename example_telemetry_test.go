package tokenhttp_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

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
