package instrument

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokenhttp/tokenhttp/internal/testsupport"
	"github.com/tokenhttp/tokenhttp/telemetry"
)

// sdk is an OpenTelemetry SDK that keeps what it records in memory.
type sdk struct{ *testsupport.OTel }

func newSDK(t *testing.T) *sdk { return &sdk{testsupport.NewOTel(t)} }

// metrics collects every metric, by name.
func (s *sdk) metrics(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := s.Reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if _, dup := out[m.Name]; dup {
				t.Errorf("metric %s reported by more than one scope", m.Name)
			}
			out[m.Name] = m
		}
	}
	return out
}

// attrMap turns attributes into "key" -> emitted value.
func attrMap(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

func checkAttrs(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		switch {
		case w == "" && ok:
			t.Errorf("%s: attribute %s = %q, want it absent", what, k, g)
		case w != "" && !ok:
			t.Errorf("%s: attribute %s missing, want %q", what, k, w)
		case w != "" && g != w:
			t.Errorf("%s: attribute %s = %q, want %q", what, k, g, w)
		}
	}
}

// sums returns the int64 sum data points of metric name, keyed by their
// sorted attribute set.
func sums(t *testing.T, ms map[string]metricdata.Metrics, name string) map[string]int64 {
	t.Helper()
	m, ok := ms[name]
	if !ok {
		return nil
	}
	s, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("metric %s is a %T, want metricdata.Sum[int64]", name, m.Data)
	}
	if !s.IsMonotonic {
		t.Errorf("metric %s is not monotonic", name)
	}
	out := map[string]int64{}
	for _, dp := range s.DataPoints {
		out[setKey(dp.Attributes)] = dp.Value
	}
	return out
}

// setKey renders an attribute set as "k=v,k=v" in key order.
func setKey(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.String())
	}
	return strings.Join(parts, ",")
}

type event struct {
	name  string
	attrs map[string]string
}

