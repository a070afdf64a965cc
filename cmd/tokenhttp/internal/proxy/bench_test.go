package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// clients is the number of concurrent clients in BenchmarkOverhead.
const clients = 64

// BenchmarkOverhead measures, side by side in one run on the same
// upstream, a plain httputil.ReverseProxy, the proxy with a cached token,
// and a ReverseProxy with the proxy's BufferPool (the like-for-like
// baseline for the token's cost alone), under 64 concurrent clients. They
// take turns in rounds of 500 requests, so that a change in the machine's
// load hits all alike. It reports the p50 and p99 latency of each, the
// proxy's overhead in percent over each baseline,
// and allocations per request (the whole process's: client, proxy and
// upstream; ns/op and B/op are for both sides together).
//
//	go test -run '^$' -bench Overhead -benchtime 40000x ./cmd/tokenhttp/internal/proxy/
func BenchmarkOverhead(b *testing.B) {
	body := []byte(`{"ok":true}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer up.Close()
	upURL, _ := url.Parse(up.URL)
	em := sourcetest.NewStandard(sourcetest.Options{})
	defer em.Close()
	newTransport := func() *http.Transport {
		return &http.Transport{MaxIdleConns: 2 * clients, MaxIdleConnsPerHost: 2 * clients}
	}

	rpTr := newTransport()
	defer rpTr.CloseIdleConnections()
	rp := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(upURL) }, Transport: rpTr})
	defer rp.Close()
	// The same with the proxy's BufferPool: the like-for-like baseline
	// for the cost of the token alone.
	rpPoolTr := newTransport()
	defer rpPoolTr.CloseIdleConnections()
	rpPool := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(upURL) },
		Transport: rpPoolTr, BufferPool: &buffers})
	defer rpPool.Close()

	dir := b.TempDir()
	sec := filepathJoin(dir, "secret")
	writeSecret(b, sec, sourcetest.DefaultClientSecret)
	cfg, err := ParseConfig([]byte("routes:\n" + routeYAML("/api", up.URL, em.TokenURL, sec)))
	if err != nil {
		b.Fatal(err)
	}
	pTr := newTransport()
	defer pTr.CloseIdleConnections()
	p, err := New(context.Background(), cfg, Options{Upstream: pTr, Logger: slog.New(slog.DiscardHandler), SecretPoll: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	px := httptest.NewServer(p.Handler())
	defer px.Close()

	targets := []*target{{name: "rp", url: rp.URL + "/api/orders/42"}, {name: "proxy", url: px.URL + "/api/orders/42"},
		{name: "rp-pool", url: rpPool.URL + "/api/orders/42"}}
	for _, t := range targets {
		t.c = &http.Client{Transport: newTransport()}
		defer t.c.CloseIdleConnections()
		t.run(b, clients) // warm the connections and the token
	}
	const round = 500
	b.ResetTimer()
	for done := 0; done < b.N; done += len(targets) * round {
		for _, t := range targets {
			t.run(b, min(round, max(b.N-done, 1)))
		}
	}
	b.StopTimer()
	for _, t := range targets {
		t.report(b)
	}
	over := func(base *target, p int) float64 {
		return 100 * (float64(targets[1].pct(p))/float64(base.pct(p)) - 1)
	}
	b.ReportMetric(over(targets[0], 50), "p50-overhead-%")
	b.ReportMetric(over(targets[0], 99), "p99-overhead-%")
	b.ReportMetric(over(targets[2], 50), "p50-overhead-vs-pool-%")
	b.ReportMetric(over(targets[2], 99), "p99-overhead-vs-pool-%")
	b.ReportMetric(0, "ns/op")
}

// target is one side of BenchmarkOverhead.
type target struct {
	name   string
	url    string
	c      *http.Client
	lat    []time.Duration
	allocs uint64
}

// run sends n GET requests from 64 concurrent clients.
func (t *target) run(b *testing.B, n int) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.Mallocs
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				start := time.Now()
				resp, err := t.c.Get(t.url)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[i] = time.Since(start)
				if resp.StatusCode != 200 {
					b.Errorf("%s: status %d", t.name, resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	runtime.ReadMemStats(&ms)
	t.allocs += ms.Mallocs - before
	t.lat = append(t.lat, lat...)
}

func (t *target) pct(p int) time.Duration {
	slices.Sort(t.lat)
	return t.lat[(len(t.lat)-1)*p/100]
}

func (t *target) report(b *testing.B) {
	b.ReportMetric(float64(t.pct(50).Microseconds()), t.name+"-p50-µs")
	b.ReportMetric(float64(t.pct(99).Microseconds()), t.name+"-p99-µs")
	b.ReportMetric(float64(t.allocs)/float64(len(t.lat)), t.name+"-allocs/req")
}

// BenchmarkFleet runs 4 proxies for 30 s of 3 s tokens under steady
// traffic, and reports the token requests per token lifetime for the whole
// fleet, with the default configuration: sharing Redis (the goal: at most
// 1.2; the automatic refresh-ahead margin is a tenth of the lifetime, so
// the least is 1 first fetch + 11 renewals in 10 lifetimes) and, as the
// yardstick, each proxy on its own. Run it on its own:
//
//	go test -run '^$' -bench Fleet -benchtime 1x ./cmd/tokenhttp/internal/proxy/
func BenchmarkFleet(b *testing.B) {
	b.Run("shared-redis", func(b *testing.B) { fleet(b, true) })
	b.Run("no-store", func(b *testing.B) { fleet(b, false) })
}

func fleet(b *testing.B, shared bool) {
	const (
		replicas = 4
		lifetime = 3 * time.Second
		duration = 30 * time.Second
	)
	em := sourcetest.NewStandard(sourcetest.Options{Lifetime: lifetime})
	defer em.Close()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	dir := b.TempDir()
	sec, key := filepathJoin(dir, "secret"), filepathJoin(dir, "key")
	writeSecret(b, sec, sourcetest.DefaultClientSecret)
	yaml := "routes:\n" + routeYAML("/api", up.URL, em.TokenURL, sec)
	if shared {
		writeSecret(b, key, "000102030405060708090a0b0c0d0e0f")
		yaml += "store:\n  redis: redis://" + startRedis(b) + "/0\n  key_file: " + key + "\n"
	}
	cfg, err := ParseConfig([]byte(yaml))
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		before := em.TokenRequests()
		var srvs []*httptest.Server
		for range replicas {
			p, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler), SecretPoll: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Shutdown(context.Background())
			s := httptest.NewServer(p.Handler())
			defer s.Close()
			srvs = append(srvs, s)
		}
		ctx, cancel := context.WithTimeout(context.Background(), duration)
		var wg sync.WaitGroup
		var failed atomic.Int64
		for _, s := range srvs {
			for range 4 {
				wg.Go(func() {
					c := &http.Client{Transport: &http.Transport{}}
					defer c.CloseIdleConnections()
					for ctx.Err() == nil {
						resp, err := c.Get(s.URL + "/api")
						if err == nil {
							_, _ = io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
						}
						if err != nil || resp.StatusCode != 200 {
							failed.Add(1)
						}
						time.Sleep(5 * time.Millisecond)
					}
				})
			}
		}
		wg.Wait()
		cancel()
		n := em.TokenRequests() - before
		b.ReportMetric(float64(n)/float64(duration/lifetime), "fetches/lifetime")
		b.ReportMetric(float64(failed.Load()), "failed-requests")
	}
}
