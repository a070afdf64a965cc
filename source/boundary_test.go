package source_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/internal/safehttp"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// Bad input at every boundary of a token source: replies whose token
// cannot be a header, slowloris endpoints, invalid UTF-8, duplicate JSON
// keys, absurd Retry-After values, WWW-Authenticate junk, oversized and
// compressed replies, and replies that are not a JSON object. Each must
// end in a clear error, with nothing leaked and nothing left hanging.

// bdSecret is planted in every token a test refuses: it must never appear
// in an error.
const bdSecret = "tok-SECRET-7Hq2"

// bdReply serves one fixed token reply: status 200, application/json.
func bdReply(t *testing.T, body string) *httptest.Server {
	return newServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	})
}

// bdClient is a tokenhttp client over src with a Transport of its own.
func bdClient(t *testing.T, src source.TokenSource) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return tokenhttp.NewClient(src, tokenhttp.WithBase(tr))
}

// bdJSON marshals v, failing t on error.
func bdJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	return string(b)
}

// TestBoundaryReplyUnsafeHeaderToken: a token that cannot be sent as a
// header (it would break the request or inject another header) is refused
// with a *source.Error that names the problem without showing the token,
// and through a tokenhttp client the API is never called.
func TestBoundaryReplyUnsafeHeaderToken(t *testing.T) {
	headerValue := &source.Provider{Name: "custom-header", Reply: source.ReplyFields{HeaderValue: "Authorization"}}
	tests := []struct {
		name     string
		provider *source.Provider
		field    string // reply field holding value
		value    string // marshalled as a JSON string
		raw      string // if set, the body as it is (for bytes JSON cannot carry)
		wantText string // the problem the error names; "" means "cannot be sent in a header"
	}{
		{name: "access_token CR LF", field: "access_token", value: bdSecret + "\r\nX-Injected: 1"},
		{name: "access_token LF", field: "access_token", value: bdSecret + "\nX-Injected: 1"},
		{name: "access_token CR", field: "access_token", value: bdSecret + "\rX-Injected: 1"},
		{name: "access_token NUL", field: "access_token", value: bdSecret + "\x00evil"},
		{name: "access_token space", field: "access_token", value: bdSecret + " evil"},
		{name: "access_token tab", field: "access_token", value: bdSecret + "\tevil"},
		{name: "access_token leading space", field: "access_token", value: " " + bdSecret},
		{name: "access_token DEL", field: "access_token", value: bdSecret + "\x7f"},
		{name: "access_token non-ASCII", field: "access_token", value: bdSecret + "é"},
		{name: "access_token invalid UTF-8", raw: `{"access_token":"` + bdSecret + "\xff\xfe" + `","expires_in":3600}`},
		{name: "Authorization CR LF", provider: headerValue, field: "Authorization", value: "VCSchema " + bdSecret + "\r\nX-Injected: 1"},
		{name: "Authorization LF", provider: headerValue, field: "Authorization", value: "VCSchema " + bdSecret + "\nX-Injected: 1"},
		{name: "Authorization NUL", provider: headerValue, field: "Authorization", value: "VCSchema " + bdSecret + "\x00"},
		{name: "Authorization non-ASCII", provider: headerValue, field: "Authorization", value: "VCSchema " + bdSecret + "ü"},
		{name: "Authorization trailing CR LF", provider: headerValue, field: "Authorization", value: "VCSchema " + bdSecret + "\r\n", wantText: "not of the form"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			body := tt.raw
			if body == "" {
				body = bdJSON(t, map[string]any{tt.field: tt.value, "token_type": "bearer", "expires_in": 3600})
			}
			ts := bdReply(t, body)
			var apiHits atomic.Int32
			api := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				apiHits.Add(1)
				if strings.Contains(r.Header.Get("X-Injected"), "1") {
					t.Errorf("the API got an injected header")
				}
			})
			cfg := standardConfig(ts.URL)
			cfg.Provider = tt.provider

			// Straight from the source.
			tok, err := fetchToken(t, cfg)
			if err == nil {
				t.Fatalf("Token: got a token (header %q), want an error", tok.HeaderValue())
			}
			te := tokenError(t, err)
			if got, want := te.Code, source.CodeServerError; got != want {
				t.Errorf("Code = %q, want %q", got, want)
			}
			want := tt.wantText
			if want == "" {
				want = "cannot be sent in a header"
			}
			if got := err.Error(); !strings.Contains(got, want) {
				t.Errorf("error text: got %q, want it to name the problem (%q)", got, want)
			}
			for _, s := range []string{err.Error(), te.Description, fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", te)} {
				if strings.Contains(s, bdSecret) || strings.Contains(s, "X-Injected") {
					t.Errorf("error shows the token: %s", s)
				}
			}

			// Through a tokenhttp client: no request reaches the API.
			client := bdClient(t, newSource(t, cfg))
			resp, err := client.Get(api.URL + "/v1/things")
			if err == nil {
				resp.Body.Close()
				t.Fatalf("client.Get: got HTTP %d, want an error", resp.StatusCode)
			}
			tokenError(t, err)
			if strings.Contains(err.Error(), bdSecret) {
				t.Errorf("client error shows the token: %v", err)
			}
			if got, want := apiHits.Load(), int32(0); got != want {
				t.Errorf("API requests = %d, want %d", got, want)
			}
		})
	}
}

