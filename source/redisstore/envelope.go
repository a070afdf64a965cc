package redisstore

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/tokenhttp/tokenhttp/source"
)

// Envelope versions: the first bytes of every value.
const (
	versionEncrypted = "v1e:"
	versionPlaintext = "v1p:"
)

// maxValue is the largest value Save writes and Load reads.
const maxValue = 1 << 20

// fingerprintLen is the length of a fingerprint in hex.
const fingerprintLen = 32

// record is a stored token as JSON. It is not source.Token's MarshalJSON,
// which redacts the secrets.
type record struct {
	AccessToken   string         `json:"access_token,omitempty"`
	TokenType     string         `json:"token_type,omitempty"`
	RefreshToken  string         `json:"refresh_token,omitempty"`
	Expiry        time.Time      `json:"expiry,omitzero"`
	Scope         string         `json:"scope,omitempty"`
	Authorization string         `json:"authorization,omitempty"`
	Extra         map[string]any `json:"extra,omitempty"`
	Obtained      time.Time      `json:"obtained,omitzero"`
	Rejections    int            `json:"rejections,omitempty"`
}

// errEncode is Save's error for a token that is not JSON. The encoder's
// own error is left out: it may quote a value from Extra.
var errEncode = errors.New("redisstore: save: token cannot be encoded as JSON")

// errTooLarge is Save's error for a token over maxValue.
var errTooLarge = errors.New("redisstore: save: token too large to store")

// version is this Store's envelope version.
func (s *Store) version() string {
	if s.aead == nil {
		return versionPlaintext
	}
	return versionEncrypted
}

// name returns the Redis key name for key.
func (s *Store) name(key string) string {
	return s.prefix + hex.EncodeToString(s.mac([]byte(key)))
}

// mac returns HMAC-SHA256(s.hmacKey, b).
func (s *Store) mac(b []byte) []byte {
	h := hmac.New(sha256.New, s.hmacKey)
	h.Write(b)
	return h.Sum(nil)
}

// fingerprint identifies t's credential, as sameCredential compares it.
func (s *Store) fingerprint(t *source.Token) string {
	return hex.EncodeToString(s.mac([]byte(t.AccessToken + "\x00" + t.Authorization))[:fingerprintLen/2])
}

// head is the start of every value that holds t: version and fingerprint.
func (s *Store) head(t *source.Token) string {
	return s.version() + s.fingerprint(t) + ":"
}

// seal encodes t as the value to store under name.
func (s *Store) seal(name string, t source.StoredToken) (string, error) {
	tok := t.Token
	js, err := json.Marshal(record{
		AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken,
		Expiry: tok.Expiry, Scope: tok.Scope, Authorization: tok.Authorization, Extra: tok.Extra,
		Obtained: t.Obtained, Rejections: t.Rejections,
	})
	if err != nil {
		return "", errEncode
	}
	body := js
	if s.aead != nil {
		nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(js)+s.aead.Overhead())
		_, _ = rand.Read(nonce) // never fails
		body = s.aead.Seal(nonce, nonce, js, []byte(name))
	}
	v := s.head(tok) + base64.StdEncoding.EncodeToString(body)
	if len(v) > maxValue {
		return "", errTooLarge
	}
	return v, nil
}

// open decodes a value read under name, or returns nil if it is not one
// this Store wrote there.
func (s *Store) open(name, v string) *source.StoredToken {
	if len(v) > maxValue {
		return nil
	}
	rest, ok := strings.CutPrefix(v, s.version())
	if !ok || len(rest) < fingerprintLen+1 || rest[fingerprintLen] != ':' {
		return nil
	}
	fp, enc := rest[:fingerprintLen], rest[fingerprintLen+1:]
	body, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil
	}
	if s.aead != nil {
		if len(body) < s.aead.NonceSize() {
			return nil
		}
		nonce, ct := body[:s.aead.NonceSize()], body[s.aead.NonceSize():]
		if body, err = s.aead.Open(nil, nonce, ct, []byte(name)); err != nil {
			return nil
		}
	}
	var r record
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&r) != nil {
		return nil
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil // trailing data
	}
	tok := &source.Token{
		AccessToken: r.AccessToken, TokenType: r.TokenType, RefreshToken: r.RefreshToken,
		Expiry: r.Expiry, Scope: r.Scope, Authorization: r.Authorization, Extra: r.Extra,
	}
	if !hmac.Equal([]byte(fp), []byte(s.fingerprint(tok))) {
		return nil // a fingerprint that does not match would defeat Delete
	}
	return &source.StoredToken{Token: tok, Obtained: r.Obtained, Rejections: r.Rejections}
}
