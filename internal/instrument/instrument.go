// Package instrument records tokenhttp's spans and metrics with the
// OpenTelemetry API, under the names declared in package telemetry. An
// instrument that cannot be created, or fails, goes to otel.Handle: it
// never fails the caller.
package instrument

import (
	"context"
	"runtime"
	"sync"
	"time"
	"weak"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokenhttp/tokenhttp/telemetry"
)

// Instruments are the tracer and the metric instruments, created once.
// A nil *Instruments records nothing. Safe for concurrent use.
type Instruments struct {
	tracer     trace.Tracer
	meter      metric.Meter
	fetchDur   metric.Float64Histogram
	fetches    metric.Int64Counter
	misses     metric.Int64Counter
	retries401 metric.Int64Counter
	rejections metric.Int64Counter
	fallbacks  metric.Int64Counter
	storeHits  metric.Int64Counter
	suppressed metric.Int64Counter
	certSoon   metric.Int64Counter
	breaker    metric.Int64ObservableGauge
	ttl        metric.Float64ObservableGauge
}

// New creates the instruments. An instrument that cannot be created is
// reported to otel.Handle and replaced by a no-op: telemetry never fails
// the caller.
func New(p telemetry.Providers) *Instruments {
	tp, mp := p.TracerProvider, p.MeterProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(telemetry.ScopeName)
	i := &Instruments{tracer: tp.Tracer(telemetry.ScopeName), meter: m}
	handle := func(err error) {
		if err != nil {
			otel.Handle(err)
		}
	}
	var err error
	i.fetchDur, err = m.Float64Histogram(telemetry.MetricFetchDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of token fetches, retries included."),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
	handle(err)
	for _, c := range []struct {
		dst               *metric.Int64Counter
		name, unit, about string
	}{
		{&i.fetches, telemetry.MetricFetches, "{fetch}", "Token fetches by outcome and reason."},
		{&i.misses, telemetry.MetricCacheMisses, "{call}", "Token calls that waited for a fetch."},
		{&i.retries401, telemetry.MetricUnauthorizedRetries, "{request}", "Requests retried with a new token after a 401."},
		{&i.rejections, telemetry.MetricGatewayRejections, "{request}", "Requests the middleware answered itself: no route, or no token could be had."},
		{&i.fallbacks, telemetry.MetricStoreFallbacks, "{operation}", "Shared store operations that failed; the source went on without the store."},
		{&i.storeHits, telemetry.MetricStoreHits, "{renewal}", "Renewals that took a token another sharer of the store had fetched."},
		{&i.suppressed, telemetry.MetricSuppressedInvalidations, "{rejection}", "401s after which the source kept its token: a fresh token was rejected too, so the source backs off."},
		{&i.certSoon, telemetry.MetricCertificateExpiring, "{fetch}", "Token fetches made with a client certificate that expires within a week."},
	} {
		*c.dst, err = m.Int64Counter(c.name, metric.WithUnit(c.unit), metric.WithDescription(c.about))
		handle(err)
	}
	i.breaker, err = m.Int64ObservableGauge(telemetry.MetricBreakerState, metric.WithUnit("{state}"),
		metric.WithDescription("Circuit breaker state: 0 closed, 1 half-open, 2 open."))
	handle(err)
	i.ttl, err = m.Float64ObservableGauge(telemetry.MetricTokenTTL, metric.WithUnit("s"),
		metric.WithDescription("Seconds until the current token expires."))
	handle(err)
	return i
}

// FetchInfo describes a fetch as it starts.
type FetchInfo struct {
	Provider string
	Source   string // telemetry.AttrSource: the source's name or identity hash; "" for none
	Grant    string
	Reason   string // one of the Reason constants
	Host     string // the token endpoint's host name
	Port     int
}

// Fetch is a fetch being recorded.
type Fetch struct {
	i     *Instruments
	span  trace.Span
	start time.Time
	info  FetchInfo
	from  string // telemetry.FromEndpoint, telemetry.FromStore, or "" when not known
	held  bool   // no request: the endpoint's last refusal was held
}

// StartFetch starts telemetry.SpanFetch as a child of ctx's span.
func (i *Instruments) StartFetch(ctx context.Context, info FetchInfo) (context.Context, *Fetch) {
	if i == nil {
		return ctx, nil
	}
	attrs := []attribute.KeyValue{
		attribute.String(telemetry.AttrProvider, info.Provider),
		attribute.String(telemetry.AttrGrantType, info.Grant),
		attribute.String(telemetry.AttrRefreshReason, info.Reason),
		attribute.String(telemetry.AttrServerAddress, info.Host),
		attribute.Int(telemetry.AttrServerPort, info.Port),
	}
	if info.Source != "" {
		attrs = append(attrs, attribute.String(telemetry.AttrSource, info.Source))
	}
	ctx, span := i.tracer.Start(ctx, telemetry.SpanFetch, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return ctx, &Fetch{i: i, span: span, start: time.Now(), info: info}
}

// Retry records that attempt n failed (status 0: no reply; errType says
// why) and the next one follows after wait.
func (f *Fetch) Retry(n, status int, errType string, wait time.Duration) {
	if f == nil {
		return
	}
	attrs := []attribute.KeyValue{attribute.Int(telemetry.AttrRetryCount, n), attribute.Int64(telemetry.AttrRetryWait, wait.Milliseconds())}
	if status != 0 {
		attrs = append(attrs, attribute.Int(telemetry.AttrHTTPStatusCode, status))
	}
	if errType != "" {
		attrs = append(attrs, attribute.String(telemetry.AttrErrorType, errType))
	}
	f.span.AddEvent(telemetry.EventRetry, trace.WithAttributes(attrs...))
}

// BreakerChange records a change of the circuit breaker's state.
func (f *Fetch) BreakerChange(from, to string) {
	if f == nil {
		return
	}
	f.span.AddEvent(telemetry.EventBreakerState, trace.WithAttributes(
		attribute.String(telemetry.AttrBreakerFrom, from), attribute.String(telemetry.AttrBreakerTo, to)))
}

// GrantFallback records that the endpoint refused grant (status, the
// normalized OAuth2 code and error.type) and the fetch fell back to the
// configured grant.
func (f *Fetch) GrantFallback(grant string, status int, oauthErr, errType string) {
	if f == nil {
		return
	}
	attrs := []attribute.KeyValue{attribute.String(telemetry.AttrGrantType, grant)}
	if status != 0 {
		attrs = append(attrs, attribute.Int(telemetry.AttrHTTPStatusCode, status))
	}
	if oauthErr != "" {
		attrs = append(attrs, attribute.String(telemetry.AttrOAuthError, oauthErr))
	}
	if errType != "" {
		attrs = append(attrs, attribute.String(telemetry.AttrErrorType, errType))
	}
	f.span.AddEvent(telemetry.EventGrantFallback, trace.WithAttributes(attrs...))
}

// CertificateExpiring records that the fetch presents a client
// certificate that expires at notAfter, within a week: a span event and
// telemetry.MetricCertificateExpiring.
func (f *Fetch) CertificateExpiring(ctx context.Context, notAfter time.Time) {
	if f == nil {
		return
	}
	at := notAfter.UTC().Format(time.RFC3339)
	f.span.AddEvent(telemetry.EventCertificateExpiring, trace.WithAttributes(attribute.String(telemetry.AttrCertificateNotAfter, at)))
	attrs := []attribute.KeyValue{attribute.String(telemetry.AttrProvider, f.info.Provider)}
	if f.info.Source != "" {
		attrs = append(attrs, attribute.String(telemetry.AttrSource, f.info.Source))
	}
	f.i.certSoon.Add(ctx, 1, metric.WithAttributes(attrs...))
}

// Result is how a fetch ended.
type Result struct {
	// Grant is the grant that produced the token, or on failure the last
	// one tried; "" keeps the grant the span started with (a token another
	// sharer fetched).
	Grant      string
	Outcome    string // one of the Outcome constants
	Status     int    // the last HTTP status; 0 for none
	Attempts   int
	ErrorType  string // error.type: the OAuth2 code, "timeout", "network", ...; "" on success
	OAuthError string // the normalized OAuth2 error code, if any
}

// End ends the span and records the metrics.
func (f *Fetch) End(r Result) {
	if f == nil {
		return
	}
	attrs := []attribute.KeyValue{attribute.String(telemetry.AttrOutcome, r.Outcome), attribute.Int(telemetry.AttrAttempts, r.Attempts)}
	if r.Grant != "" {
		attrs = append(attrs, attribute.String(telemetry.AttrGrantType, r.Grant))
	}
	if r.Status != 0 {
		attrs = append(attrs, attribute.Int(telemetry.AttrHTTPStatusCode, r.Status))
	}
	if r.ErrorType != "" {
		attrs = append(attrs, attribute.String(telemetry.AttrErrorType, r.ErrorType))
	}
	if r.OAuthError != "" {
		attrs = append(attrs, attribute.String(telemetry.AttrOAuthError, r.OAuthError))
	}
	f.span.SetAttributes(attrs...)
	if r.Outcome != telemetry.OutcomeSuccess {
		f.span.SetStatus(codes.Error, r.ErrorType) // a code, never provider text
	}
	f.span.End()

	ctx := context.Background()
	base := []attribute.KeyValue{attribute.String(telemetry.AttrProvider, f.info.Provider)}
	if f.info.Source != "" {
		base = append(base, attribute.String(telemetry.AttrSource, f.info.Source))
	}
	if f.held {
		return // not a fetch: nothing was sent
	}
	if f.from == telemetry.FromStore && r.Outcome == telemetry.OutcomeSuccess {
		// Another sharer fetched it: not a fetch of this source.
		f.i.storeHits.Add(ctx, 1, metric.WithAttributes(append(base, attribute.String(telemetry.AttrRefreshReason, f.info.Reason))...))
		return
	}
	withOutcome := append(base, attribute.String(telemetry.AttrOutcome, r.Outcome))
	f.i.fetchDur.Record(ctx, time.Since(f.start).Seconds(), metric.WithAttributes(withOutcome...))
	f.i.fetches.Add(ctx, 1, metric.WithAttributes(append(withOutcome, attribute.String(telemetry.AttrRefreshReason, f.info.Reason))...))
}

// From records where the fetch got its token (telemetry.FromEndpoint, telemetry.FromStore).
// A fetch that ends with a token from the store is counted by
// telemetry.MetricStoreHits instead of telemetry.MetricFetches. Call it before End.
func (f *Fetch) From(from string) {
	if f == nil {
		return
	}
	f.from = from
	f.span.SetAttributes(attribute.String(telemetry.AttrTokenFrom, from))
}

// RefusalHeld records that the endpoint's last refusal is still held, so
// no request was sent: an event on the span, and no count in
// telemetry.MetricFetches. Call it before End.
func (f *Fetch) RefusalHeld() {
	if f == nil {
		return
	}
	f.held = true
	f.span.AddEvent(telemetry.EventRefusalHeld)
}

// StoreFallback records a failed store operation ("load", "lock",
// "save", "delete", or "wait": another sharer's fetch took too long and
// this one took over): an event on the fetch span f (if any) and a count.
func (i *Instruments) StoreFallback(ctx context.Context, f *Fetch, provider, op string) {
	if i == nil {
		return
	}
	if f != nil {
		f.span.AddEvent(telemetry.EventStoreFallback, trace.WithAttributes(attribute.String(telemetry.AttrStoreOp, op)))
	}
	i.fallbacks.Add(ctx, 1, metric.WithAttributes(attribute.String(telemetry.AttrProvider, provider), attribute.String(telemetry.AttrStoreOp, op)))
}

// SuppressedInvalidation counts a 401 after which a source kept its token
// and backed off (telemetry.MetricSuppressedInvalidations).
func (i *Instruments) SuppressedInvalidation(ctx context.Context, provider string) {
	if i == nil {
		return
	}
	i.suppressed.Add(ctx, 1, metric.WithAttributes(attribute.String(telemetry.AttrProvider, provider)))
}

// CacheMiss counts a Token call that had to wait for a fetch.
func (i *Instruments) CacheMiss(ctx context.Context, provider string) {
	if i == nil {
		return
	}
	i.misses.Add(ctx, 1, metric.WithAttributes(attribute.String(telemetry.AttrProvider, provider)))
}

// UnauthorizedRetry records the Transport's retry after a 401: an event on
// ctx's span and a count.
func (i *Instruments) UnauthorizedRetry(ctx context.Context) {
	if i == nil {
		return
	}
	trace.SpanFromContext(ctx).AddEvent(telemetry.EventUnauthorizedRetry)
	i.retries401.Add(ctx, 1)
}

// GatewayRejection counts a request the middleware answered with status.
func (i *Instruments) GatewayRejection(ctx context.Context, status int, errType string) {
	if i == nil {
		return
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.String(telemetry.AttrErrorType, errType))
	i.rejections.Add(ctx, 1, metric.WithAttributes(attribute.Int(telemetry.AttrHTTPStatusCode, status), attribute.String(telemetry.AttrErrorType, errType)))
}

// Observe registers the gauges of one source, labelled by provider only:
// ttl returns the seconds until
// its token expires (ok false: nothing to report), breaker its breaker state
// (0 closed, 1 half-open, 2 open; ok false: no breaker). The returned
// function unregisters them. The meter holds ttl and breaker, and what they
// reference, until then; ObserveSource does not keep its source reachable.
func (i *Instruments) Observe(provider string, ttl func() (float64, bool), breaker func() (int64, bool)) (unregister func()) {
	if i == nil {
		return func() {}
	}
	set := metric.WithAttributes(attribute.String(telemetry.AttrProvider, provider))
	unregister, _ = i.register(func(o metric.Observer) { i.report(o, set, ttl, breaker) })
	return unregister
}

// register registers observe as the callback of the ttl and breaker
// gauges and returns the function that unregisters it. ok is false when
// the meter refused it (the error went to otel.Handle); unregister then
// does nothing.
func (i *Instruments) register(observe func(metric.Observer)) (unregister func(), ok bool) {
	reg, err := i.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		observe(o)
		return nil
	}, i.ttl, i.breaker)
	if err != nil {
		otel.Handle(err)
		return func() {}, false
	}
	return func() {
		if err := reg.Unregister(); err != nil {
			otel.Handle(err)
		}
	}, true
}