// slowloris is a token endpoint that never finishes its reply. Its
// handlers end when the client leaves or when the test ends.
type slowloris struct {
	srv  *httptest.Server
	stop chan struct{}
	wg   sync.WaitGroup // hijacked connections' handlers
}

// bdSlowloris starts a slowloris endpoint in mode:
//
//	"trickle body"     200 and headers, then one body byte per tick, forever
//	"stall after headers" 200 and headers, then nothing
//	"trickle headers"  a status line, then one header byte per tick, forever
//	"silent"           reads the request, never writes a byte
func bdSlowloris(t *testing.T, mode string, tick time.Duration) *slowloris {
	t.Helper()
	s := &slowloris{stop: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch mode {
		case "trickle body", "stall after headers":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			body := []byte(`{"access_token":"` + bdSecret)
			for i := 0; ; i++ {
				if mode == "trickle body" {
					_, _ = w.Write(body[i%len(body) : i%len(body)+1])
				}
				http.NewResponseController(w).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-s.stop:
					return
				case <-time.After(tick):
				}
			}
		case "trickle headers", "silent":
			s.wg.Add(1)
			defer s.wg.Done()
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			defer conn.Close()
			s.wg.Add(1)
			go func() { // notice the client leaving: a read returns
				defer s.wg.Done()
				_, _ = io.Copy(io.Discard, buf)
				conn.Close()
			}()
			partial := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: "
			if mode == "trickle headers" {
				if _, err := conn.Write([]byte(partial)); err != nil {
					return
				}
			}
			for {
				select {
				case <-s.stop:
					return
				case <-time.After(tick):
				}
				if mode == "trickle headers" {
					if _, err := conn.Write([]byte("a")); err != nil {
						return // the client left
					}
				}
			}
		}
	}))
	t.Cleanup(func() {
		close(s.stop)
		s.srv.Close()
		s.wg.Wait()
	})
	return s
}

