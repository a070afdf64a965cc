package retry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/tokenhttp/tokenhttp/internal/retry"
	"github.com/tokenhttp/tokenhttp/internal/testsupport"
	pretry "github.com/tokenhttp/tokenhttp/retry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fast is a Policy whose waits keep tests short.
var fast = pretry.Policy{MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond}

// roundTripperFunc is an http.RoundTripper double.
type roundTripperFunc = testsupport.RoundTripperFunc

// memClient calls h without sockets (see testsupport.MemClient).
func memClient(h http.Handler) *http.Client { return testsupport.MemClient(h) }

// reply is one scripted answer of a scripted handler.
type reply struct {
	status     int
	retryAfter string
	hijack     bool // write half a status line and close the connection
}

// script answers the n-th request with replies[n] (200 "ok" past the
// end), with the body "reply <n+1>", and records the request bodies.
type script struct {
	replies []reply
	mu      sync.Mutex
	bodies  [][]byte
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	n := len(s.bodies)
	s.bodies = append(s.bodies, body)
	s.mu.Unlock()
	rp := reply{status: http.StatusOK}
	if n < len(s.replies) {
		rp = s.replies[n]
	}
	if rp.hijack {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Le")
		buf.Flush()
		conn.Close()
		return
	}
	if rp.retryAfter != "" {
		w.Header().Set("Retry-After", rp.retryAfter)
	}
	w.WriteHeader(rp.status)
	fmt.Fprintf(w, "reply %d", n+1)
}

func (s *script) requests() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.bodies)
}

func post(t *testing.T, ctx context.Context, url string, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the returned body: %v", err)
	}
	return string(b)
}

// wantReply checks what Do returned: no error, and a reply of status and
// body after attempts attempts.
func wantReply(t *testing.T, resp *http.Response, gotAttempts int, err error, status int, body string, attempts int) {
	t.Helper()
	if err != nil {
		t.Fatalf("Do: got error %v, want the reply", err)
	}
	if got, want := resp.StatusCode, status; got != want {
		t.Errorf("status = %d, want %d", got, want)
	}
	if got, want := readBody(t, resp), body; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
	if got, want := gotAttempts, attempts; got != want {
		t.Errorf("attempts = %d, want %d", got, want)
	}
}

const reqBody = "grant_type=client_credentials&scope=a+b"

func TestDoStatuses(t *testing.T) {
	tests := []struct {
		name         string
		replies      []reply
		unsafe       bool
		wantAttempts int
		wantStatus   int
		wantBody     string
	}{
		{"503 then 200 is retried", []reply{{status: 503}}, false, 2, 200, "reply 2"},
		{"500 then 200 is retried", []reply{{status: 500}}, false, 2, 200, "reply 2"},
		{"502 504 then 200", []reply{{status: 502}, {status: 504}}, false, 3, 200, "reply 3"},
		{"429 without Retry-After is retried", []reply{{status: 429}}, false, 2, 200, "reply 2"},
		{"400 is final", []reply{{status: 400}}, false, 1, 400, "reply 1"},
		{"401 is final", []reply{{status: 401}}, false, 1, 401, "reply 1"},
		{"404 is final", []reply{{status: 404}}, false, 1, 404, "reply 1"},
		{"409 is final", []reply{{status: 409}}, false, 1, 409, "reply 1"},
		{"501 is final", []reply{{status: 501}}, false, 1, 501, "reply 1"},
		{"200 at once", nil, false, 1, 200, "reply 1"},
		{
			"exhausted retries return the last reply",
			[]reply{{status: 500}, {status: 502}, {status: 503}, {status: 500}},
			false, 3, 503, "reply 3",
		},
		{"unsafe: 500 is not retried", []reply{{status: 500}}, true, 1, 500, "reply 1"},
		{"unsafe: 502 is not retried", []reply{{status: 502}}, true, 1, 502, "reply 1"},
		{"unsafe: 504 is not retried", []reply{{status: 504}}, true, 1, 504, "reply 1"},
		{"unsafe: 503 is retried", []reply{{status: 503}}, true, 2, 200, "reply 2"},
		{"unsafe: 429 is retried", []reply{{status: 429}}, true, 2, 200, "reply 2"},
		{"unsafe: 400 is final", []reply{{status: 400}}, true, 1, 400, "reply 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := &script{replies: tt.replies}
			srv := httptest.NewServer(sc)
			defer srv.Close()

			resp, attempts, err := retry.Do(srv.Client(), fast, retry.Request{
				Req: post(t, context.Background(), srv.URL, reqBody), Unsafe: tt.unsafe,
			})
			wantReply(t, resp, attempts, err, tt.wantStatus, tt.wantBody, tt.wantAttempts)
			bodies := sc.requests()
			if got, want := len(bodies), tt.wantAttempts; got != want {
				t.Errorf("requests the server saw = %d, want %d", got, want)
			}
			for i, b := range bodies {
				if got, want := string(b), reqBody; got != want {
					t.Errorf("body of attempt %d: got %q, want %q", i+1, got, want)
				}
			}
		})
	}
}

