// Package retry sends token requests with retries (on
// github.com/hashicorp/go-retryablehttp) under a retry.Policy, and holds
// the rules of the Transport's single retry after a 401.
package retry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/tokenhttp/tokenhttp/retry"
)

// withDefaults is p with every zero field set to its default.
func withDefaults(p retry.Policy) retry.Policy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = retry.DefaultMaxAttempts
	}
	if p.MinWait <= 0 {
		p.MinWait = retry.DefaultMinWait
	}
	if p.MaxWait <= 0 {
		p.MaxWait = retry.DefaultMaxWait
	}
	p.MaxWait = max(p.MaxWait, p.MinWait)
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = retry.DefaultMaxRetryAfter
	}
	return p
}

// Attempt describes one failed attempt that will be retried, for
// telemetry: its number (1 for the first), the status (0 for a network
// error) and the wait before the next.
type Attempt struct {
	N      int
	Status int
	Err    error
	Wait   time.Duration
}

// Replayable reports whether req can be sent a second time: it has no
// body, or GetBody to make a new one. The Transport's single retry after a
// 401 happens only for such requests.
func Replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// Request is a token request to send with Do.
type Request struct {
	// Req is the request; its body must be replayable (GetBody), as
	// http.NewRequest makes it for a bytes.Reader.
	Req *http.Request
	// Unsafe marks a request that must not reach the server twice (a
	// rotating refresh token, a one-time password): it is retried only
	// when the server surely did not act on it — a refused connection, a
	// 429, or a 503.
	Unsafe bool
	// OnRetry, if set, is called before each wait.
	OnRetry func(Attempt)
	// PerAttempt says the body holds single-use fields (a JWT assertion, a
	// subject token): every attempt after the first sends a body that
	// Req.GetBody builds anew. A GetBody error ends Do before that
	// attempt is sent, and Do returns it.
	PerAttempt bool
	// OnSend, if set, is called just before each attempt is sent, the
	// first included; n counts from 1. The last call is the start of the
	// attempt whose reply or error Do returns.
	OnSend func(n int)
}

// Do sends r.Req with client under p and returns the last response (its
// body unread, for the caller to decode and close) or the last error, and
// the number of attempts made. The client should not follow redirects.
func Do(client *http.Client, p retry.Policy, r Request) (resp *http.Response, attempts int, err error) {
	p = withDefaults(p)
	ctx := r.Req.Context()
	var wait time.Duration // the wait CheckRetry chose, for Backoff to return
	var prepErr error      // GetBody's error: the attempt was not sent
	rc := &retryablehttp.Client{
		HTTPClient:   client,
		Logger:       nil, // its default writes to stderr
		RetryMax:     p.MaxAttempts - 1,
		RetryWaitMin: p.MinWait,
		RetryWaitMax: p.MaxWait,
		ErrorHandler: keepLastReply,
		CheckRetry: func(ctx context.Context, resp *http.Response, err error) (bool, error) {
			if prepErr != nil {
				return false, prepErr
			}
			attempts++
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			retry, hard := shouldRetry(resp, err, r.Unsafe)
			if hard != nil {
				return false, hard
			}
			if !retry || attempts >= p.MaxAttempts {
				return false, nil
			}
			w, ok := nextWait(p, attempts, resp)
			if !ok {
				return false, nil
			}
			if dl, has := ctx.Deadline(); has && time.Until(dl) <= w {
				return false, nil // the wait would outlive the caller
			}
			wait = w
			if r.OnRetry != nil {
				a := Attempt{N: attempts, Err: err, Wait: w}
				if resp != nil {
					a.Status = resp.StatusCode
				}
				r.OnRetry(a)
			}
			return true, nil
		},
		Backoff: func(_, _ time.Duration, _ int, _ *http.Response) time.Duration { return wait },
	}
	if r.OnSend != nil || r.PerAttempt {
		rc.RequestLogHook = func(_ retryablehttp.Logger, req *http.Request, i int) {
			if r.PerAttempt && i > 0 && req.GetBody != nil {
				if err := rebody(req); err != nil {
					prepErr = err
					ctx, cancel := context.WithCancelCause(req.Context())
					cancel(err)
					*req = *req.WithContext(ctx) // nothing is sent
					return
				}
			}
			if r.OnSend != nil {
				r.OnSend(i + 1)
			}
		}
	}
	rr, err := retryablehttp.FromRequest(r.Req)
	if err != nil {
		return nil, 0, err
	}
	rr.Request = rr.Request.WithContext(ctx)
	resp, err = rc.Do(rr)
	return resp, max(attempts, 1), err
}

