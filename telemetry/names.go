// Package telemetry names what tokenhttp records with OpenTelemetry
// (spans, events, attributes, metrics) and holds the Providers a user
// sets. It depends on the OpenTelemetry API only: the SDK, the exporters
// and the providers are the application's; when none is given, the
// OpenTelemetry globals are used.
//
// Nothing is ever recorded with a token, a secret, a password or a body.
// The path of a request that finds a valid cached token records nothing.
package telemetry

// ScopeName is the instrumentation scope of the tracer and the meter.
const ScopeName = "github.com/tokenhttp/tokenhttp"

// Span names.
const (
	// SpanFetch covers one token fetch, retries included.
	SpanFetch = "tokenhttp.token.fetch"
)

// Event names.
const (
	// EventRetry is added to SpanFetch before each retry of a token
	// request.
	EventRetry = "tokenhttp.token.retry"
	// EventBreakerState is added to SpanFetch when the circuit breaker
	// changes state.
	EventBreakerState = "tokenhttp.breaker.state_change"
	// EventUnauthorizedRetry is added to the request's current span when
	// the Transport retries a request after a 401.
	EventUnauthorizedRetry = "tokenhttp.unauthorized_retry"
	// EventStoreFallback is added to SpanFetch when the shared token store
	// failed and the source fetched on its own.
	EventStoreFallback = "tokenhttp.store.fallback"
	// EventGrantFallback is added to SpanFetch for each grant the endpoint
	// refused before the fetch fell back to the configured grant (a
	// revoked refresh token): AttrGrantType is the refused grant,
	// AttrOAuthError and AttrErrorType its code. The span's own
	// AttrGrantType is the grant that produced the token (or, on failure,
	// the last one tried).
	EventGrantFallback = "tokenhttp.grant.fallback"
	// EventCertificateExpiring is added to SpanFetch when the client
	// certificate (mTLS) expires within a week, with
	// AttrCertificateNotAfter.
	EventCertificateExpiring = "tokenhttp.certificate.expiring"
	// EventRefusalHeld is added to SpanFetch when the token endpoint's
	// last refusal is still held and no request was sent; such a span is
	// not counted in MetricFetches.
	EventRefusalHeld = "tokenhttp.token.refusal_held"
)

// Attribute keys. The first five are OpenTelemetry semantic conventions.
const (
	AttrServerAddress  = "server.address"
	AttrServerPort     = "server.port"
	AttrHTTPStatusCode = "http.response.status_code"
	AttrErrorType      = "error.type"
	AttrRetryCount     = "http.request.resend_count"

	AttrProvider = "tokenhttp.provider"
	// AttrSource tells apart the sources of one provider: the Config's
	// Name, or a short hash of the credential's non-secret identity
	// (provider, token URL without its query values, grant, client id,
	// username, scopes ...). It never holds a secret.
	AttrSource        = "tokenhttp.source"
	AttrGrantType     = "tokenhttp.grant_type"
	AttrRefreshReason = "tokenhttp.refresh.reason"
	AttrAttempts      = "tokenhttp.attempts"
	AttrOutcome       = "tokenhttp.outcome"
	AttrOAuthError    = "tokenhttp.oauth2.error"
	AttrBreakerFrom   = "tokenhttp.breaker.from"
	AttrBreakerTo     = "tokenhttp.breaker.to"
	AttrRetryWait     = "tokenhttp.retry.wait_ms"
	AttrTokenFrom     = "tokenhttp.token.from"
	AttrStoreOp       = "tokenhttp.store.operation"
	// AttrCertificateNotAfter is the client certificate's expiry, RFC 3339.
	AttrCertificateNotAfter = "tokenhttp.certificate.not_after"
)

// Where a fetch got its token (AttrTokenFrom).
const (
	FromEndpoint = "endpoint" // this source fetched it
	FromStore    = "store"    // another sharer of the Store fetched it
)

// Refresh reasons (AttrRefreshReason).
const (
	ReasonCold     = "cold"     // no token yet
	ReasonAhead    = "ahead"    // renewal ahead of expiry
	ReasonExpired  = "expired"  // the token was too close to expiry to serve
	ReasonRejected = "rejected" // an API rejected the token (401)
)