func TestDoMaxAttempts(t *testing.T) {
	for _, n := range []int{1, 2, 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			sc := &script{replies: slices.Repeat([]reply{{status: 503}}, 10)}
			srv := httptest.NewServer(sc)
			defer srv.Close()
			p := fast
			p.MaxAttempts = n
			resp, attempts, err := retry.Do(srv.Client(), p, retry.Request{Req: post(t, context.Background(), srv.URL, reqBody)})
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			readBody(t, resp)
			if got, want := attempts, n; got != want {
				t.Errorf("attempts = %d, want %d", got, want)
			}
			if got, want := len(sc.requests()), n; got != want {
				t.Errorf("requests = %d, want %d", got, want)
			}
		})
	}
}

func TestDoRetryAfter(t *testing.T) {
	tests := []struct {
		name         string
		policy       pretry.Policy
		deadline     time.Duration // 0: none
		first        reply
		wantAttempts int
		wantStatus   int
		wantBody     string
		wantElapsed  time.Duration
	}{
		{
			name: "429 Retry-After 1 is waited", policy: fast,
			first:        reply{status: 429, retryAfter: "1"},
			wantAttempts: 2, wantStatus: 200, wantBody: "reply 2", wantElapsed: time.Second,
		},
		{
			name: "503 Retry-After 2 is waited", policy: fast,
			first:        reply{status: 503, retryAfter: "2"},
			wantAttempts: 2, wantStatus: 200, wantBody: "reply 2", wantElapsed: 2 * time.Second,
		},
		{
			name: "Retry-After as an HTTP date", policy: fast,
			// synctest's clock starts on a whole second.
			first:        reply{status: 429, retryAfter: "+3s"},
			wantAttempts: 2, wantStatus: 200, wantBody: "reply 2", wantElapsed: 3 * time.Second,
		},
		{
			name: "Retry-After 3600 is not waited", policy: fast,
			first:        reply{status: 429, retryAfter: "3600"},
			wantAttempts: 1, wantStatus: 429, wantBody: "reply 1", wantElapsed: 0,
		},
		{
			name: "Retry-After over MaxRetryAfter is not waited", policy: fast,
			first:        reply{status: 503, retryAfter: "6"},
			wantAttempts: 1, wantStatus: 503, wantBody: "reply 1", wantElapsed: 0,
		},
		{
			name: "a longer MaxRetryAfter is honored", policy: pretry.Policy{MinWait: time.Millisecond, MaxRetryAfter: 10 * time.Second},
			first:        reply{status: 503, retryAfter: "6"},
			wantAttempts: 2, wantStatus: 200, wantBody: "reply 2", wantElapsed: 6 * time.Second,
		},
		{
			name: "Retry-After past the deadline returns at once", policy: fast, deadline: 2 * time.Second,
			first:        reply{status: 429, retryAfter: "3"},
			wantAttempts: 1, wantStatus: 429, wantBody: "reply 1", wantElapsed: 0,
		},
		{
			name: "Retry-After within the deadline is waited", policy: fast, deadline: 5 * time.Second,
			first:        reply{status: 429, retryAfter: "3"},
			wantAttempts: 2, wantStatus: 200, wantBody: "reply 2", wantElapsed: 3 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				first := tt.first
				if first.retryAfter == "+3s" {
					first.retryAfter = time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat)
				}
				sc := &script{replies: []reply{first}}
				ctx := context.Background()
				if tt.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.deadline)
					defer cancel()
				}
				start := time.Now()
				resp, attempts, err := retry.Do(memClient(sc), tt.policy, retry.Request{Req: post(t, ctx, "http://token.test/token", reqBody)})
				elapsed := time.Since(start)
				wantReply(t, resp, attempts, err, tt.wantStatus, tt.wantBody, tt.wantAttempts)
				// In the bubble only waits move the clock: the elapsed
				// time is the total wait, to the nanosecond.
				if got, want := elapsed, tt.wantElapsed; got != want {
					t.Errorf("elapsed = %v, want %v", got, want)
				}
			})
		})
	}
}

