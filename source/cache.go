package source

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/tokenhttp/tokenhttp/internal/breaker"
	"github.com/tokenhttp/tokenhttp/internal/instrument"
	iretry "github.com/tokenhttp/tokenhttp/internal/retry"
	"github.com/tokenhttp/tokenhttp/telemetry"
)

// Refresh ahead bounds. The automatic margin is a tenth of the lifetime:
// a fleet then spends about 1.1 token requests per lifetime (a quarter,
// as before, cost 1.33). The guard, the part of the margin in which the
// token is no longer served, is a twentieth, so that a short token still
// leaves its renewal a window to run in the background.
const (
	autoMarginShare = 10
	maxAutoMargin   = 5 * time.Minute
	jitterShare     = 10 // the jitter is up to margin/jitterShare
	guardShare      = 20
	maxGuard        = time.Second
	// After a failed background renewal, the next one waits an eighth of
	// the token's remaining life, within these bounds.
	minRenewBackoff = 200 * time.Millisecond
	maxRenewBackoff = 30 * time.Second
	// A token fetched to replace a rejected one and rejected too before
	// any API accepted it is kept (the API is not rejecting the token)
	// until minRejectBackoff after it was obtained, doubling with each
	// such token in a row up to maxRejectBackoff.
	minRejectBackoff = time.Second
	maxRejectBackoff = time.Minute
)

// CachedSource is the TokenSource that New returns: it caches the token,
// fetches once for any number of concurrent callers, renews ahead of
// expiry in the background, and can be told a token was rejected.
//
// It is safe for concurrent use. A Token call that finds a fresh token
// reads one atomic pointer (and, with a client certificate, the one
// presented last): it takes no lock and allocates nothing.
type CachedSource struct {
	ep        *endpoint
	r         *resolved
	breaker   *breaker.Breaker        // nil when disabled
	tel       *instrument.Instruments // spans and metrics of fetches
	unobserve func()                  // unregisters the gauges
	host      string                  // the token endpoint's host, for spans
	port      int                     //
	store     Store                   // shared tokens; nil: this source's memory only
	key       string                  // the credential's name in store; see storeKeyNow
	certKey   atomic.Pointer[certKey] // with a client certificate: the key for the last one
	id        string                  // telemetry.AttrSource

	cur      atomic.Pointer[entry]   // the current token, nil when none
	group    singleflight.Group      // one fetch at a time, shared by its waiters
	ahead    atomic.Bool             // a background renewal is in flight
	retry    atomic.Int64            // unix nanos before which a failed renewal is not retried
	rejected atomic.Bool             // the last token was invalidated: the next fetch is "rejected"
	nextRej  atomic.Int32            // rejections in a row before the token the next fetch gets
	held     atomic.Pointer[refusal] // the endpoint's last refusal, if the last answer was one
	bad      credSet                 // the last tokens invalidated: never taken back from the store
	spent    credSet                 // refresh tokens sent that may be rotated or refused: never sent again

	fetchMu sync.Mutex // held by the fetch; guards refresh
	refresh string     // the refresh token to renew with, "" when none
	dead    error      // GrantType RefreshToken: why no refresh token is left

	closeCtx context.Context    // done once Close is called; cancels fetches
	closeFn  context.CancelFunc //
	mu       sync.Mutex         // guards closed and the Add side of fetches
	closed   bool               //
	fetches  sync.WaitGroup     // fetches in flight
}

// entry is a token with the times the cache acts on.
type entry struct {
	tok       *Token
	refreshAt time.Time   // from then, renew in the background; zero: never
	staleAt   time.Time   // from then, never serve it; zero: never
	rej       int         // tokens rejected in a row before this one was fetched
	probeAt   time.Time   // once suspect: before then, a rejection of tok is not believed
	suspect   atomic.Bool // tok replaced a rejected token and was rejected too
	cert      *presented  // with a client certificate: the one tok is bound to
}

// Token returns the cached token while it is fresh. Past its refresh time
// it starts one background renewal and keeps returning the current token
// until that token is about to expire; with no usable token, it waits for
// the shared fetch or for ctx, whichever ends first. Every caller that
// waited on a failed fetch gets its error. After the endpoint refused (a
// 4xx or a redirect), Token returns that error without asking again for
// 1 s, doubling with each refusal in a row up to 1 min (none with
// Config.PasswordFunc; 1 s at most with a credential from a function).
func (s *CachedSource) Token(ctx context.Context) (*Token, error) {
	e := s.cur.Load()
	if e != nil && !s.certBound(e) {
		e = nil // bound to a certificate no longer presented
	}
	if e != nil {
		now := time.Now()
		if e.refreshAt.IsZero() || now.Before(e.refreshAt) {
			return e.tok, nil
		}
		if e.staleAt.IsZero() || now.Before(e.staleAt) {
			s.renewAhead(ctx, now)
			return e.tok, nil
		}
	}
	reason := telemetry.ReasonCold
	switch {
	case e != nil:
		reason = telemetry.ReasonExpired
	case s.rejected.Load():
		reason = telemetry.ReasonRejected
	}
	s.tel.CacheMiss(ctx, s.r.p.Name)
	return s.wait(ctx, reason)
}

