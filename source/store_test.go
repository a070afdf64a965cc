package source_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
	"github.com/tokenhttp/tokenhttp/source/storetest"
)

// TestMemoryStoreConformance runs the Store contract over a MemoryStore
// shared by every source of a scenario.
func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.NewStore {
		m := source.NewMemoryStore()
		return func(*testing.T) source.Store { return m }
	})
}

// brokenStore fails every operation, like a Redis that is down.
type brokenStore struct{ calls atomic.Int64 }

var errDown = errors.New("store down")

func (b *brokenStore) Load(context.Context, string) (*source.StoredToken, error) {
	b.calls.Add(1)
	return nil, errDown
}
func (b *brokenStore) Save(context.Context, string, source.StoredToken) error {
	b.calls.Add(1)
	return errDown
}
func (b *brokenStore) Delete(context.Context, string, *source.Token) error {
	b.calls.Add(1)
	return errDown
}
func (b *brokenStore) Lock(context.Context, string, time.Duration) (func(), bool, error) {
	b.calls.Add(1)
	return nil, false, errDown
}
func (b *brokenStore) Wait(context.Context, string, time.Duration) {}

// A store that fails never fails a caller: the source fetches on its own.
func TestStoreDownFallsBack(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	emu := sourcetest.NewStandard(sourcetest.Options{})
	defer emu.Close()
	store := &brokenStore{}
	src := storetest.NewSource(t, emu, store, nil)
	tok, err := src.Token(context.Background())
	if err != nil {
		t.Fatalf("Token with the store down: %v", err)
	}
	if !src.Invalidate(tok) {
		t.Fatal("Invalidate = false")
	}
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatalf("Token after Invalidate with the store down: %v", err)
	}
	if got, want := emu.TokenRequests(), 2; got != want {
		t.Errorf("token requests = %d, want %d", got, want)
	}
	if store.calls.Load() == 0 {
		t.Error("the store was never asked")
	}
}

// When the stored token nears its end, the sharer that renews it uses the
// fleet's refresh token, even if it never had one itself.
func TestStoreSharedRefreshToken(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	emu := sourcetest.NewStandard(sourcetest.Options{RefreshTokens: true, Lifetime: 2 * time.Second})
	defer emu.Close()
	store := source.NewMemoryStore()
	pw := func(c *source.Config) {
		c.GrantType, c.Username, c.Password = source.Password, sourcetest.DefaultUsername, sourcetest.DefaultPassword
		c.RefreshAhead = time.Second
	}
	a := storetest.NewSource(t, emu, store, pw)
	ctx := context.Background()
	first, err := a.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := storetest.NewSource(t, emu, store, pw)
	if got, _ := b.Token(ctx); got.AccessToken != first.AccessToken {
		t.Fatal("b did not take the stored token")
	}
	a.Close() // only b renews from now on
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		tok, err := b.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tok.AccessToken != first.AccessToken {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got, want := emu.Requests("password"), 1; got != want {
		t.Errorf("password grants = %d, want %d", got, want)
	}
	if got := emu.Requests("refresh_token"); got < 1 {
		t.Errorf("refresh_token grants = %d, want at least 1 (b used the fleet's refresh token)", got)
	}
}
