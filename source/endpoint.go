package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	iretry "github.com/tokenhttp/tokenhttp/internal/retry"
)

// maxReplyBytes bounds a token endpoint's reply body. A larger reply is an
// error, not an allocation.
const maxReplyBytes = 1 << 20

// noRedirect stops net/http from following a token endpoint's redirect:
// it would re-POST the client secret to the new location.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// endpoint sends token requests in one dialect and decodes the replies.
type endpoint struct {
	r      *resolved
	client *http.Client
	reply  ReplyFields
	scrub  scrubber   // the config's secrets
	disc   *discovery // the provider reads the token URL from a discovery document; nil: r.tokenURL
}

func newEndpoint(r *resolved) *endpoint {
	c := &http.Client{}
	if r.client != nil {
		c = r.client
	} else if r.cfg.HTTPClient != nil {
		cp := *r.cfg.HTTPClient
		c = &cp
	}
	c.CheckRedirect = noRedirect
	e := &endpoint{
		r: r, client: c, reply: r.p.Reply.resolve(),
		scrub: scrubber{}.with(configSecrets(r)...),
	}
	if r.p == OpenFinanceBrasil {
		e.disc = &discovery{issuer: r.tokenURL}
	}
	return e
}

// exchangeStats is what telemetry learns of the exchanges of one fetch.
type exchangeStats struct {
	status   int       // the last HTTP status, 0 for none
	attempts int       // requests sent
	sent     time.Time // when the attempt that got the last reply started
	grant    string    // the last grant tried
	unlocked bool      // a sharer took over from a lock holder: a GrantType RefreshToken source sends nothing
	onRetry  func(iretry.Attempt)
	// onFallback, if set, is told that grant was refused with err and the
	// fetch falls back to the configured grant.
	onFallback func(grant string, err error)
}

// notSentError is an error from before a token request was sent (it
// could not be built: a hook, a signature, discovery): the server saw
// nothing, so a refresh token is not spent and the breaker not told.
type notSentError struct{ error }

func (e notSentError) Unwrap() error { return e.error }

// exchange makes one token request with grant; refresh is the refresh
// token for the RefreshToken grant. A refusal is an *Error. st is updated
// with the attempts, the last status and when the answered attempt
// started (the token's Expiry counts from then).
func (e *endpoint) exchange(ctx context.Context, grant, refresh string, st *exchangeStats) (*Token, error) {
	st.grant = grant
	req, scrub, err := e.build(ctx, grant, refresh)
	if err != nil {
		return nil, notSentError{err}
	}
	pol := e.r.cfg.Retry
	if grant == Password && (e.r.p.OneTimePassword || e.r.cfg.PasswordFunc != nil) {
		pol.MaxAttempts = 1 // a password from PasswordFunc may be one-time: never sent twice
	}
	// A lifetime counts from the start of the attempt that was answered:
	// an earlier attempt's 429 and the wait after it are not the token's.
	start := time.Now()
	onSend := func(int) { start = time.Now() }
	perAttempt := grant == JWTBearer || grant == TokenExchange || e.r.jwtClientAuth() // a client assertion is single-use too
	if perAttempt {
		// Each attempt carries a newly made assertion or subject token.
		req.GetBody = e.rebuild(ctx, grant, refresh, &scrub)
	}
	resp, n, err := iretry.Do(e.client, pol, iretry.Request{Req: req, Unsafe: grant == RefreshToken, PerAttempt: perAttempt, OnRetry: st.onRetry, OnSend: onSend})
	st.attempts += n
	st.sent = start
	if he := (*HookError)(nil); errors.As(err, &he) {
		st.status = 0
		return nil, he // a retry's Assertion or SubjectToken failed
	}
	if err != nil {
		st.status = 0
		return nil, e.transportError(err, scrub)
	}
	defer resp.Body.Close()
	st.status = resp.StatusCode
	body, err := readBounded(resp.Body, maxReplyBytes)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, &Error{Provider: e.r.p.Name, StatusCode: resp.StatusCode, Code: CodeServerError,
				Description: fmt.Sprintf("the reply is larger than %d bytes", maxReplyBytes)}
		}
		return nil, e.transportError(err, scrub)
	}
	tok, err := e.decode(resp, body, start, scrub)
	if err == nil && grant == TokenExchange {
		err = exchangedToken(e.r.p.Name, resp.StatusCode, tok)
	}
	if err != nil {
		noteClockSkew(err, resp.Header.Get("Date"), time.Now())
	}
	return tok, err
}

// transportError wraps a network failure without the URL (its query may
// hold a secret) or any secret a lower layer may have put into the text.
func (e *endpoint) transportError(err error, scrub scrubber) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &FetchError{Provider: e.r.p.Name, Err: err, msg: scrub.clean(err.Error())}
}

var errTooLarge = errors.New("body too large")

// readBounded reads r up to limit bytes; more is errTooLarge.
func readBounded(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errTooLarge
	}
	return b, nil
}
