package source

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/safehttp"
)

// Redaction: every exported type of this package that holds a secret
// prints and logs itself without it. Token's, Config's and TokenEvent's
// methods sit beside their types; the others are here.

const redacted = "[REDACTED]"

// redact returns "[REDACTED]" for a non-empty secret.
func redact(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// formatRedacted writes s for any verb, quoting it for %q.
func formatRedacted(f fmt.State, verb rune, s string) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", s)
		return
	}
	_, _ = f.Write([]byte(s))
}

// String describes s without a secret: the provider, the token endpoint
// (its query values redacted), the grant, the client id and whether a
// token is cached. It takes no lock.
func (s *CachedSource) String() string {
	if s == nil {
		return "source.CachedSource(nil)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "source.CachedSource{Provider: %s, TokenURL: %s, Grant: %s",
		s.r.p.Name, redactURL(s.r.tokenURL), s.r.grant)
	if s.r.cfg.ClientID != "" {
		fmt.Fprintf(&b, ", ClientID: %q", s.r.cfg.ClientID)
	}
	if e := s.cur.Load(); e != nil {
		b.WriteString(", Token: ")
		b.WriteString(e.tok.String())
	}
	if s.closeCtx.Err() != nil {
		b.WriteString(", Closed")
	}
	b.WriteString("}")
	return b.String()
}

// GoString is String, so %#v shows no secret.
func (s *CachedSource) GoString() string { return s.String() }

// Format implements fmt.Formatter: every verb prints String.
func (s *CachedSource) Format(f fmt.State, verb rune) { formatRedacted(f, verb, s.String()) }

// LogValue implements slog.LogValuer without a secret.
func (s *CachedSource) LogValue() slog.Value {
	if s == nil {
		return slog.StringValue("source.CachedSource(nil)")
	}
	attrs := []slog.Attr{
		slog.String("provider", s.r.p.Name),
		slog.String("token_url", redactURL(s.r.tokenURL)),
		slog.String("grant_type", s.r.grant),
		slog.String("client_id", s.r.cfg.ClientID),
	}
	if e := s.cur.Load(); e != nil {
		attrs = append(attrs, slog.Any("token", e.tok))
	}
	return slog.GroupValue(attrs...)
}

// String describes t without a secret.
func (t StoredToken) String() string {
	return "source.StoredToken{Token: " + t.Token.String() + ", Obtained: " + t.Obtained.Format(time.RFC3339) + "}"
}

// GoString is String, so %#v shows no secret.
func (t StoredToken) GoString() string { return t.String() }

// Format implements fmt.Formatter: every verb prints String.
func (t StoredToken) Format(f fmt.State, verb rune) { formatRedacted(f, verb, t.String()) }

// LogValue implements slog.LogValuer without a secret.
func (t StoredToken) LogValue() slog.Value {
	return slog.GroupValue(slog.Any("token", t.Token), slog.Time("obtained", t.Obtained))
}

// String describes m without a secret: how many tokens and locks it holds.
func (m *MemoryStore) String() string {
	if m == nil {
		return "source.MemoryStore(nil)"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return fmt.Sprintf("source.MemoryStore{Tokens: %d, Locks: %d}", len(m.tokens), len(m.locks))
}

// GoString is String, so %#v shows no secret.
func (m *MemoryStore) GoString() string { return m.String() }

// Format implements fmt.Formatter: every verb prints String.
func (m *MemoryStore) Format(f fmt.State, verb rune) { formatRedacted(f, verb, m.String()) }

// LogValue implements slog.LogValuer without a secret.
func (m *MemoryStore) LogValue() slog.Value { return slog.StringValue(m.String()) }

// redactURL hides a URL's password and query values (see safehttp.RedactURL).
func redactURL(s string) string { return safehttp.RedactURL(s, "REDACTED") }

// String describes r without a secret: the grant, the field names with the
// values of public fields only (grant_type, client_id, username, scope),
// and the header names. Params and Header hold the request's secrets (a
// client secret, a password, an assertion, a refresh or subject token).
func (r TokenRequest) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "source.TokenRequest{Grant: %q, Params: {", r.Grant)
	for i, k := range slices.Sorted(maps.Keys(r.Params)) {
		if i > 0 {
			b.WriteString(", ")
		}
		if slices.Contains(publicParams, k) {
			fmt.Fprintf(&b, "%s: %v", k, r.Params[k])
		} else {
			b.WriteString(k + ": " + redacted)
		}
	}
	b.WriteString("}, Header: [")
	b.WriteString(strings.Join(slices.Sorted(maps.Keys(r.Header)), " "))
	b.WriteString("]}")
	return b.String()
}

// GoString is String, for %#v.
func (r TokenRequest) GoString() string { return r.String() }

// Format writes String for every verb, so no verb prints a secret.
func (r TokenRequest) Format(f fmt.State, verb rune) { formatRedacted(f, verb, r.String()) }

// LogValue is String, for log/slog.
func (r TokenRequest) LogValue() slog.Value { return slog.StringValue(r.String()) }

// MarshalJSON encodes String, so no encoding of r shows a secret.
func (r TokenRequest) MarshalJSON() ([]byte, error) { return json.Marshal(r.String()) }
