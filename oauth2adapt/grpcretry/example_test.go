package grpcretry_test

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/tokenhttp/tokenhttp/oauth2adapt"
	"github.com/tokenhttp/tokenhttp/oauth2adapt/grpcretry"
	"github.com/tokenhttp/tokenhttp/oauth2adapt/internal/grpctest"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// The API revokes the token: the call fails with Unauthenticated, the
// interceptor drops that token, and an idempotent call is sent once more
// with a new one. A call not marked idempotent gets the error, and the
// next call a new token.
func ExampleUnaryClientInterceptor() {
	idp := sourcetest.NewStandard(sourcetest.Options{}) // a token endpoint, and the judge of tokens for this example's server
	defer idp.Close()
	srv, err := grpctest.Start(true, grpctest.ResourceAccepts(idp.Client(), idp.ResourceURL)) // a gRPC health server over TLS
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Stop()

	src, err := source.New(source.Config{TokenURL: idp.TokenURL, HTTPClient: idp.Client(),
		ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer src.Close()

	conn, err := grpc.NewClient("passthrough:///"+srv.Addr,
		grpc.WithTransportCredentials(credentials.NewTLS(srv.ClientTLS)),
		grpc.WithPerRPCCredentials(oauth2adapt.PerRPCCredentials(src)),
		grpc.WithUnaryInterceptor(grpcretry.UnaryClientInterceptor(src)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()

	ctx := context.Background()
	call := func(opts ...grpc.CallOption) string {
		return status.Code(grpctest.Check(ctx, conn, opts...)).String()
	}
	fmt.Println(call())
	idp.RevokeAll()
	fmt.Println("idempotent:", call(grpcretry.Idempotent()))
	idp.RevokeAll()
	fmt.Println("not idempotent:", call())
	fmt.Println("next call:", call())
	fmt.Println("token requests:", idp.TokenRequests())
	// Output:
	// OK
	// idempotent: OK
	// not idempotent: Unauthenticated
	// next call: OK
	// token requests: 3
}
