package tokenhttp_test

// Performance benchmarks and long-running checks of issue 7.
//
// The cached-hit benchmarks compare, in one run, this module's Transport,
// golang.org/x/oauth2's Transport over ReuseTokenSource (a test-only
// yardstick) and the floor: req.Clone plus one header set. All three wrap
// the same stub base, which answers at once, so only the wrapper is
// measured:
//
//	go test -run '^$' -bench 'CachedHit' -benchmem -count 6 -cpu 1,2,4,8 . | tee hit.txt
//	benchstat -col /impl hit.txt   # or: benchstat hit.txt
//
// The cold herd reports how long 1000 callers with no token wait for the
// one shared fetch from a 50 ms endpoint:
//
//	go test -run '^$' -bench 'ColdHerd' -benchtime 10x -count 6 .
//
// TestColdHerd and TestMemoryFlat assert the same properties in a normal
// test run.

import (
	"context"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// benchURL is the API every benchmark request goes to. It is https, so
// the Transport's cleartext check passes as it would in production; the
// stub base never dials it.
const benchURL = "https://api.example.com/v1/orders?page=2"

// benchStub is a base RoundTripper that answers at once with one prebuilt
// response (its body is http.NoBody, shared by every call), so that a
// benchmark measures only the wrapper above it.
type benchStub struct{ resp *http.Response }

func newBenchStub() *benchStub {
	return &benchStub{resp: &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: http.NoBody, ContentLength: 0,
	}}
}

func (s *benchStub) RoundTrip(*http.Request) (*http.Response, error) { return s.resp, nil }

// benchCheck is a base that records the Authorization header it is given;
// it checks a wrapper before the timed loop, never inside it.
type benchCheck struct {
	mu   sync.Mutex
	auth map[string]int // Authorization value -> calls
	resp *http.Response
}

func newBenchCheck() *benchCheck {
	return &benchCheck{auth: map[string]int{}, resp: newBenchStub().resp}
}

func (c *benchCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.auth[req.Header.Get("Authorization")]++
	c.mu.Unlock()
	return c.resp, nil
}

// newBenchRequest builds the request a caller sends, once per goroutine,
// outside the timed loop. It carries one header of its own, as most API
// calls do.
func newBenchRequest(tb testing.TB) *http.Request {
	tb.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, benchURL, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	return req
}

// floorTransport is the least a token transport can do while following
// the RoundTripper contract the way x/oauth2 does: clone the request, set
// one precomputed header, call the base.
type floorTransport struct {
	base http.RoundTripper
	val  string
}

func (f *floorTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r2 := req.Clone(req.Context())
	r2.Header.Set("Authorization", f.val)
	return f.base.RoundTrip(r2)
}

// benchImpl is one contender: mk wraps a base.
type benchImpl struct {
	name string
	mk   func(base http.RoundTripper) http.RoundTripper
}

