// Package grpcretry is the gRPC side of a rejected token: a unary client
// interceptor that, when a call carrying a token from
// oauth2adapt.PerRPCCredentials fails with codes.Unauthenticated, drops
// exactly that token and, for a call the caller says is idempotent, tries
// it once more with a new one.
//
// It is a package of its own because it needs grpc's types; oauth2adapt
// does not import grpc.
//
//	creds := oauth2adapt.PerRPCCredentials(src)
//	conn, err := grpc.NewClient(addr,
//		grpc.WithTransportCredentials(credentials.NewTLS(tlsConfig)),
//		grpc.WithPerRPCCredentials(creds),
//		grpc.WithUnaryInterceptor(grpcretry.UnaryClientInterceptor(src)))
//	...
//	resp, err := client.Get(ctx, req, grpcretry.Idempotent()) // may be sent twice
package grpcretry

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokenhttp/tokenhttp/oauth2adapt/internal/rpctoken"
	"github.com/tokenhttp/tokenhttp/source"
)

// Option configures UnaryClientInterceptor.
type Option interface{ apply(*config) }

type config struct {
	idempotent func(fullMethod string) bool // nil: only calls with Idempotent()
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithIdempotentMethods says which methods ("/package.Service/Method") are
// idempotent, so that every call to them may be retried, as well as the
// calls made with Idempotent().
func WithIdempotentMethods(idempotent func(fullMethod string) bool) Option {
	return optionFunc(func(c *config) { c.idempotent = idempotent })
}

// Idempotent returns a call option that says this call may be sent twice.
// The interceptor retries no other call (unless WithIdempotentMethods
// says its method may be): a call refused as Unauthenticated may still
// have had effects.
func Idempotent() grpc.CallOption { return idempotentOption{} }

type idempotentOption struct{ grpc.EmptyCallOption }

// UnaryClientInterceptor returns a unary client interceptor for calls that
// carry src's tokens through oauth2adapt.PerRPCCredentials (as a dial or a
// call option). When such a call fails with codes.Unauthenticated, it:
//
//  1. tells src, if it is a source.Invalidator (the sources of source.New
//     are), that the token this call carried was rejected. Only that
//     token is dropped: a newer one another call already fetched survives.
//  2. if the call is idempotent (the Idempotent call option, or
//     WithIdempotentMethods), asks src for a token and, when it differs
//     from the rejected one, sends the call once more. The second answer
//     is returned, whatever it is; when it is Unauthenticated too, src, if
//     it is a source.RenewalRejecter, is told, so that an API that refuses
//     every token does not cost a token request per call.
//
// A call that failed before a token was attached (the source failed, the
// connection is insecure) is neither invalidated nor retried; nor is any
// other code. The retry uses the call's own context, so its deadline
// bounds both attempts. Streams are not covered.
func UnaryClientInterceptor(src source.TokenSource, opts ...Option) grpc.UnaryClientInterceptor {
	if src == nil {
		panic("grpcretry: UnaryClientInterceptor needs a TokenSource, got nil")
	}
	var c config
	for _, o := range opts {
		o.apply(&c)
	}
	inv, _ := src.(source.Invalidator)
	lim, _ := src.(source.RenewalRejecter)
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, callOpts ...grpc.CallOption) error {
		tctx, slot := rpctoken.With(ctx)
		err := invoker(tctx, method, req, reply, cc, callOpts...)
		rejected := slot.Token()
		if err == nil || rejected == nil || status.Code(err) != codes.Unauthenticated {
			return err
		}
		if inv != nil {
			inv.Invalidate(rejected)
		}
		if !c.retries(method, callOpts) {
			return err
		}
		fresh, ferr := src.Token(ctx)
		if ferr != nil || fresh == nil || fresh == rejected || fresh.HeaderValue() == rejected.HeaderValue() {
			return err // the same token would be refused again
		}
		rctx, rslot := rpctoken.With(ctx)
		err = invoker(rctx, method, req, reply, cc, callOpts...)
		if again := rslot.Token(); again != nil && lim != nil && status.Code(err) == codes.Unauthenticated {
			lim.RejectedAfterRenewal(again) // the new token was refused too: the source backs off
		}
		return err
	}
}

// retries reports whether a call to method with opts may be sent again.
func (c *config) retries(method string, opts []grpc.CallOption) bool {
	for _, o := range opts {
		if _, ok := o.(idempotentOption); ok {
			return true
		}
	}
	return c.idempotent != nil && c.idempotent(method)
}