// TestSlowlorisTokenEndpoint: an endpoint that sends its reply one byte at
// a time, or never finishes its headers, cannot hold a fetch past
// Config.FetchTimeout; a caller with a shorter deadline leaves at its
// deadline; and no goroutine outlives the test.
func TestSlowlorisTokenEndpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("seconds of real time")
	}
	const (
		fetchTimeout = time.Second
		callerWait   = 200 * time.Millisecond
		slack        = 600 * time.Millisecond // scheduling under -race on 2 cores
	)
	for _, mode := range []string{"trickle body", "stall after headers", "trickle headers", "silent"} {
		t.Run(mode, func(t *testing.T) {
			leakCheck(t)
			sl := bdSlowloris(t, mode, 200*time.Millisecond)
			cfg := standardConfig(sl.srv.URL)
			cfg.FetchTimeout = fetchTimeout
			src := newSource(t, cfg)

			// A caller with a shorter deadline than the fetch's leaves at it.
			ctx, cancel := context.WithTimeout(context.Background(), callerWait)
			start := time.Now()
			tok, err := src.Token(ctx)
			elapsed := time.Since(start)
			cancel()
			if err == nil {
				t.Fatalf("short caller: got a token (%v) from a slowloris endpoint", tok)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("short caller: got %v, want its own context.DeadlineExceeded", err)
			}
			if elapsed < callerWait-20*time.Millisecond || elapsed > callerWait+slack {
				t.Errorf("short caller: returned after %v, want about %v", elapsed, callerWait)
			}

			// A patient caller joins the same fetch, which ends at
			// FetchTimeout (counted from its start, with the first call).
			done := make(chan error, 1)
			go func() {
				_, err := callToken(src)
				done <- err
			}()
			select {
			case err := <-done:
				total := time.Since(start)
				if total > fetchTimeout+slack {
					t.Errorf("patient caller: the fetch ended %v after it began, want within FetchTimeout %v", total, fetchTimeout)
				}
				if err == nil {
					t.Fatalf("patient caller: got a token from a slowloris endpoint")
				}
				var fe *source.FetchError
				if !errors.As(err, &fe) {
					t.Errorf("patient caller: got %v (%T), want a *source.FetchError", err, err)
				}
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("patient caller: got %v, want the fetch timeout (context.DeadlineExceeded)", err)
				}
				if strings.Contains(err.Error(), bdSecret) || strings.Contains(err.Error(), sourcetest.DefaultClientSecret) {
					t.Errorf("patient caller: the error shows a secret: %v", err)
				}
			case <-time.After(fetchTimeout + 5*time.Second):
				t.Fatalf("patient caller: still waiting %v after the fetch began; FetchTimeout does not bound a slowloris", time.Since(start))
			}
		})
	}
}

// TestBoundaryInvalidUTF8Description: whatever bytes an error reply
// carries, the *source.Error's text fields are valid UTF-8, bounded, and
// free of control characters.
func TestBoundaryInvalidUTF8Description(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		wantCode    string
		wantWords   []string // words of the description that must survive
	}{
		{"RFC 6749 description with invalid bytes", 400, "application/json",
			`{"error":"invalid_request","error_description":"bad ` + "\xff\xfe" + ` value"}`, source.CodeInvalidRequest, []string{"bad", "value"}},
		{"RFC 6749 lone surrogate escape", 400, "application/json",
			`{"error":"invalid_grant","error_description":"left \ud800 right"}`, source.CodeInvalidGrant, []string{"left", "right"}},
		{"invalid bytes in the error code", 400, "application/json",
			`{"error":"inv` + "\xc3\x28" + `alid","error_description":"d","error_uri":"https://x.example/` + "\xff" + `"}`, source.CodeInvalidRequest, nil},
		{"problem+json detail", 401, "application/problem+json",
			`{"type":"about:blank","title":"invalid_grant","status":401,"detail":"no ` + "\xed\xa0\x80" + ` way"}`, source.CodeInvalidGrant, []string{"no", "way"}},
		{"SerproID msg", 412, "application/json",
			`{"code":"CAMPO_OBRIGATORIO","msg":"campo ` + "\xe9" + ` ausente"}`, source.CodeInvalidRequest, []string{"campo", "ausente"}},
		{"plain text", 500, "text/plain", "\xff\xfe\xfd maintenance \x00\x1b[31m", source.CodeServerError, []string{"maintenance"}},
		{"HTML", 502, "text/html", "<html><body>\xc3\x28 Bad Gateway</body></html>", source.CodeServerError, []string{"Bad", "Gateway"}},
		{"multi-byte runes past the bound", 400, "application/json",
			`{"error":"invalid_request","error_description":"` + strings.Repeat("é", 400) + `"}`, source.CodeInvalidRequest, nil},
		{"only invalid bytes", 400, "text/plain", strings.Repeat("\xff", 2000), source.CodeInvalidRequest, nil},
		{"invalid bytes in a 200 without a token", 200, "application/json",
			`{"error":"invalid_scope","error_description":"scope ` + "\xf0\x9f" + `"}`, source.CodeInvalidScope, []string{"scope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			ts := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			})
			cfg := standardConfig(ts.URL)
			cfg.Retry.MaxAttempts = 1
			_, err := fetchToken(t, cfg)
			te := tokenError(t, err)
			if got, want := te.Code, tt.wantCode; got != want {
				t.Errorf("Code = %q, want %q", got, want)
			}
			fields := map[string]string{"Description": te.Description, "ProviderCode": te.ProviderCode,
				"URI": te.URI, "Error()": err.Error()}
			for name, s := range fields {
				if !utf8.ValidString(s) {
					t.Errorf("%s is not valid UTF-8: %q", name, s)
				}
				if strings.ContainsRune(s, utf8.RuneError) && name != "Error()" {
					t.Errorf("%s keeps a replacement character: %q", name, s)
				}
				for _, r := range s {
					if r < ' ' || r == 0x7f {
						t.Errorf("%s has control character %U: %q", name, r, s)
						break
					}
				}
			}
			if got, max := len(te.Description), 256+len("…"); got > max {
				t.Errorf("Description: got %d bytes, want at most %d", got, max)
			}
			for _, w := range tt.wantWords {
				if !strings.Contains(te.Description, w) {
					t.Errorf("Description: got %q, want it to keep %q", te.Description, w)
				}
			}
		})
	}
}

