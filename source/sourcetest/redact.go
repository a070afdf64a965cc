package sourcetest

import (
	"fmt"
	"log/slog"
)

// Options and Server hold the credentials they accept: they print and log
// themselves without them.

// String describes o without its secrets.
func (o Options) String() string {
	return fmt.Sprintf("sourcetest.Options{ClientID: %q, ClientSecret: %s, Username: %q, Password: %s, OTPs: %d, Lifetime: %v, Latency: %v, RefreshTokens: %t, RequireOrigin: %q, TLS: %t}",
		o.ClientID, redact(o.ClientSecret), o.Username, redact(o.Password), len(o.OTPs), o.Lifetime, o.Latency, o.RefreshTokens, o.RequireOrigin, o.TLS)
}

// GoString is String, so %#v shows no secret.
func (o Options) GoString() string { return o.String() }

// Format implements fmt.Formatter: every verb prints String.
func (o Options) Format(f fmt.State, verb rune) { formatString(f, verb, o.String()) }

// LogValue implements slog.LogValuer without the secrets.
func (o Options) LogValue() slog.Value { return slog.StringValue(o.String()) }

// String describes s without the credentials it accepts or the tokens it
// issued.
func (s *Server) String() string {
	if s == nil {
		return "sourcetest.Server(nil)"
	}
	return fmt.Sprintf("sourcetest.Server{Provider: %s, TokenURL: %s}", s.Provider, s.TokenURL)
}

// GoString is String, so %#v shows no secret.
func (s *Server) GoString() string { return s.String() }

// Format implements fmt.Formatter: every verb prints String.
func (s *Server) Format(f fmt.State, verb rune) { formatString(f, verb, s.String()) }

// LogValue implements slog.LogValuer without a secret.
func (s *Server) LogValue() slog.Value { return slog.StringValue(s.String()) }

func redact(s string) string {
	if s == "" {
		return `""`
	}
	return "[REDACTED]"
}

func formatString(f fmt.State, verb rune, s string) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", s)
		return
	}
	_, _ = f.Write([]byte(s))
}