// Invalidate drops rejected if it is still the current token. It reports
// whether it did. The next Token call fetches, with the refresh token
// first when there is one. With a Store, that fetch replaces the rejected
// token in the store only if it is still the stored one (a newer token
// another sharer stored is taken instead), and drops it from the store if
// the fetch fails; Invalidate itself does not wait on the store.
//
// Renewals forced by rejections are bounded. A token that was fetched to
// replace a rejected one and was rejected too (RejectedAfterRenewal) says
// the API is not rejecting the token: Invalidate keeps it (and reports
// false) until a backoff after it was obtained — 1 s, doubling with each
// such token in a row, at most 1 min — and counts
// telemetry.MetricSuppressedInvalidations. Any other token is dropped at
// once. With a Store the count of rejections in a row is stored with the
// token (StoredToken.Rejections), and a token another sharer fetched to
// replace a rejected one is held to the same backoff, so the whole fleet
// backs off alike.
func (s *CachedSource) Invalidate(rejected *Token) bool {
	e := s.cur.Load()
	if e == nil || rejected == nil || e.tok != rejected {
		return false
	}
	suspect := e.suspect.Load()
	if suspect && time.Now().Before(e.probeAt) {
		s.tel.SuppressedInvalidation(context.Background(), s.r.p.Name)
		return false
	}
	if !s.cur.CompareAndSwap(e, nil) {
		return false
	}
	next := int32(1)
	if suspect {
		next = int32(min(e.rej, 30)) + 1
	}
	s.nextRej.Store(next)
	s.rejected.Store(true)
	s.bad.add(credential(rejected))
	s.emit(TokenInvalidated, "", rejected, "")
	return true
}

// RejectedAfterRenewal records that tok, the token given after a rejected
// one was invalidated, was rejected too: until a backoff after tok was
// obtained, Invalidate keeps it. It does nothing if tok is not current.
func (s *CachedSource) RejectedAfterRenewal(tok *Token) {
	if e := s.cur.Load(); e != nil && e.tok == tok {
		e.suspect.Store(true)
	}
}

// FetchTimeout returns the bound of one token fetch, retries included:
// Config.FetchTimeout, or DefaultFetchTimeout.
func (s *CachedSource) FetchTimeout() time.Duration { return s.r.fetchTimeout }

// Close cancels a fetch in flight and waits for it to end. Afterwards
// Token serves the cached token while it is usable, then returns
// ErrClosed. With a ClientCertificate it closes the idle connections of
// the token requests. Close is safe to call more than once.
func (s *CachedSource) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.closeFn()
	s.fetches.Wait()
	s.unobserve()
	if s.r.client != nil { // the mTLS transport is the source's own
		s.r.client.CloseIdleConnections()
	}
	return nil
}

// wait joins the shared fetch and waits for it or for ctx.
func (s *CachedSource) wait(ctx context.Context, reason string) (*Token, error) {
	ch := s.group.DoChan("token", func() (any, error) { return s.flight(ctx, reason) })
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*entry).tok, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("source: gave up waiting for a %s token: %w", s.r.p.Name, context.Cause(ctx))
	}
}

// renewAhead starts one background renewal unless one is running. The
// renewal is a flight like any other: a caller that needs a token joins it.
func (s *CachedSource) renewAhead(ctx context.Context, now time.Time) {
	if now.UnixNano() < s.retry.Load() || !s.ahead.CompareAndSwap(false, true) {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.ahead.Store(false)
		return
	}
	s.fetches.Add(1)
	s.mu.Unlock()
	ch := s.group.DoChan("token", func() (any, error) { return s.flight(ctx, telemetry.ReasonAhead) })
	// The flag is cleared when the flight this call joined has ended (it
	// may have joined one that was ending: clearing it inside the flight
	// would leave the flag set for good).
	go func() {
		defer s.fetches.Done()
		<-ch
		s.ahead.Store(false)
	}()
}