// TestDoRetryAfterRealClock checks the absurd Retry-After over real
// sockets: the 429 comes back at once with its body.
func TestDoRetryAfterRealClock(t *testing.T) {
	sc := &script{replies: []reply{{status: 429, retryAfter: "3600"}}}
	srv := httptest.NewServer(sc)
	defer srv.Close()
	start := time.Now()
	resp, attempts, err := retry.Do(srv.Client(), pretry.Policy{}, retry.Request{Req: post(t, context.Background(), srv.URL, reqBody)})
	if elapsed := time.Since(start); elapsed >= time.Second {
		t.Errorf("elapsed: got %v, want under 1s", elapsed)
	}
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if got, want := resp.Header.Get("Retry-After"), "3600"; got != want {
		t.Errorf("Retry-After of the returned reply = %q, want %q", got, want)
	}
	if got, want := readBody(t, resp), "reply 1"; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
	if got, want := attempts, 1; got != want {
		t.Errorf("attempts = %d, want %d", got, want)
	}
}

// closedURL returns the URL of a loopback port nobody listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/token"
}

func TestDoNetworkError(t *testing.T) {
	for _, unsafe := range []bool{false, true} {
		t.Run(fmt.Sprintf("unsafe=%v", unsafe), func(t *testing.T) {
			var got []retry.Attempt
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			resp, attempts, err := retry.Do(&http.Client{Transport: tr}, fast, retry.Request{
				Req:     post(t, context.Background(), closedURL(t), reqBody),
				Unsafe:  unsafe,
				OnRetry: func(a retry.Attempt) { got = append(got, a) },
			})
			if err == nil {
				resp.Body.Close()
				t.Fatalf("Do: got status %d, want a network error", resp.StatusCode)
			}
			if resp != nil {
				t.Errorf("Do returned a response with the error %v", err)
			}
			var op *net.OpError
			if !errors.As(err, &op) {
				t.Errorf("error: got %v (%T), want a *net.OpError inside", err, err)
			}
			if got, want := attempts, pretry.DefaultMaxAttempts; got != want {
				t.Errorf("attempts = %d, want %d (a refused connection is retried)", got, want)
			}
			if got, want := len(got), pretry.DefaultMaxAttempts-1; got != want {
				t.Fatalf("OnRetry calls = %d, want %d", got, want)
			}
			for i, a := range got {
				if a.N != i+1 || a.Status != 0 || a.Err == nil {
					t.Errorf("OnRetry call %d: got {N:%d Status:%d Err:%v}, want {N:%d Status:0 Err:non-nil}", i, a.N, a.Status, a.Err, i+1)
				}
			}
		})
	}
}

func TestDoConnectionReset(t *testing.T) {
	tests := []struct {
		name         string
		unsafe       bool
		wantAttempts int
		wantErr      bool
	}{
		{"safe request is retried", false, 2, false},
		{"unsafe request is not retried", true, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := &script{replies: []reply{{hijack: true}}}
			srv := httptest.NewServer(sc)
			defer srv.Close()
			resp, attempts, err := retry.Do(srv.Client(), fast, retry.Request{
				Req: post(t, context.Background(), srv.URL, reqBody), Unsafe: tt.unsafe,
			})
			if tt.wantErr {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("Do: got status %d, want the reset as an error", resp.StatusCode)
				}
				if resp != nil {
					t.Errorf("Do returned a response with the error %v", err)
				}
			} else {
				if err != nil {
					t.Fatalf("Do: got error %v, want the retried reply", err)
				}
				if got, want := resp.StatusCode, 200; got != want {
					t.Errorf("status = %d, want %d", got, want)
				}
				if got, want := readBody(t, resp), "reply 2"; got != want {
					t.Errorf("body = %q, want %q", got, want)
				}
			}
			if got, want := attempts, tt.wantAttempts; got != want {
				t.Errorf("attempts = %d, want %d", got, want)
			}
			if got, want := len(sc.requests()), tt.wantAttempts; got != want {
				t.Errorf("requests the server saw = %d, want %d", got, want)
			}
		})
	}
}

