// Package source gets OAuth2 tokens from token endpoints, keeps them
// fresh, and says why when it cannot.
//
// New takes a Config (a credential and the endpoint that takes it) and
// returns a CachedSource: a TokenSource that caches the token, fetches
// once for any number of concurrent callers, renews ahead of expiry in the
// background, retries failed fetches and stops calling a failing endpoint
// for a while (Config.Retry, Config.Breaker), and drops a token an API
// rejected (Invalidator). Close it when done.
//
// A Provider describes an endpoint's dialect: RFC 6749 (Standard), Open
// Finance Brasil (OpenFinanceBrasil) and the dialects of VaultID,
// DirectLink, Score Positivo, gestao.plus and SerproID are declared here;
// a user describes another by filling a Provider. Every refusal is an
// *Error with a normalized Code and the provider's own code; the other
// errors Token returns are typed (FetchError, HookError, ExpiredError,
// BreakerOpenError, and ConfigError from New) or match a sentinel
// (ErrClosed, ErrBreakerOpen, ErrRefreshTokenSpent, ErrStaticTokenRejected,
// ErrInvalidConfig). No error, log value or printed value shows a secret.
//
// A Store shares tokens between sources: MemoryStore within a process,
// source/redisstore across the replicas of a service.
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
	if r.grant == RefreshToken {
		s.refresh = cfg.RefreshToken
	}
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