// flight is the shared fetch. It runs detached from every caller's
// cancellation (keeping ctx's values, such as a trace) with its own
// timeout, and ends early only on Close.
func (s *CachedSource) flight(ctx context.Context, reason string) (v any, err error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	s.fetches.Add(1)
	s.mu.Unlock()
	defer s.fetches.Done()
	defer func() { // a panic here would kill the process: singleflight re-panics
		if p := recover(); p != nil {
			v, err = nil, fmt.Errorf("source: the %s token fetch panicked: %s", s.r.p.Name, s.ep.scrub.clean(fmt.Sprint(p)))
		}
	}()

	// A flight that starts right after another one stored a fresh token
	// has nothing to do.
	if e := s.cur.Load(); e != nil && (e.refreshAt.IsZero() || time.Now().Before(e.refreshAt)) {
		if s.certBound(e) {
			return e, nil
		}
		s.certChanged()
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.r.fetchTimeout)
	defer cancel()
	stop := context.AfterFunc(s.closeCtx, cancel)
	defer stop()

	s.rejected.Store(false)
	started := time.Now()
	fctx, rec := s.tel.StartFetch(fctx, instrument.FetchInfo{
		Provider: s.r.p.Name, Source: s.id, Grant: s.nextGrant(), Reason: reason, Host: s.host, Port: s.port})
	st := &exchangeStats{onRetry: func(a iretry.Attempt) { rec.Retry(a.N, a.Status, instrument.ErrorType(a.Err), a.Wait) }}
	st.onFallback = func(grant string, err error) {
		var status int
		var code string
		if te := (*Error)(nil); errors.As(err, &te) {
			status, code = te.StatusCode, te.Code
		}
		rec.GrantFallback(grant, status, code, instrument.ErrorType(err))
	}
	s.noteExpiry(fctx, rec)
	var got obtained
	got, err = s.obtain(fctx, st, rec)
	if err != nil && s.closeCtx.Err() != nil {
		err = fmt.Errorf("source: the %s token fetch was cancelled by Close: %w", s.r.p.Name, ErrClosed)
	}
	if now := time.Now(); err == nil && !got.tok.Expiry.IsZero() && !got.tok.Expiry.After(now) {
		err = &ExpiredError{Provider: s.r.p.Name, Lifetime: got.tok.Expiry.Sub(got.at), Took: now.Sub(got.at)}
	}
	rec.End(result(err, st))
	if err != nil {
		// While the current token is still usable, callers keep it; space
		// out the background renewals instead of retrying on every call.
		if e := s.cur.Load(); e != nil && !e.staleAt.IsZero() {
			if left := time.Until(e.staleAt); left > 0 {
				s.retry.Store(time.Now().Add(min(max(left/8, minRenewBackoff), maxRenewBackoff)).UnixNano())
			}
		}
		return nil, err
	}
	s.retry.Store(0)
	now := time.Now()
	e := s.newEntry(got.tok, got.at, now, now.Sub(started))
	e.rej = got.rej
	e.probeAt = got.at.Add(rejectBackoff(max(e.rej, 1)))
	if got.shared && got.rej > 0 {
		// Another sharer fetched it to replace a rejected token: if it is
		// rejected too before the backoff, this source did not see the
		// sharer's retry, but the fleet backs off alike.
		e.suspect.Store(true)
	}
	s.nextRej.Store(0)
	s.cur.Store(e)
	switch {
	case got.shared:
		s.emit(TokenFromStore, "", got.tok, "")
	case reason == telemetry.ReasonAhead:
		s.emit(TokenRenewedAhead, st.grant, got.tok, "")
	default:
		s.emit(TokenFetched, st.grant, got.tok, "")
	}
	return e, nil
}

// rejectBackoff is how long a token that follows n rejected ones in a row
// is kept when it is rejected too before any API accepted it.
func rejectBackoff(n int) time.Duration {
	if n > 6 { // 1s << 6 is past the cap
		return maxRejectBackoff
	}
	return min(minRejectBackoff<<(n-1), maxRejectBackoff)
}

// obtained is a token and when it was obtained (its lifetime counts from
// then).
type obtained struct {
	tok    *Token
	at     time.Time
	rej    int  // tokens rejected in a row before it was fetched
	shared bool // another sharer of the store fetched it
}

// refusal is a final answer of the token endpoint, a 4xx or a redirect
// (a 2xx that is not a token is a server_error, retried and counted by the
// breaker), held so that the endpoint is not asked again before until: a
// gateway with refused credentials would otherwise send a token request
// for every API call, and a password grant could lock the account.
// n counts the refusals in a row, none more than a minute after the last
// hold ended and no token, 5xx or 429 between; the hold doubles with each,
// from 1 s to 1 min. A source with a Config.PasswordFunc holds none: its
// next request carries a new password (a one-time password typed again);
// one with ClientAssertion, Assertion or SubjectToken holds 1 s at most.
type refusal struct {
	err   error
	until time.Time
	n     int
}

