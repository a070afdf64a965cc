package oauth2adapt_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenhttp/tokenhttp"
	"github.com/tokenhttp/tokenhttp/oauth2adapt"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// tsFunc is an oauth2.TokenSource made of a function.
type tsFunc func() (*oauth2.Token, error)

func (f tsFunc) Token() (*oauth2.Token, error) { return f() }

// TestFromOAuth2Token: the source token sends the header x/oauth2 sends;
// Expiry is copied, the refresh token is not.
func TestFromOAuth2Token(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	tests := []struct {
		typ, want string
		wantErr   bool
	}{
		{"", "Bearer at-123456", false},
		{"bearer", "Bearer at-123456", false},
		{"Bearer", "Bearer at-123456", false},
		{"mac", "MAC at-123456", false},
		{"DPoP", "DPoP at-123456", false},
		{"Bad Type", "", true},
		{"Bad\r\nX-Evil:", "", true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("type %q", tt.typ), func(t *testing.T) {
			in := (&oauth2.Token{AccessToken: "at-123456", TokenType: tt.typ, RefreshToken: "rt-secret-654321", Expiry: exp}).
				WithExtra(map[string]any{"scope": "orders:read"})
			got, err := oauth2adapt.FromOAuth2(oauth2.StaticTokenSource(in)).Token(context.Background())
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Token() = %v, want an error", got)
				}
				noSecret(t, err, "at-123456", "rt-secret-654321")
				return
			}
			if err != nil {
				t.Fatalf("Token(): %v", err)
			}
			req := httptest.NewRequest(http.MethodGet, "https://api.example/", nil)
			in.SetAuthHeader(req)
			if h := got.HeaderValue(); h != tt.want || h != req.Header.Get("Authorization") {
				t.Errorf("HeaderValue() = %q, want %q (x/oauth2 sends %q)", h, tt.want, req.Header.Get("Authorization"))
			}
			if got.Expiry != exp {
				t.Errorf("Expiry = %v, want %v unchanged", got.Expiry, exp)
			}
			if got.RefreshToken != "" {
				t.Error("RefreshToken copied, want it left behind")
			}
			if got.Scope != "orders:read" || !got.Valid() {
				t.Errorf("Scope %q, Valid %v, want orders:read, true", got.Scope, got.Valid())
			}
		})
	}
	for _, bad := range []*oauth2.Token{{AccessToken: ""}, {AccessToken: "at 123456"}, nil} {
		_, err := oauth2adapt.FromOAuth2(tsFunc(func() (*oauth2.Token, error) { return bad, nil })).Token(context.Background())
		if err == nil {
			t.Errorf("Token() of %v: no error", bad)
		}
		noSecret(t, err, "at 123456")
	}
}

// TestFromOAuth2RetrieveError: an *oauth2.RetrieveError becomes a
// *source.Error with the Standard dialect's codes, a bounded description,
// and never the body.
func TestFromOAuth2RetrieveError(t *testing.T) {
	const secret = "rt-secret-in-the-body"
	resp := func(status int) *http.Response {
		return &http.Response{StatusCode: status, Status: http.StatusText(status)}
	}
	tests := []struct {
		name       string
		re         *oauth2.RetrieveError
		wantStatus int
		wantCode   string
		wantDesc   string
	}{
		{"invalid_grant", &oauth2.RetrieveError{Response: resp(400), ErrorCode: "invalid_grant", ErrorDescription: "refresh token expired"},
			400, source.CodeInvalidGrant, "refresh token expired"},
		{"code in upper case", &oauth2.RetrieveError{Response: resp(400), ErrorCode: "INVALID_SCOPE"}, 400, source.CodeInvalidScope, ""},
		{"401 without a code", &oauth2.RetrieveError{Response: resp(401), Body: []byte(secret)}, 401, source.CodeInvalidClient, ""},
		{"403 without a code", &oauth2.RetrieveError{Response: resp(403), Body: []byte(secret)}, 403, source.CodeUnauthorizedClient, ""},
		{"429", &oauth2.RetrieveError{Response: resp(429), Body: []byte(secret)}, 429, source.CodeTemporarilyUnavailable, ""},
		{"503 HTML", &oauth2.RetrieveError{Response: resp(503), Body: []byte("<html>" + secret)}, 503, source.CodeServerError, ""},
		{"unknown code", &oauth2.RetrieveError{Response: resp(400), ErrorCode: "weird"}, 400, source.CodeInvalidRequest, ""},
		{"numeric code", &oauth2.RetrieveError{Response: resp(200), ErrorCode: "401"}, 200, source.CodeInvalidClient, ""},
		{"SerproID code", &oauth2.RetrieveError{Response: resp(401), ErrorCode: "AUTENTICACAO_INVALIDA_CLIENT_OAUTH"}, 401, source.CodeInvalidClient, ""},
		{"no response", &oauth2.RetrieveError{ErrorCode: "invalid_client"}, 0, source.CodeInvalidClient, ""},
		{"description cleaned", &oauth2.RetrieveError{Response: resp(400), ErrorCode: "invalid_request",
			ErrorDescription: "line one\r\n\tline\x00 two"}, 400, source.CodeInvalidRequest, "line one line two"},
		{"wrapped", &oauth2.RetrieveError{Response: resp(400), ErrorCode: "invalid_grant"}, 400, source.CodeInvalidGrant, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error = tt.re
			if tt.name == "wrapped" {
				err = fmt.Errorf("oauth2: cannot fetch token: %w", tt.re)
			}
			_, got := oauth2adapt.FromOAuth2(tsFunc(func() (*oauth2.Token, error) { return nil, err })).Token(context.Background())
			var se *source.Error
			if !errors.As(got, &se) {
				t.Fatalf("Token() error = %v, want a *source.Error", got)
			}
			if se.StatusCode != tt.wantStatus || se.Code != tt.wantCode || se.Description != tt.wantDesc {
				t.Errorf("got status %d code %q description %q, want %d %q %q", se.StatusCode, se.Code, se.Description, tt.wantStatus, tt.wantCode, tt.wantDesc)
			}
			if se.ProviderCode != tt.re.ErrorCode {
				t.Errorf("ProviderCode = %q, want %q", se.ProviderCode, tt.re.ErrorCode)
			}
			noSecret(t, got, secret)
			var re *oauth2.RetrieveError
			if errors.As(got, &re) {
				t.Error("the *oauth2.RetrieveError (and its raw body) is still in the chain")
			}
		})
	}

	t.Run("long description", func(t *testing.T) {
		re := &oauth2.RetrieveError{Response: resp(400), ErrorCode: "invalid_request", ErrorDescription: strings.Repeat("x", 10000)}
		_, err := oauth2adapt.FromOAuth2(tsFunc(func() (*oauth2.Token, error) { return nil, re })).Token(context.Background())
		var se *source.Error
		if !errors.As(err, &se) || len(se.Description) > 300 {
			t.Errorf("description of %d bytes kept, want at most about 256", len(se.Description))
		}
	})

	// End to end: x/oauth2's clientcredentials against the emulator with a
	// wrong secret.
	t.Run("clientcredentials", func(t *testing.T) {
		idp := sourcetest.NewStandard(sourcetest.Options{})
		defer idp.Close()
		const wrong = "wrong-client-secret"
		cc := clientcredentials.Config{ClientID: sourcetest.DefaultClientID, ClientSecret: wrong, TokenURL: idp.TokenURL}
		_, err := oauth2adapt.FromOAuth2(cc.TokenSource(context.Background())).Token(context.Background())
		var se *source.Error
		if !errors.As(err, &se) || se.StatusCode != 401 || se.Code != source.CodeInvalidClient {
			t.Fatalf("Token() error = %v, want a 401 invalid_client *source.Error", err)
		}
		noSecret(t, err, wrong)
	})

	t.Run("other errors are wrapped", func(t *testing.T) {
		cause := errors.New("metadata server unreachable")
		_, err := oauth2adapt.FromOAuth2(tsFunc(func() (*oauth2.Token, error) { return nil, cause })).Token(context.Background())
		if !errors.Is(err, cause) {
			t.Errorf("Token() error = %v, want it to wrap %v", err, cause)
		}
	})
}

