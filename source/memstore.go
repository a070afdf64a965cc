package source

import (
	"context"
	"sync"
	"time"
)

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
