package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenhttp/tokenhttp/internal/testsupport"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/redisstore"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
	"github.com/tokenhttp/tokenhttp/source/storetest"
)

// checkLeaks is testsupport.CheckLeaks: call it first.
func checkLeaks(t *testing.T) { t.Helper(); testsupport.CheckLeaks(t) }

// ctxTimeout returns a context that ends after d, canceled when t ends.
func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newClient returns a client of the Redis at addr that heeds context
// deadlines, closed when t ends.
func newClient(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newStore returns a Store over c or fails t.
func newStore(t testing.TB, c redis.UniversalClient, opts ...redisstore.Option) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(c, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// newEmu starts a Standard emulator with o, closed when t ends.
func newEmu(t testing.TB, o sourcetest.Options) *sourcetest.Server {
	emu := sourcetest.NewStandard(o)
	t.Cleanup(emu.Close)
	return emu
}

// newSource returns a client_credentials source for tokenURL over store (nil:
// none), with mod (if not nil) applied to its Config, closed when t ends.
func newSource(t testing.TB, tokenURL string, store source.Store, mod func(*source.Config)) *source.CachedSource {
	t.Helper()
	return storetest.NewSource(t, &sourcetest.Server{TokenURL: tokenURL}, store, mod)
}

// replica returns a source as one replica of a service would make it: its
// own Redis client and Store over the Redis at addr.
func replica(t testing.TB, emu *sourcetest.Server, addr string, mod func(*source.Config), opts ...redisstore.Option) *source.CachedSource {
	t.Helper()
	store := newStore(t, newClient(t, addr), append([]redisstore.Option{redisstore.WithKey(key32)}, opts...)...)
	return newSource(t, emu.TokenURL, store, mod)
}