// TestBoundaryReplyDuplicateKeys documents what a reply with a repeated
// key does: encoding/json keeps the last value of each key, and the
// header check applies to that value, so the token checked is the token
// sent. Keys are matched exactly (a map is decoded, not a struct):
// "ACCESS_TOKEN" is another field, kept in Extra.
func TestBoundaryReplyDuplicateKeys(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		want      string        // the access token; "" means an error
		wantLife  time.Duration // approximate expiry from now; 0: not checked
		wantExtra string        // a key that must land in Extra
	}{
		{name: "last access_token wins", body: `{"access_token":"first","access_token":"second","expires_in":3600}`, want: "second"},
		{name: "unsafe first, safe last", body: `{"access_token":"bad\r\nX-Injected: 1","access_token":"good","expires_in":3600}`, want: "good"},
		{name: "safe first, unsafe last", body: `{"access_token":"good","access_token":"` + bdSecret + `\r\nX-Injected: 1","expires_in":3600}`},
		{name: "token then null", body: `{"access_token":"` + bdSecret + `","access_token":null}`},
		{name: "token then number", body: `{"access_token":"` + bdSecret + `","access_token":42}`},
		{name: "last expires_in wins", body: `{"access_token":"tok","expires_in":1,"expires_in":3600}`, want: "tok", wantLife: time.Hour},
		{name: "last token_type wins", body: `{"access_token":"tok","token_type":"mac","token_type":"bearer","expires_in":3600}`, want: "tok"},
		{name: "keys are case-sensitive", body: `{"access_token":"lower","ACCESS_TOKEN":"upper","expires_in":3600}`, want: "lower", wantExtra: "ACCESS_TOKEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			ts := bdReply(t, tt.body)
			var (
				mu   sync.Mutex
				seen []string
			)
			api := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				seen = append(seen, r.Header.Values("Authorization")...)
				mu.Unlock()
			})
			src := newSource(t, standardConfig(ts.URL))
			tok, err := callToken(src)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("Token: got a token, want an error")
				}
				te := tokenError(t, err)
				if got, want := te.Code, source.CodeServerError; got != want {
					t.Errorf("Code = %q, want %q", got, want)
				}
				if strings.Contains(err.Error(), bdSecret) {
					t.Errorf("error shows the token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if got, want := tok.AccessToken, tt.want; got != want {
				t.Errorf("AccessToken = %q, want %q", got, want)
			}
			if got, want := tok.HeaderValue(), "Bearer "+tt.want; got != want {
				t.Errorf("HeaderValue = %q, want %q", got, want)
			}
			if err := safehttp.CheckHeaderToken(tok.AccessToken, tok.Authorization); err != nil {
				t.Errorf("CheckHeaderToken on the chosen token: %v", err)
			}
			if tt.wantLife > 0 {
				if left := time.Until(tok.Expiry); left < tt.wantLife-time.Minute || left > tt.wantLife {
					t.Errorf("Expiry: got %v from now, want about %v", left, tt.wantLife)
				}
			}
			if tt.wantExtra != "" {
				if _, ok := tok.Extra[tt.wantExtra]; !ok {
					t.Errorf("Extra: got %v, want key %q", tok.Extra, tt.wantExtra)
				}
			}

			// The header the API receives is the token Token returned.
			resp, err := bdClient(t, src).Get(api.URL)
			if err != nil {
				t.Fatalf("client.Get: %v", err)
			}
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			if got, want := strings.Join(seen, " | "), tok.HeaderValue(); got != want {
				t.Errorf("API saw Authorization = %q, want %q", got, want)
			}
		})
	}
}

