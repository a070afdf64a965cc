package oauth2adapt_test

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tokenhttp/tokenhttp/oauth2adapt"
	"github.com/tokenhttp/tokenhttp/oauth2adapt/internal/grpctest"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

// gRPC calls carry a cached source's token, asked for with each call's own
// context. Over a connection without TLS, gRPC refuses the credentials
// unless WithInsecureTransport says the network is trusted.
func ExamplePerRPCCredentials() {
	idp := sourcetest.NewStandard(sourcetest.Options{})
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
		grpc.WithPerRPCCredentials(oauth2adapt.PerRPCCredentials(src)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	for range 2 {
		fmt.Println("call:", grpctest.Check(context.Background(), conn))
	}
	fmt.Println("scheme:", strings.Fields(srv.Seen()[0])[0])
	fmt.Println("token requests:", idp.TokenRequests())

	_, err = grpc.NewClient("passthrough:///"+srv.Addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(oauth2adapt.PerRPCCredentials(src)))
	fmt.Println("insecure refused:", err != nil)
	// Output:
	// call: <nil>
	// call: <nil>
	// scheme: Bearer
	// token requests: 1
	// insecure refused: true
}
