package redisstore_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/redisstore"
)

// Secrets in the test tokens; none may show in Redis in clear (with a
// key), in a key name or in an error.
const (
	identity = "identity-7f3a9c" // the credential key a source passes
	secretAT = "at-SECRET-5d1e"
	secretRT = "rt-SECRET-8b2c"
	secretAZ = "VCSchema az-SECRET-3f9a"
)

var (
	key16 = bytes.Repeat([]byte{0x11}, 16)
	key24 = bytes.Repeat([]byte{0x24}, 24)
	key32 = []byte("0123456789abcdef0123456789abcdef")
	other = bytes.Repeat([]byte{0x99}, 32)
)

// testToken returns a token with every field set, expiring at expiry.
func testToken(expiry time.Time) source.StoredToken {
	return source.StoredToken{
		Token: &source.Token{
			AccessToken:   secretAT,
			TokenType:     "Bearer",
			RefreshToken:  secretRT,
			Expiry:        expiry,
			Scope:         "read write",
			Authorization: secretAZ,
			Extra: map[string]any{
				"id_token": "idt",
				"n":        json.Number("42"),
				"nested":   map[string]any{"a": []any{"x", true, nil, json.Number("1.5")}},
			},
		},
		Obtained: time.Now().Add(-time.Second),
	}
}

// tokenN returns a distinct token n.
func tokenN(n int) source.StoredToken {
	return source.StoredToken{
		Token:    &source.Token{AccessToken: fmt.Sprintf("at-%d", n), RefreshToken: fmt.Sprintf("rt-%d", n), TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)},
		Obtained: time.Now(),
	}
}

// sameStored fails t unless got is want, field by field.
func sameStored(t testing.TB, got *source.StoredToken, want source.StoredToken) {
	t.Helper()
	if got == nil || got.Token == nil {
		t.Fatalf("Load = %v, want a token", got)
	}
	if !got.Obtained.Equal(want.Obtained) {
		t.Errorf("Obtained = %v, want %v", got.Obtained, want.Obtained)
	}
	if !got.Token.Expiry.Equal(want.Token.Expiry) {
		t.Errorf("Expiry = %v, want %v", got.Token.Expiry, want.Token.Expiry)
	}
	g, w := *got.Token, *want.Token
	g.Expiry, w.Expiry = time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("Load = %#v\nwant %#v", fields(g), fields(w))
	}
}

// fields shows a token's fields, secrets included, for test failures.
func fields(t source.Token) string {
	return fmt.Sprintf("{AccessToken:%q TokenType:%q RefreshToken:%q Scope:%q Authorization:%q Extra:%#v}",
		t.AccessToken, t.TokenType, t.RefreshToken, t.Scope, t.Authorization, t.Extra)
}

// names returns the Redis key names: tokens and locks.
func names(t testing.TB, c *redis.Client) (tokens, locks []string) {
	t.Helper()
	all, err := c.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range all {
		if strings.HasSuffix(n, ":lock") {
			locks = append(locks, n)
		} else {
			tokens = append(tokens, n)
		}
	}
	return tokens, locks
}

// onlyName returns the name of the one token in Redis.
func onlyName(t testing.TB, c *redis.Client) string {
	t.Helper()
	tokens, _ := names(t, c)
	if len(tokens) != 1 {
		t.Fatalf("token names = %q, want one", tokens)
	}
	return tokens[0]
}

// noSecret fails t if s holds a secret or the identity.
func noSecret(t testing.TB, what, s string) {
	t.Helper()
	for _, secret := range []string{identity, secretAT, secretRT, secretAZ, "az-SECRET"} {
		if strings.Contains(s, secret) {
			t.Errorf("%s holds %q: %q", what, secret, s)
		}
	}
}

