package redisstore

import (
	"fmt"
	"time"
)

// Defaults for the options.
const (
	// DefaultPrefix starts every Redis key name the Store writes.
	DefaultPrefix = "tokenhttp:"
	// DefaultPollInterval is how often Wait lets its caller look again
	// for a token another replica is fetching, before jitter.
	DefaultPollInterval = 50 * time.Millisecond
	// DefaultTimeout bounds each Redis operation.
	DefaultTimeout = 300 * time.Millisecond
)

// An Option configures a Store. Options are applied in order by New,
// which validates the result.
type Option interface {
	apply(*options)
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// options is what the Options set; New turns it into a Store.
type options struct {
	key       []byte // AES key; nil without WithKey
	plaintext bool
	prefix    string
	poll      time.Duration
	timeout   time.Duration
}

// WithKey sets the AES-GCM key that encrypts tokens at rest: 16, 24 or 32
// bytes (AES-128, -192, -256), the same on every replica. It also keys the
// hash that names the Redis keys, so stores with different keys do not
// see each other's tokens. WithKey copies key.
func WithKey(key []byte) Option {
	k := append([]byte{}, key...)
	return optionFunc(func(o *options) { o.key = k })
}

// WithPlaintext allows storing tokens unencrypted, readable by anyone who
// can read Redis. Without it New refuses a Store that has no WithKey.
func WithPlaintext() Option {
	return optionFunc(func(o *options) { o.plaintext = true })
}

// WithPrefix sets the prefix of every Redis key name; DefaultPrefix
// without it. An empty prefix is allowed.
func WithPrefix(prefix string) Option {
	return optionFunc(func(o *options) { o.prefix = prefix })
}

// WithPollInterval sets how long Wait sleeps at most before its caller
// looks again for a token another replica is fetching: a random duration
// between half of d and d. It must be positive; DefaultPollInterval
// without it.
func WithPollInterval(d time.Duration) Option {
	return optionFunc(func(o *options) { o.poll = d })
}

// WithTimeout bounds each Redis operation: a slower Redis is an error, and
// the source fetches on its own. It must be positive; DefaultTimeout
// without it.
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.timeout = d })
}

// resolve applies opts over the defaults and validates them.
func resolve(opts []Option) (options, error) {
	o := options{prefix: DefaultPrefix, poll: DefaultPollInterval, timeout: DefaultTimeout}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	switch {
	case o.key != nil && o.plaintext:
		return o, fmt.Errorf("redisstore: WithKey and WithPlaintext exclude each other")
	case o.key == nil && !o.plaintext:
		return o, fmt.Errorf("redisstore: no encryption key: use WithKey, or WithPlaintext to store tokens unencrypted")
	case o.key != nil && len(o.key) != 16 && len(o.key) != 24 && len(o.key) != 32:
		return o, fmt.Errorf("redisstore: WithKey: key is %d bytes, want 16, 24 or 32", len(o.key))
	case o.poll <= 0:
		return o, fmt.Errorf("redisstore: WithPollInterval: %v is not positive", o.poll)
	case o.timeout <= 0:
		return o, fmt.Errorf("redisstore: WithTimeout: %v is not positive", o.timeout)
	}
	return o, nil
}
