// Package sourcetest provides emulators of OAuth2 token endpoints for
// tests, in the manner of net/http/httptest.
//
// Each emulator is an httptest.Server on loopback that speaks exactly one
// provider's dialect: NewStandard (RFC 6749), NewVaultID, NewDirectLink,
// NewScorePositivo, NewGestaoPlus and NewSerproID. It serves the token
// endpoint at Server.TokenURL, in the provider's encoding and with the
// provider's error shape, and a protected resource at Server.ResourceURL
// that answers 200 for a valid token and 401 for a missing, unknown,
// revoked or expired one. Knobs inject faults (FailNext, ResetNext,
// HangNext, SetLatency), revoke tokens (RevokeAll, Revoke, RejectRefresh)
// and rotate credentials (SetCredentials); counters tell what the client
// did (TokenRequests, Requests, Issued, ResourceRequests).
//
// NewMTLS starts a token endpoint that requires a client certificate, in
// the manner of PIX and Open Finance Brasil: tls_client_auth and
// private_key_jwt client authentication, and tokens bound to the
// certificate (RFC 8705). NewCA makes the certificate authority such a
// test needs; WritePEM and WritePKCS12 put its certificates in files.
//
// ExampleNewGestaoPlus is a test of a client, over the source and
// tokenhttp packages, that must survive an outage and a revocation.
//
// Without a client library, any HTTP client will do: post the dialect's
// body to TokenURL, then send the Authorization value to ResourceURL (see
// the examples).
//
// Every Server method is safe for concurrent use. Tokens are random
// (crypto/rand) and expire by the server's clock, so lifetimes as short as
// a few milliseconds work (SetLifetime). The emulators keep secrets in
// memory only: the resource echoes the method and body size, never what
// the request carried.
package sourcetest
