package source

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/instrument"
	"github.com/tokenhttp/tokenhttp/internal/safehttp"
	"github.com/tokenhttp/tokenhttp/telemetry"
)

// storeWait is the longest a source waits for another sharer's fetch
// between two looks at the store.
const storeWait = 250 * time.Millisecond

// storeTimeouter is implemented by a Store that bounds each of its calls
// (redisstore.Store): a flight spends at most that long in all its store
// calls together before it fetches on its own.
type storeTimeouter interface {
	Timeout() time.Duration
}

// storeBudget is the time a flight has left for store calls.
type storeBudget struct {
	left    time.Duration
	bounded bool // false: the store bounds its own calls
}

// call runs f on ctx bounded by what is left of b, and counts the time f
// took. It reports false, without calling f, when nothing is left.
func (b *storeBudget) call(ctx context.Context, f func(ctx context.Context)) bool {
	if !b.bounded {
		f(ctx)
		return true
	}
	if b.left <= 0 {
		return false
	}
	c, cancel := context.WithTimeout(ctx, b.left)
	defer cancel()
	start := time.Now()
	f(c)
	b.left -= time.Since(start)
	return true
}

// errStoreBudget is what a store call the budget did not allow returns.
var errStoreBudget = errors.New("source: the store took its whole budget")

// obtain gets a new token: from the store when another sharer has already
// fetched one, else from the endpoint, through the breaker. With a store,
// one sharer at a time fetches (the store's lock) and the others wait for
// what it stores. A store that fails is left aside: the source fetches on
// its own, and says so in telemetry.
//
// A flight spends at most one store timeout (storeTimeouter) in store
// calls before it fetches; it saves the new token and releases the lock
// after the token is handed out, in the background (Close waits for it).
// A sharer that waits for another's fetch longer than half its fetch
// timeout takes over: it fetches on its own, with the configured grant
// (never a refresh token without the lock).
func (s *CachedSource) obtain(ctx context.Context, st *exchangeStats, rec *instrument.Fetch) (obtained, error) {
	if s.store == nil {
		return s.fromEndpoint(ctx, st, rec, "")
	}
	b := storeBudget{}
	if t, ok := s.store.(storeTimeouter); ok && t.Timeout() > 0 {
		b = storeBudget{left: t.Timeout(), bounded: true}
	}
	load := func() (got obtained, ok bool, stored *StoredToken, err error) {
		if !b.call(ctx, func(ctx context.Context) { got, ok, stored, err = s.fromStore(ctx) }) {
			err = errStoreBudget
		}
		return got, ok, stored, err
	}
	waitUntil := time.Now().Add(s.r.fetchTimeout / 2)
	for {
		got, ok, _, err := load()
		if err != nil {
			s.storeFallback(ctx, rec, telemetry.StoreLoad)
			return s.fromEndpoint(ctx, st, rec, "")
		}
		if ok {
			rec.From(telemetry.FromStore)
			return got, nil
		}
		var unlock func()
		var locked bool
		if !b.call(ctx, func(ctx context.Context) { unlock, locked, err = s.store.Lock(ctx, s.storeKeyNow(), s.r.fetchTimeout) }) {
			err = errStoreBudget
		}
		if err != nil {
			s.storeFallback(ctx, rec, telemetry.StoreLock)
			return s.fromEndpoint(ctx, st, rec, "")
		}
		if locked {
			return s.fetchLocked(ctx, st, rec, unlock, load)
		}
		if !time.Now().Before(waitUntil) {
			// The holder has had half our budget: it may have crashed
			// holding the lock. Take over, with the configured grant.
			s.storeFallback(ctx, rec, telemetry.StoreWait)
			st.unlocked = true // a refresh token is not sent: the holder may be sending it
			got, err := s.fromEndpoint(ctx, st, rec, "")
			if err == nil {
				s.afterFetch(ctx, got, nil, nil)
			}
			return got, err
		}
		s.store.Wait(ctx, s.storeKeyNow(), min(storeWait, time.Until(waitUntil)))
		if err := ctx.Err(); err != nil {
			return obtained{}, fmt.Errorf("source: waited for another sharer's %s token fetch and sent no request: %w", s.r.p.Name, err)
		}
	}
}

