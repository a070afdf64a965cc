package source_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// eventLog records the events a hook is told.
type eventLog struct {
	mu  sync.Mutex
	evs []source.TokenEvent
}

func (l *eventLog) add(ev source.TokenEvent) { l.mu.Lock(); l.evs = append(l.evs, ev); l.mu.Unlock() }

func (l *eventLog) kinds() []source.TokenEventKind {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []source.TokenEventKind
	for _, e := range l.evs {
		out = append(out, e.Kind)
	}
	return out
}

func (l *eventLog) has(k source.TokenEventKind) bool {
	for _, x := range l.kinds() {
		if x == k {
			return true
		}
	}
	return false
}

// TestHookEvents: the hook is told of a fetch, a rotated refresh token, an
// invalidation, a renewal ahead, a token taken from the store and a store
// fallback; without WithToken no event holds a secret. It runs in a
// synctest bubble, on fake time.
func TestHookEvents(t *testing.T) {
	leakCheck(t)
	srv := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{RefreshTokens: true, Lifetime: 2 * time.Second})
	synctest.Test(t, func(t *testing.T) {
		var log eventLog
		cfg := source.Config{TokenURL: srv.TokenURL, GrantType: source.Password, Username: sourcetest.DefaultUsername, Password: sourcetest.DefaultPassword,
			ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret, HTTPClient: memClient(srv.Config.Handler),
			Hook: source.TokenHook{OnChange: log.add}, RefreshAhead: 1500 * time.Millisecond, Store: source.NewMemoryStore()}
		src := newSource(t, cfg)
		tok, err := src.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !log.has(source.TokenFetched) || !log.has(source.RefreshTokenRotated) {
			t.Fatalf("after the first fetch: %v", log.kinds())
		}
		src.Invalidate(tok)
		if !log.has(source.TokenInvalidated) {
			t.Fatalf("after Invalidate: %v", log.kinds())
		}
		if _, err := src.Token(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1200 * time.Millisecond) // past the refresh time (half the lifetime at most)
		src.Token(context.Background())
		deadline := time.Now().Add(5 * time.Second)
		for !log.has(source.TokenRenewedAhead) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !log.has(source.TokenRenewedAhead) {
			t.Fatalf("no renewal ahead: %v", log.kinds())
		}
		src.Close()
		other := newSource(t, cfg)
		if _, err := other.Token(context.Background()); err != nil || !log.has(source.TokenFromStore) {
			t.Fatalf("second sharer: %v, %v", err, log.kinds())
		}
		broken := cfg
		broken.Store = &brokenStore{}
		if _, err := newSource(t, broken).Token(context.Background()); err != nil || !log.has(source.StoreFallback) {
			t.Fatalf("broken store: %v, %v", err, log.kinds())
		}
		log.mu.Lock()
		defer log.mu.Unlock()
		for _, ev := range log.evs {
			if ev.Token != nil || ev.RefreshToken != "" {
				t.Errorf("%v carries a token without WithToken", ev.Kind)
			}
		}
	})
}

// TestHookWithToken: with WithToken the events carry the token, and the
// event's String, %v, JSON and LogValue still show none of it.
func TestHookWithToken(t *testing.T) {
	srv := sourcetest.NewStandard(sourcetest.Options{RefreshTokens: true})
	defer srv.Close()
	var log eventLog
	src := newGrantSource(t, source.Config{TokenURL: srv.TokenURL, GrantType: source.Password, Username: sourcetest.DefaultUsername,
		Password: sourcetest.DefaultPassword, ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret,
		HTTPClient: srv.Client(), Hook: source.TokenHook{OnChange: log.add, WithToken: true}})
	tok, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	var rotated bool
	for _, ev := range log.evs {
		if ev.Token != tok {
			t.Errorf("%v: Token not the new token", ev.Kind)
		}
		if ev.Kind == source.RefreshTokenRotated {
			rotated = ev.RefreshToken == tok.RefreshToken
		}
		var b strings.Builder
		js, _ := json.Marshal(ev)
		slog.New(slog.NewTextHandler(&b, nil)).Info("x", "ev", ev)
		for _, s := range []string{ev.String(), fmt.Sprintf("%v %+v %#v %s", ev, ev, ev, ev), string(js), b.String()} {
			if strings.Contains(s, tok.AccessToken) || strings.Contains(s, tok.RefreshToken) {
				t.Errorf("%v shows a token: %s", ev.Kind, s)
			}
		}
	}
	if !rotated {
		t.Error("no rotated event with the refresh token")
	}
}
