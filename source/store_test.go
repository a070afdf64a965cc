package source_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/retry"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
	"github.com/tokenhttp/tokenhttp/source/storetest"
)

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
	leakCheck(t)
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
	store := &brokenStore{}
	src := storetest.NewSource(t, emu, store, nil)
	tok, err := src.Token(context.Background())
	if err != nil {
		t.Fatalf("Token with the store down: %v", err)
	}
	if !src.Invalidate(tok) {
		t.Fatal("Invalidate = false, want true")
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
	leakCheck(t)
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{RefreshTokens: true, Lifetime: 2 * time.Second})
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

// failSaveStore is a MemoryStore whose Save and Delete fail while fail is
// set.
type failSaveStore struct {
	*source.MemoryStore
	fail  atomic.Bool
	mu    sync.Mutex // guards key
	key   string
	saves atomic.Int64 // Saves that succeeded
}

func (f *failSaveStore) Load(ctx context.Context, key string) (*source.StoredToken, error) {
	f.mu.Lock()
	f.key = key
	f.mu.Unlock()
	return f.MemoryStore.Load(ctx, key)
}

func (f *failSaveStore) Save(ctx context.Context, key string, t source.StoredToken) error {
	if f.fail.Load() {
		return errDown
	}
	f.saves.Add(1)
	return f.MemoryStore.Save(ctx, key, t)
}

func (f *failSaveStore) Delete(ctx context.Context, key string, rejected *source.Token) error {
	if f.fail.Load() {
		return errDown
	}
	return f.MemoryStore.Delete(ctx, key, rejected)
}

// holds waits until the store holds tok (its Save runs in the
// background, after Token returned).
func (f *failSaveStore) holds(t *testing.T, tok *source.Token) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		key := f.key
		f.mu.Unlock()
		if st, _ := f.MemoryStore.Load(context.Background(), key); st != nil && st.Token.AccessToken == tok.AccessToken {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the store never held the token")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// After a Save fails, the store still holds a token the API rejected
// earlier: the source never serves it again, however many tokens were
// rejected since.
func TestStoreNeverReservesARejectedToken(t *testing.T) {
	leakCheck(t)
	emu := newEmulator(t, sourcetest.NewStandard, sourcetest.Options{})
	store := &failSaveStore{MemoryStore: source.NewMemoryStore()}
	src := storetest.NewSource(t, emu, store, nil)
	ctx := context.Background()
	t1, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	store.holds(t, t1)
	store.fail.Store(true) // from now on the store keeps t1
	rejected := map[string]bool{}
	tok := t1
	for range 4 {
		rejected[tok.AccessToken] = true
		if !src.Invalidate(tok) {
			t.Fatal("Invalidate = false, want true")
		}
		if tok, err = src.Token(ctx); err != nil {
			t.Fatal(err)
		}
		if rejected[tok.AccessToken] {
			t.Fatalf("after %d rejections the source served a rejected token again", len(rejected))
		}
	}
}

// gestaoPlusStore configures a gestao.plus source (password grant,
// rotating refresh tokens) with one attempt per fetch.
func gestaoPlusStore(c *source.Config) {
	c.Provider, c.ClientID, c.ClientSecret = source.GestaoPlus, "", ""
	c.Username, c.Password = sourcetest.DefaultUsername, sourcetest.DefaultPassword
	c.Retry = retry.Policy{MaxAttempts: 1}
}

// A refresh token this source rotated is never sent again, even when the
// rotation could not be saved and the store still holds it: the source
// falls back to the password grant, and the token family survives.
func TestStoreNeverResendsAnUnsavedRotation(t *testing.T) {
	storeNeverResends(t, "the rotated RT0 was sent again", func(emu *sourcetest.Server, src *source.CachedSource) {
		t1, err := src.Token(context.Background()) // RT0 rotated to RT1; the save fails
		if err != nil {
			t.Fatal(err)
		}
		if got := emu.Requests("refresh_token"); got != 1 {
			t.Fatalf("refresh_token requests = %d, want 1", got)
		}
		if !src.Invalidate(t1) {
			t.Fatal("Invalidate(T1) = false, want true")
		}
	})
}

// A refresh whose reply was lost (the connection reset after the request
// was sent) may have rotated the token: with a Store, as without one, it
// is never sent again, also when the store could not drop the token that
// holds it.
func TestStoreNeverResendsAnUnansweredRefresh(t *testing.T) {
	storeNeverResends(t, "the unanswered RT0 was sent again", func(emu *sourcetest.Server, src *source.CachedSource) {
		emu.ResetNext(1)
		if _, err := src.Token(context.Background()); err == nil {
			t.Fatal("Token with the refresh reply lost: no error")
		}
		if got := emu.Requests("refresh_token"); got != 1 {
			t.Fatalf("refresh_token requests = %d, want 1", got)
		}
	})
}

// storeNeverResends runs a gestao.plus source over a store whose saves
// fail once it holds T0 and RT0: refresh makes the fetch that sends RT0;
// the fetch after it must not send RT0 again (resent says what it means
// if it does) and must use the password grant.
func storeNeverResends(t *testing.T, resent string, refresh func(emu *sourcetest.Server, src *source.CachedSource)) {
	t.Helper()
	leakCheck(t)
	emu := newEmulator(t, sourcetest.NewGestaoPlus, sourcetest.Options{})
	emu.RevokeOnRefreshReuse(true)
	store := &failSaveStore{MemoryStore: source.NewMemoryStore()}
	src := storetest.NewSource(t, emu, store, gestaoPlusStore)
	ctx := context.Background()
	t0, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	store.holds(t, t0)
	store.fail.Store(true) // the store keeps T0 and RT0
	if !src.Invalidate(t0) {
		t.Fatal("Invalidate(T0) = false, want true")
	}
	refresh(emu, src)
	if _, err := src.Token(ctx); err != nil {
		t.Fatal(err)
	}
	if got := emu.Requests("refresh_token"); got != 1 {
		t.Errorf("refresh_token requests = %d, want 1: %s", got, resent)
	}
	if got := emu.Requests("password"); got != 2 {
		t.Errorf("password grants = %d, want 2 (the first, and the fallback)", got)
	}
}
