package proxy

import (
	"context"
	"io"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/tokenhttp/tokenhttp/source"
)

// shared is a route's source, with its recorder and the keeper that keeps
// its token warm. Generations whose route has the same source config and
// secrets share it, so that a reload keeps its token and breaker state.
// refs counts its holders (generations, and a build under way); the last
// release stops the keeper, closes the source and releases the store.
type shared struct {
	rc    Route    // the route it was built for
	cfg   *Config  // the config rc came from
	sum   [32]byte // digest of the secrets it was built with
	src   *source.CachedSource
	rec   *recorder
	store *sharedStore // nil without a store

	refs     atomic.Int64
	stop     context.CancelFunc // stops the keeper; nil before start
	keeper   sync.WaitGroup
	stopOnce sync.Once
}

// newShared wraps src with one reference, its caller's, and a reference
// to store.
func newShared(rc Route, cfg *Config, sum [32]byte, src *source.CachedSource, rec *recorder, store *sharedStore) *shared {
	s := &shared{rc: rc, cfg: cfg, sum: sum, src: src, rec: rec, store: store}
	s.refs.Store(1)
	store.acquire()
	return s
}

// start starts the keeper, once; only a source in use is kept warm.
func (s *shared) start() {
	s.stopOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		s.stop = cancel
		s.keeper.Go(func() { s.rec.keep(ctx) })
	})
}

func (s *shared) acquire() { s.refs.Add(1) }

// release drops a reference; the last one closes the source.
func (s *shared) release() {
	if s.refs.Add(-1) != 0 {
		return
	}
	s.stopOnce.Do(func() {}) // no keeper starts any more
	if s.stop != nil {
		s.stop()
		s.keeper.Wait()
	}
	_ = s.src.Close()
	s.store.release()
}

// same reports whether s was built from what rc, read from cfg with
// secrets of digest sum over store, would build: its source can serve rc.
// Function-valued settings (client_certificate_files,
// client_assertion_file) cannot be compared, so a route that has one is
// the same only within one config (a secret file's change), and is
// rebuilt by a config reload.
func (s *shared) same(cfg *Config, rc Route, sum [32]byte, store *sharedStore) bool {
	if s.sum != sum || s.store != store || s.rc.Prefix != rc.Prefix || s.rc.P12File != rc.P12File ||
		!s.rc.TokenRoots.Equal(rc.TokenRoots) ||
		!slices.EqualFunc(s.rc.Secrets, rc.Secrets, func(a, b SecretRef) bool {
			return a.Key == b.Key && a.File == b.File && a.Env == b.Env
		}) {
		return false
	}
	return s.cfg == cfg || reflect.DeepEqual(s.rc.Source, rc.Source)
}

// sharedStore is the Redis store, shared like the sources: by the
// generations whose store config and secrets are the same, and by the
// sources built over it.
type sharedStore struct {
	sc     StoreConfig
	sum    [32]byte
	store  source.Store
	closer io.Closer
	refs   atomic.Int64
}

// acquire and release are no-ops on a nil store.
func (s *sharedStore) acquire() {
	if s != nil {
		s.refs.Add(1)
	}
}

func (s *sharedStore) release() {
	if s != nil && s.refs.Add(-1) == 0 {
		_ = s.closer.Close()
	}
}

func (s *sharedStore) same(sc *StoreConfig, sum [32]byte) bool {
	return s != nil && s.sum == sum && reflect.DeepEqual(s.sc, *sc)
}
