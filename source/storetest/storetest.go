// Package storetest checks that a source.Store keeps the contract that
// sources rely on: it runs several sources over the Store against
// sourcetest emulators, as the replicas of a service would, and checks
// that they share one token, replace only a rejected one, never resend a
// rotated refresh token, survive a sharer that died holding the fetch
// lock, and back off together when every token is rejected.
//
// A Store's tests call Run with a function that makes fresh backing data
// for each scenario and returns the NewStore that opens it, as this
// package's own test does for a source.MemoryStore:
//
//	func TestRunMemoryStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.NewStore {
//			m := source.NewMemoryStore() // the scenario's backing data
//			return func(*testing.T) source.Store { return m }
//		})
//	}
//
// A Store over a server opens a client per call of NewStore instead, and
// separates scenarios by a key prefix (see redisstore's
// TestStoreConformance).
package storetest

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// NewStore returns a Store over one scenario's backing data. It is called
// with the scenario's t, once per source; the Stores it returns share
// their data with each other and with no other scenario.
type NewStore func(t *testing.T) source.Store

// Run runs every scenario as a subtest of t. It calls newScenario once per
// scenario, with the subtest's t, for the NewStore over fresh backing
// data.
func Run(t *testing.T, newScenario func(t *testing.T) NewStore) {
	for _, sc := range []struct {
		name string
		run  func(t *testing.T, newStore NewStore)
	}{
		{"SharedByManySources", sharedByManySources},
		{"InvalidateOnlyTheStoredOne", invalidateOnlyTheStoredOne},
		{"KeySeparatesConfigs", keySeparatesConfigs},
		{"NeverResendsARotatedRefreshToken", neverResendsARotatedRefreshToken},
		{"CrashedLockHolder", crashedLockHolder},
		{"CrashedLockHolderTakeover", crashedLockHolderTakeover},
		{"FleetBacksOffUnderRejections", fleetBacksOffUnderRejections},
	} {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, newScenario(t)) })
	}
}

// NewSource returns a client_credentials source for emu's TokenURL over
// store (nil: none), with mod (if not nil) applied to its Config, closed
// when t ends.
// It fails t if source.New refuses the Config. It serves a Store's own
// further scenarios.
func NewSource(t testing.TB, emu *sourcetest.Server, store source.Store, mod func(*source.Config)) *source.CachedSource {
	t.Helper()
	cfg := source.Config{TokenURL: emu.TokenURL, ClientID: sourcetest.DefaultClientID,
		ClientSecret: sourcetest.DefaultClientSecret, Store: store}
	if mod != nil {
		mod(&cfg)
	}
	src, err := source.New(cfg)
	if err != nil {
		t.Fatalf("source.New: %v", err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src
}

func newEmu(t *testing.T, newEmulator func(sourcetest.Options) *sourcetest.Server, o sourcetest.Options) *sourcetest.Server {
	emu := newEmulator(o)
	t.Cleanup(emu.Close)
	return emu
}

// Sources starting cold at once make one token request between them, and
// a source started later takes the stored token.
func sharedByManySources(t *testing.T, newStore NewStore) {
	emu := newEmu(t, sourcetest.NewStandard, sourcetest.Options{Latency: 50 * time.Millisecond})
	var srcs []*source.CachedSource
	for range 8 {
		srcs = append(srcs, NewSource(t, emu, newStore(t), nil))
	}
	toks := make([]*source.Token, 64)
	errs := make([]error, len(toks))
	var wg sync.WaitGroup
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
			t.Fatalf("caller %d: Token = another token than caller 0's, want one token for all", i)
		}
	}
	if got, want := emu.TokenRequests(), 1; got != want {
		t.Errorf("token requests = %d, want %d", got, want)
	}
	late := NewSource(t, emu, newStore(t), nil)
	tok, err := late.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := emu.TokenRequests(), 1; tok.AccessToken != toks[0].AccessToken || got != want {
		t.Errorf("after a late source: token requests = %d, want %d (the stored token)", got, want)
	}
}

