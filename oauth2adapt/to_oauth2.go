package oauth2adapt

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenhttp/tokenhttp/internal/safehttp"
	"github.com/tokenhttp/tokenhttp/internal/tokenuse"
	"github.com/tokenhttp/tokenhttp/source"
)

// fetchTimeouter is implemented by a source that can say how long one of
// its fetches may take (source.CachedSource): a source that has one bounds
// ToOAuth2's calls with it.
type fetchTimeouter interface {
	FetchTimeout() time.Duration
}

// ToOAuth2 returns an oauth2.TokenSource over src, for libraries that take
// one. It is ToOAuth2Context(context.Background(), src).
func ToOAuth2(src source.TokenSource) oauth2.TokenSource {
	return ToOAuth2Context(context.Background(), src)
}

// ToOAuth2Context returns an oauth2.TokenSource over src whose Token calls
// src.Token with a context that keeps ctx's values and cancellation (so
// that a service shutting down can end a fetch), bounded by src's fetch
// timeout:
//
//   - a source with a FetchTimeout() time.Duration method (a
//     *source.CachedSource, what source.New returns): that duration;
//   - any other source: source.DefaultFetchTimeout.
//
// The token is converted so that oauth2.Transport (Token.SetAuthHeader)
// sends the header this module's Transport sends, Token.HeaderValue: the
// provider's Authorization value "Scheme credentials" becomes TokenType
// "Scheme" and AccessToken "credentials" (x/oauth2 writes the schemes
// bearer, mac and basic in its own case: "Bearer", "MAC", "Basic"); without
// one, TokenType is "Bearer". A header value that is not of the form
// "<scheme> <credentials>", or a credential that cannot be sent in a
// header, is an error. Expiry is copied unchanged (x/oauth2 treats a token
// as expired 10 s early and then asks again: a cached source answers that
// from its cache), Extra is a copy of the token's Extra (Token.Extra), and
// the refresh token is never copied. Errors of src are returned wrapped:
// errors.As finds a *source.Error.
//
// The returned source is safe for concurrent use, and every caller gets
// the same *oauth2.Token for the same source token: do not modify it. It
// also lets its user say that a token was rejected, which it forwards to
// src's Invalidate when src is a source.Invalidator (as the sources of
// source.New are), naming the source token it converted:
//
//	Invalidate(tok *oauth2.Token) bool // tok was rejected; reports whether src dropped it
//	ResetTokenOlderThan(t time.Time)   // k8s.io/client-go's ResettableTokenSource: a 401 for a request started at t
//
// ResetTokenOlderThan drops the last token handed out if it was first
// handed out before t; a newer token, fetched after the rejected request
// started, survives.
func ToOAuth2Context(ctx context.Context, src source.TokenSource) oauth2.TokenSource {
	if src == nil {
		panic("oauth2adapt: ToOAuth2 needs a TokenSource, got nil")
	}
	a := &toOAuth2{ctx: ctx, src: src}
	a.inv, _ = src.(source.Invalidator)
	switch s := src.(type) {
	case fetchTimeouter:
		a.timeout = s.FetchTimeout()
	default:
		a.timeout = source.DefaultFetchTimeout
	}
	return a
}

// toOAuth2 is the oauth2.TokenSource of ToOAuth2.
type toOAuth2 struct {
	ctx     context.Context
	src     source.TokenSource
	inv     source.Invalidator // src's, nil if it cannot invalidate
	timeout time.Duration      // bounds each src.Token call; zero: src bounds itself

	last atomic.Pointer[handed] // the last token handed out
}

// handed is a source token, its conversion and when it was first handed
// out.
type handed struct {
	src   *source.Token
	out   *oauth2.Token
	first time.Time
}

var _ oauth2.TokenSource = (*toOAuth2)(nil)

// Token returns src's token as an *oauth2.Token.
func (a *toOAuth2) Token() (*oauth2.Token, error) {
	ctx := a.ctx
	if a.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.timeout)
		defer cancel()
	}
	tok, err := a.src.Token(ctx)
	err = tokenuse.Check(tok, err)
	if err != nil {
		return nil, fmt.Errorf("oauth2adapt: no token: %w", err)
	}
	if h := a.last.Load(); h != nil && h.src == tok {
		return h.out, nil
	}
	out, err := toOAuth2Token(tok)
	if err != nil {
		return nil, err
	}
	a.last.Store(&handed{src: tok, out: out, first: time.Now()})
	return out, nil
}

// Invalidate tells src that tok, a token this source handed out, was
// rejected. It reports whether src dropped it: false when src cannot
// invalidate, when tok is not the last token handed out, or when src
// already has a newer token.
func (a *toOAuth2) Invalidate(tok *oauth2.Token) bool {
	h := a.last.Load()
	if a.inv == nil || h == nil || tok == nil {
		return false
	}
	if tok != h.out && (tok.AccessToken != h.out.AccessToken || tok.Type() != h.out.Type()) {
		return false
	}
	return a.inv.Invalidate(h.src)
}

// ResetTokenOlderThan tells src that a request started at t was rejected:
// the last token handed out is dropped if it was first handed out before
// t. It is k8s.io/client-go's ResettableTokenSource method.
func (a *toOAuth2) ResetTokenOlderThan(t time.Time) {
	if h := a.last.Load(); a.inv != nil && h != nil && h.first.Before(t) {
		a.inv.Invalidate(h.src)
	}
}

// toOAuth2Token converts tok so that oauth2's SetAuthHeader sends
// tok.HeaderValue().
func toOAuth2Token(tok *source.Token) (*oauth2.Token, error) {
	if err := safehttp.CheckHeaderToken(tok.AccessToken, tok.Authorization); err != nil {
		return nil, fmt.Errorf("oauth2adapt: the token cannot be given to x/oauth2: %w", err)
	}
	scheme, cred, _ := strings.Cut(tok.HeaderValue(), " ")
	out := &oauth2.Token{AccessToken: cred, TokenType: scheme, Expiry: tok.Expiry}
	if tok.Extra != nil {
		out = out.WithExtra(maps.Clone(tok.Extra))
	}
	return out, nil
}
