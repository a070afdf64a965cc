package source

import (
	"context"

	"github.com/tokenhttp/tokenhttp/internal/breaker"
	"github.com/tokenhttp/tokenhttp/internal/instrument"
)

// TokenSource supplies tokens. A TokenSource must be safe for concurrent
// use by multiple goroutines. The returned Token is shared and must not be
// modified.
type TokenSource interface {
	// Token returns a token that is valid now, or an error. ctx bounds
	// how long this caller waits; it does not cancel a fetch other
	// callers share.
	Token(ctx context.Context) (*Token, error)
}

// Invalidator is implemented by a TokenSource that can be told an API
// rejected a token. Invalidate drops rejected if it is still the current
// token, so that the next Token call fetches a new one; a newer token that
// another goroutine already fetched survives. It reports whether rejected
// was dropped.
type Invalidator interface {
	Invalidate(rejected *Token) bool
}

// RenewalRejecter is implemented by a TokenSource that bounds the renewals
// an API's 401s force. The Transport calls RejectedAfterRenewal when a
// request that got a 401, and was retried with the new token the source
// gave after Invalidate, got a 401 again: the API rejected a freshly
// fetched token too, so it is not rejecting the token. The source then
// keeps tok for a while when told to invalidate it (see
// CachedSource.Invalidate).
type RenewalRejecter interface {
	RejectedAfterRenewal(tok *Token)
}

// New validates cfg and returns a CachedSource for it. The caller closes
// it with Close. An error for a bad Config wraps ErrInvalidConfig and
// names the field to fix.
func New(cfg Config) (*CachedSource, error) {
	r, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	s := &CachedSource{ep: newEndpoint(r), r: r, tel: instrument.New(cfg.Telemetry)}
	s.host, s.port = hostPort(r.tokenURL)
	if cfg.Store != nil {
		s.store, s.key = cfg.Store, storeKey(r)
	}
	s.breaker = breaker.New(r.p.Name, cfg.Breaker, breakerFailure, breakerExcluded)
	s.closeCtx, s.closeFn = context.WithCancel(context.Background())
	s.id = sourceID(r)
	// Held weakly: a source dropped without Close is still collected.
	s.unobserve = instrument.ObserveSource(s.tel, instrument.Gauge{Provider: r.p.Name, Source: s.id}, s,
		(*CachedSource).ttl, (*CachedSource).breakerState)
	return s, nil
}
