package redisstore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenhttp/tokenhttp/source"
)

// expirySlack is how long Redis keeps a token past its Expiry. Sources
// judge expiry themselves; Redis only drops what nobody can use.
const expirySlack = 5 * time.Second

// maxTTL is the longest expiry Save gives Redis; a token that expires
// later is kept without one.
const maxTTL = 10 * 365 * 24 * time.Hour

// Labels for the key that names Redis keys and fingerprints tokens.
const (
	nameKeyInfo    = "tokenhttp/redisstore/v1 names"
	plaintextLabel = "tokenhttp/redisstore/v1 plaintext"
)

// deleteScript deletes KEYS[1] if its value starts with ARGV[1] (version
// and fingerprint of the rejected token). A value of another type stays.
var deleteScript = redis.NewScript(`
local v = redis.pcall('GET', KEYS[1])
if type(v) == 'string' and string.sub(v, 1, #ARGV[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`)

// unlockScript deletes the lock KEYS[1] if it still holds ARGV[1].
var unlockScript = redis.NewScript(`
if redis.pcall('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`)

// lockScript takes the lock KEYS[1] for ARGV[2] milliseconds with the
// value ARGV[1] if it is free, or confirms it if it already holds ARGV[1]:
// a command whose reply was lost, sent again by the client, finds the
// lock its first attempt took. It returns 1 when the lock is the
// caller's, 0 when another holds it.
var lockScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
	return 1
end
if redis.pcall('GET', KEYS[1]) == ARGV[1] then
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
	return 1
