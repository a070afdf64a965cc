package source

import (
	"crypto"
	"time"

	"github.com/tokenhttp/tokenhttp/internal/jwtsign"
)

// Unexported names the external tests use.
var ParseExpiresIn = parseExpiresIn

const MaxReplyBytes = maxReplyBytes

// SignClientAssertionForTest signs a private_key_jwt assertion, as a
// workload identity system would mint one.
func SignClientAssertionForTest(key crypto.Signer, clientID, aud string) (string, error) {
	return jwtsign.ClientAssertion(key, "", "", clientID, aud, time.Now())
}

// StoreKeyForTest returns the store key s uses now.
func (s *CachedSource) StoreKeyForTest() string { return s.storeKeyNow() }

var ParseDiscovery = parseDiscovery