// fetchLocked fetches holding the store's lock: it looks in the store once
// more, then fetches with the fleet's refresh token. It hands the result
// out at once; saving it (or dropping a rejected token) and unlocking run
// in the background.
func (s *CachedSource) fetchLocked(ctx context.Context, st *exchangeStats, rec *instrument.Fetch, unlock func(),
	load func() (obtained, bool, *StoredToken, error)) (obtained, error) {
	// Another sharer may have stored a token just before the lock.
	got, ok, stored, err := load()
	if err == nil && ok {
		s.fetches.Go(unlock) // in the background; Close waits for it
		rec.From(telemetry.FromStore)
		return got, nil
	}
	// The stored token, usable or not (rejected, about to expire), holds
	// the fleet's current refresh token.
	var hint string
	if stored != nil && stored.Token != nil {
		hint = stored.Token.RefreshToken
	}
	got, err = s.fromEndpoint(ctx, st, rec, hint)
	if err != nil {
		// A token an API rejected must not be taken by the other sharers
		// meanwhile: drop it if it is still the stored one.
		var bad *Token
		if stored != nil && s.isRejected(stored.Token) {
			bad = stored.Token
		}
		s.afterFetch(ctx, obtained{}, bad, unlock)
		return got, err
	}
	s.afterFetch(ctx, got, nil, unlock)
	return got, nil
}

// afterFetch saves got (if it has a token) or deletes bad (if set), then
// calls unlock (if set), in the background: the caller does not wait on
// the store. Close waits for it. The store's own timeout bounds each call,
// and the fetch timeout bounds them all.
func (s *CachedSource) afterFetch(ctx context.Context, got obtained, bad *Token, unlock func()) {
	ctx = context.WithoutCancel(ctx)
	s.fetches.Go(func() {
		if unlock != nil {
			defer unlock()
		}
		ctx, cancel := context.WithTimeout(ctx, s.r.fetchTimeout)
		defer cancel()
		switch {
		case got.tok != nil:
			if err := s.store.Save(ctx, s.storeKeyNow(), StoredToken{Token: got.tok, Obtained: got.at, Rejections: got.rej}); err != nil {
				s.storeFallback(ctx, nil, telemetry.StoreSave)
			}
		case bad != nil:
			if err := s.store.Delete(ctx, s.storeKeyNow(), bad); err != nil {
				s.storeFallback(ctx, nil, telemetry.StoreDelete)
			}
		}
	})
}

// isRejected reports whether tok is one of the last tokens this source
// was told an API rejected.
func (s *CachedSource) isRejected(tok *Token) bool {
	return tok != nil && s.bad.has(credential(tok))
}

// fromStore loads the stored token and reports whether this source may
// use it: not the token it is replacing nor one an API rejected, and not
// about to expire. stored is what the store held, usable or not.
func (s *CachedSource) fromStore(ctx context.Context) (got obtained, ok bool, stored *StoredToken, err error) {
	stored, err = s.store.Load(ctx, s.storeKeyNow())
	if err != nil || stored == nil || stored.Token == nil {
		return obtained{}, false, stored, err
	}
	tok := stored.Token
	if cur := s.cur.Load(); cur != nil && sameCredential(cur.tok, tok) {
		return obtained{}, false, stored, nil
	}
	if s.isRejected(tok) || safehttp.CheckHeaderToken(tok.AccessToken, tok.Authorization) != nil {
		return obtained{}, false, stored, nil
	}
	if at := staleAt(tok, stored.Obtained); !at.IsZero() && !time.Now().Before(at) {
		return obtained{}, false, stored, nil
	}
	return obtained{tok: tok, at: stored.Obtained, rej: stored.Rejections, shared: true}, true, stored, nil
}
