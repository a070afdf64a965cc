package telemetry

import (
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Providers are where spans and metrics go. A nil field means the
// OpenTelemetry global provider (which follows a provider installed later
// with otel.SetTracerProvider / otel.SetMeterProvider).
type Providers struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}