// A rejected token is replaced in the store only while it is the stored
// one: the second source to see the 401 takes the newer token.
func invalidateOnlyTheStoredOne(t *testing.T, newStore NewStore) {
	emu := newEmu(t, sourcetest.NewStandard, sourcetest.Options{})
	a, b := NewSource(t, emu, newStore(t), nil), NewSource(t, emu, newStore(t), nil)
	ctx := context.Background()
	old, err := a.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Token(ctx); got == nil || got.AccessToken != old.AccessToken {
		t.Fatal("b.Token = another token than a's, want the stored one")
	}
	emu.RevokeAll()
	if !a.Invalidate(old) {
		t.Fatal("a.Invalidate(old) = false")
	}
	fresh, err := a.Token(ctx)
	if err != nil || fresh.AccessToken == old.AccessToken {
		t.Fatalf("a.Token after Invalidate = same token %t, %v; want a new token", err == nil && fresh.AccessToken == old.AccessToken, err)
	}
	bOld, _ := b.Token(ctx) // b still holds the old token in memory
	if !b.Invalidate(bOld) {
		t.Fatal("b.Invalidate(old) = false")
	}
	got, err := b.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessToken != fresh.AccessToken {
		t.Error("b.Token after Invalidate = another token than a's, want the newer stored one")
	}
	if got, want := emu.TokenRequests(), 2; got != want {
		t.Errorf("token requests = %d, want %d", got, want)
	}
}

// An API that rejects every token, each source acting as the Transport
// does on a 401 (Invalidate, a new token, and RejectedAfterRenewal when the
// retry with it gets a 401 too): the first rejection is believed and the
// token replaced once, through the store; the replacement, rejected too,
// is kept by every sharer, so the fleet makes two token requests, not one
// per source per rejection.
func fleetBacksOffUnderRejections(t *testing.T, newStore NewStore) {
	emu := newEmu(t, sourcetest.NewStandard, sourcetest.Options{})
	keys := &recorder{Store: newStore(t)}
	srcs := []*source.CachedSource{NewSource(t, emu, keys, nil)}
	for range 3 {
		srcs = append(srcs, NewSource(t, emu, newStore(t), nil))
	}
	ctx := context.Background()
	for round := range 5 {
		for i, src := range srcs {
			tok, err := src.Token(ctx)
			if err != nil {
				t.Fatalf("round %d, source %d: %v", round, i, err)
			}
			src.Invalidate(tok) // the API said 401
			fresh, err := src.Token(ctx)
			if err != nil {
				t.Fatalf("round %d, source %d, after Invalidate: %v", round, i, err)
			}
			if fresh != tok {
				src.RejectedAfterRenewal(fresh) // the retry got a 401 too
			}
		}
	}
	if got, want := emu.TokenRequests(), 2; got != want {
		t.Errorf("token requests = %d, want %d (the first token and one replacement for the fleet)", got, want)
	}
	// The replacement is stored with the rejections before it, for every
	// sharer to back off alike.
	st, err := keys.Load(ctx, keys.key(t))
	if err != nil || st == nil {
		t.Fatalf("Load = %v, %v; want the stored token", st, err)
	}
	if got, want := st.Rejections, 1; got != want {
		t.Errorf("stored Rejections = %d, want %d", got, want)
	}
}

// Configs that differ in what decides the token (here an audience) never
// share a token.
func keySeparatesConfigs(t *testing.T, newStore NewStore) {
	emu := newEmu(t, sourcetest.NewStandard, sourcetest.Options{})
	orders := NewSource(t, emu, newStore(t), func(c *source.Config) { c.EndpointParams = url.Values{"audience": {"orders"}} })
	billing := NewSource(t, emu, newStore(t), func(c *source.Config) { c.EndpointParams = url.Values{"audience": {"billing"}} })
	a, err := orders.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := billing.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a.AccessToken == b.AccessToken {
		t.Error("billing.Token = the orders source's token, want its own")
	}
	if got, want := emu.TokenRequests(), 2; got != want {
		t.Errorf("token requests = %d, want %d", got, want)
	}
}

// A source renews only with the refresh token stored for all sharers, never
// its own copy, which another sharer may have rotated: with reuse detection
// on, resending it would revoke the whole token family.
func neverResendsARotatedRefreshToken(t *testing.T, newStore NewStore) {
	emu := newEmu(t, sourcetest.NewGestaoPlus, sourcetest.Options{})
	emu.RevokeOnRefreshReuse(true)
	cfg := func(c *source.Config) {
		c.Provider, c.ClientID, c.ClientSecret = source.GestaoPlus, "", ""
		c.Username, c.Password = sourcetest.DefaultUsername, sourcetest.DefaultPassword
	}
	ctx := context.Background()
	bStore := newStore(t)
	b := NewSource(t, emu, bStore, cfg)
	t0, err := b.Token(ctx) // b holds RT0
	if err != nil {
		t.Fatal(err)
	}
	keys := &recorder{Store: newStore(t)}
	a := NewSource(t, emu, keys, cfg)
	aT0, _ := a.Token(ctx)
	if aT0 == nil || aT0.AccessToken != t0.AccessToken {
		t.Fatal("a.Token = another token than b's, want the stored one")
	}
	emu.Revoke(t0.AccessToken) // the API rejects T0: a renews with the stored RT0
	if !a.Invalidate(aT0) {
		t.Fatal("a.Invalidate(T0) = false")
	}
	t1, err := a.Token(ctx)
	if err != nil || t1.AccessToken == t0.AccessToken {
		t.Fatalf("a's renewal: %v", err)
	}
	// The stored token disappears (expired, say); b, which still holds RT0
	// of its own, must not send it.
	if err := bStore.Delete(ctx, keys.key(t), t1); err != nil {
		t.Fatal(err)
	}
	if !b.Invalidate(t0) {
		t.Fatal("b.Invalidate(T0) = false")
	}
	if _, err := b.Token(ctx); err != nil {
		t.Fatalf("b's renewal: %v", err)
	}
	if got := emu.Requests("refresh_token"); got != 1 {
		t.Errorf("refresh_token requests = %d, want 1 (RT0 sent once, by a)", got)
	}
	req, _ := http.NewRequest(http.MethodGet, emu.ResourceURL, nil)
	req.Header.Set("Authorization", t1.HeaderValue())
	client := emu.Client()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	client.CloseIdleConnections()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("T1 at the API: status = %d, want 200 (the token family was revoked)", resp.StatusCode)
	}
}

