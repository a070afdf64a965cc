package source_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

func stNew(t *testing.T, emu *sourcetest.Server, store source.Store, mod func(*source.Config)) *source.CachedSource {
	t.Helper()
	cfg := source.Config{TokenURL: emu.TokenURL, ClientID: sourcetest.DefaultClientID,
		ClientSecret: sourcetest.DefaultClientSecret, Store: store}
	if mod != nil {
		mod(&cfg)
	}
	src, err := source.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	cs := src.(*source.CachedSource)
	t.Cleanup(func() { cs.Close() })
	return cs
}

// Sources sharing a store make one token request between them, also when
// they all start cold at once.
func TestStoreSharedByManySources(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	emu := sourcetest.NewStandard(sourcetest.Options{Latency: 50 * time.Millisecond})
	defer emu.Close()
	store := source.NewMemoryStore()
	var srcs []*source.CachedSource
	for range 8 {
		srcs = append(srcs, stNew(t, emu, store, nil))
	}
	var wg sync.WaitGroup
	toks := make([]*source.Token, 64)
	errs := make([]error, 64)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			toks[i], errs[i] = srcs[i%len(srcs)].Token(context.Background())
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
		if toks[i].AccessToken != toks[0].AccessToken {
			t.Fatalf("caller %d got another token", i)
		}
	}
	if got, want := emu.TokenRequests(), 1; got != want {
		t.Errorf("token requests = %d, want %d", got, want)
	}
	// A source started later takes the stored token.
	late := stNew(t, emu, store, nil)
	tok, err := late.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != toks[0].AccessToken || emu.TokenRequests() != 1 {
		t.Errorf("a late source fetched again: token requests = %d", emu.TokenRequests())
	}
}

// A rejected token is dropped from the store only if it is still the
// stored one: the second source to see the 401 takes the newer token.
func TestStoreInvalidateOnlyTheStoredOne(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	emu := sourcetest.NewStandard(sourcetest.Options{})
	defer emu.Close()
	store := source.NewMemoryStore()
	a, b := stNew(t, emu, store, nil), stNew(t, emu, store, nil)
	ctx := context.Background()
	old, _ := a.Token(ctx)
	if got, _ := b.Token(ctx); got.AccessToken != old.AccessToken {
		t.Fatal("b did not share a's token")
	}
	emu.RevokeAll()
	if !a.Invalidate(old) {
		t.Fatal("a.Invalidate(old) = false")
	}
	fresh, err := a.Token(ctx)
	if err != nil || fresh.AccessToken == old.AccessToken {
		t.Fatalf("a after Invalidate: %v, same token %v", err, err == nil && fresh.AccessToken == old.AccessToken)
	}
	bOld, _ := b.Token(ctx) // b still holds the old token locally
	if !b.Invalidate(bOld) {
		t.Fatal("b.Invalidate(old) = false")
	}
	got, err := b.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessToken != fresh.AccessToken {
		t.Errorf("b did not take the newer stored token")
	}
	if n := emu.TokenRequests(); n != 2 {
		t.Errorf("token requests = %d, want 2", n)
	}
	if st, _ := store.Load(ctx, "x"); st != nil {
		t.Errorf("an unknown key loaded a token")
	}
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
	src := stNew(t, emu, store, nil)
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

// A sharer that took the fetch lock and died holds it until its ttl; then
// another fetches.
func TestStoreCrashedLockHolder(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	emu := sourcetest.NewStandard(sourcetest.Options{})
	defer emu.Close()
	store := source.NewMemoryStore()
	src := stNew(t, emu, store, func(c *source.Config) { c.FetchTimeout = 5 * time.Second })
	// Take the lock under the key the source uses: find it by letting a
	// probe source store a token, then clear it.
	probe := stNew(t, emu, store, nil)
	tok, _ := probe.Token(context.Background())
	key := findKey(t, store, tok)
	if err := store.Delete(context.Background(), key, tok); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := store.Lock(context.Background(), key, 400*time.Millisecond); !ok { // never unlocked: the holder "crashed"
		t.Fatal("could not take the lock")
	}
	start := time.Now()
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 350*time.Millisecond {
		t.Errorf("fetched after %v, before the dead holder's lock expired", took)
	}
	if got, want := emu.TokenRequests(), 2; got != want {
		t.Errorf("token requests = %d, want %d", got, want)
	}
}

// findKey finds the store key holding tok (MemoryStore keys are the
// source's credential hash).
func findKey(t *testing.T, m *source.MemoryStore, tok *source.Token) string {
	t.Helper()
	key, ok := source.MemoryStoreKeyOf(m, tok)
	if !ok {
		t.Fatal("token not in the store")
	}
	return key
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
	a := stNew(t, emu, store, pw)
	ctx := context.Background()
	first, err := a.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := stNew(t, emu, store, pw)
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
