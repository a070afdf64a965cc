package source

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"maps"
	"net/url"
	"slices"
	"strconv"
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
// the fallback (telemetry.EventStoreFallback, MetricStoreFallbacks). A
// Store that bounds its calls may say so with a method
// Timeout() time.Duration (redisstore.Store has one): a fetch then spends
// at most that long in all its store calls before it reaches the
// endpoint. A source saves a new token and unlocks after it hands the
// token out, in the background; Close waits for that.
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
// decides which token the endpoint issues — the token URL, grant, client
// id, username, scopes, extra endpoint parameters (an audience), Origin,
// Cloud, the requested lifetime, Config.StoreKey, and every declarative
// field of the Provider (name, encoding, client auth style, one-time
// passwords, field names, fixed fields, headers, reply fields, default
// lifetime), and what of the grant decides the token (grantIdentity: the
// starting refresh token's hash, the token exchange's types, audience,
// resources and requested type; whose assertion or subject token it is,
// Config.StoreKey says). Two configs that differ in any of them never
// share a token. Every part is length-prefixed before it is hashed, so no
// two lists of parts encode alike. It holds no secret; stores hash it again with their
// own key before it reaches a server.
func storeKey(r *resolved) string {
	p := r.p
	var b keyBuilder
	b.str("tokenhttp/v2")
	b.str(r.tokenURL)
	b.str(r.grant)
	b.str(r.cfg.ClientID)
	b.str(r.cfg.Username)
	b.strs(r.cfg.Scopes)
	b.multi(r.cfg.EndpointParams)
	b.str(r.cfg.Origin)
	b.str(r.cfg.Cloud)
	b.str(r.cfg.Lifetime.String())
	b.str(r.cfg.StoreKey)
	b.str(p.Name)
	b.str(r.encoding.String())
	b.str(r.auth.String())
	b.str(strconv.FormatBool(p.OneTimePassword))
	b.str(p.DefaultLifetime.String())
	names := slices.Sorted(maps.Keys(p.Fields))
	b.num(len(names))
	for _, k := range names {
		b.str(k)
		b.str(p.Fields[k])
	}
	names = slices.Sorted(maps.Keys(p.Fixed))
	b.num(len(names))
	for _, k := range names {
		b.str(k)
		v, err := json.Marshal(p.Fixed[k]) // typed: 1 and "1" differ
		if err != nil {
			v = []byte(fmt.Sprintf("%T %#v", p.Fixed[k], p.Fixed[k]))
		}
		b.str(string(v))
	}
	b.multi(url.Values(p.Header))
	rf := p.Reply.resolve()
	b.strs([]string{rf.AccessToken, rf.TokenType, rf.ExpiresIn, rf.RefreshToken, rf.Scope, rf.HeaderValue})
	if id := grantIdentity(r); len(id) > 0 {
		b.strs(id)
	}
	return hex.EncodeToString(b.h.Sum(nil))
}

// keyBuilder hashes a list of parts unambiguously: each string is
// written as its length, then its bytes; each list as its length, then
// its items.
type keyBuilder struct{ h hash.Hash }

func (b *keyBuilder) num(n int) {
	if b.h == nil {
		b.h = sha256.New()
	}
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(n))
	b.h.Write(buf[:])
}

func (b *keyBuilder) str(s string) {
	b.num(len(s))
	b.h.Write([]byte(s))
}

func (b *keyBuilder) strs(ss []string) {
	b.num(len(ss))
	for _, s := range ss {
		b.str(s)
	}
}

// multi writes a map of lists in the order of its sorted names.
func (b *keyBuilder) multi(m map[string][]string) {
	names := slices.Sorted(maps.Keys(m))
	b.num(len(names))
	for _, k := range names {
		b.str(k)
		b.strs(m[k])
	}
}

// credSetSize is how many fingerprints a credSet keeps.
const credSetSize = 16

// credSet is a small set of the last fingerprints added. It is safe for
// concurrent use.
type credSet struct {
	mu  sync.Mutex // guards the fields below
	fps [credSetSize][sha256.Size]byte
	n   int // how many were ever added
}

func (c *credSet) add(fp [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fps[c.n%credSetSize] = fp
	c.n++
}

func (c *credSet) has(fp [sha256.Size]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range min(c.n, credSetSize) {
		if c.fps[i] == fp {
			return true
		}
	}
	return false
}

// credential fingerprints the credential a token carries (AccessToken and
// Authorization), as sameCredential compares them.
func credential(t *Token) [sha256.Size]byte {
	var b keyBuilder
	b.str("credential")
	b.str(t.AccessToken)
	b.str(t.Authorization)
	var fp [sha256.Size]byte
	b.h.Sum(fp[:0])
	return fp
}

// refreshFingerprint fingerprints a refresh token.
// refreshID is refreshFingerprint in hex for a store key, "" without a
// refresh token.
func refreshID(rt string) string {
	if rt == "" {
		return ""
	}
	fp := refreshFingerprint(rt)
	return hex.EncodeToString(fp[:])
}

func refreshFingerprint(rt string) [sha256.Size]byte {
	var b keyBuilder
	b.str("refresh")
	b.str(rt)
	var fp [sha256.Size]byte
	b.h.Sum(fp[:0])
	return fp
}

// sameCredential reports whether a and b carry the same credential.
func sameCredential(a, b *Token) bool {
	return a != nil && b != nil && a.AccessToken == b.AccessToken && a.Authorization == b.Authorization
}