func TestDoOnRetry(t *testing.T) {
	sc := &script{replies: []reply{{status: 500}, {status: 502}}}
	srv := httptest.NewServer(sc)
	defer srv.Close()
	p := pretry.Policy{MinWait: 2 * time.Millisecond, MaxWait: 20 * time.Millisecond}
	var got []retry.Attempt
	resp, attempts, err := retry.Do(srv.Client(), p, retry.Request{
		Req:     post(t, context.Background(), srv.URL, reqBody),
		OnRetry: func(a retry.Attempt) { got = append(got, a) },
	})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	readBody(t, resp)
	if got, want := attempts, 3; got != want {
		t.Errorf("attempts = %d, want %d", got, want)
	}
	want := []retry.Attempt{{N: 1, Status: 500}, {N: 2, Status: 502}}
	if len(got) != len(want) {
		t.Fatalf("OnRetry calls = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].N != want[i].N || got[i].Status != want[i].Status || got[i].Err != nil {
			t.Errorf("OnRetry call %d: got {N:%d Status:%d Err:%v}, want {N:%d Status:%d Err:<nil>}",
				i, got[i].N, got[i].Status, got[i].Err, want[i].N, want[i].Status)
		}
		if w := got[i].Wait; w < p.MinWait || w > p.MaxWait {
			t.Errorf("OnRetry call %d: wait %v, want within [%v, %v]", i, w, p.MinWait, p.MaxWait)
		}
	}
}

// TestDoBodyResent checks the body on every attempt, with a body large
// enough to need more than one read.
func TestDoBodyResent(t *testing.T) {
	body := strings.Repeat("grant_type=client_credentials&x=0123456789&", 2000)
	sc := &script{replies: []reply{{status: 503}, {status: 500}}}
	srv := httptest.NewServer(sc)
	defer srv.Close()
	resp, attempts, err := retry.Do(srv.Client(), fast, retry.Request{Req: post(t, context.Background(), srv.URL, body)})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	readBody(t, resp)
	if got, want := attempts, 3; got != want {
		t.Errorf("attempts = %d, want %d", got, want)
	}
	for i, b := range sc.requests() {
		if !bytes.Equal(b, []byte(body)) {
			t.Errorf("attempt %d: got a body of %d bytes, want the %d bytes sent", i+1, len(b), len(body))
		}
	}
}

// TestDoCancelledContext checks that a cancelled caller is not retried
// and gets its context's error.
func TestDoCancelledContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var calls atomic.Int32
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(503)
		})
		go func() {
			time.Sleep(time.Second) // during the 2 s wait
			cancel()
		}()
		resp, _, err := retry.Do(memClient(h), fast, retry.Request{Req: post(t, ctx, "http://token.test/token", reqBody)})
		if err == nil {
			resp.Body.Close()
			t.Fatalf("Do: got status %d, want the context's error", resp.StatusCode)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error: got %v, want context.Canceled", err)
		}
		if got, want := calls.Load(), int32(1); got != want {
			t.Errorf("requests = %d, want %d", got, want)
		}
	})
}

// closeTracker is a body that records Close.
type closeTracker struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeTracker) Close() error { c.closed.Store(true); return nil }