// credentialFunc reports whether the credential the endpoint refused
// comes from a function of the Config, which may return a new one at any
// time (an assertion file rotated): its refusals are held 1 s, never
// longer.
func (s *CachedSource) credentialFunc() bool {
	c := &s.r.cfg
	return c.ClientAssertion != nil || c.Assertion != nil || c.SubjectToken != nil
}

// fromEndpoint fetches from the token endpoint through the breaker, unless
// the endpoint's last answer was a refusal still held.
func (s *CachedSource) fromEndpoint(ctx context.Context, st *exchangeStats, rec *instrument.Fetch, refreshHint string) (obtained, error) {
	at := time.Now()
	held := s.held.Load()
	if held != nil && at.Before(held.until) {
		rec.RefusalHeld()
		return obtained{}, held.err
	}
	v, err := s.breaker.Do(func() (any, error) { return s.fetch(ctx, st, refreshHint) },
		func(from, to breaker.State) { rec.BreakerChange(from.String(), to.String()) })
	if oe := (*breaker.OpenError)(nil); errors.As(err, &oe) {
		return obtained{}, &BreakerOpenError{Provider: s.r.p.Name, Until: oe.Until}
	}
	var te *Error
	switch {
	case errors.As(err, &te) && !te.Temporary() && s.r.cfg.PasswordFunc == nil:
		n := 1
		if held != nil && at.Sub(held.until) < maxRejectBackoff && !s.credentialFunc() {
			n = held.n + 1 // in a row: the last hold ended a short while ago
		}
		s.held.Store(&refusal{err: err, until: time.Now().Add(rejectBackoff(n)), n: n})
	case held != nil && (err == nil || te != nil): // a token, or a 5xx or 429: not a refusal in a row
		s.held.Store(nil)
	}
	if err != nil {
		return obtained{}, err
	}
	rec.From(telemetry.FromEndpoint)
	if !st.sent.IsZero() {
		at = st.sent // the start of the attempt that was answered
	}
	return obtained{tok: v.(*Token), at: at, rej: int(s.nextRej.Load())}, nil
}

// fetch gets a new token: with the refresh token first when there is one,
// falling back once to the configured grant when the endpoint refuses it.
func (s *CachedSource) fetch(ctx context.Context, st *exchangeStats, refreshHint string) (*Token, error) {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	if s.r.grant == RefreshToken {
		return s.fetchRefreshGrant(ctx, st, refreshHint)
	}
	rt := s.refresh
	if s.store != nil {
		// Sharing a store, only the fleet's refresh token is current: this
		// source's own may have been rotated by another sharer already,
		// and sending it again could revoke the whole token family. One
		// this source sent already (rotated, refused or unanswered) is
		// spent even when the store still holds it (a Save that failed):
		// the configured grant instead.
		rt = refreshHint
		if rt != "" && s.spent.has(refreshFingerprint(rt)) {
			rt = ""
		}
	}
	if rt != "" {
		tok, spent, err := s.refreshWith(ctx, rt, st)
		var te *Error
		switch {
		case err == nil:
			return tok, nil
		case !spent: // the server surely did not act on it: still good
			return nil, err
		case !errors.As(err, &te) || te.Temporary():
			// The server may have acted on the request (a 5xx, no reply
			// after it was written) or certainly did (a 2xx the source
			// cannot use): the next fetch uses the configured grant.
			return nil, err
		}
		st.onFallback(RefreshToken, err) // refused: fall back to the grant, once
	}
	tok, err := s.ep.exchange(ctx, s.r.grant, "", st)
	if err != nil {
		return nil, err
	}
	s.refresh = tok.RefreshToken
	if err := s.rotated(ctx, s.r.grant, tok, rt); err != nil {
		return nil, err
	}
	return tok, nil
}

// refreshUnspent reports whether a failed refresh request surely did not
// spend the refresh token: it was never sent (the connection was refused,
// the request could not be built), or the server said it did not act on
// it (429, 503). Any other failure may have rotated it at the server.
func refreshUnspent(err error) bool {
	var te *Error
	if errors.As(err, &te) {
		return te.StatusCode == http.StatusTooManyRequests || te.StatusCode == http.StatusServiceUnavailable
	}
	var he *HookError
	return iretry.NotSent(err) || errors.As(err, new(notSentError)) || errors.As(err, &he)
}