func TestFetchSpan(t *testing.T) {
	type step func(f *Fetch)
	tests := []struct {
		name       string
		info       FetchInfo
		steps      []step
		result     Result
		wantAttrs  map[string]string // "" means absent
		wantEvents []event
		wantStatus codes.Code
		wantDesc   string
	}{
		{
			name:   "success",
			info:   FetchInfo{Provider: "standard", Grant: "client_credentials", Reason: telemetry.ReasonCold, Host: "auth.example.com", Port: 443},
			result: Result{Outcome: telemetry.OutcomeSuccess, Status: 200, Attempts: 1},
			wantAttrs: map[string]string{
				telemetry.AttrProvider: "standard", telemetry.AttrGrantType: "client_credentials", telemetry.AttrRefreshReason: telemetry.ReasonCold,
				telemetry.AttrServerAddress: "auth.example.com", telemetry.AttrServerPort: "443", telemetry.AttrOutcome: telemetry.OutcomeSuccess,
				telemetry.AttrAttempts: "1", telemetry.AttrHTTPStatusCode: "200", telemetry.AttrErrorType: "", telemetry.AttrOAuthError: "",
			},
			wantStatus: codes.Unset,
		},
		{
			name: "retried then refused",
			info: FetchInfo{Provider: "vaultid", Grant: "password", Reason: telemetry.ReasonRejected, Host: "vault.example", Port: 8443},
			steps: []step{
				func(f *Fetch) { f.Retry(1, 503, "server_error", 150*time.Millisecond) },
				func(f *Fetch) { f.Retry(2, 0, "network", 2*time.Second) },
			},
			result: Result{Outcome: telemetry.OutcomeRefused, Status: 401, Attempts: 3, ErrorType: "invalid_client", OAuthError: "invalid_client"},
			wantAttrs: map[string]string{
				telemetry.AttrProvider: "vaultid", telemetry.AttrGrantType: "password", telemetry.AttrRefreshReason: telemetry.ReasonRejected,
				telemetry.AttrServerAddress: "vault.example", telemetry.AttrServerPort: "8443", telemetry.AttrOutcome: telemetry.OutcomeRefused,
				telemetry.AttrAttempts: "3", telemetry.AttrHTTPStatusCode: "401", telemetry.AttrErrorType: "invalid_client", telemetry.AttrOAuthError: "invalid_client",
			},
			wantEvents: []event{
				{telemetry.EventRetry, map[string]string{telemetry.AttrRetryCount: "1", telemetry.AttrRetryWait: "150", telemetry.AttrHTTPStatusCode: "503", telemetry.AttrErrorType: "server_error"}},
				{telemetry.EventRetry, map[string]string{telemetry.AttrRetryCount: "2", telemetry.AttrRetryWait: "2000", telemetry.AttrHTTPStatusCode: "", telemetry.AttrErrorType: "network"}},
			},
			wantStatus: codes.Error,
			wantDesc:   "invalid_client",
		},
		{
			name: "breaker opens",
			info: FetchInfo{Provider: "standard", Grant: "client_credentials", Reason: telemetry.ReasonAhead, Host: "127.0.0.1", Port: 8080},
			steps: []step{
				func(f *Fetch) { f.BreakerChange("closed", "open") },
			},
			result: Result{Outcome: telemetry.OutcomeUnavailable, Status: 500, Attempts: 1, ErrorType: "server_error", OAuthError: "server_error"},
			wantAttrs: map[string]string{
				telemetry.AttrRefreshReason: telemetry.ReasonAhead, telemetry.AttrOutcome: telemetry.OutcomeUnavailable, telemetry.AttrAttempts: "1",
				telemetry.AttrHTTPStatusCode: "500", telemetry.AttrErrorType: "server_error",
			},
			wantEvents: []event{
				{telemetry.EventBreakerState, map[string]string{telemetry.AttrBreakerFrom: "closed", telemetry.AttrBreakerTo: "open"}},
			},
			wantStatus: codes.Error,
			wantDesc:   "server_error",
		},
		{
			name:   "breaker open, nothing sent",
			info:   FetchInfo{Provider: "standard", Grant: "client_credentials", Reason: telemetry.ReasonExpired, Host: "h", Port: 1},
			result: Result{Outcome: telemetry.OutcomeBreakerOpen, ErrorType: "breaker_open"},
			wantAttrs: map[string]string{
				telemetry.AttrRefreshReason: telemetry.ReasonExpired, telemetry.AttrOutcome: telemetry.OutcomeBreakerOpen, telemetry.AttrAttempts: "0",
				telemetry.AttrHTTPStatusCode: "", telemetry.AttrErrorType: "breaker_open", telemetry.AttrOAuthError: "",
			},
			wantStatus: codes.Error,
			wantDesc:   "breaker_open",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSDK(t)
			i := New(s.Providers())
			parentCtx, parent := s.TP.Tracer("test").Start(context.Background(), "parent")
			ctx, f := i.StartFetch(parentCtx, tt.info)
			if f == nil {
				t.Fatal("StartFetch returned a nil *Fetch with an SDK installed")
			}
			if got := trace.SpanFromContext(ctx).SpanContext(); !got.IsValid() || got.SpanID() == parent.SpanContext().SpanID() {
				t.Errorf("StartFetch's context carries span %v, want a new valid span", got.SpanID())
			}
			for _, st := range tt.steps {
				st(f)
			}
			if got := len(s.Spans.Ended()); got != 0 {
				t.Errorf("spans ended before End = %d, want 0", got)
			}
			f.End(tt.result)
			parent.End()

			var fetch []sdktrace.ReadOnlySpan
			for _, sp := range s.Spans.Ended() {
				if sp.Name() == telemetry.SpanFetch {
					fetch = append(fetch, sp)
				}
			}
			if got, want := len(fetch), 1; got != want {
				t.Fatalf("%s spans = %d, want %d", telemetry.SpanFetch, got, want)
			}
			sp := fetch[0]
			if got, want := sp.Parent().SpanID(), parent.SpanContext().SpanID(); got != want {
				t.Errorf("parent span = %v, want %v", got, want)
			}
			if got, want := sp.SpanKind(), trace.SpanKindClient; got != want {
				t.Errorf("span kind = %v, want %v", got, want)
			}
			if got, want := sp.InstrumentationScope().Name, telemetry.ScopeName; got != want {
				t.Errorf("scope = %q, want %q", got, want)
			}
			checkAttrs(t, "span", attrMap(sp.Attributes()), tt.wantAttrs)
			evs := sp.Events()
			if got, want := len(evs), len(tt.wantEvents); got != want {
				t.Fatalf("events = %d, want %d", got, want)
			}
			for k, w := range tt.wantEvents {
				if got := evs[k].Name; got != w.name {
					t.Errorf("event %d = %q, want %q", k, got, w.name)
				}
				checkAttrs(t, "event "+w.name, attrMap(evs[k].Attributes), w.attrs)
			}
			if got, want := sp.Status().Code, tt.wantStatus; got != want {
				t.Errorf("status code = %v, want %v", got, want)
			}
			if got, want := sp.Status().Description, tt.wantDesc; got != want {
				t.Errorf("status description = %q, want %q", got, want)
			}

			ms := s.metrics(t)
			wantKey := setKey(attribute.NewSet(
				attribute.String(telemetry.AttrOutcome, tt.result.Outcome),
				attribute.String(telemetry.AttrProvider, tt.info.Provider),
				attribute.String(telemetry.AttrRefreshReason, tt.info.Reason)))
			if got, want := sums(t, ms, telemetry.MetricFetches), map[string]int64{wantKey: 1}; !maps.Equal(got, want) {
				t.Errorf("%s = %v, want %v", telemetry.MetricFetches, got, want)
			}
			m, ok := ms[telemetry.MetricFetchDuration]
			if !ok {
				t.Fatalf("no %s metric", telemetry.MetricFetchDuration)
			}
			if got, want := m.Unit, "s"; got != want {
				t.Errorf("%s unit = %q, want %q", telemetry.MetricFetchDuration, got, want)
			}
			h, ok := m.Data.(metricdata.Histogram[float64])
			if !ok {
				t.Fatalf("%s is a %T, want a float64 histogram", telemetry.MetricFetchDuration, m.Data)
			}
			if got, want := len(h.DataPoints), 1; got != want {
				t.Fatalf("%s data points = %d, want %d", telemetry.MetricFetchDuration, got, want)
			}
			dp := h.DataPoints[0]
			wantSet := setKey(attribute.NewSet(
				attribute.String(telemetry.AttrOutcome, tt.result.Outcome), attribute.String(telemetry.AttrProvider, tt.info.Provider)))
			if got := setKey(dp.Attributes); got != wantSet {
				t.Errorf("%s attributes = %s, want %s", telemetry.MetricFetchDuration, got, wantSet)
			}
			if got, want := dp.Count, uint64(1); got != want {
				t.Errorf("%s count = %d, want %d", telemetry.MetricFetchDuration, got, want)
			}
			if dp.Sum < 0 || dp.Sum > 10 {
				t.Errorf("%s sum = %v s, want a small non-negative duration", telemetry.MetricFetchDuration, dp.Sum)
			}
		})
	}
}

