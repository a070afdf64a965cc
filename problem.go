package tokenhttp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/instrument"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/telemetry"
)

// statusClientClosedRequest is nginx's status for a client that left
// before the reply; net/http writes any 3-digit status.
const statusClientClosedRequest = 499

// rejection is how the middleware answers a request it cannot pass on.
type rejection struct {
	status     int
	errType    string        // error.type for telemetry: a code, never provider text
	detail     string        // written by us; "" writes no body
	retryAfter time.Duration // > 0: a Retry-After header
}

// Details of the replies. They say what happened in the gateway's words;
// nothing the token endpoint sent is ever copied into them.
const (
	detailRefused     = "The gateway could not get a credential for the upstream service: its token endpoint refused the gateway's credentials."
	detailRejected    = "The gateway could not get a credential for the upstream service: its token endpoint rejected the gateway's token request."
	detailUnavailable = "The gateway could not get a credential for the upstream service: its token endpoint is unavailable. Try again later."
	detailBreaker     = "The gateway could not get a credential for the upstream service: its token endpoint is failing, and the gateway has paused requests to it. Try again after Retry-After seconds."
	detailTimeout     = "The gateway could not get a credential for the upstream service in time."
	detailNoToken     = "The gateway could not get a credential for the upstream service: its token source returned none."
)

// defaultRetryAfter is the Retry-After of a 503 or 504 when neither the
// token endpoint nor the breaker says when to come back: the source tries
// the endpoint again on the next request, and the breaker opens (with a
// time of its own) if the endpoint keeps failing.
const defaultRetryAfter = time.Second

// classify maps why no token could be had to the reply: every 503 and
// 504 carries a Retry-After. ctx is the request's; err may be nil when
// the source returned no token and no error.
func classify(ctx context.Context, err error) rejection {
	rj := classifyError(ctx, err)
	if (rj.status == http.StatusServiceUnavailable || rj.status == http.StatusGatewayTimeout) && rj.retryAfter <= 0 {
		rj.retryAfter = defaultRetryAfter
	}
	return rj
}

// classifyError is classify but for the default Retry-After.
func classifyError(ctx context.Context, err error) rejection {
	if ctx.Err() == context.Canceled {
		return rejection{status: statusClientClosedRequest, errType: telemetry.ErrorCanceled}
	}
	if err == nil {
		return rejection{status: http.StatusInternalServerError, errType: telemetry.ErrorNoToken, detail: detailNoToken}
	}
	errType := instrument.ErrorType(err)
	var (
		open *source.BreakerOpenError
		te   *source.Error
	)
	switch {
	case errors.As(err, &open):
		return rejection{status: http.StatusServiceUnavailable, errType: errType, detail: detailBreaker,
			retryAfter: max(time.Until(open.Until), time.Second)}
	case errors.Is(err, source.ErrBreakerOpen):
		return rejection{status: http.StatusServiceUnavailable, errType: errType, detail: detailUnavailable}
	case errors.As(err, &te) && te.Temporary():
		return rejection{status: http.StatusServiceUnavailable, errType: errType, detail: detailUnavailable,
			retryAfter: te.RetryAfter}
	case te != nil && te.CredentialsRefused():
		return rejection{status: http.StatusBadGateway, errType: errType, detail: detailRefused}
	case te != nil: // a 404 from a wrong token URL, a scope or grant the endpoint does not take
		return rejection{status: http.StatusBadGateway, errType: errType, detail: detailRejected}
	case errType == telemetry.ErrorTimeout:
		return rejection{status: http.StatusGatewayTimeout, errType: errType, detail: detailTimeout}
	}
	return rejection{status: http.StatusServiceUnavailable, errType: errType, detail: detailUnavailable}
}

// problem is an RFC 9457 problem details object. With type "about:blank",
// the title is the status's reason phrase.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// reject records rj and answers it: a problem+json body when rj has a
// detail, and Retry-After in whole seconds, rounded up.
func (g *gateway) reject(w http.ResponseWriter, r *http.Request, rj rejection) {
	g.tel.GatewayRejection(r.Context(), rj.status, rj.errType)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if rj.detail == "" {
		w.WriteHeader(rj.status)
		return
	}
	body, err := json.Marshal(problem{Type: "about:blank", Title: http.StatusText(rj.status), Status: rj.status, Detail: rj.detail})
	if err != nil { // cannot happen: the fields are plain strings and an int
		body = []byte("{}")
	}
	body = append(body, '\n')
	h.Set("Content-Type", "application/problem+json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if rj.retryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((rj.retryAfter+time.Second-1)/time.Second), 10))
	}
	w.WriteHeader(rj.status)
	_, _ = w.Write(body)
}