func TestNew(t *testing.T) {
	checkLeaks(t)
	c := newClient(t, closedAddr(t))
	for _, tc := range []struct {
		name   string
		client redis.UniversalClient
		opts   []redisstore.Option
		want   string // "" for success, else part of the error
	}{
		{"no key", c, nil, "WithPlaintext"},
		{"nil options", c, []redisstore.Option{nil}, "WithKey"},
		{"nil key", c, []redisstore.Option{redisstore.WithKey(nil)}, "0 bytes"},
		{"short key", c, []redisstore.Option{redisstore.WithKey(make([]byte, 15))}, "15 bytes"},
		{"long key", c, []redisstore.Option{redisstore.WithKey(make([]byte, 33))}, "33 bytes"},
		{"password as key", c, []redisstore.Option{redisstore.WithKey([]byte("hunter2"))}, "7 bytes"},
		{"key and plaintext", c, []redisstore.Option{redisstore.WithKey(key32), redisstore.WithPlaintext()}, "exclude"},
		{"zero timeout", c, []redisstore.Option{redisstore.WithPlaintext(), redisstore.WithTimeout(0)}, "WithTimeout"},
		{"negative poll", c, []redisstore.Option{redisstore.WithPlaintext(), redisstore.WithPollInterval(-time.Second)}, "WithPollInterval"},
		{"nil client", nil, []redisstore.Option{redisstore.WithKey(key32)}, "nil client"},
		{"aes-128", c, []redisstore.Option{redisstore.WithKey(key16)}, ""},
		{"aes-192", c, []redisstore.Option{redisstore.WithKey(key24)}, ""},
		{"aes-256", c, []redisstore.Option{redisstore.WithKey(key32)}, ""},
		{"plaintext", c, []redisstore.Option{redisstore.WithPlaintext()}, ""},
		{"all options", c, []redisstore.Option{redisstore.WithKey(key32), redisstore.WithPrefix(""),
			redisstore.WithPollInterval(time.Second), redisstore.WithTimeout(time.Second)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := redisstore.New(tc.client, tc.opts...)
			if tc.want == "" {
				if err != nil || s == nil {
					t.Fatalf("New = %v, %v; want a Store", s, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New = %v, nil; want an error with %q", s, tc.want)
			}
			if s != nil {
				t.Errorf("New returned a Store with error %v", err)
			}
			if !strings.HasPrefix(err.Error(), "redisstore: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q, want it to start with %q and hold %q", err, "redisstore: ", tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the key", err)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []redisstore.Option
		head string
	}{
		{"aes-128", []redisstore.Option{redisstore.WithKey(key16)}, "v1e:"},
		{"aes-192", []redisstore.Option{redisstore.WithKey(key24)}, "v1e:"},
		{"aes-256", []redisstore.Option{redisstore.WithKey(key32)}, "v1e:"},
		{"plaintext", []redisstore.Option{redisstore.WithPlaintext()}, "v1p:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			c := startRedis(t).Client(t)
			s := newStore(t, c, tc.opts...)
			ctx := ctxTimeout(t, 10*time.Second)

			got, err := s.Load(ctx, identity)
			if got != nil || err != nil {
				t.Fatalf("Load before Save = %v, %v; want nil, nil", got, err)
			}

			for _, exp := range []struct {
				name     string
				expiry   time.Time
				min, max time.Duration // PTTL; -1 is none
			}{
				{"no expiry", time.Time{}, -1, -1},
				{"expiry", time.Now().Add(10 * time.Second), 10 * time.Second, 16 * time.Second},
				{"expired", time.Now().Add(-time.Hour), -2, time.Millisecond},
				{"far future", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), -1, -1},
			} {
				t.Run(exp.name, func(t *testing.T) {
					want := testToken(exp.expiry)
					if err := s.Save(ctx, identity, want); err != nil {
						t.Fatalf("Save: %v", err)
					}
					name := onlyName(t, c)
					pttl, err := c.PTTL(ctx, name).Result()
					if err != nil {
						t.Fatal(err)
					}
					if exp.min == -1 {
						if pttl != -1 {
							t.Errorf("PTTL = %v, want none (-1)", pttl)
						}
					} else if pttl < exp.min-time.Second || pttl > exp.max {
						t.Errorf("PTTL = %v, want in [%v, %v]", pttl, exp.min-time.Second, exp.max)
					}
					if exp.min == -2 {
						time.Sleep(5 * time.Millisecond)
						if got, err := s.Load(ctx, identity); got != nil || err != nil {
							t.Errorf("Load of an expired token = %v, %v; want nil, nil (gone from Redis)", got, err)
						}
						return
					}
					got, err := s.Load(ctx, identity)
					if err != nil {
						t.Fatalf("Load: %v", err)
					}
					sameStored(t, got, want)

					raw, err := c.Get(ctx, name).Result()
					if err != nil {
						t.Fatal(err)
					}
					if !strings.HasPrefix(raw, tc.head) {
						t.Errorf("value = %.10q..., want it to start with %q", raw, tc.head)
					}
					if strings.HasPrefix(tc.head, "v1e") {
						noSecret(t, "stored value", raw)
						for _, encoded := range []string{base64.StdEncoding.EncodeToString([]byte(secretAT)), hex.EncodeToString([]byte(secretAT))} {
							if strings.Contains(raw, encoded) {
								t.Errorf("stored value holds the access token encoded: %q", raw)
							}
						}
					} else if !strings.Contains(raw, tc.head+strings.Split(raw, ":")[1]+":") {
						t.Errorf("plaintext value %q lacks a fingerprint", raw)
					}
				})
			}

			tokens, locks := names(t, c)
			for _, n := range append(tokens, locks...) {
				noSecret(t, "key name", n)
				if !strings.HasPrefix(n, redisstore.DefaultPrefix) {
					t.Errorf("key name %q lacks the prefix %q", n, redisstore.DefaultPrefix)
				}
			}
		})
	}
}

// TestPlaintextValue checks the plaintext envelope: readable JSON, as
// documented, and not readable by an encrypting Store.
func TestPlaintextValue(t *testing.T) {
	checkLeaks(t)
	c := startRedis(t).Client(t)
	ctx := ctxTimeout(t, 10*time.Second)
	plain := newStore(t, c, redisstore.WithPlaintext())
	want := testToken(time.Now().Add(time.Hour))
	if err := plain.Save(ctx, identity, want); err != nil {
		t.Fatal(err)
	}
	name := onlyName(t, c)
	raw, err := c.Get(ctx, name).Result()
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(raw, ":", 3)
	if len(parts) != 3 || parts[0] != "v1p" || len(parts[1]) != 32 {
		t.Fatalf("value = %q, want v1p:<32 hex>:<base64>", raw)
	}
	js, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	var fieldsOf map[string]any
	if err := json.Unmarshal(js, &fieldsOf); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"access_token", "token_type", "refresh_token", "expiry", "scope", "authorization", "extra", "obtained"} {
		if _, ok := fieldsOf[f]; !ok {
			t.Errorf("JSON %s lacks %q", js, f)
		}
	}
	if fieldsOf["access_token"] != secretAT {
		t.Errorf("access_token = %v, want %q", fieldsOf["access_token"], secretAT)
	}

	// The same value under an encrypting Store's name is not a token.
	enc := newStore(t, c, redisstore.WithKey(key32))
	if err := enc.Save(ctx, "other", tokenN(1)); err != nil {
		t.Fatal(err)
	}
	tokens, _ := names(t, c)
	for _, n := range tokens {
		if n != name {
			if err := c.Set(ctx, n, raw, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, err := enc.Load(ctx, "other"); got != nil || err != nil {
		t.Errorf("encrypting Load of a plaintext value = %v, %v; want nil, nil", got, err)
	}
}

// TestUnreadableValues puts values the Store cannot use under its name:
// Load sees none, and Save replaces them.
func TestUnreadableValues(t *testing.T) {
	checkLeaks(t)
	c := startRedis(t).Client(t)
	ctx := ctxTimeout(t, 30*time.Second)
	s := newStore(t, c, redisstore.WithKey(key32))
	want := testToken(time.Now().Add(time.Hour))
	if err := s.Save(ctx, identity, want); err != nil {
		t.Fatal(err)
	}
	name := onlyName(t, c)
	good, err := c.Get(ctx, name).Result()
	if err != nil {
		t.Fatal(err)
	}

	// Values written by a Store with another key, and under another name.
	foreignKey := c.Get(ctx, savedName(t, c, newStore(t, c, redisstore.WithKey(other)), identity, want)).Val()
	otherName := c.Get(ctx, savedName(t, c, s, "another credential", want)).Val()

	fp, body, _ := strings.Cut(strings.TrimPrefix(good, "v1e:"), ":")
	ct, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) string {
		b := bytes.Clone(ct)
		b[i] ^= 1
		return "v1e:" + fp + ":" + base64.StdEncoding.EncodeToString(b)
	}
	otherFP := strings.Repeat("0", 32)

	for _, tc := range []struct {
		name  string
		value string
		hash  bool // store a hash instead of a string
	}{
		{"empty", "", false},
		{"foreign string", "hello, world", false},
		{"foreign json", `{"access_token":"x"}`, false},
		{"unknown version", "v9e:" + strings.TrimPrefix(good, "v1e:"), false},
		{"plaintext version", "v1p:" + strings.TrimPrefix(good, "v1e:"), false},
		{"truncated", good[:len(good)-4], false},
		{"no body", "v1e:" + fp + ":", false},
		{"short fingerprint", "v1e:" + fp[:10] + ":" + body, false},
		{"bad base64", "v1e:" + fp + ":!!!" + body, false},
		{"flipped nonce", flip(0), false},
		{"flipped ciphertext", flip(len(ct) / 2), false},
		{"flipped tag", flip(len(ct) - 1), false},
		{"wrong fingerprint", "v1e:" + otherFP + ":" + body, false},
		{"another key", foreignKey, false},
		{"another name", otherName, false},
		{"too large", "v1e:" + fp + ":" + strings.Repeat("A", 1<<20+8), false},
		{"a hash", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.Del(ctx, name).Err(); err != nil {
				t.Fatal(err)
			}
			if tc.hash {
				err = c.HSet(ctx, name, "f", "v").Err()
			} else {
				err = c.Set(ctx, name, tc.value, 0).Err()
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, err := s.Load(ctx, identity); got != nil || err != nil {
				t.Fatalf("Load = %v, %v; want nil, nil", got, err)
			}
			if err := s.Delete(ctx, identity, want.Token); err != nil {
				t.Errorf("Delete over an unreadable value: %v", err)
			}
			if err := s.Save(ctx, identity, want); err != nil {
				t.Fatalf("Save over an unreadable value: %v", err)
			}
			got, err := s.Load(ctx, identity)
			if err != nil {
				t.Fatal(err)
			}
			sameStored(t, got, want)
		})
	}
}

// savedName saves tok with s under key, which must be new, and returns
// the Redis name that appeared.
func savedName(t testing.TB, c *redis.Client, s *redisstore.Store, key string, tok source.StoredToken) string {
	t.Helper()
	before, _ := names(t, c)
	if err := s.Save(context.Background(), key, tok); err != nil {
		t.Fatal(err)
	}
	after, _ := names(t, c)
	for _, n := range after {
		if !slices.Contains(before, n) {
			return n
		}
	}
	t.Fatalf("no new name after saving %q", key)
	return ""
}

func TestDelete(t *testing.T) {
	checkLeaks(t)
	c := startRedis(t).Client(t)
	ctx := ctxTimeout(t, 10*time.Second)
	s := newStore(t, c, redisstore.WithKey(key32))
	old, newer := testToken(time.Now().Add(time.Hour)), tokenN(2)

	load := func() *source.StoredToken {
		t.Helper()
		got, err := s.Load(ctx, identity)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	save := func(tok source.StoredToken) {
		t.Helper()
		if err := s.Save(ctx, identity, tok); err != nil {
			t.Fatal(err)
		}
	}
	del := func(rejected *source.Token) {
		t.Helper()
		if err := s.Delete(ctx, identity, rejected); err != nil {
			t.Fatal(err)
		}
	}

	del(old.Token) // nothing stored: no error
	save(old)
	del(nil)
	if load() == nil {
		t.Fatal("Delete(nil) deleted the token")
	}
	del(newer.Token)
	if load() == nil {
		t.Fatal("Delete of another token deleted the stored one")
	}
	sameAT := *old.Token
	sameAT.Authorization = "something else"
	del(&sameAT)
	if load() == nil {
		t.Fatal("Delete of a token with another Authorization deleted the stored one")
	}
	sameAZ := *old.Token
	sameAZ.AccessToken = "something else"
	del(&sameAZ)
	if load() == nil {
		t.Fatal("Delete of a token with another AccessToken deleted the stored one")
	}
	copyOf := *old.Token // same credential, another *Token
	copyOf.RefreshToken, copyOf.Expiry = "", time.Time{}
	del(&copyOf)
	if got := load(); got != nil {
		t.Fatalf("after Delete of the stored token, Load = %v", got.Token)
	}

	// A replica saved a newer token before the 401 on the old one arrived.
	save(old)
	save(newer)
	del(old.Token)
	got := load()
	if got == nil || got.Token.AccessToken != newer.Token.AccessToken {
		t.Fatalf("after Delete of a replaced token, Load = %v; want the newer token", got)
	}
}

func TestDifferentKeysAndPrefixes(t *testing.T) {
	checkLeaks(t)
	c := startRedis(t).Client(t)
	ctx := ctxTimeout(t, 10*time.Second)
	a := newStore(t, c, redisstore.WithKey(key32))
	sameKey := newStore(t, c, redisstore.WithKey(key32))
	otherKey := newStore(t, c, redisstore.WithKey(other))
	otherPrefix := newStore(t, c, redisstore.WithKey(key32), redisstore.WithPrefix("app2/"))
	plain := newStore(t, c, redisstore.WithPlaintext())

	want := testToken(time.Time{})
	if err := a.Save(ctx, identity, want); err != nil {
		t.Fatal(err)
	}
	got, err := sameKey.Load(ctx, identity)
	if err != nil {
		t.Fatal(err)
	}
	sameStored(t, got, want)
	for name, s := range map[string]*redisstore.Store{"other key": otherKey, "other prefix": otherPrefix, "plaintext": plain} {
		if got, err := s.Load(ctx, identity); got != nil || err != nil {
			t.Errorf("%s: Load = %v, %v; want nil, nil", name, got, err)
		}
	}
	if got, err := a.Load(ctx, "another identity"); got != nil || err != nil {
		t.Errorf("Load of another identity = %v, %v; want nil, nil", got, err)
	}

	if err := otherPrefix.Save(ctx, identity, tokenN(3)); err != nil {
		t.Fatal(err)
	}
	tokens, _ := names(t, c)
	var prefixed int
	for _, n := range tokens {
		noSecret(t, "key name", n)
		if strings.HasPrefix(n, "app2/") {
			prefixed++
		}
	}
	if prefixed != 1 {
		t.Errorf("names %q: %d with prefix app2/, want 1", tokens, prefixed)
	}
}

func TestLock(t *testing.T) {
	checkLeaks(t)
	srv := startRedis(t)
	ctx := ctxTimeout(t, 10*time.Second)
	// Two replicas: two clients, two Stores with one key.
	a := newStore(t, srv.Client(t), redisstore.WithKey(key32))
	b := newStore(t, srv.Client(t), redisstore.WithKey(key32))
	c := srv.Client(t)

	lock := func(s *redisstore.Store, ttl time.Duration) (func(), bool) {
		t.Helper()
		unlock, ok, err := s.Lock(ctx, identity, ttl)
		if err != nil {
			t.Fatalf("Lock: %v", err)
		}
		if ok != (unlock != nil) {
			t.Fatalf("Lock = unlock %t, ok %t", unlock != nil, ok)
		}
		return unlock, ok
	}

	unlockA, ok := lock(a, 10*time.Second)
	if !ok {
		t.Fatal("A: Lock of a free lock: ok = false, want true")
	}
	if _, ok := lock(b, 10*time.Second); ok {
		t.Fatal("B took the lock A holds")
	}
	if _, ok := lock(a, 10*time.Second); ok {
		t.Fatal("A took the lock it holds again")
	}
	if _, ok, _ := b.Lock(ctx, "another identity", time.Second); !ok {
		t.Fatal("the lock of another identity is taken")
	}
	_, locks := names(t, c)
	for _, n := range locks {
		noSecret(t, "lock name", n)
		v, err := c.Get(ctx, n).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(v) < 16 {
			t.Errorf("lock value %q: want a random value", v)
		}
		if pttl := c.PTTL(ctx, n).Val(); pttl <= 0 || pttl > 10*time.Second {
			t.Errorf("lock PTTL = %v, want in (0, 10s]", pttl)
		}
	}
	unlockA()
	unlockA() // twice: harmless
	unlockB, ok := lock(b, 10*time.Second)
	if !ok {
		t.Fatal("B: Lock after A's unlock: ok = false, want true")
	}
	unlockA() // A no longer holds it: B's lock stays
	if _, ok := lock(a, 10*time.Second); ok {
		t.Fatal("A's stale unlock released B's lock")
	}
	unlockB()

	// A holder that dies loses the lock when ttl passes; its late unlock
	// does not release the next holder's lock.
	unlockA, ok = lock(a, 100*time.Millisecond)
	if !ok {
		t.Fatal("A: Lock: ok = false, want true")
	}
	if _, ok := lock(b, time.Second); ok {
		t.Fatal("B took A's lock before its ttl")
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		if unlockB, ok = lock(b, 10*time.Second); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("B could not take A's expired lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	unlockA()
	if _, ok := lock(a, 10*time.Second); ok {
		t.Fatal("A's unlock after its ttl released B's lock")
	}
	unlockB()
	if _, ok := lock(a, 10*time.Second); !ok {
		t.Fatal("A: Lock after B's unlock: ok = false, want true")
	}

	// unlock works after the Lock's context is done.
	lctx, cancel := context.WithCancel(context.Background())
	unlock, ok, err := a.Lock(lctx, "third", 10*time.Second)
	if err != nil || !ok {
		t.Fatalf("Lock = %t, %v", ok, err)
	}
	cancel()
	unlock()
	if _, ok, _ := b.Lock(ctx, "third", time.Second); !ok {
		t.Fatal("unlock after its Lock's context ended did not release")
	}
}

func TestWait(t *testing.T) {
	checkLeaks(t)
	c := newClient(t, closedAddr(t)) // Wait does not use Redis
	const poll = 50 * time.Millisecond
	s := newStore(t, c, redisstore.WithPlaintext(), redisstore.WithPollInterval(poll))
	slack := 100 * time.Millisecond

	for range 5 {
		start := time.Now()
		s.Wait(context.Background(), identity, time.Hour)
		if took := time.Since(start); took < poll/2-5*time.Millisecond || took > poll+slack {
			t.Errorf("Wait(1h) took %v, want in [%v, %v]", took, poll/2, poll+slack)
		}
	}
	start := time.Now()
	s.Wait(context.Background(), identity, 5*time.Millisecond)
	if took := time.Since(start); took > 5*time.Millisecond+slack {
		t.Errorf("Wait(5ms) took %v, want at most %v", took, 5*time.Millisecond+slack)
	}
	s.Wait(context.Background(), identity, 0)
	s.Wait(context.Background(), identity, -time.Second)

	long := newStore(t, c, redisstore.WithPlaintext(), redisstore.WithPollInterval(time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	start = time.Now()
	long.Wait(ctx, identity, time.Hour)
	if took := time.Since(start); took > 20*time.Millisecond+slack {
		t.Errorf("Wait returned %v after its context was canceled, want at once", took-20*time.Millisecond)
	}
	start = time.Now()
	long.Wait(ctx, identity, time.Hour) // already done
	if took := time.Since(start); took > slack {
		t.Errorf("Wait on a done context took %v, want at most %v", took, slack)
	}
}

// TestRedisDown checks that every method fails fast, with a clean error,
// when Redis is gone, unreachable or not answering.
func TestRedisDown(t *testing.T) {
	const timeout = 200 * time.Millisecond
	for _, tc := range []struct {
		name string
		// setup returns a client whose Redis fails, and a function that
		// ends the failure before the client closes.
		setup func(t *testing.T) (redis.UniversalClient, func())
	}{
		{"killed", func(t *testing.T) (redis.UniversalClient, func()) {
			srv := startRedis(t)
			c := srv.Client(t)
			s := newStore(t, c, redisstore.WithKey(key32))
			if err := s.Save(context.Background(), identity, testToken(time.Time{})); err != nil {
				t.Fatal(err) // a live connection in the pool
			}
			srv.Kill()
			return c, func() {}
		}},
		{"closed port", func(t *testing.T) (redis.UniversalClient, func()) {
			return redis.NewClient(&redis.Options{Addr: closedAddr(t)}), func() {}
		}},
		{"paused, client heeds contexts", func(t *testing.T) (redis.UniversalClient, func()) {
			srv := startRedis(t)
			c := srv.Client(t)
			if err := c.Ping(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
			srv.Pause(t)
			return c, func() { srv.Resume(t) }
		}},
		{"paused, default client", func(t *testing.T) (redis.UniversalClient, func()) {
			// Without ContextTimeoutEnabled the client waits for its
			// ReadTimeout (seconds); the Store must not.
			srv := startRedis(t)
			c := redis.NewClient(&redis.Options{Addr: srv.Addr})
			t.Cleanup(func() { _ = c.Close() })
			if err := c.Ping(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
			srv.Pause(t)
			return c, func() { srv.Resume(t) }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			c, done := tc.setup(t)
			defer done()
			defer c.Close()
			s := newStore(t, c, redisstore.WithKey(key32), redisstore.WithTimeout(timeout))
			ctx := context.Background()
			tok := testToken(time.Now().Add(time.Hour))

			check := func(op string, f func() error) {
				t.Helper()
				start := time.Now()
				err := f()
				took := time.Since(start)
				if err == nil {
					t.Errorf("%s: no error", op)
					return
				}
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("%s: error %q does not wrap context.DeadlineExceeded", op, err)
				}
				if took > timeout+300*time.Millisecond {
					t.Errorf("%s took %v, want about %v at most", op, took, timeout)
				}
				msg := err.Error()
				t.Logf("%s: %v after %v", op, err, took.Round(time.Millisecond))
				if !strings.HasPrefix(msg, "redisstore: ") {
					t.Errorf("%s: error %q does not start with %q", op, msg, "redisstore: ")
				}
				noSecret(t, op+" error", msg)
				if strings.Contains(msg, "v1e:") {
					t.Errorf("%s: error %q shows a value", op, msg)
				}
			}
			check("Load", func() error {
				got, err := s.Load(ctx, identity)
				if got != nil {
					t.Errorf("Load = %v with error %v", got, err)
				}
				return err
			})
			check("Save", func() error { return s.Save(ctx, identity, tok) })
			check("Delete", func() error { return s.Delete(ctx, identity, tok.Token) })
			check("Lock", func() error {
				unlock, ok, err := s.Lock(ctx, identity, time.Second)
				if ok || unlock != nil {
					t.Errorf("Lock = ok %t with error %v", ok, err)
				}
				return err
			})
			start := time.Now()
			s.Wait(ctx, identity, time.Hour)
			if took, most := time.Since(start), redisstore.DefaultPollInterval+300*time.Millisecond; took > most {
				t.Errorf("Wait took %v, want at most %v", took, most)
			}
			// A caller's context that ends first ends the call.
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := s.Load(cctx, identity); err == nil {
				t.Error("Load on a canceled context: no error")
			}
		})
	}
}

// TestUnlockWhenRedisDown checks that the unlock of a lock taken before
// Redis went away returns within the timeout.
func TestUnlockWhenRedisDown(t *testing.T) {
	checkLeaks(t)
	srv := startRedis(t)
	c := srv.Client(t)
	s := newStore(t, c, redisstore.WithKey(key32), redisstore.WithTimeout(100*time.Millisecond))
	unlock, ok, err := s.Lock(context.Background(), identity, time.Minute)
	if err != nil || !ok {
		t.Fatalf("Lock = %t, %v", ok, err)
	}
	srv.Pause(t)
	defer srv.Resume(t)
	start := time.Now()
	unlock()
	if took, most := time.Since(start), 500*time.Millisecond; took > most {
		t.Errorf("unlock with Redis paused took %v, want at most %v", took, most)
	}
}

// TestConcurrent runs Save, Load, Delete and Lock from many goroutines
// over two Stores; run it with -race.
func TestConcurrent(t *testing.T) {
	checkLeaks(t)
	srv := startRedis(t)
	stores := []*redisstore.Store{
		newStore(t, srv.Client(t), redisstore.WithKey(key32), redisstore.WithTimeout(5*time.Second)),
		newStore(t, srv.Client(t), redisstore.WithKey(key32), redisstore.WithTimeout(5*time.Second)),
	}
	ctx := ctxTimeout(t, 60*time.Second)
	keys := []string{"k1", "k2", "k3"}
	var holders [3]int32 // per key, goroutines that hold its lock
	var mu sync.Mutex    // guards holders
	var wg sync.WaitGroup
	for g := range 50 {
		wg.Go(func() {
			s := stores[g%len(stores)]
			for i := range 20 {
				k := i % len(keys)
				tok := tokenN(g*1000 + i)
				if err := s.Save(ctx, keys[k], tok); err != nil {
					t.Errorf("Save: %v", err)
					return
				}
				got, err := s.Load(ctx, keys[k])
				if err != nil {
					t.Errorf("Load: %v", err)
					return
				}
				// Another goroutine may have saved or deleted since;
				// whatever is there is whole.
				if got != nil && "rt-"+strings.TrimPrefix(got.Token.AccessToken, "at-") != got.Token.RefreshToken {
					t.Errorf("Load = a token mixed from two: %s", fields(*got.Token))
				}
				if i%5 == 0 {
					if err := s.Delete(ctx, keys[k], tok.Token); err != nil {
						t.Errorf("Delete: %v", err)
					}
				}
				unlock, ok, err := s.Lock(ctx, keys[k], 10*time.Second)
				if err != nil {
					t.Errorf("Lock: %v", err)
					return
				}
				if ok {
					mu.Lock()
					holders[k]++
					if holders[k] > 1 {
						t.Errorf("%d holders of the lock of %s", holders[k], keys[k])
					}
					mu.Unlock()
					time.Sleep(time.Millisecond)
					mu.Lock()
					holders[k]--
					mu.Unlock()
					unlock()
				} else {
					s.Wait(ctx, keys[k], time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
}

func TestStoreRedacts(t *testing.T) {
	checkLeaks(t)
	c := newClient(t, closedAddr(t))
	s := newStore(t, c, redisstore.WithKey(key32))
	want := `redisstore.Store{Prefix: "tokenhttp:", Encrypted: true, PollInterval: 50ms, Timeout: 300ms}`
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(verb, s); got != want {
			t.Errorf("Sprintf(%s, store) = %q, want %q", verb, got, want)
		}
		if got := fmt.Sprintf(verb, *s); got != want {
			t.Errorf("Sprintf(%s, *store) = %q, want %q", verb, got, want)
		}
	}
	var out []string
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, string(js), fmt.Sprintf("%q", s))
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "store", s)
	out = append(out, buf.String())
	for _, o := range out {
		for _, leak := range []string{string(key32), hex.EncodeToString(key32), base64.StdEncoding.EncodeToString(key32), fmt.Sprint(key32[:4])} {
			if strings.Contains(o, leak) {
				t.Errorf("%q shows the key", o)
			}
		}
	}
}

// TestRedisError checks that an error Redis answers is wrapped, fast and
// clean: here a user whose ACL allows none of the Store's commands.
func TestRedisError(t *testing.T) {
	checkLeaks(t)
	srv := startRedis(t)
	admin := srv.Client(t)
	ctx := ctxTimeout(t, 10*time.Second)
	if err := admin.Do(ctx, "ACL", "SETUSER", "limited", "on", ">pw-SECRET-c0ffee", "~*", "-@all", "+hello", "+auth", "+client", "+ping").Err(); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: "limited", Password: "pw-SECRET-c0ffee"})
	defer c.Close()
	s := newStore(t, c, redisstore.WithKey(key32))
	tok := testToken(time.Time{})
	for op, f := range map[string]func() error{
		"load":   func() error { _, err := s.Load(ctx, identity); return err },
		"save":   func() error { return s.Save(ctx, identity, tok) },
		"delete": func() error { return s.Delete(ctx, identity, tok.Token) },
		"lock":   func() error { _, _, err := s.Lock(ctx, identity, time.Second); return err },
	} {
		start := time.Now()
		err := f()
		if err == nil {
			t.Errorf("%s without permission: no error", op)
			continue
		}
		if took, most := time.Since(start), redisstore.DefaultTimeout+300*time.Millisecond; took > most {
			t.Errorf("%s took %v, want at most %v", op, took, most)
		}
		var rerr redis.Error
		if !errors.As(err, &rerr) {
			t.Errorf("%s: error %q does not wrap a redis.Error", op, err)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "redisstore: "+op+": ") || strings.Contains(msg, "c0ffee") {
			t.Errorf("error = %q, want it to start with %q and not show the password", msg, "redisstore: "+op+": ")
		}
		noSecret(t, op+" error", err.Error())
		t.Logf("%s: %v", op, err)
	}
}

// TestSaveRefuses checks Save's errors for tokens it cannot store: they
// name redisstore and show no secret, and Redis is left as it was.
func TestSaveRefuses(t *testing.T) {
	checkLeaks(t)
	c := startRedis(t).Client(t)
	ctx := ctxTimeout(t, 10*time.Second)
	s := newStore(t, c, redisstore.WithKey(key32))
	notJSON := testToken(time.Time{})
	notJSON.Token.Extra = map[string]any{"f": func() {}, "secret": secretRT}
	huge := testToken(time.Time{})
	huge.Token.AccessToken = secretAT + strings.Repeat("x", 1<<20)
	for name, tok := range map[string]source.StoredToken{
		"nil token":      {},
		"extra not json": notJSON,
		"too large":      huge,
	} {
		err := s.Save(ctx, identity, tok)
		if err == nil {
			t.Errorf("%s: Save: no error", name)
			continue
		}
		if !strings.HasPrefix(err.Error(), "redisstore: save: ") {
			t.Errorf("%s: error %q does not start with %q", name, err, "redisstore: save: ")
		}
		noSecret(t, name+" error", err.Error())
	}
	if n := c.DBSize(ctx).Val(); n != 0 {
		t.Errorf("Redis holds %d keys after refused Saves, want 0", n)
	}
}

// TestLockAbandoned checks that a lock Redis grants after Lock gave up
// waiting is released, not left to block the fleet for its ttl.
func TestLockAbandoned(t *testing.T) {
	checkLeaks(t)
	srv := startRedis(t)
	admin := srv.Client(t)
	// A client that does not heed context deadlines: its SET NX completes
	// after the Store gave up.
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	ctx := ctxTimeout(t, 10*time.Second)
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, c, redisstore.WithKey(key32), redisstore.WithTimeout(100*time.Millisecond))
	srv.Pause(t)
	_, ok, err := s.Lock(ctx, identity, time.Minute)
	srv.Resume(t)
	if err == nil || ok {
		t.Fatalf("Lock with Redis paused = %t, %v; want an error", ok, err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, locks := names(t, admin)
		if len(locks) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the abandoned lock %q is still held", locks)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// And the lock is free for the fleet.
	if _, ok, err := newStore(t, admin, redisstore.WithKey(key32)).Lock(ctx, identity, time.Second); err != nil || !ok {
		t.Errorf("Lock after the abandoned one = %t, %v", ok, err)
	}
}

// A lock whose reply is lost is still this caller's: go-redis sends the
// command again on another connection, and that attempt finds the lock
// held by this very caller. Lock must say ok, not leave the caller
// waiting for a lock nobody will release.
func TestLockReplyLost(t *testing.T) {
	checkLeaks(t)
	srv := startRedis(t)
	px := newProxy(t, srv.Addr)
	s := newStore(t, newClient(t, px.Addr), redisstore.WithKey(key32), redisstore.WithTimeout(2*time.Second))
	ctx := ctxTimeout(t, 10*time.Second)
	// A first lock through the proxy, so that any script is loaded.
	unlock, ok, err := s.Lock(ctx, "warm-up", time.Second)
	if err != nil || !ok {
		t.Fatalf("Lock = %t, %v", ok, err)
	}
	unlock()
	px.DropReplyTo(":lock")
	unlock, ok, err = s.Lock(ctx, identity, 10*time.Second)
	if got := px.dropped.Load(); got != 1 {
		t.Fatalf("replies dropped = %d, want 1", got)
	}
	if err != nil || !ok {
		t.Fatalf("Lock after its reply was lost = %t, %v; want ok: the lock is this caller's", ok, err)
	}
	other := newStore(t, srv.Client(t), redisstore.WithKey(key32))
	if _, ok, _ := other.Lock(ctx, identity, time.Second); ok {
		t.Fatal("another replica took the lock too")
	}
	unlock()
	if _, ok, err := other.Lock(ctx, identity, time.Second); err != nil || !ok {
		t.Fatalf("Lock after unlock = %t, %v; want true, nil", ok, err)
	}
}