// TestBoundaryRetryAfterHuge: a 503 whose Retry-After is absurd (a number
// past any integer type, a date decades away) is not waited: the fetch
// fails at once with a *source.Error whose RetryAfter is capped at 24 h.
func TestBoundaryRetryAfterHuge(t *testing.T) {
	tests := []struct {
		name, retryAfter string
	}{
		{"10^20 seconds", "100000000000000000000"},
		{"2^63 seconds", "9223372036854775808"},
		{"2^64+1 seconds", "18446744073709551617"},
		{"just over 24 h", "86401"},
		{"HTTP date in 2100", "Fri, 01 Jan 2100 00:00:00 GMT"},
		{"asctime date in 2100", "Fri Jan  1 00:00:00 2100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
			cfg := standardConfig(emu.TokenURL)
			cfg.FetchTimeout = 48 * time.Hour // the cap, not the fetch's deadline, must stop the wait
			src := newSource(t, cfg)
			emu.FailNext(1, http.StatusServiceUnavailable, tt.retryAfter)

			start := time.Now()
			_, err := src.Token(context.Background())
			elapsed := time.Since(start)
			if elapsed >= time.Second {
				t.Errorf("elapsed: got %v, want under 1s (an absurd Retry-After is not waited)", elapsed)
			}
			te := tokenError(t, err)
			if got, want := te.RetryAfter, 24*time.Hour; got != want {
				t.Errorf("RetryAfter = %v, want %v", got, want)
			}
			if got, want := te.StatusCode, http.StatusServiceUnavailable; got != want {
				t.Errorf("StatusCode = %d, want %d", got, want)
			}
			if got, want := te.Code, source.CodeServerError; got != want {
				t.Errorf("Code = %q, want %q", got, want)
			}
			if !te.Temporary() {
				t.Errorf("Temporary: got false, want true for a 503")
			}
			if got, want := emu.TokenRequests(), 1; got != want {
				t.Errorf("token requests = %d, want %d (no retry)", got, want)
			}
		})
	}
}

