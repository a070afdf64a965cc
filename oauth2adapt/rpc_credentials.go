package oauth2adapt

import (
	"context"
	"fmt"

	"github.com/tokenhttp/tokenhttp/internal/safehttp"
	"github.com/tokenhttp/tokenhttp/internal/tokenuse"
	"github.com/tokenhttp/tokenhttp/oauth2adapt/internal/rpctoken"
	"github.com/tokenhttp/tokenhttp/source"
)

// RPCCredentials attaches a source's token to each gRPC call. It
// implements grpc's credentials.PerRPCCredentials by its method set, so
// this package does not import grpc:
//
//	conn, err := grpc.NewClient(addr,
//		grpc.WithTransportCredentials(credentials.NewTLS(tlsConfig)),
//		grpc.WithPerRPCCredentials(oauth2adapt.PerRPCCredentials(src)))
//
// Unlike grpc's credentials/oauth.TokenSource, it asks the source with the
// call's own context, so the call's deadline and cancellation bound the
// wait for a token (not the fetch other callers share) and its values
// (a trace) reach the source. It is safe for concurrent use.
type RPCCredentials struct {
	src      source.TokenSource
	insecure bool
}

// RPCOption configures PerRPCCredentials.
type RPCOption interface{ apply(*RPCCredentials) }

type rpcOption func(*RPCCredentials)

func (f rpcOption) apply(c *RPCCredentials) { f(c) }

// WithInsecureTransport lets the credentials go over a connection without
// transport security (grpc's insecure.NewCredentials()), for a trusted
// network such as a sidecar on loopback. Without it RequireTransportSecurity
// reports true, and gRPC refuses to send the token over such a connection.
func WithInsecureTransport() RPCOption {
	return rpcOption(func(c *RPCCredentials) { c.insecure = true })
}

// PerRPCCredentials returns gRPC per-RPC credentials over src. It panics if
// src is nil.
func PerRPCCredentials(src source.TokenSource, opts ...RPCOption) *RPCCredentials {
	if src == nil {
		panic("oauth2adapt: PerRPCCredentials needs a TokenSource, got nil")
	}
	c := &RPCCredentials{src: src}
	for _, o := range opts {
		o.apply(c)
	}
	return c
}

// GetRequestMetadata returns the "authorization" metadata of a call:
// the token's HeaderValue (the provider's own scheme when it dictates one,
// else "Bearer <token>"). ctx is the call's: it bounds how long the call
// waits for a token. uri (the audience gRPC passes) is not used. An error
// wraps the source's, such as a *source.Error or the context's, and shows
// no secret; gRPC fails the call with it as codes.Unauthenticated (as
// grpc.WithPerRPCCredentials) or codes.Internal (as the grpc.PerRPCCredentials
// call option), having sent nothing.
func (c *RPCCredentials) GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error) {
	tok, err := c.src.Token(ctx)
	err = tokenuse.Check(tok, err)
	if err != nil {
		return nil, fmt.Errorf("oauth2adapt: no token for the gRPC call: %w", err)
	}
	if err := safehttp.CheckHeaderToken(tok.AccessToken, tok.Authorization); err != nil {
		return nil, fmt.Errorf("oauth2adapt: the token cannot be sent as gRPC metadata: %w", err)
	}
	rpctoken.Record(ctx, tok)
	return map[string]string{"authorization": tok.HeaderValue()}, nil
}

// RequireTransportSecurity reports whether the credentials need a secure
// connection: true unless WithInsecureTransport was given.
func (c *RPCCredentials) RequireTransportSecurity() bool { return !c.insecure }