// TestFetchDurationMeasured checks that End records the time since
// StartFetch, not zero.
func TestFetchDurationMeasured(t *testing.T) {
	s := newSDK(t)
	i := New(s.Providers())
	_, f := i.StartFetch(context.Background(), FetchInfo{Provider: "p", Reason: telemetry.ReasonCold})
	time.Sleep(30 * time.Millisecond)
	f.End(Result{Outcome: telemetry.OutcomeSuccess, Attempts: 1})
	h := s.metrics(t)[telemetry.MetricFetchDuration].Data.(metricdata.Histogram[float64])
	if got := h.DataPoints[0].Sum; got < 0.03 || got > 5 {
		t.Errorf("recorded duration = %v s, want at least 0.03 s", got)
	}
}

func TestCountersAndEvents(t *testing.T) {
	tests := []struct {
		name       string
		do         func(context.Context, *Instruments)
		wantEvents []string
		wantAttrs  map[string]string // on the request span
		metric     string
		wantSums   map[string]int64
	}{
		{
			name:     "cache miss",
			do:       func(ctx context.Context, i *Instruments) { i.CacheMiss(ctx, "standard"); i.CacheMiss(ctx, "standard") },
			metric:   telemetry.MetricCacheMisses,
			wantSums: map[string]int64{telemetry.AttrProvider + "=standard": 2},
		},
		{
			name:       "unauthorized retry",
			do:         func(ctx context.Context, i *Instruments) { i.UnauthorizedRetry(ctx) },
			wantEvents: []string{telemetry.EventUnauthorizedRetry},
			metric:     telemetry.MetricUnauthorizedRetries,
			wantSums:   map[string]int64{"": 1},
		},
		{
			name:       "gateway rejection",
			do:         func(ctx context.Context, i *Instruments) { i.GatewayRejection(ctx, 503, "unavailable") },
			wantAttrs:  map[string]string{telemetry.AttrErrorType: "unavailable"},
			metric:     telemetry.MetricGatewayRejections,
			wantSums:   map[string]int64{telemetry.AttrErrorType + "=unavailable," + telemetry.AttrHTTPStatusCode + "=503": 1},
			wantEvents: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSDK(t)
			i := New(s.Providers())
			ctx, req := s.TP.Tracer("test").Start(context.Background(), "request")
			tt.do(ctx, i)
			req.End()
			ended := s.Spans.Ended()
			if got, want := len(ended), 1; got != want {
				t.Fatalf("spans = %d, want %d (no span of its own)", got, want)
			}
			var names []string
			for _, e := range ended[0].Events() {
				names = append(names, e.Name)
			}
			if !slices.Equal(names, tt.wantEvents) {
				t.Errorf("events on the request span = %q, want %q", names, tt.wantEvents)
			}
			checkAttrs(t, "request span", attrMap(ended[0].Attributes()), tt.wantAttrs)
			if got := sums(t, s.metrics(t), tt.metric); !maps.Equal(got, tt.wantSums) {
				t.Errorf("%s = %v, want %v", tt.metric, got, tt.wantSums)
			}
		})
	}
}

