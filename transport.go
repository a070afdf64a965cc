package tokenhttp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/tokenhttp/tokenhttp/internal/instrument"
	"github.com/tokenhttp/tokenhttp/internal/retry"
	"github.com/tokenhttp/tokenhttp/internal/safehttp"
	"github.com/tokenhttp/tokenhttp/internal/tokenuse"
	"github.com/tokenhttp/tokenhttp/source"
)

// Transport is an http.RoundTripper that sets the Authorization of each
// request to a token from its TokenSource.
//
// When the API answers 401 with a challenge a new token can answer,
// Transport drops exactly that token (source.Invalidator), gets another
// and sends the request once more if its body can be replayed (GetBody, or
// no body). If that gets a 401 too, it tells the source
// (source.RenewalRejecter), so that an API that rejects every token does
// not force a renewal per call, and returns that 401.
//
// Transport is safe for concurrent use. It never modifies the request it
// is given (it sends a copy with its own Header), closes the request body
// on every path, and returns either a response or an error.
//
// A token goes only to its origin: a redirect to another scheme, host or
// port is sent without it, and a request over cleartext http to a host
// that is not loopback fails unless WithInsecureHTTP is given.
type Transport struct {
	src      source.TokenSource
	inv      source.Invalidator     // src's, nil if it cannot invalidate
	lim      source.RenewalRejecter // src's, nil if it does not bound renewals
	base     http.RoundTripper
	insecure bool
	tel      *instrument.Instruments

	hdr  headerCache
	fapi bool // src asks for an x-fapi-interaction-id on each call
}

var _ http.RoundTripper = (*Transport)(nil)

// header is a token's Authorization value, built once per token.
type header struct {
	tok  *source.Token
	vals []string // len 1, cap 1: appends copy; nobody writes it
}

// headerCache holds the header of the last token seen. With several
// sources in turn it changes often; it is only a cache, keyed by the
// token's identity.
type headerCache struct{ p atomic.Pointer[header] }

// vals returns the Authorization values for tok.
func (c *headerCache) vals(tok *source.Token) []string {
	h := c.p.Load()
	if h == nil || h.tok != tok {
		h = &header{tok: tok, vals: []string{tok.HeaderValue()}}
		c.p.Store(h)
	}
	return h.vals
}

// NewTransport returns a Transport that takes tokens from src. With no
// WithBase and a src with a client certificate (a source.Config with
// ClientCertificate), the base is a clone of http.DefaultTransport with
// src's TLSClientConfig, so API calls present the certificate the tokens
// are bound to (RFC 8705); with a src whose FAPIInteractionID method
// returns true (source.OpenFinanceBrasil), each request that has no
// x-fapi-interaction-id gets a fresh one (a UUID). If src
// implements source.Invalidator (the sources of source.New do), a 401
// drops exactly the rejected token. It panics if src is nil.
func NewTransport(src source.TokenSource, opts ...Option) *Transport {
	if src == nil {
		panic("tokenhttp: NewTransport needs a TokenSource, got nil")
	}
	o := newOptions(opts)
	if cs, ok := src.(certSource); ok && o.defaultBase {
		if tc := cs.TLSClientConfig(); tc != nil {
			b := http.DefaultTransport.(*http.Transport).Clone()
			b.TLSClientConfig = tc
			o.base = b
		}
	}
	t := &Transport{src: src, base: o.base, insecure: o.insecure, tel: instrument.New(o.tel)}
	if f, ok := src.(fapiSource); ok {
		t.fapi = f.FAPIInteractionID()
	}
	t.inv, _ = src.(source.Invalidator)
	t.lim, _ = src.(source.RenewalRejecter)
	return t
}

// certSource is a source with a client certificate (mTLS, RFC 8705):
// *source.CachedSource. With no WithBase, a Transport over it presents the
// certificate on API calls too, as certificate-bound tokens require: its
// base is a clone of http.DefaultTransport with TLSClientConfig.
type certSource interface {
	TLSClientConfig() *tls.Config
}

// fapiHeader is source.FAPIInteractionIDHeader, canonical.
var fapiHeader = http.CanonicalHeaderKey(source.FAPIInteractionIDHeader)

// fapiSource is a source whose API calls carry a fresh
// x-fapi-interaction-id (source.OpenFinanceBrasil's).
type fapiSource interface {
	FAPIInteractionID() bool
}

// NewClient returns an *http.Client whose Transport is NewTransport(src,
// opts...).
func NewClient(src source.TokenSource, opts ...Option) *http.Client {
	return &http.Client{Transport: NewTransport(src, opts...)}
}