end
return 0
`)

// Store is a source.Store in Redis, shared by every process that uses the
// same Redis, prefix and key. It is safe for concurrent use and holds no
// state beyond its configuration.
//
// The Store does not own the client: the caller closes it, after the
// last use of the Store.
//
// String, GoString, Format, LogValue and MarshalJSON show no key.
type Store struct {
	client  redis.UniversalClient
	aead    cipher.AEAD // nil with WithPlaintext
	hmacKey []byte      // keys the names and fingerprints
	prefix  string
	poll    time.Duration
	timeout time.Duration
}

var _ source.Store = (*Store)(nil)

// New returns a Store over client. It needs WithKey, or WithPlaintext to
// store tokens in the clear, and returns an error for a nil client or an
// invalid option. New does not contact Redis: a Redis that is down shows
// as errors from the Store's methods, which sources survive.
func New(client redis.UniversalClient, opts ...Option) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore: nil client")
	}
	o, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	s := &Store{client: client, prefix: o.prefix, poll: o.poll, timeout: o.timeout}
	if o.key == nil {
		s.hmacKey = []byte(plaintextLabel)
		return s, nil
	}
	block, err := aes.NewCipher(o.key)
	if err != nil {
		return nil, fmt.Errorf("redisstore: WithKey: %w", err)
	}
	if s.aead, err = cipher.NewGCM(block); err != nil {
		return nil, fmt.Errorf("redisstore: WithKey: %w", err)
	}
	if s.hmacKey, err = hkdf.Key(sha256.New, o.key, nil, nameKeyInfo, sha256.Size); err != nil {
		return nil, fmt.Errorf("redisstore: WithKey: %w", err)
	}
	return s, nil
}

// Load returns the token stored under key, or nil and no error when there
// is none or its value cannot be read.
func (s *Store) Load(ctx context.Context, key string) (*source.StoredToken, error) {
	name := s.name(key)
	v, err := run(ctx, s, "load", func(ctx context.Context) (string, error) {
		// GETRANGE bounds the read; a missing key reads as "".
		return s.client.GetRange(ctx, name, 0, maxValue).Result()
	}, nil)
	if redis.HasErrorPrefix(err, "WRONGTYPE") {
		return nil, nil // a foreign value; Save replaces it
	}
	if err != nil {
		return nil, err
	}
	return s.open(name, v), nil
}

// Save stores t under key, replacing whatever is there. Redis drops it a
// few seconds after t.Token.Expiry; a zero Expiry, or one more than ten
// years away, never expires.
func (s *Store) Save(ctx context.Context, key string, t source.StoredToken) error {
	if t.Token == nil {
		return errors.New("redisstore: save: nil token")
	}
	name := s.name(key)
	v, err := s.seal(name, t)
	if err != nil {
		return err
	}
	var ttl time.Duration // 0: no expiry in Redis
	if left := time.Until(t.Token.Expiry); !t.Token.Expiry.IsZero() && left < maxTTL {
		ttl = max((left + expirySlack).Round(time.Millisecond), time.Millisecond) // expired: gone at once
	}
	_, err = run(ctx, s, "save", func(ctx context.Context) (string, error) {
		return s.client.Set(ctx, name, v, ttl).Result()
	}, nil)
	return err
}

// Delete removes the token under key if it is still rejected (the same
// AccessToken and Authorization); a newer token stays. A nil rejected
// deletes nothing.
func (s *Store) Delete(ctx context.Context, key string, rejected *source.Token) error {
	if rejected == nil {
		return nil
	}
	name, head := s.name(key), s.head(rejected)
	_, err := run(ctx, s, "delete", func(ctx context.Context) (any, error) {
		return deleteScript.Run(ctx, s.client, []string{name}, head).Result()
	}, nil)
	return err
}

// Lock tries to take key's fetch lock for ttl (at least a millisecond):
// SET NX PX with a random value, in a script that also says ok when the
// lock already holds this call's value (the client sent the command again
// after its reply was lost). ok is false when another holds it.
// unlock releases it, within the Store's timeout, only if it still holds
// this caller's value; it may be called more than once. A holder that
// dies loses the lock when ttl passes.
func (s *Store) Lock(ctx context.Context, key string, ttl time.Duration) (unlock func(), ok bool, err error) {
	name := s.name(key) + ":lock"
	id := crand.Text()
	ttl = max(ttl.Round(time.Millisecond), time.Millisecond)
	release := func(ctx context.Context) {
		_, _ = run(ctx, s, "unlock", func(ctx context.Context) (any, error) {
			return unlockScript.Run(ctx, s.client, []string{name}, id).Result()
		}, nil)
	}
	ok, err = run(ctx, s, "lock", func(ctx context.Context) (bool, error) {
		n, err := lockScript.Run(ctx, s.client, []string{name}, id, ttl.Milliseconds()).Int()
		return n == 1, err
	}, func(ok bool) {
		// The caller left before Redis answered: free the lock it did
		// not get to use.
		if ok {
			release(context.Background())
		}
	})
	if err != nil || !ok {
		return nil, false, err
	}
	detached := context.WithoutCancel(ctx)
	var once sync.Once
	return func() { once.Do(func() { release(detached) }) }, true, nil
}

// Timeout returns the bound on each Redis operation, set by WithTimeout.
// Sources made by source.New look for this method on their Store: a
// source spends at most that long in all the store calls of one fetch
// before it fetches on its own.
func (s *Store) Timeout() time.Duration { return s.timeout }

// Wait returns after a random duration between half the poll interval
// and the whole of it, after d if that is shorter, or when ctx is done:
// its caller then looks again for the token.
func (s *Store) Wait(ctx context.Context, _ string, d time.Duration) {
	d = min(d, s.poll/2+mrand.N(s.poll/2+1))
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// run calls f on ctx bounded by the Store's timeout and returns when f
// does or the bound passes, whichever is first: a client that does not
// heed context deadlines (ContextTimeoutEnabled unset) cannot hold the
// caller. If the caller left first, orphan, if set, gets f's result when
// f succeeds. Errors name op and wrap the Redis or context error.
func run[T any](ctx context.Context, s *Store, op string, f func(context.Context) (T, error), orphan func(T)) (T, error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f(ctx)
		done <- result{v, err}
	}()
	var zero T
	select {
	case r := <-done:
		if r.err != nil && !errors.Is(r.err, redis.Nil) {
			return zero, fmt.Errorf("redisstore: %s: %w", op, r.err)
		}
		return r.v, nil
	case <-ctx.Done():
		if orphan != nil {
			go func() {
				if r := <-done; r.err == nil {
					orphan(r.v)
				}
			}()
		}
		if err := parent.Err(); err != nil {
			return zero, fmt.Errorf("redisstore: %s: %w", op, err)
		}
		return zero, fmt.Errorf("redisstore: %s: no answer from Redis within %v: %w", op, s.timeout, ctx.Err())
	}
}

// String describes s without its key.
func (s *Store) String() string {
	if s == nil {
		return "redisstore.Store(nil)"
	}
	return fmt.Sprintf("redisstore.Store{Prefix: %q, Encrypted: %t, PollInterval: %v, Timeout: %v}",
		s.prefix, s.aead != nil, s.poll, s.timeout)
}

// GoString is String, so %#v shows no key.
func (s *Store) GoString() string { return s.String() }

// Format implements fmt.Formatter: every verb prints String. It has a
// value receiver so that a Store value prints without its key too.
func (s Store) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", s.String())
		return
	}
	_, _ = f.Write([]byte(s.String()))
}

// LogValue implements slog.LogValuer without the key.
func (s *Store) LogValue() slog.Value {
	if s == nil {
		return slog.StringValue("redisstore.Store(nil)")
	}
	return slog.GroupValue(slog.String("prefix", s.prefix), slog.Bool("encrypted", s.aead != nil),
		slog.Duration("poll_interval", s.poll), slog.Duration("timeout", s.timeout))
}

// MarshalJSON encodes the Store's settings without its key.
func (s Store) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Prefix       string `json:"prefix"`
		Encrypted    bool   `json:"encrypted"`
		PollInterval string `json:"poll_interval"`
		Timeout      string `json:"timeout"`
	}{s.prefix, s.aead != nil, s.poll.String(), s.timeout.String()})
}
