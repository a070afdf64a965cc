// Package oauth2adapt connects this module's token sources with
// golang.org/x/oauth2 in both directions, and with gRPC per-RPC
// credentials.
//
//   - ToOAuth2 hands a source.TokenSource (the cached sources of
//     source.New, with every provider dialect) to a library that takes an
//     oauth2.TokenSource.
//   - FromOAuth2 puts any oauth2.TokenSource behind tokenhttp's Transport,
//     Middleware and telemetry.
//   - PerRPCCredentials attaches a source's tokens to gRPC calls, with each
//     call's own context. It satisfies grpc's credentials.PerRPCCredentials
//     structurally, so this package does not import grpc; the retry after
//     codes.Unauthenticated, which needs grpc's types, is in the
//     oauth2adapt/grpcretry package.
//
// This is the only package of the module whose non-test build imports
// golang.org/x/oauth2.
//
// Tokens cross in one direction only: ToOAuth2 never gives the refresh
// token to x/oauth2 (a second holder of a rotating refresh token can get
// the whole token family revoked by reuse detection), and FromOAuth2 does
// not take it either. No error of this package shows a token.
package oauth2adapt
