package proxy

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/instrument"
	"github.com/tokenhttp/tokenhttp/source"
)

// recorder is a TokenSource that remembers the last result of its
// source's Token, for /readyz and the token event logs. It passes
// Invalidate and RejectedAfterRenewal on, so that a Transport over it
// keeps the 401 path of the source underneath.
type recorder struct {
	src   source.TokenSource
	route string
	log   *slog.Logger
	last  atomic.Pointer[outcome]
	inv   source.Invalidator
	renew source.RenewalRejecter
}

// outcome is one Token result, without anything secret.
type outcome struct {
	tok     *source.Token // compared by identity and for Expiry only
	expiry  time.Time
	errType string    // "" on success
	until   time.Time // breaker open until
	refused string    // the endpoint's refusal, as a RouteState.State; "" for none
	at      time.Time
}

var (
	_ source.TokenSource     = (*recorder)(nil)
	_ source.Invalidator     = (*recorder)(nil)
	_ source.RenewalRejecter = (*recorder)(nil)
)

func newRecorder(src source.TokenSource, route string, log *slog.Logger) *recorder {
	r := &recorder{src: src, route: route, log: log}
	r.inv, _ = src.(source.Invalidator)
	r.renew, _ = src.(source.RenewalRejecter)
	return r
}

// Token calls the source and records the result. A cached hit whose
// token is the one recorded already costs one atomic load.
func (r *recorder) Token(ctx context.Context) (*source.Token, error) {
	tok, err := r.src.Token(ctx)
	last := r.last.Load()
	if err == nil && tok != nil {
		if last != nil && last.tok == tok && last.errType == "" {
			return tok, nil // the cached hit: one load, one comparison
		}
		r.last.Store(&outcome{tok: tok, expiry: tok.Expiry, at: time.Now()})
		if last == nil || last.tok != tok {
			r.log.Info("token obtained", "route", r.route, "expiry", tok.Expiry.UTC().Format(time.RFC3339))
		}
		return tok, nil
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return tok, err // the caller left: says nothing about the source
	}
	o := &outcome{errType: "no_token", at: time.Now()}
	if err != nil {
		o.errType = instrument.ErrorType(err)
	}
	var open *source.BreakerOpenError
	if errors.As(err, &open) {
		o.until = open.Until
	}
	var te *source.Error
	if errors.As(err, &te) && !te.Temporary() {
		switch {
		case te.NotTokenEndpoint():
			o.refused = "not_a_token_endpoint"
		case te.CredentialsRefused():
			o.refused = "credentials_refused"
		default:
			o.refused = "request_refused"
		}
	}
	if last != nil && last.errType == "" && last.tok != nil && last.tok.Valid() {
		o.tok, o.expiry = last.tok, last.expiry // still holds a usable token
	}
	r.last.Store(o)
	if last == nil || last.errType != o.errType {
		msg := "the source returned no token"
		if err != nil {
			msg = err.Error() // the source's errors carry no secret
		}
		r.log.Warn("token failed", "route", r.route, "error_type", o.errType, "error", msg)
	}
	return tok, err
}

// Invalidate passes the rejected token on to the source.
func (r *recorder) Invalidate(rejected *source.Token) bool {
	if r.inv == nil {
		return false
	}
	ok := r.inv.Invalidate(rejected)
	if ok {
		r.log.Info("token rejected by upstream", "route", r.route)
	}
	return ok
}

// RejectedAfterRenewal passes the rejection on to the source.
func (r *recorder) RejectedAfterRenewal(tok *source.Token) {
	if r.renew != nil {
		r.renew.RejectedAfterRenewal(tok)
	}
}

// RouteState is a route's readiness, as /readyz reports it.
type RouteState struct {
	Prefix string `json:"prefix"`
	Ready  bool   `json:"ready"`
	// State is "ready", "no_token_yet", "breaker_open",
	// "credentials_refused" (invalid_client, unauthorized_client,
	// invalid_grant), "request_refused" (another 4xx: a scope, a grant
	// type), "not_a_token_endpoint" (a 404, say: check token_url),
	// "token_expired" or "failing".
	State       string     `json:"state"`
	Error       string     `json:"error_type,omitempty"`
	Expiry      *time.Time `json:"token_expiry,omitempty"`
	BreakerOpen *time.Time `json:"breaker_open_until,omitempty"`
}

// state reports the route's readiness at now.
func (r *recorder) state(now time.Time) RouteState {
	st := RouteState{Prefix: r.route}
	o := r.last.Load()
	if o == nil {
		st.State = "no_token_yet"
		return st
	}
	if o.tok != nil && (o.expiry.IsZero() || now.Before(o.expiry)) {
		st.Ready, st.State = true, "ready"
		if !o.expiry.IsZero() {
			e := o.expiry.UTC()
			st.Expiry = &e
		}
		st.Error = o.errType
		return st
	}
	st.Error = o.errType
	switch {
	case !o.until.IsZero():
		st.State = "breaker_open"
		u := o.until.UTC()
		st.BreakerOpen = &u
	case o.refused != "":
		st.State = o.refused
	case o.errType == "":
		st.State = "token_expired"
	default:
		st.State = "failing"
	}
	return st
}

// keep fetches a token at once and then again before each expires, so that
// the route is warm and /readyz is current even without traffic, until
// ctx is done. Failures back off from 500 ms to 30 s.
func (r *recorder) keep(ctx context.Context) {
	backoff := 500 * time.Millisecond
	for {
		var wait time.Duration
		tok, err := r.Token(ctx)
		if err != nil || tok == nil {
			wait = backoff
			backoff = min(backoff*2, 30*time.Second)
			if o := r.last.Load(); o != nil && !o.until.IsZero() {
				wait = max(wait, time.Until(o.until))
			}
		} else {
			backoff = 500 * time.Millisecond
			wait = time.Minute
			if !tok.Expiry.IsZero() {
				// Half-way to expiry: inside the source's refresh-ahead
				// window by the time the token gets old.
				wait = min(max(time.Until(tok.Expiry)/2, 100*time.Millisecond), time.Minute)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
