package source

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/instrument"
)

// TokenEventKind says what changed.
type TokenEventKind int

// The kinds of TokenEvent.
const (
	// TokenFetched: a token was fetched from the endpoint because none
	// was usable (cold start, expiry, rejection).
	TokenFetched TokenEventKind = iota + 1
	// TokenRenewedAhead: a token was fetched ahead of expiry.
	TokenRenewedAhead
	// TokenInvalidated: Invalidate dropped the current token.
	TokenInvalidated
	// RefreshTokenRotated: a fetch obtained a new refresh token. TokenHook.Persist
	// runs for it before the new access token is served.
	RefreshTokenRotated
	// TokenFromStore: the token was taken from the Store.
	TokenFromStore
	// StoreFallback: the Store failed and the source went on without it
	// (Op says which call).
	StoreFallback
)

var kindNames = map[TokenEventKind]string{
	TokenFetched: "fetched", TokenRenewedAhead: "renewed_ahead", TokenInvalidated: "invalidated",
	RefreshTokenRotated: "refresh_token_rotated", TokenFromStore: "from_store", StoreFallback: "store_fallback",
}

// String returns the kind's snake_case name.
func (k TokenEventKind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("TokenEventKind(%d)", int(k))
}

// TokenEvent describes a change of a source's token. Without
// TokenHook.WithToken it holds no secret: Token and RefreshToken are
// empty. Its String, Format, LogValue and MarshalJSON never show them.
type TokenEvent struct {
	Kind     TokenEventKind
	Provider string    // the Provider's Name
	Source   string    // Config.Name or the source's identity hash
	Grant    string    // the grant of the fetch, when one was made
	Expiry   time.Time // the new token's expiry; zero when none or unknown
	Op       string    // StoreFallback: the store call that failed ("load", "lock", "save", "delete", "wait")
	// Token is the new token (or the invalidated one), only with
	// TokenHook.WithToken or for TokenHook.Persist.
	Token *Token
	// RefreshToken is the new refresh token (RefreshTokenRotated), only
	// with TokenHook.WithToken or for TokenHook.Persist.
	RefreshToken string
}

type redactedEvent struct {
	Kind         string    `json:"kind"`
	Provider     string    `json:"provider"`
	Source       string    `json:"source,omitempty"`
	Grant        string    `json:"grant,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	Op           string    `json:"op,omitempty"`
	Token        string    `json:"token,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
}

func (e TokenEvent) redacted() redactedEvent {
	r := redactedEvent{Kind: e.Kind.String(), Provider: e.Provider, Source: e.Source, Grant: e.Grant, Expiry: e.Expiry, Op: e.Op,
		RefreshToken: redact(e.RefreshToken)}
	if e.Token != nil {
		r.Token = redact(e.Token.AccessToken)
	}
	return r
}

// String describes e without a secret.
func (e TokenEvent) String() string {
	b, _ := json.Marshal(e.redacted())
	return "source.TokenEvent" + string(b)
}

// GoString is String.
func (e TokenEvent) GoString() string { return e.String() }

// Format prints the redacted String for every verb.
func (e TokenEvent) Format(f fmt.State, verb rune) { formatRedacted(f, verb, e.String()) }

// MarshalJSON encodes e redacted.
func (e TokenEvent) MarshalJSON() ([]byte, error) { return json.Marshal(e.redacted()) }

// LogValue implements slog.LogValuer without a secret.
func (e TokenEvent) LogValue() slog.Value {
	r := e.redacted()
	return slog.GroupValue(slog.String("kind", r.Kind), slog.String("provider", r.Provider),
		slog.String("source", r.Source), slog.String("grant", r.Grant), slog.Time("expiry", r.Expiry),
		slog.String("op", r.Op))
}

// TokenHook is told of a source's token changes (Config.Hook).
type TokenHook struct {
	// OnChange, if set, is called with every event, synchronously from
	// the fetch (or Invalidate): it must not block. A panic in it is
	// recovered.
	OnChange func(TokenEvent)
	// Persist, if set, is called when a fetch obtained a new refresh token
	// (RefreshTokenRotated), before the new access token is served or
	// stored, with Token and RefreshToken filled in: save the refresh
	// token where the next start reads it (Config.RefreshToken). Its
	// error (or panic) fails the fetch: that token is not served, so a
	// crash cannot lose the refresh token family. The next fetch uses the
	// new refresh token.
	Persist func(ctx context.Context, ev TokenEvent) error
	// WithToken puts Token and RefreshToken in the events OnChange gets.
	WithToken bool
}

// emit tells the hook of an event; tok may be nil.
func (s *CachedSource) emit(kind TokenEventKind, grant string, tok *Token, op string) {
	h := s.r.cfg.Hook
	if h.OnChange == nil {
		return
	}
	ev := TokenEvent{Kind: kind, Provider: s.r.p.Name, Source: s.id, Grant: grant, Op: op}
	if tok != nil {
		ev.Expiry = tok.Expiry
		if h.WithToken {
			ev.Token = tok
			if kind == RefreshTokenRotated {
				ev.RefreshToken = tok.RefreshToken
			}
		}
	}
	_ = callHook("Config.Hook.OnChange", s.ep.scrub, func() error { h.OnChange(ev); return nil })
}

// rotated runs after a fetch with grant got tok, whose refresh token
// replaces prev: Persist first (its error fails the fetch), then OnChange.
func (s *CachedSource) rotated(ctx context.Context, grant string, tok *Token, prev string) error {
	if tok.RefreshToken == "" || tok.RefreshToken == prev {
		return nil
	}
	if p := s.r.cfg.Hook.Persist; p != nil {
		ev := TokenEvent{Kind: RefreshTokenRotated, Provider: s.r.p.Name, Source: s.id, Grant: grant,
			Expiry: tok.Expiry, Token: tok, RefreshToken: tok.RefreshToken}
		scrub := s.ep.scrub.with(tok.AccessToken, tok.RefreshToken, prev)
		if err := callHook("Config.Hook.Persist", scrub, func() error { return p(ctx, ev) }); err != nil {
			return err
		}
	}
	s.emit(RefreshTokenRotated, grant, tok, "")
	return nil
}

// storeFallback records that a store call failed, in telemetry and to the
// hook.
func (s *CachedSource) storeFallback(ctx context.Context, rec *instrument.Fetch, op string) {
	s.tel.StoreFallback(ctx, rec, s.r.p.Name, op)
	s.emit(StoreFallback, "", nil, op)
}