// TestDoReplyAfterCancel covers a reply that arrives as the caller's
// context ends: Do must return the reply or an error, not both with the
// body left open (the caller closes nothing when it gets an error).
func TestDoReplyAfterCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	body := &closeTracker{Reader: strings.NewReader("busy")}
	client := &http.Client{Transport: roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		cancel() // the caller leaves while the reply is on its way
		return &http.Response{
			StatusCode: http.StatusServiceUnavailable, Header: http.Header{},
			Body: body, Request: r, ProtoMajor: 1, ProtoMinor: 1,
		}, nil
	})}
	resp, _, err := retry.Do(client, fast, retry.Request{Req: post(t, ctx, "http://token.test/token", reqBody)})
	switch {
	case err == nil && resp == nil:
		t.Fatal("Do returned neither a response nor an error")
	case err == nil:
		resp.Body.Close()
	case resp != nil:
		t.Errorf("Do returned both a response (body closed: %v) and the error %v; a caller that sees the error leaks the body",
			body.closed.Load(), err)
		resp.Body.Close()
	case !body.closed.Load():
		t.Errorf("Do returned the error %v and left the reply's body open", err)
	}
}

func TestBackoff(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		lo := time.Duration(r.Int64N(int64(2 * time.Second)))
		if r.IntN(10) == 0 {
			lo = 0
		}
		hi := lo + time.Duration(r.Int64N(int64(time.Minute)))
		n := 1 + r.IntN(80)
		got := retry.Backoff(lo, hi, n)
		if got < lo || got > hi {
			t.Fatalf("Backoff(%v, %v, %d) = %v, want within [%v, %v]", lo, hi, n, got, lo, hi)
		}
		if lo > 0 && n < 20 {
			if ceil := lo << (n - 1); got > ceil && got > lo {
				t.Fatalf("Backoff(%v, %v, %d) = %v, want at most min·2^(n-1) = %v", lo, hi, n, got, ceil)
			}
		}
	}
	t.Run("extreme inputs", func(t *testing.T) {
		for _, c := range []struct {
			lo, hi time.Duration
			n      int
		}{
			{time.Hour, 24 * time.Hour, 40},
			{time.Duration(1<<62 - 1), time.Duration(1<<63 - 1), 3},
			{1, time.Duration(1<<63 - 1), 63},
			{time.Second, time.Second, 5},
			{0, 0, 1},
		} {
			if got := retry.Backoff(c.lo, c.hi, c.n); got < c.lo || got > c.hi {
				t.Errorf("Backoff(%v, %v, %d) = %v, want within [%v, %v]", c.lo, c.hi, c.n, got, c.lo, c.hi)
			}
		}
	})
	t.Run("n below 1", func(t *testing.T) {
		for _, n := range []int{0, -1, -100} {
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Errorf("Backoff(100ms, 2s, %d) panicked: %v", n, p)
					}
				}()
				if got := retry.Backoff(100*time.Millisecond, 2*time.Second, n); got < 100*time.Millisecond || got > 2*time.Second {
					t.Errorf("Backoff(100ms, 2s, %d) = %v, want within [100ms, 2s]", n, got)
				}
			}()
		}
	})
	t.Run("jitter", func(t *testing.T) {
		seen := map[time.Duration]bool{}
		for range 100 {
			seen[retry.Backoff(time.Millisecond, time.Second, 8)] = true
		}
		if len(seen) < 10 {
			t.Errorf("100 waits took %d values, want jitter", len(seen))
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	tests := []struct {
		in        string
		want      time.Duration
		wantValid bool
	}{
		{"0", 0, true},
		{"1", time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"3600", time.Hour, true},
		{"86400", 24 * time.Hour, true},
		{"86401", 24 * time.Hour, true},
		{"9223372036", 24 * time.Hour, true},
		{"99999999999999999999", 24 * time.Hour, true}, // over 2^64: still a number of seconds
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
		{now.Add(90 * time.Second).Format(time.RFC850), 90 * time.Second, true},
		{now.Add(5 * time.Second).Format(time.ANSIC), 5 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"Thu, 01 Jan 1970 00:00:00 GMT", 0, true},
		{"", 0, false},
		{"   ", 0, false},
		{"soon", 0, false},
		{"-1", 0, false},
		{"+5", 0, false},
		{"1.5", 0, false},
		{"1e3", 0, false},
		{"5s", 0, false},
		{"0x10", 0, false},
		{"Fri, 32 Dec 2025 00:00:00 GMT", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, valid := retry.ParseRetryAfter(tt.in, now)
			if got != tt.want || valid != tt.wantValid {
				t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, valid, tt.want, tt.wantValid)
			}
		})
	}
}

