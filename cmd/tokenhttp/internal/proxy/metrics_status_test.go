package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// scrape parses the proxy's /metrics.
func (h *harness) scrape() map[string]*dto.MetricFamily {
	h.t.Helper()
	resp, err := h.client.Get(h.admin + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	tp := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := tp.TextToMetricFamilies(resp.Body)
	if err != nil {
		h.t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// TestMetricsStatus: a protocol switch is counted as 101, not 200, and a
// response the upstream aborted mid-body is counted too.
func TestMetricsStatus(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sec := secretFile(t, dir, "secret", sourcetest.DefaultClientSecret)
	em := newEmulator(t, sourcetest.Options{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ws":
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("upstream hijack: %v", err)
				return
			}
			defer c.Close()
			_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			_ = brw.Flush()
			_, _ = brw.ReadString('\n') // until the client closes
		case "/abort":
			w.Header().Set("Content-Length", "1000")
			_, _ = w.Write([]byte("only a part"))
			http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler)
		}
	}))
	t.Cleanup(up.Close)
	cfg := "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nroutes:\n" + routeYAML("/api", up.URL, em.TokenURL, sec) + "    strip_prefix: true\n"
	h := startProxy(t, dir, cfg)
	h.waitReady(200)

	// The switch.
	c, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("GET /api/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("the upgrade: %v %v, want 101", resp, err)
	}
	c.Close()

	// The aborted body.
	req, _ := http.NewRequest("GET", h.url+"/api/abort", nil)
	if resp, err := h.client.Do(req); err == nil {
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}

	want := map[string]float64{"101": 1, "200": 1}
	deadline := time.Now().Add(5 * time.Second)
	for {
		reqs := h.scrape()["tokenhttp_proxy_requests_total"]
		got := map[string]float64{}
		if reqs != nil {
			for _, m := range reqs.Metric {
				if label(m, "route") == "/api" {
					got[label(m, "http_response_status_code")] += m.GetCounter().GetValue()
				}
			}
		}
		if len(got) == len(want) && got["101"] == want["101"] && got["200"] == want["200"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("requests{route=/api} by status: got %v, want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
