package source_test

import (
	"context"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
	"github.com/tokenhttp/tokenhttp/telemetry"
)

// TestTelemetrySourceIdentity: two sources of one provider report their
// gauges as two points, told apart by telemetry.AttrSource (Config.Name,
// else a hash that holds no secret), and so do their fetch metrics.
func TestTelemetrySourceIdentity(t *testing.T) {
	sdk := newTelSDK(t)
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
	base := source.Config{TokenURL: emu.TokenURL, ClientID: sourcetest.DefaultClientID,
		ClientSecret: sourcetest.DefaultClientSecret, Telemetry: sdk.Providers()}
	named, hashed, scoped := base, base, base
	named.Name = "billing"
	scoped.Scopes = []string{"read"} // another credential: another identity
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, cfg := range []source.Config{named, hashed, scoped} {
		if _, err := newSource(t, cfg).Token(ctx); err != nil {
			t.Fatalf("Token: %v", err)
		}
	}
	rm := sdk.collect(t)
	for _, name := range []string{telemetry.MetricTokenTTL, telemetry.MetricBreakerState, telemetry.MetricFetches, telemetry.MetricFetchDuration} {
		got := telMetricValues(rm, name)
		if len(got) != 3 {
			t.Errorf("%s has %d points, want 3 (one per source): %v", name, len(got), got)
		}
		ids := map[string]bool{}
		for k := range got {
			for _, kv := range strings.Split(k, ",") {
				if v, ok := strings.CutPrefix(kv, telemetry.AttrSource+"="); ok {
					ids[v] = true
				}
			}
		}
		if !ids["billing"] || len(ids) != 3 {
			t.Errorf("%s: %s values = %v, want \"billing\" and two hashes", name, telemetry.AttrSource, ids)
		}
		for id := range ids {
			if strings.Contains(id, sourcetest.DefaultClientSecret) || (id != "billing" && len(id) != 12) {
				t.Errorf("%s = %q, want the name or a 12-digit hash", telemetry.AttrSource, id)
			}
		}
	}
	if spans := sdk.fetchSpans(); len(spans) != 3 || telAttrs(spans[0].Attributes())[telemetry.AttrSource] == "" {
		t.Errorf("fetch spans = %d, want 3 with %s", len(spans), telemetry.AttrSource)
	}
}

// dropSources makes n sources that are never closed and forgets them; it
// returns how many have been collected so far.
func dropSources(t *testing.T, n int, cfg source.Config) *atomic.Int32 {
	t.Helper()
	var collected atomic.Int32
	for range n {
		src, err := source.New(cfg)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		runtime.AddCleanup(src, func(c *atomic.Int32) { c.Add(1) }, &collected)
	}
	return &collected
}

func waitCollected(t *testing.T, c *atomic.Int32, n int32) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.Load() < n && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if got := c.Load(); got < n {
		t.Errorf("%d of %d sources dropped without Close were collected, want all", got, n)
	}
}

// TestDroppedSourceCollected: a source dropped without Close is garbage
// collected, under the global meter provider and under an SDK, and the
// gauges of live sources still report.
func TestDroppedSourceCollected(t *testing.T) {
	cfg := source.Config{TokenURL: "http://127.0.0.1:9/token", ClientID: "id", ClientSecret: "secret"}
	t.Run("global meter provider", func(t *testing.T) {
		waitCollected(t, dropSources(t, 50, cfg), 50)
	})
	t.Run("SDK meter provider", func(t *testing.T) {
		sdk := newTelSDK(t)
		cfg := cfg
		cfg.Telemetry = sdk.Providers()
		live := newSource(t, cfg)
		collected := dropSources(t, 50, cfg)
		waitCollected(t, collected, 50)
		if got := telMetricValues(sdk.collect(t), telemetry.MetricBreakerState); len(got) != 1 {
			t.Errorf("%s = %v, want the live source's point", telemetry.MetricBreakerState, got)
		}
		runtime.KeepAlive(live)
	})
}

// TestStoreHitsNotFetches: a token taken from a shared Store is counted by
// MetricStoreHits, not as a fetch.
func TestStoreHitsNotFetches(t *testing.T) {
	sdk := newTelSDK(t)
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
	cfg := source.Config{TokenURL: emu.TokenURL, ClientID: sourcetest.DefaultClientID,
		ClientSecret: sourcetest.DefaultClientSecret, Telemetry: sdk.Providers(), Store: source.NewMemoryStore(), Name: "s"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 2 {
		if _, err := newSource(t, cfg).Token(ctx); err != nil {
			t.Fatalf("Token: %v", err)
		}
	}
	if got := emu.TokenRequests(); got != 1 {
		t.Fatalf("token requests = %d, want 1 (the second source takes the stored token)", got)
	}
	rm := sdk.collect(t)
	fetches := telMetricValues(rm, telemetry.MetricFetches)
	hits := telMetricValues(rm, telemetry.MetricStoreHits)
	wantFetch := telemetry.AttrOutcome + "=success," + telemetry.AttrProvider + "=standard," + telemetry.AttrRefreshReason + "=cold," + telemetry.AttrSource + "=s"
	wantHit := telemetry.AttrProvider + "=standard," + telemetry.AttrRefreshReason + "=cold," + telemetry.AttrSource + "=s"
	if len(fetches) != 1 || fetches[wantFetch] != "1" {
		t.Errorf("%s = %v, want {%s: 1}", telemetry.MetricFetches, fetches, wantFetch)
	}
	if len(hits) != 1 || hits[wantHit] != "1" {
		t.Errorf("%s = %v, want {%s: 1}", telemetry.MetricStoreHits, hits, wantHit)
	}
}