// RoundTrip sends req with a token. See Transport for the rules.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		closeBody(req)
		return nil, errors.New("tokenhttp: the request has no URL")
	}
	if req.Response != nil {
		if first := firstRequest(req); first == nil || first.URL == nil || !sameOrigin(req.URL, first.URL) {
			// A redirect to another origin, or one whose origin cannot be
			// told: it gets no token.
			return t.base.RoundTrip(req)
		}
	}
	if req.URL.Scheme != "https" && !t.insecure && !safehttp.IsLoopback(req.URL.Hostname()) {
		closeBody(req)
		return nil, fmt.Errorf("tokenhttp: refusing to send a token over cleartext %s to %s; use https, or WithInsecureHTTP if the network is trusted", req.URL.Scheme, req.URL.Host)
	}
	tok, err := t.src.Token(req.Context())
	err = tokenuse.Check(tok, err)
	if err != nil {
		closeBody(req)
		return nil, fmt.Errorf("tokenhttp: no token for the request to %s: %w", req.URL.Host, err)
	}
	r2 := t.withToken(req, tok)
	resp, err := t.send(r2)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !retry.RefreshOn401(resp.Header.Values("Www-Authenticate")) {
		return resp, err
	}
	if t.inv != nil {
		t.inv.Invalidate(tok) // even when this request cannot be retried
	}
	if !retry.Replayable(req) {
		return resp, nil
	}
	return t.retryOnce(req, tok, resp)
}

// send calls the base and checks what it returned: a response whose Body
// is not nil, or an error. (A response whose Request the base left nil
// stays so: a redirect after it cannot be traced to its origin and gets no
// token.)
func (t *Transport) send(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp == nil {
		return nil, errors.New("tokenhttp: the base RoundTripper returned neither a response nor an error")
	}
	if resp.Body == nil {
		cp := *resp // the base's response may be shared: write a copy
		cp.Body = http.NoBody
		resp = &cp
	}
	return resp, nil
}

// retryOnce handles a 401 to a replayable request, whose token was
// dropped: it gets a new token and sends req once more. When no other token
// can be had, the 401 is returned as it came.
func (t *Transport) retryOnce(req *http.Request, tok *source.Token, resp *http.Response) (*http.Response, error) {
	fresh, err := t.src.Token(req.Context())
	if err != nil || fresh == nil || fresh == tok || fresh.HeaderValue() == tok.HeaderValue() {
		return resp, nil
	}
	r2 := req
	if req.Body != nil && req.Body != http.NoBody {
		body, err := req.GetBody()
		if err != nil {
			return resp, nil
		}
		r2 = shallowCopy(req)
		r2.Body = body
	}
	drain(resp.Body)
	t.tel.UnauthorizedRetry(req.Context())
	resp, err = t.send(t.withToken(r2, fresh))
	if err == nil && resp.StatusCode == http.StatusUnauthorized && t.lim != nil &&
		retry.RefreshOn401(resp.Header.Values("Www-Authenticate")) {
		t.lim.RejectedAfterRenewal(fresh) // the new token was rejected too
	}
	return resp, err
}

// withToken returns a shallow copy of req with its own Header carrying tok.
func (t *Transport) withToken(req *http.Request, tok *source.Token) *http.Request {
	r2 := shallowCopy(req)
	hdr := copyWithout(req.Header, len(req.Header)+1) // also a hand-built "authorization"
	hdr["Authorization"] = t.hdr.vals(tok)
	if t.fapi && len(hdr[fapiHeader]) == 0 {
		hdr[fapiHeader] = []string{uuid.NewString()}
	}
	r2.Header = hdr
	return r2
}

// shallowCopy copies req's fields; the Header map is still req's.
func shallowCopy(req *http.Request) *http.Request {
	r2 := new(http.Request)
	*r2 = *req
	return r2
}

// firstRequest walks a redirect chain back to the request the caller
// made; nil when the chain is broken (a base that left Response.Request
// unset), so that the origin is unknown and no token goes.
func firstRequest(req *http.Request) *http.Request {
	for req.Response != nil {
		if req.Response.Request == nil {
			return nil
		}
		req = req.Response.Request
	}
	return req
}

// sameOrigin compares scheme, host and port (default ports made explicit).
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) &&
		strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// drain reads a little of a body we drop, so the connection can be reused.
func drain(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, 4<<10)
	body.Close()
}

// CloseIdleConnections closes the idle connections of the base, if it has
// such a method (http.Client.CloseIdleConnections calls it): those of the
// base a Transport over a source with a client certificate made itself,
// say.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
