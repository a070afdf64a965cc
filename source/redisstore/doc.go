// Package redisstore is a source.Store in Redis. The replicas of a service
// that set it in source.Config.Store share one token per credential,
// fetched by one replica at a time and encrypted at rest; a Redis that is
// slow or down costs a request at most one timeout, after which each
// replica fetches on its own.
//
//	store, err := redisstore.New(redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true}),
//		redisstore.WithKey(key)) // 16, 24 or 32 bytes, the same on every replica
//	src, err := source.New(source.Config{TokenURL: tokenURL, ClientID: id, ClientSecret: secret, Store: store})
//
// # What Redis holds
//
// A token is stored under prefix + hex(HMAC-SHA256(k, key)), where key is
// the source's credential key and k is derived from the AES key (or is a
// fixed label with WithPlaintext). A name reveals neither the credential
// nor a secret. The fetch lock is the same name + ":lock", holding a
// random value for the lock's ttl.
//
// The value is an envelope, versioned so that a later format can live
// beside this one:
//
//	v1e:<fingerprint>:<base64(nonce || AES-GCM(JSON))>   with WithKey
//	v1p:<fingerprint>:<base64(JSON)>                     with WithPlaintext
//
// JSON holds the token's fields, secrets included (access_token,
// token_type, refresh_token, expiry, scope, authorization, extra) and
// obtained. The AES-GCM additional data is the Redis key name, so a value
// copied under another name does not decrypt. fingerprint is the hex of
// the first 16 bytes of HMAC-SHA256(k, AccessToken + "\x00" +
// Authorization): it lets Delete compare and delete in one Lua script
// without decrypting, and reveals nothing of the token. Load checks it
// against the decrypted token.
//
// A value that cannot be read (corrupt, written with another key or mode,
// under another name, of another Redis type, or over 1 MiB) is no token:
// Load returns nil, and the next Save replaces it. A stored token expires
// from Redis a few seconds after its Expiry; a token without one stays
// until it is replaced or deleted.
//
// # Failures
//
// Lock, Delete and the unlock of a lock run Lua scripts: the Redis user
// needs GETRANGE, GET, SET, PEXPIRE, DEL, EVAL and EVALSHA on the prefix's
// keys. A lock whose reply is lost and that the client sends again finds
// its own value and is the caller's.
//
// Every operation is bounded by WithTimeout, whatever the client's own
// timeouts, and its error starts with "redisstore:", wraps the Redis or
// context error and holds no secret. A source that gets an error fetches
// on its own: requests never fail because Redis did. Create the client
// with ContextTimeoutEnabled so that an abandoned command stops at the
// timeout too, instead of at the client's ReadTimeout.
package redisstore
