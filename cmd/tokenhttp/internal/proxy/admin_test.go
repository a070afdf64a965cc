package proxy

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

func oneRoute(em *sourcetest.Server, sec string, extra ...string) string {
	return "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nroutes:\n" +
		routeYAML("/api", em.URL+"/resource", em.TokenURL, sec, extra...) + "    strip_prefix: true\n"
}

// startOneRoute starts a new emulator with o and a proxy in a new dir
// with its oneRoute (extra added), the default client secret read from
// the file dir/secret.
func startOneRoute(t *testing.T, o sourcetest.Options, extra ...string) (h *harness, em *sourcetest.Server, dir string) {
	t.Helper()
	dir = t.TempDir()
	sec := secretFile(t, dir, "secret", sourcetest.DefaultClientSecret)
	em = newEmulator(t, o)
	return startProxy(t, dir, oneRoute(em, sec, extra...)), em, dir
}

// TestReadiness: cold, ready, still ready while the endpoint is down and
// the token valid, then breaker open once it expired; refused credentials.
func TestReadiness(t *testing.T) {
	t.Parallel()
	h, em, _ := startOneRoute(t, sourcetest.Options{Latency: 300 * time.Millisecond, Lifetime: 2 * time.Second},
		"retry_max_attempts: 1", "breaker_failures: 2", "breaker_open_for: 1m", "refresh_ahead: 500ms")

	if code, rd := h.ready(); code != 503 || rd.Routes[0].State != "no_token_yet" {
		t.Errorf("cold: %d %+v, want 503 no_token_yet", code, rd)
	}
	if code, _ := get(t, h.client, h.admin+"/livez"); code != 200 {
		t.Errorf("/livez: %d", code)
	}
	rd := h.waitReady(200)
	if rd.Routes[0].State != "ready" || rd.Routes[0].Expiry == nil {
		t.Errorf("ready: %+v", rd)
	}

	em.SetLatency(0)
	em.FailNext(1000, http.StatusServiceUnavailable, "")
	// The token stays valid for a while: still ready, and requests pass.
	if code, _, body := h.do("GET", "/api", "", nil); code != 200 {
		t.Errorf("GET with the endpoint down and a valid token: %d %s", code, body)
	}
	if code, rd := h.ready(); code != 200 {
		t.Errorf("endpoint down, token valid: %d %+v, want 200", code, rd)
	}
	// Once it expired, renewals fail and the breaker opens.
	rd = h.waitReadyState("breaker_open")
	if rd.Routes[0].BreakerOpen == nil || rd.Routes[0].BreakerOpen.Before(time.Now()) {
		t.Errorf("breaker open: %+v, want a breaker_open_until in the future", rd.Routes[0])
	}
	code, hdr, body := h.do("GET", "/api", "", nil)
	if code != 503 || hdr.Get("Retry-After") == "" || hdr.Get("Content-Type") != "application/problem+json" {
		t.Errorf("GET with the breaker open: %d %v %s, want a 503 problem+json with Retry-After", code, hdr, body)
	}

	// Refused credentials.
	dir2 := t.TempDir()
	bad := secretFile(t, dir2, "secret", "wrong-secret")
	em2 := newEmulator(t, sourcetest.Options{})
	h2 := startProxy(t, dir2, oneRoute(em2, bad))
	rd = h2.waitReadyState("credentials_refused")
	if rd.Routes[0].Error != "invalid_client" {
		t.Errorf("refused: %+v", rd.Routes[0])
	}
	code, _, body = h2.do("GET", "/api", "", nil)
	if code != 502 || strings.Contains(string(body), "wrong-secret") {
		t.Errorf("GET with refused credentials: %d %s, want 502 without the secret", code, body)
	}
	h2.noSecret("wrong-secret")
}