// TestChallengeJunkOn401: whatever an API puts in WWW-Authenticate on a
// 401, the Transport does not panic, and drops the token and retries once
// with a new one; only a Bearer challenge naming insufficient_scope (or
// invalid_request), which a new token cannot fix, is returned as it is,
// with the token kept.
func TestChallengeJunkOn401(t *testing.T) {
	long := strings.Repeat(`Bearer realm="`, 1000) + strings.Repeat(`\`, 5000)
	tests := []struct {
		name       string
		challenges []string
		refresh    bool
	}{
		{"no header", nil, true},
		{"empty", []string{""}, true},
		{"junk word", []string{"junk"}, true},
		{"quotes only", []string{`"""`}, true},
		{"equals and commas", []string{`=,=,=,,,`}, true},
		{"param before a scheme", []string{`error="insufficient_scope"`}, true},
		{"Bearer error with no value", []string{`Bearer error=`}, true},
		{"Bearer trailing backslash", []string{`Bearer error="\`}, true},
		{"Bearer escaped quote", []string{`Bearer realm="a\"b", error="invalid_token"`}, true},
		{"Bearer invalid_token", []string{`Bearer error="invalid_token"`}, true},
		{"Bearer unknown error", []string{`Bearer error="who_knows"`}, true},
		{"non-ASCII bytes", []string{"Bearer error=\"\xff\xfe\", realm=\xc3\x28"}, true},
		{"Basic only", []string{`Basic realm="api"`}, true},
		{"insufficient_scope under another scheme", []string{`Basic error="insufficient_scope"`}, true},
		{"16 KiB of junk", []string{long}, true},
		{"many values", []string{"a", "b=", `c="`, `Bearer error="invalid_token"`}, true},
		{"Bearer insufficient_scope", []string{`Bearer error="insufficient_scope"`}, false},
		{"Bearer insufficient_scope with params", []string{`Bearer realm="api", error="insufficient_scope", scope="orders:write"`}, false},
		{"Bearer insufficient_scope as a token", []string{`Bearer error=insufficient_scope`}, false},
		{"bearer in other cases", []string{`bearer ERROR="Insufficient_Scope"`}, false},
		{"Bearer invalid_request", []string{`Bearer error="invalid_request"`}, false},
		{"second challenge in one value", []string{`Basic realm="x", Bearer error="insufficient_scope"`}, false},
		{"second header value", []string{`Basic realm="x"`, `Bearer error="insufficient_scope"`}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
			var (
				mu   sync.Mutex
				seen []string
			)
			api := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				seen = append(seen, r.Header.Get("Authorization"))
				first := len(seen) == 1
				mu.Unlock()
				if first {
					for _, c := range tt.challenges {
						w.Header().Add("WWW-Authenticate", c)
					}
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				_, _ = io.WriteString(w, "ok")
			})
			src := newSource(t, standardConfig(emu.TokenURL))
			client := bdClient(t, src)

			resp, err := client.Get(api.URL + "/v1/orders")
			if err != nil {
				t.Fatalf("client.Get: %v", err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()

			mu.Lock()
			auths := append([]string(nil), seen...) // the Authorization of each API request
			mu.Unlock()
			wantStatus, wantAPI, wantFetches := http.StatusOK, 2, 1+1
			if !tt.refresh {
				wantStatus, wantAPI, wantFetches = http.StatusUnauthorized, 1, 1
			}
			if resp.StatusCode != wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, wantStatus)
			}
			if len(auths) != wantAPI {
				t.Fatalf("API requests = %d, want %d", len(auths), wantAPI)
			}
			if n := emu.TokenRequests(); n != wantFetches {
				t.Errorf("token requests = %d, want %d", n, wantFetches)
			}
			if tt.refresh && auths[0] == auths[1] {
				t.Errorf("retry: got the rejected token again, want a new one")
			}
			if !tt.refresh {
				if got, want := resp.Header.Values("Www-Authenticate"), tt.challenges; !slices.Equal(got, want) {
					t.Errorf("WWW-Authenticate to the caller = %q, want %q", got, want)
				}
				// The token was not dropped: the next Token call is a hit.
				tok, err := callToken(src)
				if err != nil {
					t.Fatalf("Token: %v", err)
				}
				if tok.HeaderValue() != auths[0] {
					t.Errorf("token after the 401: got a new one, want the same (no refresh)")
				}
				if n := emu.TokenRequests(); n != 1 {
					t.Errorf("token requests after a Token call: got %d, want 1", n)
				}
			}
		})
	}
}

// The parts of a padded reply around its padding.
const (
	bdPadHead = `{"access_token":"big-tok","token_type":"bearer","expires_in":3600,"pad":"`
	bdPadTail = `"}`
)

// bdPaddedReply is a valid token reply of exactly n bytes.
func bdPaddedReply(t *testing.T, n int) []byte {
	t.Helper()
	head, tail := bdPadHead, bdPadTail
	if n < len(head)+len(tail) {
		t.Fatalf("reply of %d bytes is too short", n)
	}
	return []byte(head + strings.Repeat("a", n-len(head)-len(tail)) + tail)
}

// bdGzip compresses b.
func bdGzip(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bdGzipBomb is a gzip body that inflates to bdPaddedReply(n): one
// member per MiB of padding, concatenated (a gzip reader reads every
// member), so that building it costs one compression of 1 MiB.
func bdGzipBomb(t *testing.T, n int) []byte {
	t.Helper()
	pad := n - len(bdPadHead) - len(bdPadTail)
	chunk := bdGzip(t, bytes.Repeat([]byte("a"), 1<<20))
	out := bdGzip(t, []byte(bdPadHead))
	for ; pad >= 1<<20; pad -= 1 << 20 {
		out = append(out, chunk...)
	}
	out = append(out, bdGzip(t, bytes.Repeat([]byte("a"), pad))...)
	return append(out, bdGzip(t, []byte(bdPadTail))...)
}

// bdTotalAlloc is the bytes allocated so far by the process.
func bdTotalAlloc() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

// TestBoundaryReplySize: the reply bound (MaxReplyBytes) holds whether the
// length is announced or not and whether the body is compressed: one byte
// over is an error, a large valid reply under it works, and a small gzip
// body that inflates far past it is an error read in bounded memory, not
// an allocation of what it inflates to.
func TestBoundaryReplySize(t *testing.T) {
	const bomb = 64 << 20 // what the gzip bomb inflates to
	bombBody := bdGzipBomb(t, bomb)
	zr, err := gzip.NewReader(bytes.NewReader(bombBody))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, zr); err != nil || n != bomb {
		t.Fatalf("the gzip bomb (%d bytes) inflates to %d bytes (%v), want %d", len(bombBody), n, err, bomb)
	}
	tests := []struct {
		name         string
		body         []byte // as sent on the wire
		gzip         bool   // sent with Content-Encoding: gzip
		chunked      bool   // no Content-Length
		noDecompress bool   // the token client's Transport has DisableCompression
		wantErr      string // a word of the *source.Error's Description; "" means a token
	}{
		{name: "MaxReplyBytes+1 with length", body: bdPaddedReply(t, source.MaxReplyBytes+1), wantErr: "larger than"},
		{name: "MaxReplyBytes+1 chunked", body: bdPaddedReply(t, source.MaxReplyBytes+1), chunked: true, wantErr: "larger than"},
		{name: "MaxReplyBytes exactly", body: bdPaddedReply(t, source.MaxReplyBytes)},
		{name: "900 KiB with length", body: bdPaddedReply(t, 900<<10)},
		{name: "900 KiB chunked", body: bdPaddedReply(t, 900<<10), chunked: true},
		{name: "900 KiB gzip", body: bdGzip(t, bdPaddedReply(t, 900<<10)), gzip: true},
		{name: "MaxReplyBytes+1 gzip", body: bdGzip(t, bdPaddedReply(t, source.MaxReplyBytes+1)), gzip: true, wantErr: "larger than"},
		{name: "gzip bomb", body: bombBody, gzip: true, wantErr: "larger than"},
		{name: "gzip bomb chunked", body: bombBody, gzip: true, chunked: true, wantErr: "larger than"},
		{name: "gzip bomb, decompression off", body: bombBody, gzip: true, noDecompress: true, wantErr: "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			var acceptEncoding atomic.Value
			ts := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				acceptEncoding.Store(r.Header.Get("Accept-Encoding"))
				w.Header().Set("Content-Type", "application/json")
				if tt.gzip {
					w.Header().Set("Content-Encoding", "gzip")
				}
				if !tt.chunked {
					w.Header().Set("Content-Length", fmt.Sprint(len(tt.body)))
				}
				half := len(tt.body) / 2
				_, _ = w.Write(tt.body[:half])
				if tt.chunked {
					http.NewResponseController(w).Flush()
				}
				_, _ = w.Write(tt.body[half:])
			})
			cfg := standardConfig(ts.URL)
			cfg.Retry.MaxAttempts = 1
			tr := &http.Transport{DisableCompression: tt.noDecompress}
			t.Cleanup(tr.CloseIdleConnections)
			cfg.HTTPClient = &http.Client{Transport: tr}
			src := newSource(t, cfg)

			runtime.GC()
			before := bdTotalAlloc()
			tok, err := callToken(src)
			allocated := bdTotalAlloc() - before
			t.Logf("wire %d bytes, allocated %d KiB during the fetch", len(tt.body), allocated>>10)

			if tt.gzip && !tt.noDecompress {
				if got, _ := acceptEncoding.Load().(string); got != "gzip" {
					t.Fatalf("the token request's Accept-Encoding: got %q, want net/http's own %q (else this case tests nothing)", got, "gzip")
				}
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Token: %v", err)
				}
				if got, want := tok.AccessToken, "big-tok"; got != want {
					t.Errorf("AccessToken = %q, want %q", got, want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Token: got a token, want an error")
			}
			te := tokenError(t, err)
			if got, want := te.Code, source.CodeServerError; got != want {
				t.Errorf("Code = %q, want %q", got, want)
			}
			if !strings.Contains(te.Description, tt.wantErr) {
				t.Errorf("Description: got %q, want it to contain %q", te.Description, tt.wantErr)
			}
			// Reading up to the bound costs a few copies of it; inflating
			// the bomb would cost 64 MiB.
			if limit := uint64(16 << 20); allocated > limit {
				t.Errorf("allocated during the fetch: got %d MiB, want under %d MiB", allocated>>20, limit>>20)
			}
		})
	}
}

// TestBoundaryReplyNotObject: a 200 reply that is not exactly one JSON
// object is a *source.Error with Code server_error, not a panic and not a
// token.
func TestBoundaryReplyNotObject(t *testing.T) {
	tests := []struct{ name, body string }{
		{"null", `null`},
		{"empty array", `[]`},
		{"array of a token", `[{"access_token":"tok","expires_in":3600}]`},
		{"number", `42`},
		{"huge number", `1e999`},
		{"string", `"tok"`},
		{"bool", `true`},
		{"empty body", ``},
		{"white space", " \r\n\t "},
		{"truncated object", `{"access_token":"tok","expires_in":36`},
		{"trailing comma", `{"access_token":"tok","expires_in":3600,}`},
		{"trailing garbage", `{"access_token":"tok","expires_in":3600} garbage`},
		{"two objects", `{"access_token":"tok","expires_in":3600}{"access_token":"other"}`},
		{"trailing brace", `{"access_token":"tok","expires_in":3600}}`},
		{"trailing bracket", `{"access_token":"tok","expires_in":3600}]`},
		{"trailing NUL", `{"access_token":"tok","expires_in":3600}` + "\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			ts := bdReply(t, tt.body)
			tok, err := fetchToken(t, standardConfig(ts.URL))
			if err == nil {
				t.Fatalf("Token: got a token (%v) from %q, want an error", tok, bdTrim(tt.body))
			}
			te := tokenError(t, err)
			if got, want := te.Code, source.CodeServerError; got != want {
				t.Errorf("Code = %q, want %q (%v)", got, want, err)
			}
			if got, want := te.StatusCode, http.StatusOK; got != want {
				t.Errorf("StatusCode = %d, want %d", got, want)
			}
		})
	}
}

func bdTrim(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