// A sharer that took the fetch lock and died holds it until its ttl;
// then another fetches.
func crashedLockHolder(t *testing.T, newStore NewStore) {
	const ttl = 400 * time.Millisecond
	emu := newEmu(t, sourcetest.NewStandard, sourcetest.Options{})
	diedHoldingTheLock(t, emu, newStore, ttl)
	src := NewSource(t, emu, newStore(t), func(c *source.Config) { c.FetchTimeout = 5 * time.Second })
	start := time.Now()
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < ttl-50*time.Millisecond {
		t.Errorf("fetched after %v, before the dead holder's lock expired", took)
	}
	if got, want := emu.TokenRequests(), 2; got != want {
		t.Errorf("token requests = %d, want %d", got, want)
	}
}

// A sharer that took the fetch lock for as long as the waiter's whole
// fetch timeout and died does not fail the waiter: after half its fetch
// timeout the waiter takes over and fetches on its own.
func crashedLockHolderTakeover(t *testing.T, newStore NewStore) {
	const fetchTimeout = time.Second
	emu := newEmu(t, sourcetest.NewStandard, sourcetest.Options{})
	diedHoldingTheLock(t, emu, newStore, 10*fetchTimeout)
	src := NewSource(t, emu, newStore(t), func(c *source.Config) { c.FetchTimeout = fetchTimeout })
	start := time.Now()
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatalf("Token while a crashed sharer holds the lock: %v", err)
	}
	if took := time.Since(start); took > fetchTimeout {
		t.Errorf("took over after %v, want within the fetch timeout %v", took, fetchTimeout)
	}
	if got, want := emu.TokenRequests(), 2; got != want {
		t.Errorf("token requests = %d, want %d", got, want)
	}
}

// diedHoldingTheLock stores a token from emu, then, as a sharer that
// died, deletes it and takes the fetch lock for ttl, never to unlock it.
// The lock is taken from the moment diedHoldingTheLock returns.
func diedHoldingTheLock(t *testing.T, emu *sourcetest.Server, newStore NewStore, ttl time.Duration) {
	t.Helper()
	keys := &recorder{Store: newStore(t)}
	tok, err := NewSource(t, emu, keys, nil).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dead := newStore(t)
	ctx := context.Background()
	waitStored(t, dead, keys.key(t), tok)
	if err := dead.Delete(ctx, keys.key(t), tok); err != nil {
		t.Fatal(err)
	}
	// The source unlocks after it saves: the lock may still be its own.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		_, ok, err := dead.Lock(ctx, keys.key(t), ttl)
		if err != nil {
			t.Fatalf("Lock: %v", err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("Lock = false after 5 s, want the lock the source released")
		}
	}
}

// waitStored waits until store holds tok under key: a source saves after
// it hands the token out.
func waitStored(t *testing.T, store source.Store, key string, tok *source.Token) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if st, err := store.Load(context.Background(), key); err == nil && st != nil && st.Token != nil && st.Token.AccessToken == tok.AccessToken {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the store never held the token")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recorder is a Store that remembers the key its source uses.
type recorder struct {
	source.Store
	mu   sync.Mutex
	last string
}

// Load records key, then loads it from the wrapped Store.
func (r *recorder) Load(ctx context.Context, key string) (*source.StoredToken, error) {
	r.mu.Lock()
	r.last = key
	r.mu.Unlock()
	return r.Store.Load(ctx, key)
}

func (r *recorder) key(t *testing.T) string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == "" {
		t.Fatal("the source never asked the store")
	}
	return r.last
}