type ctxKey struct{}

// TestNilInstruments checks that a nil *Instruments and a nil *Fetch
// record nothing and do not panic.
func TestNilInstruments(t *testing.T) {
	var i *Instruments
	ctx := context.WithValue(context.Background(), ctxKey{}, "v")
	got, f := i.StartFetch(ctx, FetchInfo{Provider: "p"})
	if got != ctx {
		t.Errorf("StartFetch on nil returned another context")
	}
	if f != nil {
		t.Errorf("StartFetch on nil returned %v, want a nil *Fetch", f)
	}
	f.Retry(1, 503, "server_error", time.Second)
	f.BreakerChange("closed", "open")
	f.End(Result{Outcome: telemetry.OutcomeSuccess})
	i.CacheMiss(ctx, "p")
	i.UnauthorizedRetry(ctx)
	i.GatewayRejection(ctx, 503, "x")
	var called atomic.Bool
	unregister := i.Observe("p", func() (float64, bool) { called.Store(true); return 1, true },
		func() (int64, bool) { called.Store(true); return 0, true })
	if unregister == nil {
		t.Fatal("Observe on nil returned a nil func")
	}
	unregister()
	unregister()
	if called.Load() {
		t.Error("Observe on nil called a callback")
	}
	allocs := testing.AllocsPerRun(100, func() {
		_, f := i.StartFetch(ctx, FetchInfo{})
		f.End(Result{})
		i.CacheMiss(ctx, "p")
	})
	if allocs != 0 {
		t.Errorf("allocations per nil call = %v, want 0", allocs)
	}
}

