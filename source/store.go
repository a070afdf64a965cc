package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
	"sync"
	"time"
)

// Store keeps tokens where several sources can share them: the replicas of
// a service behind one Redis (package source/redisstore), or the sources of
// one process (NewMemoryStore). With a Store in Config, a source looks in
// the store before it fetches, one source at a time fetches for all the
// others (the fetch lock), and a token an API rejected is dropped from the
// store only if it is still the stored one.
//
// A Store must be safe for concurrent use. Its errors never fail a caller:
// when the store is down or slow, a source fetches on its own and records
// the fallback (telemetry.EventStoreFallback, MetricStoreFallbacks).
type Store interface {
	// Load returns the token stored under key, or nil and no error when
	// there is none (a value that cannot be read is none).
	Load(ctx context.Context, key string) (*StoredToken, error)
	// Save stores t under key. The store may drop it once it expires.
	Save(ctx context.Context, key string, t StoredToken) error
	// Delete removes the token under key if it is still rejected (the same
	// AccessToken and Authorization); a newer token stays.
	Delete(ctx context.Context, key string, rejected *Token) error
	// Lock tries to take key's fetch lock for ttl. ok is false when another
	// holds it. unlock releases the lock if this caller still holds it; a
	// holder that dies loses the lock when ttl passes.
	Lock(ctx context.Context, key string, ttl time.Duration) (unlock func(), ok bool, err error)
	// Wait returns when the token under key may have changed, after at
	// most d, or when ctx is done.
	Wait(ctx context.Context, key string, d time.Duration)
}

// StoredToken is a token with the time it was obtained, so that every
// sharer computes the same lifetime (Expiry - Obtained) and renews it at
// about the same point.
type StoredToken struct {
	Token    *Token
	Obtained time.Time
	// Rejections is how many tokens in a row an API rejected before this
	// one was fetched; zero for a token fetched for any other reason. A
	// sharer keeps such a token a while when it is rejected too, before
	// any API accepted it (see CachedSource.Invalidate), so that a fleet
	// under an API that rejects every token backs off as one. A Store that
	// does not keep it makes each sharer back off on its own.
	Rejections int
}

// storeKey names a credential in a Store: a hash of everything that
// decides which token the endpoint issues — the provider, token URL, grant,
// client id, username, scopes, extra endpoint parameters (an audience),
// Origin, Cloud and the requested lifetime. Two configs that differ in any
// of them never share a token. It holds no secret; stores hash it again
// with their own key before it reaches a server.
func storeKey(r *resolved) string {
	params := make([]string, 0, len(r.cfg.EndpointParams))
	for k, vs := range r.cfg.EndpointParams {
		params = append(params, k+"="+strings.Join(vs, "\x00"))
	}
	sort.Strings(params)
	h := sha256.New()
	for _, part := range []string{"tokenhttp/v1", r.p.Name, r.tokenURL, r.grant, r.cfg.ClientID, r.cfg.Username,
		strings.Join(r.cfg.Scopes, " "), strings.Join(params, "\x01"), r.cfg.Origin, r.cfg.Cloud, r.cfg.Lifetime.String()} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// MemoryStore is a Store in this process's memory: sources that share one
// fetch for each other. The zero value is not usable; call NewMemoryStore.
type MemoryStore struct {
	mu      sync.Mutex // guards the fields below
	tokens  map[string]StoredToken
	locks   map[string]memLock
	changed chan struct{} // closed and replaced on every change
}

type memLock struct {
	id    *int // identity of the holder
	until time.Time
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{tokens: map[string]StoredToken{}, locks: map[string]memLock{}, changed: make(chan struct{})}
}

// Load returns the token under key, or nil.
func (m *MemoryStore) Load(_ context.Context, key string) (*StoredToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[key]
	if !ok {
		return nil, nil
	}
	return &t, nil
}

// Save stores t under key.
func (m *MemoryStore) Save(_ context.Context, key string, t StoredToken) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tokens[key] = t
	m.notify()
	return nil
}

// Delete removes the token under key if it is still rejected.
func (m *MemoryStore) Delete(_ context.Context, key string, rejected *Token) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.tokens[key]; ok && rejected != nil && sameCredential(t.Token, rejected) {
		delete(m.tokens, key)
		m.notify()
	}
	return nil
}

// Lock takes key's fetch lock for ttl if nobody holds it.
func (m *MemoryStore) Lock(_ context.Context, key string, ttl time.Duration) (func(), bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, held := m.locks[key]; held && time.Now().Before(l.until) {
		return nil, false, nil
	}
	id := new(int)
	m.locks[key] = memLock{id: id, until: time.Now().Add(ttl)}
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if l := m.locks[key]; l.id == id {
			delete(m.locks, key)
			m.notify()
		}
	}, true, nil
}

// Wait returns on the next change, after d, or when ctx is done.
func (m *MemoryStore) Wait(ctx context.Context, _ string, d time.Duration) {
	m.mu.Lock()
	ch := m.changed
	m.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
	}
}

// notify wakes every Wait. m.mu must be held.
func (m *MemoryStore) notify() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// sameCredential reports whether a and b carry the same credential.
func sameCredential(a, b *Token) bool {
	return a != nil && b != nil && a.AccessToken == b.AccessToken && a.Authorization == b.Authorization
}
