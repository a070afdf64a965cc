package oauth2adapt_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenhttp/tokenhttp/oauth2adapt"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// TestToOAuth2Token: each kind of source token becomes the oauth2.Token
// whose header is the source's HeaderValue, or an error that shows no
// secret; Expiry and Extra are copied, the refresh token never is.
func TestToOAuth2Token(t *testing.T) {
	exp := time.Now().Add(time.Hour) // with a monotonic reading: copied as it is
	tests := []struct {
		name       string
		tok        *source.Token
		wantType   string
		wantAccess string
		wantErr    bool
	}{
		{"bearer", &source.Token{AccessToken: "at-123456", TokenType: "Bearer"}, "Bearer", "at-123456", false},
		{"no type", &source.Token{AccessToken: "at-123456"}, "Bearer", "at-123456", false},
		{"other type is sent as Bearer, like HeaderValue", &source.Token{AccessToken: "at-123456", TokenType: "mac"}, "Bearer", "at-123456", false},
		{"provider header", &source.Token{AccessToken: "at-123456", TokenType: "Bearer", Authorization: "VCSchema dmF1bHQtfGF0LTEyMzQ1Ng=="},
			"VCSchema", "dmF1bHQtfGF0LTEyMzQ1Ng==", false},
		{"provider header with two spaces", &source.Token{Authorization: "Scheme  at-123456"}, "Scheme", " at-123456", false},
		{"provider header without a space", &source.Token{AccessToken: "at-123456", Authorization: "VCSchemaat-123456"}, "", "", true},
		{"provider header with a newline", &source.Token{Authorization: "Scheme at-123456\r\nX-Evil: 1"}, "", "", true},
		{"access token with a space", &source.Token{AccessToken: "at 123456"}, "", "", true},
		{"no credential", &source.Token{TokenType: "Bearer"}, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := *tt.tok
			in.RefreshToken = "rt-secret-654321"
			in.Expiry = exp
			in.Extra = map[string]any{"provider": "cloud-1"}
			got, err := oauth2adapt.ToOAuth2(srcFunc(func(context.Context) (*source.Token, error) { return &in, nil })).Token()
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Token() = %+v, want an error", got)
				}
				noSecret(t, err, "at-123456", "at 123456", "rt-secret-654321")
				return
			}
			if err != nil {
				t.Fatalf("Token(): %v", err)
			}
			if got.TokenType != tt.wantType || got.AccessToken != tt.wantAccess {
				t.Errorf("TokenType, AccessToken = %q, %q, want %q, %q", got.TokenType, got.AccessToken, tt.wantType, tt.wantAccess)
			}
			if got.RefreshToken != "" {
				t.Errorf("RefreshToken = %q, want it not copied", got.RefreshToken)
			}
			if got.Expiry != exp {
				t.Errorf("Expiry = %v, want %v unchanged", got.Expiry, exp)
			}
			if v := got.Extra("provider"); v != "cloud-1" {
				t.Errorf(`Extra("provider") = %v, want "cloud-1"`, v)
			}
			req := httptest.NewRequest(http.MethodGet, "https://api.example/", nil)
			got.SetAuthHeader(req)
			if h, want := req.Header.Get("Authorization"), in.HeaderValue(); h != want {
				t.Errorf("x/oauth2 sends Authorization %q, want HeaderValue %q", h, want)
			}
		})
	}
}

// TestToOAuth2Errors: a source's error comes through wrapped, as itself.
func TestToOAuth2Errors(t *testing.T) {
	refused := &source.Error{Provider: "standard", StatusCode: 401, Code: source.CodeInvalidClient}
	_, err := oauth2adapt.ToOAuth2(srcFunc(func(context.Context) (*source.Token, error) { return nil, refused })).Token()
	var se *source.Error
	if !errors.As(err, &se) || se != refused {
		t.Errorf("Token() error = %v, want one wrapping the source's *source.Error", err)
	}
	_, err = oauth2adapt.ToOAuth2(srcFunc(func(context.Context) (*source.Token, error) { return nil, nil })).Token()
	if err == nil {
		t.Error("Token() of a source returning nil, nil: no error")
	}
}

type timeoutSource struct {
	srcFunc
	d time.Duration
}

func (s timeoutSource) FetchTimeout() time.Duration { return s.d }

