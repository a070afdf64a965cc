package oauth2adapt

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/tokenhttp/tokenhttp/internal/safehttp"
	"github.com/tokenhttp/tokenhttp/source"
)

// FromOAuth2 returns a source.TokenSource over ts, so that any x/oauth2
// source (an oauth2.Config's, a Google credential's, an
// oauth2.ReuseTokenSource) works behind tokenhttp's Transport, Middleware
// and telemetry.
//
// The token's Expiry is copied unchanged, TokenType is ts's Type(), and
// Authorization is Type() + " " + AccessToken, the header x/oauth2's own
// Transport sends; the refresh token is not copied, and Scope is the
// reply's "scope" when ts kept it. An access token or type that cannot be
// sent in a header is an error.
//
// ts.Token takes no context, so the caller's context bounds only how long
// the caller waits: ts.Token runs in its own goroutine, and a caller whose
// context ends leaves with its cause while that call goes on until ts
// returns. Concurrent callers share one ts.Token call, so at most one such
// goroutine exists per returned source, and none outlives the call it
// makes. (A caller whose context can never end, such as
// context.Background(), calls ts.Token on its own goroutine.)
//
// An *oauth2.RetrieveError (found with errors.As) becomes a *source.Error
// whose Code is normalized as the Standard dialect does (the RFC 6749
// "error" code, else one derived from the HTTP status), with StatusCode,
// ProviderCode, the description scrubbed and bounded, and URI; its raw
// body is never kept. Other errors are wrapped.
//
// The returned source is safe for concurrent use if ts is, as the
// oauth2.TokenSource contract asks. It does not implement
// source.Invalidator: it cannot make ts fetch anew, so a request the API
// rejects with 401 comes back as it came (tokenhttp's Transport does not
// retry it); ts decides when its token is renewed.
func FromOAuth2(ts oauth2.TokenSource) source.TokenSource {
	if ts == nil {
		panic("oauth2adapt: FromOAuth2 needs an oauth2.TokenSource, got nil")
	}
	return &fromOAuth2{ts: ts}
}

// fromOAuth2 is the source.TokenSource of FromOAuth2.
type fromOAuth2 struct {
	ts    oauth2.TokenSource
	group singleflight.Group         // one ts.Token call at a time, shared by its callers
	last  atomic.Pointer[fromHanded] // the last conversion, so that one x/oauth2 token is one source token
}

type fromHanded struct {
	in  *oauth2.Token
	out *source.Token
}

var _ source.TokenSource = (*fromOAuth2)(nil)

// Token returns ts's token as a *source.Token, or leaves when ctx ends.
func (f *fromOAuth2) Token(ctx context.Context) (*source.Token, error) {
	if err := context.Cause(ctx); err != nil {
		return nil, fmt.Errorf("oauth2adapt: gave up waiting for the x/oauth2 token: %w", err)
	}
	if ctx.Done() == nil {
		v, err, _ := f.group.Do("token", f.fetch)
		return result(v, err)
	}
	ch := f.group.DoChan("token", f.fetch)
	select {
	case r := <-ch:
		return result(r.Val, r.Err)
	case <-ctx.Done():
		return nil, fmt.Errorf("oauth2adapt: gave up waiting for the x/oauth2 token: %w", context.Cause(ctx))
	}
}

func result(v any, err error) (*source.Token, error) {
	if err != nil {
		return nil, err
	}
	return v.(*source.Token), nil
}

// fetch calls ts.Token and converts what it returns. A panic in ts becomes
// an error: singleflight would re-panic it on a goroutine nobody recovers.
func (f *fromOAuth2) fetch() (v any, err error) {
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, errors.New("oauth2adapt: the x/oauth2 TokenSource panicked")
		}
	}()
	tok, err := f.ts.Token()
	if err != nil {
		return nil, convertError(err)
	}
	if tok == nil {
		return nil, errors.New("oauth2adapt: the x/oauth2 TokenSource returned neither a token nor an error")
	}
	if h := f.last.Load(); h != nil && h.in == tok {
		return h.out, nil
	}
	out, err := fromOAuth2Token(tok)
	if err != nil {
		return nil, err
	}
	f.last.Store(&fromHanded{in: tok, out: out})
	return out, nil
}

// fromOAuth2Token converts tok so that HeaderValue is what x/oauth2's
// SetAuthHeader sends.
func fromOAuth2Token(tok *oauth2.Token) (*source.Token, error) {
	typ := tok.Type()
	if err := safehttp.CheckHeaderToken(tok.AccessToken, ""); err != nil {
		return nil, fmt.Errorf("oauth2adapt: the x/oauth2 token cannot be sent: %w", err)
	}
	for i := 0; i < len(typ); i++ {
		if c := typ[i]; c <= ' ' || c >= 0x7f {
			return nil, fmt.Errorf("oauth2adapt: the x/oauth2 token type has a character that cannot be sent in a header (byte %d of %d)", i, len(typ))
		}
	}
	out := &source.Token{
		AccessToken:   tok.AccessToken,
		TokenType:     typ,
		Expiry:        tok.Expiry,
		Authorization: typ + " " + tok.AccessToken,
	}
	if s, ok := tok.Extra("scope").(string); ok {
		out.Scope = s
	}
	return out, nil
}