// rebody replaces req's body with a new one from GetBody.
func rebody(req *http.Request) error {
	rc, err := req.GetBody()
	if err != nil {
		return err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	req.Body = io.NopCloser(bytes.NewReader(b))
	req.ContentLength = int64(len(b))
	return nil
}

// keepLastReply is the ErrorHandler: retryablehttp's default drops the
// last reply; this returns it, so its body can be decoded. With an error
// too (the context ended just after the reply came), the reply is closed
// and only the error returned.
func keepLastReply(resp *http.Response, err error, _ int) (*http.Response, error) {
	if err != nil && resp != nil {
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		resp.Body.Close()
		return nil, err
	}
	return resp, err
}

// shouldRetry classifies an attempt's outcome. hard is an error that ends
// the retries and replaces the outcome.
func shouldRetry(resp *http.Response, err error, unsafe bool) (retry bool, hard error) {
	if err != nil {
		if unsafe {
			return NotSent(err), nil
		}
		retry, hard = retryablehttp.DefaultRetryPolicy(context.Background(), nil, err)
		if hard != nil {
			return false, nil // not recoverable: Do returns err itself
		}
		return retry, nil
	}
	switch s := resp.StatusCode; {
	case s == http.StatusTooManyRequests, s == http.StatusServiceUnavailable:
		return true, nil
	case unsafe:
		return false, nil
	case s >= 500 && s != http.StatusNotImplemented:
		return true, nil
	}
	return false, nil
}

// NotSent reports whether err is from before a request was written (the
// connection could not be made), so the server surely did not act on it.
func NotSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// nextWait returns the wait before attempt n+1: the reply's Retry-After if
// it has one (ok is false when that is over the cap: no retry), else
// exponential backoff with full jitter.
func nextWait(p retry.Policy, n int, resp *http.Response) (time.Duration, bool) {
	if resp != nil {
		if h := resp.Header.Get("Retry-After"); h != "" {
			if d, valid := ParseRetryAfter(h, time.Now()); valid {
				if d > p.MaxRetryAfter {
					return 0, false
				}
				return d, true
			}
		}
	}
	return Backoff(p.MinWait, p.MaxWait, n), true
}

// Backoff is exponential backoff with full jitter: a random wait in
// [lo, lo·2^(n-1)], capped at hi; n counts from 1 (a smaller n is 1).
func Backoff(lo, hi time.Duration, n int) time.Duration {
	n = max(n, 1)
	ceil := hi
	if n < 31 && lo<<(n-1) > 0 && lo<<(n-1) < hi {
		ceil = lo << (n - 1)
	}
	if ceil <= lo {
		return lo
	}
	return lo + time.Duration(rand.Int64N(int64(ceil-lo)+1))
}

// ParseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date, relative to now. A past date is 0; the result is capped at 24
// hours. valid is false for an empty or malformed header.
func ParseRetryAfter(h string, now time.Time) (d time.Duration, valid bool) {
	h = strings.TrimSpace(h)
	if n, err := strconv.ParseUint(h, 10, 63); err == nil || errors.Is(err, strconv.ErrRange) {
		if err != nil || n > uint64(24*time.Hour/time.Second) {
			return 24 * time.Hour, true
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return min(max(t.Sub(now), 0), 24*time.Hour), true
	}
	return 0, false
}

// RefreshOn401 reports whether a 401 with these WWW-Authenticate values
// calls for a new token. It does unless a Bearer challenge names an error
// that a new token cannot fix (RFC 6750 §3.1: "insufficient_scope",
// "invalid_request"). Junk, other schemes, or no header at all: refresh.
func RefreshOn401(challenges []string) bool {
	for _, h := range challenges {
		for _, c := range parseChallenges(h) {
			if !strings.EqualFold(c.scheme, "Bearer") {
				continue
			}
			switch strings.ToLower(c.params["error"]) {
			case "insufficient_scope", "invalid_request":
				return false
			}
		}
	}
	return true
}

type challenge struct {
	scheme string
	params map[string]string
}

// maxChallengeBytes bounds the WWW-Authenticate text parsed.
const maxChallengeBytes = 4 << 10

// parseChallenges reads a WWW-Authenticate value (RFC 9110 §11.6.1):
// challenges separated by commas, each a scheme and auth-params, values as
// tokens or quoted strings. It is lenient: what it cannot read it skips.
func parseChallenges(h string) []challenge {
	if len(h) > maxChallengeBytes {
		h = h[:maxChallengeBytes]
	}
	var out []challenge
	var cur *challenge
	i := 0
	skipSpace := func() {
		for i < len(h) && (h[i] == ' ' || h[i] == '\t' || h[i] == ',') {
			i++
		}
	}
	token := func() string {
		start := i
		for i < len(h) && h[i] != ' ' && h[i] != '\t' && h[i] != ',' && h[i] != '=' && h[i] != '"' {
			i++
		}
		return h[start:i]
	}
	for {
		skipSpace()
		if i >= len(h) {
			return out
		}
		word := token()
		if word == "" { // a stray '=' or '"'
			i++
			continue
		}
		for i < len(h) && (h[i] == ' ' || h[i] == '\t') {
			i++
		}
		if i < len(h) && h[i] == '=' && cur != nil {
			i++
			for i < len(h) && (h[i] == ' ' || h[i] == '\t') {
				i++
			}
			cur.params[strings.ToLower(word)] = value(h, &i)
			continue
		}
		out = append(out, challenge{scheme: word, params: map[string]string{}})
		cur = &out[len(out)-1]
	}
}

// value reads a token or a quoted string at h[*i:].
func value(h string, i *int) string {
	if *i < len(h) && h[*i] == '"' {
		var b strings.Builder
		for *i++; *i < len(h); *i++ {
			switch c := h[*i]; c {
			case '\\':
				if *i+1 < len(h) {
					*i++
					b.WriteByte(h[*i])
				}
			case '"':
				*i++
				return b.String()
			default:
				b.WriteByte(c)
			}
		}
		return b.String()
	}
	start := *i
	for *i < len(h) && h[*i] != ',' && h[*i] != ' ' && h[*i] != '\t' {
		*i++
	}
	return h[start:*i]
}
