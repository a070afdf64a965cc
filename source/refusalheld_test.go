package source_test

import (
	"context"
	"testing"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
	"github.com/tokenhttp/tokenhttp/telemetry"
)

// TestTelemetryRefusalHeld: a Token call that gets the held refusal
// sends nothing, so its fetch span carries EventRefusalHeld and
// MetricFetches counts only the refusal that was sent.
func TestTelemetryRefusalHeld(t *testing.T) {
	leakCheck(t)
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
	sdk := newTelSDK(t)
	cfg := standardConfig(emu.TokenURL)
	cfg.ClientSecret, cfg.Telemetry, cfg.Name = "wrong-secret-Hb61", sdk.Providers(), "held"
	src := newSource(t, cfg)
	for range 3 {
		if _, err := src.Token(context.Background()); err == nil {
			t.Fatal("Token with a wrong secret: no error")
		}
	}
	if got, want := emu.TokenRequests(), 1; got != want {
		t.Fatalf("token requests = %d, want %d", got, want)
	}
	spans := sdk.fetchSpans()
	if got, want := len(spans), 3; got != want {
		t.Fatalf("fetch spans = %d, want %d", got, want)
	}
	for i, sp := range spans {
		held := false
		for _, ev := range sp.Events() {
			held = held || ev.Name == telemetry.EventRefusalHeld
		}
		if want := i > 0; held != want {
			t.Errorf("span %d: %s event = %v, want %v", i, telemetry.EventRefusalHeld, held, want)
		}
	}
	fetches := telMetricValues(sdk.collect(t), telemetry.MetricFetches)
	if len(fetches) != 1 {
		t.Errorf("%s = %v, want one data point", telemetry.MetricFetches, fetches)
	}
	for k, v := range fetches {
		if v != "1" {
			t.Errorf("%s{%s} = %s, want 1: a held refusal is not a fetch", telemetry.MetricFetches, k, v)
		}
	}
}