// newEntry computes when tok is renewed and when it stops being served.
// Its lifetime counts from at, when it was obtained. took is how long its
// fetch took: an automatic margin leaves room for the next renewal to land
// before the token stops being served.
func (s *CachedSource) newEntry(tok *Token, at, now time.Time, took time.Duration) *entry {
	e := &entry{tok: tok, cert: s.boundTo(tok)}
	if tok.Expiry.IsZero() {
		return e
	}
	life := tok.Expiry.Sub(at)
	if life <= 0 || !tok.Expiry.After(now) { // expired (flight returns an *ExpiredError instead): never served
		e.refreshAt, e.staleAt = now, now
		return e
	}
	guard := guardOf(life)
	margin := s.r.cfg.RefreshAhead
	if margin == 0 {
		margin = min(life/autoMarginShare, maxAutoMargin)
		if j := int64(margin / jitterShare); j > 0 {
			margin += time.Duration(rand.Int64N(j))
		}
	}
	margin = min(max(margin, guard+2*took), life/2) // renewed before it stops being served
	e.refreshAt = tok.Expiry.Add(-margin)
	e.staleAt = tok.Expiry.Add(-guard)
	return e
}

// guardOf is the guard of a token that lives life: it is not served within
// that of its expiry, so that it outlives the request it rides on.
func guardOf(life time.Duration) time.Duration { return min(life/guardShare, maxGuard) }

// staleAt is when tok, obtained at at, stops being served; zero: never.
// An already expired token is stale at once.
func staleAt(tok *Token, at time.Time) time.Time {
	if tok.Expiry.IsZero() {
		return time.Time{}
	}
	life := tok.Expiry.Sub(at)
	if life <= 0 {
		return at
	}
	return tok.Expiry.Add(-guardOf(life))
}

// breakerFailure says which fetch errors count toward opening the breaker:
// the endpoint failed (5xx, 429, no reply, a timeout). A 4xx means the
// endpoint is up.
func breakerFailure(err error) bool {
	var te *Error
	if errors.As(err, &te) {
		return te.Temporary()
	}
	return true
}

// breakerExcluded says which errors say nothing of the endpoint: the
// source was closed, or the request could not be built (a user hook, a
// signature) and was never sent.
func breakerExcluded(err error) bool {
	var he *HookError
	return errors.Is(err, context.Canceled) || errors.Is(err, ErrClosed) || errors.As(err, new(notSentError)) || errors.As(err, &he)
}

// nextGrant is the grant the next fetch starts with.
func (s *CachedSource) nextGrant() string {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	if s.refresh != "" {
		return RefreshToken
	}
	return s.r.grant
}

// ttl reports the seconds until the current token expires, for the gauge.
func (s *CachedSource) ttl() (float64, bool) {
	e := s.cur.Load()
	if e == nil || e.tok.Expiry.IsZero() {
		return 0, false
	}
	return time.Until(e.tok.Expiry).Seconds(), true
}

// breakerState reports the breaker state for the gauge: 0 closed, 1
// half-open, 2 open.
func (s *CachedSource) breakerState() (int64, bool) {
	if s.breaker == nil {
		return 0, false
	}
	switch s.breaker.Current() {
	case breaker.StateHalfOpen:
		return 1, true
	case breaker.StateOpen:
		return 2, true
	}
	return 0, true
}

// result describes a fetch's end for telemetry: codes only, never text
// from the provider.
func result(err error, st *exchangeStats) instrument.Result {
	r := instrument.Result{Grant: st.grant, Outcome: telemetry.OutcomeSuccess, Status: st.status, Attempts: st.attempts}
	if err == nil {
		return r
	}
	r.ErrorType = instrument.ErrorType(err)
	var te *Error
	switch {
	case errors.Is(err, ErrBreakerOpen):
		r.Outcome = telemetry.OutcomeBreakerOpen
	case errors.Is(err, context.Canceled), errors.Is(err, ErrClosed):
		r.Outcome = telemetry.OutcomeError // the source was closed
	case errors.As(err, &te):
		r.OAuthError = te.Code
		r.Outcome = telemetry.OutcomeRefused
		if te.Temporary() {
			r.Outcome = telemetry.OutcomeUnavailable
		}
	case errors.As(err, new(*FetchError)):
		r.Outcome = telemetry.OutcomeUnavailable
	default:
		r.Outcome = telemetry.OutcomeError
	}
	return r
}

// hostPort splits a URL's host and port (the scheme's default when none).
func hostPort(raw string) (string, int) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", 0
	}
	p, _ := strconv.Atoi(u.Port())
	if p == 0 {
		p = 443
		if u.Scheme == "http" {
			p = 80
		}
	}
	return u.Hostname(), p
}