// Outcomes (AttrOutcome) of a fetch.
const (
	OutcomeSuccess     = "success"
	OutcomeRefused     = "refused"     // the endpoint said no (4xx)
	OutcomeUnavailable = "unavailable" // 5xx, 429, no reply, timeout
	OutcomeBreakerOpen = "breaker_open"
	OutcomeError       = "error" // anything else (a hook failed, the source closed)
)

// Values of AttrErrorType other than the normalized OAuth2 codes
// ("invalid_client", "server_error", ...) a token endpoint's refusal has.
const (
	ErrorBreakerOpen       = "breaker_open"        // the circuit breaker refused the fetch
	ErrorTimeout           = "timeout"             // a deadline passed
	ErrorCanceled          = "canceled"            // the caller or Close called it off
	ErrorClosed            = "closed"              // the source is closed
	ErrorHook              = "hook"                // a user hook failed
	ErrorInvalidConfig     = "invalid_config"      // the Config was refused
	ErrorNetwork           = "network"             // no reply from the endpoint
	ErrorExpiredOnArrival  = "expired_on_arrival"  // the token expired before it arrived
	ErrorRefreshTokenSpent = "refresh_token_spent" // a refresh token that may have been used: a new one is needed
	ErrorStaticRejected    = "static_rejected"     // a static token was rejected
	ErrorNoRoute           = "no_route"            // the gateway has no upstream for the path
	ErrorNoToken           = "no_token"            // the source returned neither a token nor an error
)

// Store operations (AttrStoreOp) of EventStoreFallback and
// MetricStoreFallbacks.
const (
	StoreLoad   = "load"
	StoreLock   = "lock"
	StoreSave   = "save"
	StoreDelete = "delete"
	StoreWait   = "wait" // another sharer's fetch took too long; this one took over
)

// Metric names.
const (
	// MetricFetchDuration is a histogram of token fetch durations, in
	// seconds, by provider, source and outcome (fetches from the token
	// endpoint only, like MetricFetches).
	MetricFetchDuration = "tokenhttp.token.fetch.duration"
	// MetricFetches counts token fetches from the token endpoint by
	// provider, source, outcome and reason. A token taken from a shared
	// Store is not a fetch: it is counted by MetricStoreHits.
	MetricFetches = "tokenhttp.token.fetches"
	// MetricStoreHits counts renewals that took a token another sharer of
	// the Store had fetched, by provider, source and reason.
	MetricStoreHits = "tokenhttp.store.hits"
	// MetricCacheMisses counts Token calls that had to wait for a fetch.
	// Hits are not counted: counting them would cost every request.
	MetricCacheMisses = "tokenhttp.token.cache.misses"
	// MetricUnauthorizedRetries counts requests retried after a 401.
	MetricUnauthorizedRetries = "tokenhttp.unauthorized_retries"
	// MetricBreakerState is the breaker state: 0 closed, 1 half-open, 2
	// open.
	MetricBreakerState = "tokenhttp.breaker.state"
	// MetricTokenTTL is the number of seconds until the current token
	// expires (not reported for a source with no token, or a token
	// without expiry).
	MetricTokenTTL = "tokenhttp.token.ttl"
	// MetricStoreFallbacks counts store operations that failed (by
	// operation), after which the source went on without the store.
	MetricStoreFallbacks = "tokenhttp.store.fallbacks"
	// MetricGatewayRejections counts requests the Middleware answered
	// itself (no route, or no token could be had), by status and
	// AttrErrorType.
	MetricGatewayRejections = "tokenhttp.middleware.rejections"
	// MetricSuppressedInvalidations counts 401s after which a source kept
	// the token instead of fetching another, by provider: a token fetched
	// to replace a rejected one was rejected too before any API accepted
	// it, so the API is not rejecting the token, and the source backs off.
	MetricSuppressedInvalidations = "tokenhttp.token.invalidations.suppressed"
	// MetricCertificateExpiring counts token fetches made with a client
	// certificate that expires within a week (by AttrProvider and
	// AttrSource): a signal to renew it, not an error.
	MetricCertificateExpiring = "tokenhttp.certificate.expiring"
)