// TestToOAuth2Context: each call gets a context bounded by the source's
// fetch timeout, keeping the values and cancellation of ToOAuth2Context's.
func TestToOAuth2Context(t *testing.T) {
	deadline := func(src func(srcFunc) source.TokenSource, ctx context.Context) (time.Duration, bool, error) {
		var left time.Duration
		var has bool
		var err error
		f := srcFunc(func(c context.Context) (*source.Token, error) {
			d, ok := c.Deadline()
			left, has, err = time.Until(d), ok, c.Err()
			return &source.Token{AccessToken: "at-123456"}, nil
		})
		if _, terr := oauth2adapt.ToOAuth2Context(ctx, src(f)).Token(); terr != nil {
			t.Fatalf("Token(): %v", terr)
		}
		return left, has, err
	}
	plain := func(f srcFunc) source.TokenSource { return f }
	t.Run("default fetch timeout", func(t *testing.T) {
		left, has, _ := deadline(plain, context.Background())
		if !has || left > source.DefaultFetchTimeout || left < source.DefaultFetchTimeout-5*time.Second {
			t.Errorf("deadline in %v (set: %v), want about source.DefaultFetchTimeout %v", left, has, source.DefaultFetchTimeout)
		}
	})
	t.Run("the source's FetchTimeout", func(t *testing.T) {
		left, has, _ := deadline(func(f srcFunc) source.TokenSource { return timeoutSource{f, 7 * time.Second} }, context.Background())
		if !has || left > 7*time.Second || left < 2*time.Second {
			t.Errorf("deadline in %v (set: %v), want about 7s", left, has)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, _, err := deadline(plain, ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("the source's context: err %v, want context.Canceled", err)
		}
	})

	// A cached source bounds its own fetch with Config.FetchTimeout.
	t.Run("cached source over a hung endpoint", func(t *testing.T) {
		idp, src := newStandard(t, func(c *source.Config) { c.FetchTimeout = 300 * time.Millisecond })
		idp.HangNext(1)
		start := time.Now()
		_, err := oauth2adapt.ToOAuth2(src).Token()
		if err == nil {
			t.Fatal("Token() over a hung endpoint: no error")
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Token() returned after %v, want about FetchTimeout 300ms", d)
		}
	})
}

// TestToOAuth2Invalidate: a rejection told to the x/oauth2 side drops the
// source token it was converted from, and only that one.
func TestToOAuth2Invalidate(t *testing.T) {
	type invalidator interface{ Invalidate(*oauth2.Token) bool }
	type resetter interface{ ResetTokenOlderThan(time.Time) }

	t.Run("Invalidate", func(t *testing.T) {
		idp, src := newStandard(t, nil)
		ts := oauth2adapt.ToOAuth2(src)
		first, err := ts.Token()
		if err != nil {
			t.Fatal(err)
		}
		again, _ := ts.Token()
		if again != first {
			t.Error("two calls for the same source token: different *oauth2.Token")
		}
		stale := *first // a copy names the same token
		if !ts.(invalidator).Invalidate(&stale) {
			t.Fatal("Invalidate(the token handed out) = false, want true")
		}
		second, err := ts.Token()
		if err != nil {
			t.Fatal(err)
		}
		if second.AccessToken == first.AccessToken {
			t.Error("after Invalidate: the same access token, want a new one")
		}
		if ts.(invalidator).Invalidate(first) {
			t.Error("Invalidate(an older token) = true: it dropped the newer one")
		}
		if ts.(invalidator).Invalidate(&oauth2.Token{AccessToken: "other", TokenType: "Bearer"}) {
			t.Error("Invalidate(a token never handed out) = true")
		}
		if got, want := idp.TokenRequests(), 2; got != want {
			t.Errorf("token requests = %d, want %d", got, want)
		}
	})

	t.Run("ResetTokenOlderThan", func(t *testing.T) {
		idp, src := newStandard(t, nil)
		ts := oauth2adapt.ToOAuth2(src)
		before := time.Now()
		first, err := ts.Token()
		if err != nil {
			t.Fatal(err)
		}
		ts.(resetter).ResetTokenOlderThan(before) // a request started before the token: keep it
		if again, _ := ts.Token(); again != first {
			t.Fatal("ResetTokenOlderThan(a time before the token) dropped it")
		}
		ts.(resetter).ResetTokenOlderThan(time.Now()) // a request that used it was refused
		second, err := ts.Token()
		if err != nil {
			t.Fatal(err)
		}
		if second.AccessToken == first.AccessToken {
			t.Error("after ResetTokenOlderThan(now): the same access token, want a new one")
		}
		if got, want := idp.TokenRequests(), 2; got != want {
			t.Errorf("token requests = %d, want %d", got, want)
		}
	})

	t.Run("source that cannot invalidate", func(t *testing.T) {
		ts := oauth2adapt.ToOAuth2(srcFunc(func(context.Context) (*source.Token, error) {
			return &source.Token{AccessToken: "at-123456"}, nil
		}))
		tok, _ := ts.Token()
		if ts.(invalidator).Invalidate(tok) {
			t.Error("Invalidate = true for a source that is not a source.Invalidator")
		}
		ts.(resetter).ResetTokenOlderThan(time.Now()) // no panic
	})

	t.Run("forwarded token", func(t *testing.T) {
		s := &invSource{tok: &source.Token{AccessToken: "at-123456"}}
		ts := oauth2adapt.ToOAuth2(s)
		tok, _ := ts.Token()
		if !ts.(invalidator).Invalidate(tok) || len(s.rejected) != 1 || s.rejected[0] != s.tok {
			t.Errorf("Invalidate forwarded %v, want exactly the source token", s.rejected)
		}
	})
}

// TestToOAuth2Client: oauth2.NewClient over a VaultID source sends the
// provider's own header, which the emulator's API alone accepts.
func TestToOAuth2Client(t *testing.T) {
	idp := sourcetest.NewVaultID(sourcetest.Options{})
	defer idp.Close()
	src, err := source.New(source.Config{
		Provider: source.VaultID, TokenURL: idp.TokenURL, HTTPClient: idp.Client(),
		ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret,
		Username: sourcetest.DefaultVaultIDUsername, Cloud: "cloud-1",
		PasswordFunc: func(context.Context) (string, error) { return "123456", nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	client := oauth2.NewClient(context.WithValue(context.Background(), oauth2.HTTPClient, idp.Client()), oauth2adapt.ToOAuth2(src))
	for range 2 {
		resp, err := client.Get(idp.ResourceURL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %d, want 200", resp.StatusCode)
		}
	}
	if got, want := idp.TokenRequests(), 1; got != want {
		t.Errorf("token requests = %d, want %d", got, want)
	}
}