func TestObserve(t *testing.T) {
	s := newSDK(t)
	i := New(s.Providers())
	var ttl atomic.Int64
	var ttlOK, breakerOK atomic.Bool
	var breaker atomic.Int64
	ttl.Store(1500)
	ttlOK.Store(true)
	breaker.Store(2)
	breakerOK.Store(true)
	unA := i.Observe("a", func() (float64, bool) { return float64(ttl.Load()) / 10, ttlOK.Load() },
		func() (int64, bool) { return breaker.Load(), breakerOK.Load() })
	unB := i.Observe("b", func() (float64, bool) { return 7, true }, func() (int64, bool) { return 0, false })

	type gauges struct{ ttl, breaker map[string]string }
	read := func() gauges {
		ms := s.metrics(t)
		g := gauges{ttl: map[string]string{}, breaker: map[string]string{}}
		if m, ok := ms[telemetry.MetricTokenTTL]; ok {
			if m.Unit != "s" {
				t.Errorf("%s unit = %q, want s", telemetry.MetricTokenTTL, m.Unit)
			}
			for _, dp := range m.Data.(metricdata.Gauge[float64]).DataPoints {
				g.ttl[setKey(dp.Attributes)] = attribute.Float64Value(dp.Value).String()
			}
		}
		if m, ok := ms[telemetry.MetricBreakerState]; ok {
			for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
				g.breaker[setKey(dp.Attributes)] = attribute.Int64Value(dp.Value).String()
			}
		}
		return g
	}
	pa, pb := telemetry.AttrProvider+"=a", telemetry.AttrProvider+"=b"
	steps := []struct {
		name        string
		do          func()
		wantTTL     map[string]string
		wantBreaker map[string]string
	}{
		{"both registered", func() {}, map[string]string{pa: "150", pb: "7"}, map[string]string{pa: "2"}},
		{"values follow the callbacks", func() { ttl.Store(425); breaker.Store(1) },
			map[string]string{pa: "42.5", pb: "7"}, map[string]string{pa: "1"}},
		{"nothing to report", func() { ttlOK.Store(false); breakerOK.Store(false) },
			map[string]string{pb: "7"}, map[string]string{}},
		{"a unregistered", func() { ttlOK.Store(true); breakerOK.Store(true); unA() },
			map[string]string{pb: "7"}, map[string]string{}},
		{"b unregistered", func() { unB() }, map[string]string{}, map[string]string{}},
	}
	for _, st := range steps {
		st.do()
		g := read()
		if !maps.Equal(g.ttl, st.wantTTL) {
			t.Errorf("%s: %s = %v, want %v", st.name, telemetry.MetricTokenTTL, g.ttl, st.wantTTL)
		}
		if !maps.Equal(g.breaker, st.wantBreaker) {
			t.Errorf("%s: %s = %v, want %v", st.name, telemetry.MetricBreakerState, g.breaker, st.wantBreaker)
		}
	}
}

// TestNoSpanOutsideFetch checks that creating instruments and registering
// gauges starts no span.
func TestNoSpanOutsideFetch(t *testing.T) {
	s := newSDK(t)
	i := New(s.Providers())
	un := i.Observe("p", func() (float64, bool) { return 1, true }, func() (int64, bool) { return 0, true })
	s.metrics(t)
	un()
	if got := len(s.Spans.Started()); got != 0 {
		t.Errorf("spans started = %d, want 0", got)
	}
}

// globalsSet records that a test has set the OpenTelemetry globals: the
// default global providers delegate to the first provider set, once per
// process, so only the first run of TestDefaultsToGlobals (with -count)
// can check that delegation.
var globalsSet bool