// report observes, labelled with set, the ttl and breaker values whose ok
// is true.
func (i *Instruments) report(o metric.Observer, set metric.ObserveOption, ttl func() (float64, bool), breaker func() (int64, bool)) {
	if v, ok := ttl(); ok {
		o.ObserveFloat64(i.ttl, v, set)
	}
	if v, ok := breaker(); ok {
		o.ObserveInt64(i.breaker, v, set)
	}
}

// Gauge names the source whose gauges ObserveSource reports.
type Gauge struct {
	Provider string // telemetry.AttrProvider
	Source   string // telemetry.AttrSource; "" for none
}

// ObserveSource registers the gauges of src, labelled by g: ttl(src)
// returns the seconds until its token expires (ok false: nothing to
// report), breaker(src) its breaker state (0 closed, 1 half-open, 2 open;
// ok false: no breaker). ttl and breaker must not hold src themselves
// (use method expressions).
//
// The registration holds src weakly: a source dropped without calling the
// returned unregister function is still collected, and its gauges are
// unregistered once it is. The returned function unregisters them at once;
// it is safe to call more than once.
func ObserveSource[T any](i *Instruments, g Gauge, src *T, ttl func(*T) (float64, bool), breaker func(*T) (int64, bool)) (unregister func()) {
	if i == nil || src == nil {
		return func() {}
	}
	attrs := []attribute.KeyValue{attribute.String(telemetry.AttrProvider, g.Provider)}
	if g.Source != "" {
		attrs = append(attrs, attribute.String(telemetry.AttrSource, g.Source))
	}
	set := metric.WithAttributes(attrs...)
	wp := weak.Make(src)
	unreg, ok := i.register(func(o metric.Observer) {
		s := wp.Value()
		if s == nil {
			return // collected; the cleanup below unregisters
		}
		i.report(o, set, func() (float64, bool) { return ttl(s) }, func() (int64, bool) { return breaker(s) })
	})
	if !ok {
		return unreg
	}
	unreg = sync.OnceFunc(unreg)
	cleanup := runtime.AddCleanup(src, func(f func()) { f() }, unreg)
	return func() {
		cleanup.Stop()
		unreg()
	}
}
