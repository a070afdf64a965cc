package redisstore

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenhttp/tokenhttp/source"
)

// FuzzOpen feeds Load's parser arbitrary values: it must not panic, must
// accept nothing over the size limit, and a token it accepts must carry
// the fingerprint the value claims, so Delete compares the right thing.
func FuzzOpen(f *testing.F) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialed
	defer c.Close()
	enc, err := New(c, WithKey([]byte("0123456789abcdef")))
	if err != nil {
		f.Fatal(err)
	}
	plain, err := New(c, WithPlaintext())
	if err != nil {
		f.Fatal(err)
	}
	const name = "tokenhttp:name"
	tok := source.StoredToken{Token: &source.Token{AccessToken: "at", RefreshToken: "rt", TokenType: "Bearer",
		Expiry: time.Unix(1700000000, 0), Extra: map[string]any{"n": 1}}, Obtained: time.Unix(1699990000, 0)}
	for _, s := range []*Store{enc, plain} {
		v, err := s.seal(name, tok)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v)
		f.Add(v[:len(v)-3])
	}
	f.Add("v1p:00000000000000000000000000000000:e30=") // {}
	f.Add("v1e::")
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		for _, s := range []*Store{enc, plain} {
			got := s.open(name, v)
			if got == nil {
				continue
			}
			if len(v) > maxValue {
				t.Fatalf("accepted a value of %d bytes", len(v))
			}
			if got.Token == nil {
				t.Fatal("accepted a value without a token")
			}
			if !strings.HasPrefix(v, s.head(got.Token)) {
				t.Fatalf("accepted a token whose fingerprint is not the value's")
			}
		}
	})
}