// TestDefaultsToGlobals checks that zero telemetry.Providers use the OpenTelemetry
// globals, including a provider installed after New (the global
// delegates). It sets the globals and restores them afterwards.
func TestDefaultsToGlobals(t *testing.T) {
	prevTP, prevMP := otel.GetTracerProvider(), otel.GetMeterProvider()
	defer func() {
		otel.SetTracerProvider(prevTP)
		otel.SetMeterProvider(prevMP)
	}()

	first := !globalsSet
	globalsSet = true
	before := New(telemetry.Providers{}) // created while the globals are the defaults, on the first run
	s := newSDK(t)
	otel.SetTracerProvider(s.TP)
	otel.SetMeterProvider(s.MP)
	after := New(telemetry.Providers{})
	injected := newSDK(t)
	mixed := New(telemetry.Providers{TracerProvider: injected.TP}) // metrics still global

	tests := []struct {
		name string
		i    *Instruments
	}{
		{"New before the globals are set", before},
		{"New after the globals are set", after},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.i == before && !first {
				t.Skip("the default globals delegate once per process; checked on the first run")
			}
			s.Spans.Reset()
			_, f := tt.i.StartFetch(context.Background(), FetchInfo{Provider: "global", Reason: telemetry.ReasonCold})
			f.End(Result{Outcome: telemetry.OutcomeSuccess, Attempts: 1})
			if got, want := len(s.Spans.Ended()), 1; got != want {
				t.Errorf("spans recorded by the global provider = %d, want %d", got, want)
			}
		})
	}
	t.Run("tracer injected, meter global", func(t *testing.T) {
		s.Spans.Reset()
		_, f := mixed.StartFetch(context.Background(), FetchInfo{Provider: "mixed", Reason: telemetry.ReasonCold})
		f.End(Result{Outcome: telemetry.OutcomeSuccess, Attempts: 1})
		if got := len(s.Spans.Ended()); got != 0 {
			t.Errorf("spans recorded by the global provider = %d, want 0", got)
		}
		if got, want := len(injected.Spans.Ended()), 1; got != want {
			t.Errorf("spans recorded by the injected provider = %d, want %d", got, want)
		}
		key := telemetry.AttrOutcome + "=success," + telemetry.AttrProvider + "=mixed," + telemetry.AttrRefreshReason + "=cold"
		if got := sums(t, s.metrics(t), telemetry.MetricFetches)[key]; got != 1 {
			t.Errorf("%s{%s} on the global meter = %d, want 1", telemetry.MetricFetches, key, got)
		}
		if got := sums(t, injected.metrics(t), telemetry.MetricFetches); len(got) != 0 {
			t.Errorf("%s on the injected SDK's meter = %v, want none (no meter was injected)", telemetry.MetricFetches, got)
		}
	})
	// The global meter serves the fetches of "global" (from both
	// instruments, on the first run) as well.
	want := int64(1)
	if first {
		want = 2
	}
	key := telemetry.AttrOutcome + "=success," + telemetry.AttrProvider + "=global," + telemetry.AttrRefreshReason + "=cold"
	if got := sums(t, s.metrics(t), telemetry.MetricFetches)[key]; got != want {
		t.Errorf("%s{%s} on the global meter = %d, want %d", telemetry.MetricFetches, key, got, want)
	}
}

// TestInstrumentErrorsHandled checks that New reports no error to
// otel.Handle with a working SDK, and never panics.
func TestInstrumentErrorsHandled(t *testing.T) {
	prev := otel.GetErrorHandler()
	var (
		mu   sync.Mutex
		errs []error
	)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}))
	defer otel.SetErrorHandler(prev)
	s := newSDK(t)
	i := New(s.Providers())
	un := i.Observe("p", func() (float64, bool) { return 1, true }, func() (int64, bool) { return 0, true })
	s.metrics(t)
	un()
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 0 {
		t.Errorf("otel.Handle got %v, want no error", errors.Join(errs...))
	}
}

// failingMeter is a Meter whose every instrument comes with an error.
type failingMeter struct{ noop.Meter }

var errInstrument = errors.New("instrument refused")

func (failingMeter) Int64Counter(string, ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	return noop.Int64Counter{}, errInstrument
}

func (failingMeter) Float64Histogram(string, ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	return noop.Float64Histogram{}, errInstrument
}

func (failingMeter) Int64ObservableGauge(string, ...metric.Int64ObservableGaugeOption) (metric.Int64ObservableGauge, error) {
	return noop.Int64ObservableGauge{}, errInstrument
}

func (failingMeter) Float64ObservableGauge(string, ...metric.Float64ObservableGaugeOption) (metric.Float64ObservableGauge, error) {
	return noop.Float64ObservableGauge{}, errInstrument
}

type failingMeterProvider struct{ noop.MeterProvider }

func (failingMeterProvider) Meter(string, ...metric.MeterOption) metric.Meter { return failingMeter{} }

// TestInstrumentErrorsEachReported: every instrument New cannot create is
// reported to otel.Handle, one error each, and New still returns usable
// (no-op) instruments.
func TestInstrumentErrorsEachReported(t *testing.T) {
	prev := otel.GetErrorHandler()
	var (
		mu sync.Mutex
		n  int
	)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if errors.Is(err, errInstrument) {
			n++
		}
	}))
	defer otel.SetErrorHandler(prev)
	i := New(telemetry.Providers{MeterProvider: failingMeterProvider{}})
	i.CacheMiss(context.Background(), "p")
	mu.Lock()
	defer mu.Unlock()
	if want := 11; n != want { // a histogram, 8 counters, 2 gauges
		t.Errorf("otel.Handle got %d instrument errors, want %d", n, want)
	}
}
