package tokenhttp

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/telemetry"
)

// TestTransport401StormBounded: an API that rejects every token (401 with
// invalid_token) is not rejecting the token. 1000 calls from 10 goroutines
// get the API's 401 every time, but the source fetches at most 5 tokens:
// once a freshly fetched token is rejected too, it stops dropping tokens
// and backs off, and counts the suppressed invalidations.
func TestTransport401StormBounded(t *testing.T) {
	const goroutines, calls = 10, 100
	ts := newTokenServer(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	src := newSource(t, ts, func(c *source.Config) { c.Telemetry = telemetry.Providers{MeterProvider: mp} })
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(api.Close)
	client := NewClient(src)
	t.Cleanup(client.CloseIdleConnections)

	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for range goroutines {
		wg.Go(func() {
			for range calls {
				resp, err := client.Get(api.URL)
				if err != nil {
					t.Errorf("Get: %v", err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				statuses[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if got, want := statuses[http.StatusUnauthorized], goroutines*calls; got != want {
		t.Errorf("401s returned: got %d (statuses %v), want %d: the API's 401 comes back", got, statuses, want)
	}
	t.Logf("%d calls, %d token requests", goroutines*calls, ts.requests.Load())
	if got := ts.requests.Load(); got > 5 {
		t.Errorf("token requests: got %d, want at most 5 for %d calls that all get 401", got, goroutines*calls)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	var suppressed int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == telemetry.MetricSuppressedInvalidations {
				for _, dp := range sum.DataPoints {
					suppressed += dp.Value
				}
			}
		}
	}
	if suppressed == 0 {
		t.Errorf("%s: got 0, want the suppressed invalidations counted", telemetry.MetricSuppressedInvalidations)
	}
}

// TestTransport401RevokedReplacedAtOnce: a token the API revoked is
// replaced at once (one extra fetch), and so is its replacement when the
// API accepted it and then revoked it too: the backoff is for tokens
// rejected before any API accepted them.
func TestTransport401RevokedReplacedAtOnce(t *testing.T) {
	ts := newTokenServer(t)
	src := newSource(t, ts)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+ts.newest() {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(api.Close)
	client := NewClient(src)
	t.Cleanup(client.CloseIdleConnections)
	get := func(what string) {
		t.Helper()
		resp, err := client.Get(api.URL)
		if err != nil {
			t.Fatalf("%s: Get: %v", what, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d, want 200", what, resp.StatusCode)
		}
	}
	get("first call")
	for i, want := range []int64{2, 3, 4} {
		ts.rotate() // the current token is revoked
		get("after revocation")
		get("again")
		if got := ts.requests.Load(); got != want {
			t.Errorf("revocation %d: token requests = %d, want %d (one extra fetch per revocation)", i+1, got, want)
		}
	}
}