// TestFromOAuth2Context: the caller's context bounds its wait; concurrent
// callers share one x/oauth2 call, which ends on its own (goleak checks).
func TestFromOAuth2Context(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	ts := tsFunc(func() (*oauth2.Token, error) {
		calls.Add(1)
		<-release
		return &oauth2.Token{AccessToken: "at-123456"}, nil
	})
	src := oauth2adapt.FromOAuth2(ts)

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := src.Token(ctx)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Token() with a 50ms deadline = %v, want context.DeadlineExceeded", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Token() left after %v, want about 50ms", d)
			}
		})
	}
	wg.Wait()
	if got := calls.Load(); got != 1 {
		t.Errorf("x/oauth2 calls = %d, want 1 shared by the callers", got)
	}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := src.Token(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("Token(cancelled) = %v, want context.Canceled", err)
	}

	close(release) // the waiting call ends; a later caller gets a token
	tok, err := src.Token(context.Background())
	if err != nil || tok.HeaderValue() != "Bearer at-123456" {
		t.Errorf("Token() after the call ended = %v, %v", tok, err)
	}
	if got := calls.Load(); got > 2 {
		t.Errorf("x/oauth2 calls = %d, want at most 2", got)
	}
}

// TestFromOAuth2Panic: a panicking x/oauth2 source is an error, on either
// path, and shows nothing of the panic value.
func TestFromOAuth2Panic(t *testing.T) {
	src := oauth2adapt.FromOAuth2(tsFunc(func() (*oauth2.Token, error) { panic("at-123456") }))
	for _, ctx := range []context.Context{context.Background(), t.Context()} {
		_, err := src.Token(ctx)
		if err == nil {
			t.Fatal("Token() of a panicking source: no error")
		}
		noSecret(t, err, "at-123456")
	}
}

// TestFromOAuth2Transport: behind tokenhttp's Transport the API gets the
// x/oauth2 token's header; a 401 comes back as it came, with no retry:
// the source is not a source.Invalidator.
func TestFromOAuth2Transport(t *testing.T) {
	var got []string
	var mu sync.Mutex
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization"))
		mu.Unlock()
		if r.URL.Path == "/revoked" {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer api.Close()
	ts := tsFunc(func() (*oauth2.Token, error) {
		return &oauth2.Token{AccessToken: "at-123456", TokenType: "bearer", Expiry: time.Now().Add(time.Hour)}, nil
	})
	client := tokenhttp.NewClient(oauth2adapt.FromOAuth2(ts))

	resp, err := client.Get(api.URL + "/ok")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = client.Get(api.URL + "/revoked")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("status %d, want the 401 as it came", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"Bearer at-123456", "Bearer at-123456"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the API saw %q, want %q (one request each, no retry)", got, want)
	}
	if _, ok := oauth2adapt.FromOAuth2(ts).(source.Invalidator); ok {
		t.Error("FromOAuth2's source is a source.Invalidator; it cannot make x/oauth2 fetch anew")
	}
}
