package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tokenhttp/tokenhttp/telemetry"
)

// Metric names of the proxy's own instruments (the library's are in
// package telemetry).
const (
	MetricRequests        = "tokenhttp.proxy.requests"
	MetricRequestDuration = "tokenhttp.proxy.request.duration"
)

// Telemetry is the proxy's OpenTelemetry setup: metrics to a Prometheus
// registry served on /metrics, traces over OTLP only when the standard
// OTEL_EXPORTER_OTLP_* (or OTEL_TRACES_EXPORTER) variables ask for it.
// One Telemetry lives as long as the process; reloads keep it.
type Telemetry struct {
	Providers telemetry.Providers

	registry *prometheus.Registry
	meter    *sdkmetric.MeterProvider
	tracer   *sdktrace.TracerProvider // nil: traces go nowhere
	requests metric.Int64Counter
	duration metric.Float64Histogram
}

// tracesWanted reports whether the environment configures a trace
// exporter, as autoexport reads it.
func tracesWanted(getenv func(string) string) bool {
	for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		if getenv(k) != "" {
			return getenv("OTEL_TRACES_EXPORTER") != "none"
		}
	}
	return false
}

// NewTelemetry sets up the meter provider over a new Prometheus registry,
// and a tracer provider when the environment asks for one.
func NewTelemetry(ctx context.Context, getenv func(string) string) (*Telemetry, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	t := &Telemetry{registry: reg, meter: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))}
	var tp trace.TracerProvider = noop.NewTracerProvider()
	if tracesWanted(getenv) {
		se, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			_ = t.meter.Shutdown(ctx)
			return nil, fmt.Errorf("telemetry: trace exporter: %w", err)
		}
		t.tracer = sdktrace.NewTracerProvider(sdktrace.WithBatcher(se))
		tp = t.tracer
	}
	t.Providers = telemetry.Providers{TracerProvider: tp, MeterProvider: t.meter}
	m := t.meter.Meter("github.com/tokenhttp/tokenhttp/cmd/tokenhttp/proxy")
	if t.requests, err = m.Int64Counter(MetricRequests, metric.WithUnit("{request}"),
		metric.WithDescription("Requests the proxy answered, by route and status.")); err != nil {
		return nil, err
	}
	if t.duration, err = m.Float64Histogram(MetricRequestDuration, metric.WithUnit("s"),
		metric.WithDescription("Time to answer a request, by route."),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)); err != nil {
		return nil, err
	}
	return t, nil
}

// MetricsHandler serves the Prometheus text format.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{})
}

// Shutdown flushes and stops the providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	err := t.meter.Shutdown(ctx)
	if t.tracer != nil {
		err = errors.Join(err, t.tracer.Shutdown(ctx))
	}
	return err
}