// waitReadyState waits until the first route's state is want.
func (h *harness) waitReadyState(want string) Readiness {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, rd := h.ready()
		if rd.Routes[0].State == want {
			if code != 503 {
				h.t.Errorf("/readyz %s: %d, want 503", want, code)
			}
			return rd
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("/readyz: %d %+v, want state %s", code, rd, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t *testing.T, c *http.Client, url string) (int, *http.Response) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp
}

// TestMetrics scrapes /metrics and parses it: the proxy's request counts
// and latency per route, and the library's fetch metrics.
func TestMetrics(t *testing.T) {
	t.Parallel()
	h, _, _ := startOneRoute(t, sourcetest.Options{})
	for range 3 {
		if code, _, b := h.do("GET", "/api", "", nil); code != 200 {
			t.Fatalf("GET /api: %d %s", code, b)
		}
	}
	h.do("GET", "/nowhere", "", nil)

	resp, err := h.client.Get(h.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	reqs := fams["tokenhttp_proxy_requests_total"]
	if reqs == nil {
		t.Fatalf("no tokenhttp_proxy_requests_total; families: %v", names(fams))
	}
	if got := counter(reqs, map[string]string{"route": "/api", "http_response_status_code": "200"}); got != 3 {
		t.Errorf("requests{route=/api,200} = %v, want 3", got)
	}
	if got := counter(reqs, map[string]string{"route": "unmatched", "http_response_status_code": "404"}); got != 1 {
		t.Errorf("requests{route=unmatched,404} = %v, want 1", got)
	}
	dur := fams["tokenhttp_proxy_request_duration_seconds"]
	if dur == nil || dur.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("no histogram tokenhttp_proxy_request_duration_seconds; families: %v", names(fams))
	}
	var n uint64
	for _, m := range dur.Metric {
		if label(m, "route") == "/api" {
			n += m.GetHistogram().GetSampleCount()
		}
	}
	if n != 3 {
		t.Errorf("duration count for /api = %d, want 3", n)
	}
	var fetchMetric bool
	for name := range fams {
		if strings.HasPrefix(name, "tokenhttp_token_fetch") {
			fetchMetric = true
		}
	}
	if !fetchMetric {
		t.Errorf("no library fetch metric (tokenhttp_token_fetch*); families: %v", names(fams))
	}
}

func names(f map[string]*dto.MetricFamily) []string {
	var s []string
	for k := range f {
		s = append(s, k)
	}
	return s
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func counter(f *dto.MetricFamily, labels map[string]string) float64 {
	var sum float64
next:
	for _, m := range f.Metric {
		for k, v := range labels {
			if label(m, k) != v {
				continue next
			}
		}
		sum += m.GetCounter().GetValue()
	}
	return sum
}

// TestTraces: spans go to an OTLP exporter only when the standard
// variables ask for one; otherwise nowhere.
func TestTraces(t *testing.T) {
	ctx := t.Context()
	tel, err := NewTelemetry(ctx, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if tel.tracer != nil || tel.Providers.TracerProvider == nil {
		t.Errorf("without OTEL_* variables: tracer %v, want none (a no-op provider)", tel.tracer)
	}
	if err := tel.Shutdown(ctx); err != nil {
		t.Error(err)
	}

	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	tel, err = NewTelemetry(ctx, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if tel.tracer == nil || tel.Providers.TracerProvider != tel.tracer {
		t.Errorf("with OTEL_EXPORTER_OTLP_ENDPOINT: no OTLP tracer provider")
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_ = tel.Shutdown(sctx) // nothing listens: the flush may fail
}

// TestListenerFailureReported: a listener that stops on its own after
// Start is reported on Failed, so the command exits instead of running
// without it.
func TestListenerFailureReported(t *testing.T) {
	t.Parallel()
	h, _, _ := startOneRoute(t, sourcetest.Options{})
	select {
	case err := <-h.p.Failed():
		t.Fatalf("Failed() = %v before any listener stopped", err)
	default:
	}
	h.p.ln.Close() // the proxy's listener dies
	select {
	case err := <-h.p.Failed():
		if err == nil || errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Failed() = %v, want the listener's error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Failed() reported nothing within 5 s of the listener's end")
	}
}
