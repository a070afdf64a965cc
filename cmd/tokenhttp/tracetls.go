package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// With a client certificate, the library sends token requests through
// its own clone of the HTTP client's *http.Transport (it must set the
// certificate on it), so the traceTransport cannot wrap it. Instead,
// traceTLS gives that transport a DialTLSContext that does the TLS
// handshake itself, presenting the same certificate, and returns a
// connection that reads the plaintext HTTP/1.1 going through it: each
// request when it is written, each reply when it has been read whole.

// traceTLS makes token requests through tr, a transport that presents
// get's certificate, show in the trace when verbose.
func (t *tracer) traceTLS(tr *http.Transport, get func(*tls.CertificateRequestInfo) (*tls.Certificate, error)) {
	if !t.verbose {
		return
	}
	base := tr.TLSClientConfig
	tr.ForceAttemptHTTP2 = false // HTTP/1.1, which tracedConn reads
	tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		cfg := &tls.Config{}
		if base != nil {
			cfg = base.Clone()
		}
		cfg.GetClientCertificate = get
		cfg.NextProtos = []string{"http/1.1"}
		c, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &tracedConn{Conn: c, t: t}, nil
	}
}

// tracedConn traces the HTTP/1.1 token requests and replies that go
// through it. Write and Read run on the transport's two goroutines.
type tracedConn struct {
	net.Conn
	t *tracer

	mu      sync.Mutex // guards the fields below
	out, in []byte     // written and read bytes not yet traced
	req     *http.Request
	kind    kind
	sent    time.Time
	off     bool // gave up: what went through was not HTTP/1.1 as expected
}

func (c *tracedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if !c.off {
		c.out = append(c.out, p...)
		req, body, n, err := readWhole(c.out, func(br *bufio.Reader) (io.ReadCloser, *http.Request, *http.Response, error) {
			r, err := http.ReadRequest(br)
			if err != nil {
				return nil, nil, nil, err
			}
			return r.Body, r, nil, nil
		})
		c.settle(err, func() {
			c.out = c.out[n:]
			c.req, c.sent, c.kind = req.req, time.Now(), tokenRequest
			if req.req.Method == http.MethodGet {
				c.kind = discovery
			}
			c.t.request(req.req, body, c.kind)
		})
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *tracedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.off || c.req == nil || n == 0 {
		return n, err
	}
	c.in = append(c.in, p[:n]...)
	resp, body, used, perr := readWhole(c.in, func(br *bufio.Reader) (io.ReadCloser, *http.Request, *http.Response, error) {
		r, err := http.ReadResponse(br, c.req)
		if err != nil {
			return nil, nil, nil, err
		}
		return r.Body, nil, r, nil
	})
	c.settle(perr, func() {
		c.in = c.in[used:]
		c.req = nil
		c.t.reply(resp.resp, body, time.Since(c.sent), nil, c.kind)
	})
	return n, err
}

// settle runs done when a message was read whole, waits for more bytes
// when it was cut short, and stops tracing the connection otherwise.
func (c *tracedConn) settle(err error, done func()) {
	switch {
	case err == nil:
		done()
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		if len(c.out)+len(c.in) > 2*maxBodyBytes {
			c.off = true
		}
	default:
		c.off = true
	}
}

// parsed is a request or a reply read from a tracedConn's bytes.
type parsed struct {
	req  *http.Request
	resp *http.Response
}

// readWhole reads one message and its body from b with read; it returns
// how many bytes of b they took, or io.ErrUnexpectedEOF if b holds only
// part of them.
func readWhole(b []byte, read func(*bufio.Reader) (io.ReadCloser, *http.Request, *http.Response, error)) (parsed, []byte, int, error) {
	r := bytes.NewReader(b)
	br := bufio.NewReader(r)
	rc, req, resp, err := read(br)
	if err != nil {
		return parsed{}, nil, 0, err
	}
	body, err := io.ReadAll(io.LimitReader(rc, maxBodyBytes+1))
	if err != nil {
		return parsed{}, nil, 0, err
	}
	return parsed{req, resp}, body, len(b) - r.Len() - br.Buffered(), nil
}
