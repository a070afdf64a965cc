package source_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/instrument"
	"github.com/tokenhttp/tokenhttp/retry"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/telemetry"
)

// TestConfigErrorField: New's error for a bad Config names the field, so
// that a caller (the CLI) maps it to its own names without reading text.
func TestConfigErrorField(t *testing.T) {
	ok := source.Config{TokenURL: "https://auth.example.com/token", ClientID: "id", ClientSecret: "s"}
	otp := func(context.Context) (string, error) { return "1", nil }
	tests := []struct {
		name string
		edit func(*source.Config)
		want string
	}{
		{"no token URL", func(c *source.Config) { c.TokenURL = "" }, "TokenURL"},
		{"cleartext", func(c *source.Config) { c.TokenURL = "http://auth.example.com/token" }, "TokenURL"},
		{"no secret", func(c *source.Config) { c.ClientSecret = "" }, "ClientSecret"},
		{"bad grant", func(c *source.Config) { c.GrantType = "implicit" }, "GrantType"},
		{"negative retry", func(c *source.Config) { c.Retry = retry.Policy{MaxAttempts: -1} }, "Retry"},
		{"negative fetch timeout", func(c *source.Config) { c.FetchTimeout = -time.Second }, "FetchTimeout"},
		{"provider's own check", func(c *source.Config) {
			*c = source.Config{Provider: source.VaultID, ClientID: "id", ClientSecret: "s", Username: "12345678909",
				PasswordFunc: otp, Lifetime: 8 * 24 * time.Hour}
		}, "Lifetime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			src, err := source.New(cfg)
			if err == nil {
				src.Close()
				t.Fatal("New: got no error")
			}
			var ce *source.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, source.ErrInvalidConfig) {
				t.Fatalf("New: got %v (%T), want a *source.ConfigError matching ErrInvalidConfig", err, err)
			}
			if got := ce.Field; got != tt.want {
				t.Errorf("Field = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestBreakerOpenErrorIs: the breaker's error matches its sentinel and
// nothing else.
func TestBreakerOpenErrorIs(t *testing.T) {
	err := error(&source.BreakerOpenError{Provider: "p", Until: time.Now()})
	if !errors.Is(err, source.ErrBreakerOpen) {
		t.Error("errors.Is(err, ErrBreakerOpen) = false, want true")
	}
	if errors.Is(err, source.ErrClosed) {
		t.Error("errors.Is(err, ErrClosed) = true, want false")
	}
	if got, want := err.Error(), "source: p token endpoint failing: circuit breaker open"; got != want {
		t.Errorf("Error = %q, want %q", got, want)
	}
}

// TestErrorNotTokenEndpoint: the replies that say the URL is wrong, not
// the credentials, the hint that says so, and CredentialsRefused for the
// others.
func TestErrorNotTokenEndpoint(t *testing.T) {
	for _, tt := range []struct {
		status int
		code   string
		want   bool
	}{
		{404, source.CodeInvalidRequest, true},
		{404, source.CodeInvalidClient, true},
		{405, source.CodeInvalidRequest, true},
		{410, source.CodeInvalidRequest, true},
		{302, source.CodeInvalidRequest, true},
		{200, source.CodeInvalidRequest, true},
		{400, source.CodeInvalidRequest, false},
		{400, source.CodeInvalidGrant, false},
		{400, source.CodeInvalidScope, false},
		{401, source.CodeInvalidClient, false},
		{403, source.CodeInvalidClient, false},
		{429, source.CodeTemporarilyUnavailable, false},
		{500, source.CodeServerError, false},
	} {
		e := &source.Error{Provider: "p", StatusCode: tt.status, Code: tt.code}
		if got := e.NotTokenEndpoint(); got != tt.want {
			t.Errorf("HTTP %d %s: NotTokenEndpoint() = %v, want %v", tt.status, tt.code, got, tt.want)
		}
		if got, want := e.CredentialsRefused(), !tt.want && (tt.code == source.CodeInvalidClient || tt.code == source.CodeInvalidGrant); got != want {
			t.Errorf("HTTP %d %s: CredentialsRefused() = %v, want %v", tt.status, tt.code, got, want)
		}
		if got := strings.Contains(e.Hint(), "Config.TokenURL"); got != tt.want {
			t.Errorf("HTTP %d %s: Hint() = %q, want a hint at Config.TokenURL: %v", tt.status, tt.code, e.Hint(), tt.want)
		}
	}
}

// TestConfigErrorType: a refused Config has its own error.type, wherever
// it is classified (it was "network" but in the proxy's readiness, which
// special-cased it).
func TestConfigErrorType(t *testing.T) {
	_, err := source.New(source.Config{})
	if got, want := instrument.ErrorType(fmt.Errorf("route: %w", err)), telemetry.ErrorInvalidConfig; got != want {
		t.Errorf("ErrorType(New(Config{}) error) = %q, want %q", got, want)
	}
}