func TestReplayable(t *testing.T) {
	withBody, _ := http.NewRequest(http.MethodPost, "http://x.test/", strings.NewReader("a"))
	noGetBody, _ := http.NewRequest(http.MethodPost, "http://x.test/", io.NopCloser(strings.NewReader("a")))
	noBody, _ := http.NewRequest(http.MethodGet, "http://x.test/", nil)
	tests := []struct {
		name string
		req  *http.Request
		want bool
	}{
		{"GetBody", withBody, true},
		{"no GetBody", noGetBody, false},
		{"no body", noBody, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retry.Replayable(tt.req); got != tt.want {
				t.Errorf("Replayable = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestDoWritesNothingToStderr runs failing Do calls in a child process
// and reads its stderr: retryablehttp's default logger holds the stderr
// of the process start, so swapping os.Stderr in this process would not
// see it.
func TestDoWritesNothingToStderr(t *testing.T) {
	if os.Getenv("RETRY_TEST_STDERR_CHILD") == "1" {
		failingCalls(t)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDoWritesNothingToStderr$", "-test.count=1")
	cmd.Env = append(os.Environ(), "RETRY_TEST_STDERR_CHILD=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.Bytes(), stderr.Bytes())
	}
	if !strings.Contains(stdout.String(), "PASS") {
		t.Fatalf("child did not pass:\n%s", stdout.Bytes())
	}
	if stderr.Len() != 0 {
		t.Errorf("Do wrote to stderr:\n%s", stderr.Bytes())
	}
}

func failingCalls(t *testing.T) {
	sc := &script{replies: slices.Repeat([]reply{{status: 500}}, 10)}
	srv := httptest.NewServer(sc)
	defer srv.Close()
	for _, url := range []string{srv.URL, closedURL(t)} {
		resp, _, err := retry.Do(srv.Client(), fast, retry.Request{Req: post(t, context.Background(), url, reqBody)})
		if err == nil {
			resp.Body.Close()
		}
	}
	sc2 := &script{replies: []reply{{status: 429, retryAfter: "3600"}, {hijack: true}}}
	srv2 := httptest.NewServer(sc2)
	defer srv2.Close()
	for range 2 {
		resp, _, err := retry.Do(srv2.Client(), fast, retry.Request{Req: post(t, context.Background(), srv2.URL, reqBody), Unsafe: true})
		if err == nil {
			resp.Body.Close()
		}
	}
}

// TestDoPerAttempt: with PerAttempt every retry sends the body GetBody
// builds anew (a fresh assertion); a GetBody error ends Do before that
// attempt is sent.
func TestDoPerAttempt(t *testing.T) {
	sc := &script{replies: []reply{{status: 503}, {status: 500}}}
	srv := httptest.NewServer(sc)
	defer srv.Close()
	req := post(t, context.Background(), srv.URL, "a=0")
	var n atomic.Int32
	req.GetBody = func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(fmt.Sprintf("a=%d", n.Add(1)))), nil
	}
	resp, attempts, err := retry.Do(srv.Client(), fast, retry.Request{Req: req, PerAttempt: true})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	readBody(t, resp)
	got := sc.requests()
	if attempts != 3 || len(got) != 3 || string(got[0]) != "a=0" || string(got[1]) != "a=1" || string(got[2]) != "a=2" {
		t.Fatalf("attempts %d, bodies %q", attempts, got)
	}

	sc2 := &script{replies: []reply{{status: 503}}}
	srv2 := httptest.NewServer(sc2)
	defer srv2.Close()
	req = post(t, context.Background(), srv2.URL, "a=0")
	boom := errors.New("assertion unavailable")
	req.GetBody = func() (io.ReadCloser, error) { return nil, boom }
	_, _, err = retry.Do(srv2.Client(), fast, retry.Request{Req: req, PerAttempt: true})
	if !errors.Is(err, boom) || len(sc2.requests()) != 1 {
		t.Fatalf("Do: %v after %d requests, want GetBody's error after 1", err, len(sc2.requests()))
	}
}