// benchImpls starts one token endpoint and returns the three contenders
// over it, each with its token already fetched, and the Authorization
// value each must send. Everything is closed when tb ends.
func benchImpls(tb testing.TB) []benchImpl {
	tb.Helper()
	srv := sourcetest.NewStandard(sourcetest.Options{}) // tokens live 3600 s
	tb.Cleanup(srv.Close)
	ctx := context.Background()

	// This module, configured as a user would.
	src := newBenchSource(tb, srv)
	tok, err := src.Token(ctx)
	if err != nil {
		tb.Fatalf("source.Token: %v", err)
	}

	// x/oauth2, configured as a user would: a clientcredentials source
	// behind ReuseTokenSource, its HTTP client given through the context.
	cfg := clientcredentials.Config{
		ClientID:     sourcetest.DefaultClientID,
		ClientSecret: sourcetest.DefaultClientSecret,
		TokenURL:     srv.TokenURL,
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	octx := context.WithValue(ctx, oauth2.HTTPClient, srv.Client())
	ots := oauth2.ReuseTokenSource(nil, cfg.TokenSource(octx))
	otok, err := ots.Token()
	if err != nil {
		tb.Fatalf("oauth2 Token: %v", err)
	}

	impls := []benchImpl{
		{"tokenhttp", func(base http.RoundTripper) http.RoundTripper {
			return tokenhttp.NewTransport(src, tokenhttp.WithBase(base))
		}},
		{"x-oauth2", func(base http.RoundTripper) http.RoundTripper {
			return &oauth2.Transport{Source: ots, Base: base}
		}},
		{"floor", func(base http.RoundTripper) http.RoundTripper {
			return &floorTransport{base: base, val: tok.HeaderValue()}
		}},
	}
	want := map[string]string{
		"tokenhttp": tok.HeaderValue(),
		"x-oauth2":  otok.Type() + " " + otok.AccessToken,
		"floor":     tok.HeaderValue(),
	}
	// Each contender must send its token, and nothing may fetch again.
	for _, im := range impls {
		chk := newBenchCheck()
		rt := im.mk(chk)
		req := newBenchRequest(tb)
		for range 3 {
			if _, err := rt.RoundTrip(req); err != nil {
				tb.Fatalf("%s: RoundTrip: %v", im.name, err)
			}
		}
		if got := chk.auth[want[im.name]]; got != 3 || len(chk.auth) != 1 {
			tb.Fatalf("%s: sent Authorization values %d times (of 3), %d distinct values; want the cached token every time",
				im.name, got, len(chk.auth))
		}
		if req.Header.Get("Authorization") != "" {
			tb.Fatalf("%s: modified the caller's request", im.name)
		}
	}
	if n := srv.TokenRequests(); n != 2 {
		tb.Fatalf("token requests = %d, want 2 (one per library)", n)
	}
	return impls
}

// newBenchSource returns a source.New source for srv's client_credentials
// grant, closed when tb ends.
func newBenchSource(tb testing.TB, srv *sourcetest.Server) source.TokenSource {
	tb.Helper()
	src, err := source.New(source.Config{
		TokenURL:     srv.TokenURL,
		ClientID:     sourcetest.DefaultClientID,
		ClientSecret: sourcetest.DefaultClientSecret,
		HTTPClient:   srv.Client(),
	})
	if err != nil {
		tb.Fatalf("source.New: %v", err)
	}
	tb.Cleanup(func() { src.Close() })
	return src
}

// BenchmarkCachedHit is one RoundTrip with a cached token, serially.
func BenchmarkCachedHit(b *testing.B) {
	for _, im := range benchImpls(b) {
		b.Run("impl="+im.name, func(b *testing.B) {
			rt := im.mk(newBenchStub())
			req := newBenchRequest(b)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := rt.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCachedHitParallel is BenchmarkCachedHit under b.RunParallel:
// GOMAXPROCS goroutines (set with -cpu) share one Transport, each with its
// own request.
func BenchmarkCachedHitParallel(b *testing.B) {
	for _, im := range benchImpls(b) {
		b.Run("impl="+im.name, func(b *testing.B) {
			rt := im.mk(newBenchStub())
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				req := newBenchRequest(b)
				for pb.Next() {
					if _, err := rt.RoundTrip(req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// coldHerd releases n goroutines at once on a fresh source with no token,
// each sending one request through a Transport, and returns how long each
// waited and the Authorization values the base saw. srv should be slow
// (SetLatency) so that every goroutine arrives while the fetch is in
// flight.
func coldHerd(tb testing.TB, srv *sourcetest.Server, n int) ([]time.Duration, map[string]int) {
	tb.Helper()
	src := newBenchSource(tb, srv)
	chk := newBenchCheck()
	rt := tokenhttp.NewTransport(src, tokenhttp.WithBase(chk))

	waits := make([]time.Duration, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var ready, done sync.WaitGroup
	ready.Add(n)
	done.Add(n)
	for i := range n {
		req := newBenchRequest(tb)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			t0 := time.Now()
			_, errs[i] = rt.RoundTrip(req)
			waits[i] = time.Since(t0)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	for i, err := range errs {
		if err != nil {
			tb.Fatalf("goroutine %d: RoundTrip: %v", i, err)
		}
	}
	return waits, chk.auth
}

// percentile returns the p-th percentile (0..100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(float64(len(sorted)-1)*p/100)]
}

const (
	herdSize    = 1000
	herdLatency = 50 * time.Millisecond
)

// TestColdHerd: 1000 goroutines with no token and a 50 ms endpoint make
// exactly one token request, and all send the token it returned.
func TestColdHerd(t *testing.T) {
	srv := sourcetest.NewStandard(sourcetest.Options{})
	defer srv.Close()
	srv.SetLatency(herdLatency)

	waits, auth := coldHerd(t, srv, herdSize)
	if n := srv.TokenRequests(); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
	if len(auth) != 1 {
		t.Errorf("the herd sent %d distinct Authorization values, want 1", len(auth))
	}
	for v, n := range auth {
		if n != herdSize || v == "" {
			t.Errorf("Authorization %q sent %d times, want a token %d times", v, n, herdSize)
		}
	}
	slices.Sort(waits)
	t.Logf("cold herd of %d, %v endpoint: wait p50 %v, p99 %v, max %v",
		herdSize, herdLatency, percentile(waits, 50), percentile(waits, 99), waits[len(waits)-1])
	if p50 := percentile(waits, 50); p50 < herdLatency/2 {
		t.Errorf("median wait %v is shorter than the endpoint's latency %v: did the herd wait for the fetch?", p50, herdLatency)
	}
}

// BenchmarkColdHerd runs a cold herd per iteration and reports the
// callers' wait percentiles (p50-ms, p99-ms, max-ms) and the token
// requests per herd (reqs/op, which must be 1).
func BenchmarkColdHerd(b *testing.B) {
	srv := sourcetest.NewStandard(sourcetest.Options{})
	defer srv.Close()
	srv.SetLatency(herdLatency)
	all := make([]time.Duration, 0, b.N*herdSize)
	b.ResetTimer()
	for range b.N {
		waits, auth := coldHerd(b, srv, herdSize)
		if len(auth) != 1 {
			b.Fatalf("the herd sent %d distinct Authorization values, want 1", len(auth))
		}
		all = append(all, waits...)
	}
	b.StopTimer()
	slices.Sort(all)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(percentile(all, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(all, 99)), "p99-ms")
	b.ReportMetric(ms(all[len(all)-1]), "max-ms")
	b.ReportMetric(float64(srv.TokenRequests())/float64(b.N), "reqs/op")
}

// heapAfterGC collects garbage and returns the memory statistics.
func heapAfterGC() runtime.MemStats {
	runtime.GC()
	runtime.GC() // a second cycle frees what the first one's finalizers released
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}

// TestMemoryFlat: a source and its Transport keep no memory per call: the
// live heap after 10^6 cached Token calls and 10^6 cached RoundTrips is
// what it was before, within 1 MiB.
func TestMemoryFlat(t *testing.T) {
	const (
		calls = 1_000_000
		bound = 1 << 20
	)
	srv := sourcetest.NewStandard(sourcetest.Options{})
	defer srv.Close()
	src := newBenchSource(t, srv)
	rt := tokenhttp.NewTransport(src, tokenhttp.WithBase(newBenchStub()))
	ctx := context.Background()
	req := newBenchRequest(t)

	want, err := src.Token(ctx)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	for range 1000 { // warm up: the header cache, sync.Pools, the stub
		if _, err := rt.RoundTrip(req); err != nil {
			t.Fatalf("RoundTrip: %v", err)
		}
	}

	before := heapAfterGC()
	bad := 0
	for range calls {
		if tok, err := src.Token(ctx); tok != want || err != nil {
			bad++
		}
		if _, err := rt.RoundTrip(req); err != nil {
			bad++
		}
	}
	after := heapAfterGC()
	runtime.KeepAlive(rt)
	runtime.KeepAlive(src)

	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap before %d B (%d objects), after %d B (%d objects): %+d B over %d Token + %d RoundTrip calls; "+
		"%.1f B allocated (and freed) per Token+RoundTrip",
		before.HeapAlloc, before.HeapObjects, after.HeapAlloc, after.HeapObjects, growth, calls, calls,
		float64(after.TotalAlloc-before.TotalAlloc)/calls)
	if bad != 0 {
		t.Errorf("%d calls returned an error or another token", bad)
	}
	if growth > bound {
		t.Errorf("live heap grew by %d B over %d calls, want < %d B", growth, calls, bound)
	}
	if n := srv.TokenRequests(); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
}
