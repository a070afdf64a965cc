package oauth2adapt_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/tokenhttp/tokenhttp/oauth2adapt"
	"github.com/tokenhttp/tokenhttp/oauth2adapt/internal/grpctest"
	"github.com/tokenhttp/tokenhttp/source"
)

// The credentials are grpc's PerRPCCredentials by their method set.
var _ credentials.PerRPCCredentials = (*oauth2adapt.RPCCredentials)(nil)

// startGRPC starts a grpctest server that accepts any value; it stops when
// t ends.
func startGRPC(t *testing.T, useTLS bool) *grpctest.Server {
	t.Helper()
	srv, err := grpctest.Start(useTLS, func(context.Context, string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

// dial connects to srv, over TLS when srv has it; the connection is closed
// when t ends.
func dial(t *testing.T, srv *grpctest.Server, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	t.Helper()
	tc := insecure.NewCredentials()
	if srv.ClientTLS != nil {
		tc = credentials.NewTLS(srv.ClientTLS)
	}
	conn, err := grpc.NewClient("passthrough:///"+srv.Addr, append([]grpc.DialOption{grpc.WithTransportCredentials(tc)}, opts...)...)
	if err == nil {
		t.Cleanup(func() { conn.Close() })
	}
	return conn, err
}

// TestPerRPCCredentialsTLS: over TLS, a real gRPC server gets the token's
// HeaderValue, the provider's own scheme included.
func TestPerRPCCredentialsTLS(t *testing.T) {
	for _, tok := range []*source.Token{
		{AccessToken: "at-123456", TokenType: "Bearer"},
		{AccessToken: "at-123456", TokenType: "Bearer", Authorization: "VCSchema dmF1bHQtfGF0LTEyMzQ1Ng=="},
	} {
		srv := startGRPC(t, true)
		src := srcFunc(func(context.Context) (*source.Token, error) { return tok, nil })
		conn, err := dial(t, srv, grpc.WithPerRPCCredentials(oauth2adapt.PerRPCCredentials(src)))
		if err != nil {
			t.Fatal(err)
		}
		if err := grpctest.Check(t.Context(), conn); err != nil {
			t.Fatalf("Check: %v", err)
		}
		if got, want := srv.Seen(), tok.HeaderValue(); len(got) != 1 || got[0] != want {
			t.Errorf("the server saw %q, want [%q]", got, want)
		}
	}
}

// TestPerRPCCredentialsInsecure: without the opt-in gRPC refuses to send
// the token over a connection without transport security; with it, the
// token goes.
func TestPerRPCCredentialsInsecure(t *testing.T) {
	tok := &source.Token{AccessToken: "at-123456"}
	src := srcFunc(func(context.Context) (*source.Token, error) { return tok, nil })

	t.Run("refused", func(t *testing.T) {
		srv := startGRPC(t, false)
		creds := oauth2adapt.PerRPCCredentials(src)
		if !creds.RequireTransportSecurity() {
			t.Error("RequireTransportSecurity() = false by default")
		}
		if _, err := dial(t, srv, grpc.WithPerRPCCredentials(creds)); err == nil {
			t.Error("grpc.NewClient with insecure transport and the credentials: no error")
		}
		// As a per-call option on an insecure connection.
		conn, err := dial(t, srv)
		if err != nil {
			t.Fatal(err)
		}
		err = grpctest.Check(t.Context(), conn, grpc.PerRPCCredentials(creds))
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("Check with per-call credentials over insecure transport = %v, want Unauthenticated", err)
		}
		if got := srv.Seen(); len(got) != 0 {
			t.Errorf("the server saw %q, want no token", got)
		}
	})

	t.Run("opted in", func(t *testing.T) {
		srv := startGRPC(t, false)
		conn, err := dial(t, srv, grpc.WithPerRPCCredentials(oauth2adapt.PerRPCCredentials(src, oauth2adapt.WithInsecureTransport())))
		if err != nil {
			t.Fatal(err)
		}
		if err := grpctest.Check(t.Context(), conn); err != nil {
			t.Fatalf("Check: %v", err)
		}
		if got := srv.Seen(); len(got) != 1 || got[0] != "Bearer at-123456" {
			t.Errorf("the server saw %q, want [Bearer at-123456]", got)
		}
	})
}

type ctxKey struct{}

// TestPerRPCCredentialsContext: the source gets the RPC's own context: its
// values, and its deadline, which ends a call whose token does not come.
func TestPerRPCCredentialsContext(t *testing.T) {
	srv := startGRPC(t, true)
	var sawValue any
	var sawDeadline bool
	src := srcFunc(func(ctx context.Context) (*source.Token, error) {
		sawValue = ctx.Value(ctxKey{})
		_, sawDeadline = ctx.Deadline()
		if ctx.Value(ctxKey{}) == "hang" {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return &source.Token{AccessToken: "at-123456"}, nil
	})
	conn, err := dial(t, srv, grpc.WithPerRPCCredentials(oauth2adapt.PerRPCCredentials(src)))
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.WithValue(t.Context(), ctxKey{}, "trace-1"), 10*time.Second)
	defer cancel()
	if err := grpctest.Check(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if sawValue != "trace-1" || !sawDeadline {
		t.Errorf("the source saw value %v, deadline %v; want the RPC's trace-1 and its deadline", sawValue, sawDeadline)
	}

	ctx, cancel = context.WithTimeout(context.WithValue(t.Context(), ctxKey{}, "hang"), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = grpctest.Check(ctx, conn)
	// gRPC reports a failure of connection-level credentials as
	// Unauthenticated, whatever the cause.
	if err == nil || !strings.Contains(err.Error(), context.DeadlineExceeded.Error()) {
		t.Errorf("Check with a hung source = %v, want a failure naming its deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the call ended after %v, want about its 100ms deadline", d)
	}
}

// TestPerRPCCredentialsError: a source's error fails the call, shows no
// secret, and sends nothing.
func TestPerRPCCredentialsError(t *testing.T) {
	srv := startGRPC(t, true)
	refused := &source.Error{Provider: "standard", StatusCode: 401, Code: source.CodeInvalidClient}
	creds := oauth2adapt.PerRPCCredentials(srcFunc(func(context.Context) (*source.Token, error) { return nil, refused }))
	if _, err := creds.GetRequestMetadata(t.Context()); !errors.Is(err, refused) {
		t.Errorf("GetRequestMetadata error = %v, want it to wrap the source's", err)
	}
	conn, err := dial(t, srv, grpc.WithPerRPCCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	err = grpctest.Check(t.Context(), conn)
	if err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("Check = %v, want a failure naming invalid_client", err)
	}
	if got := srv.Seen(); len(got) != 0 {
		t.Errorf("the server saw %q, want nothing", got)
	}

	bad := oauth2adapt.PerRPCCredentials(srcFunc(func(context.Context) (*source.Token, error) {
		return &source.Token{Authorization: "Scheme at-123456\r\nx-evil: 1"}, nil
	}))
	_, err = bad.GetRequestMetadata(t.Context())
	if err == nil {
		t.Error("GetRequestMetadata of a header value with CR LF: no error")
	}
	noSecret(t, err, "at-123456")
}
