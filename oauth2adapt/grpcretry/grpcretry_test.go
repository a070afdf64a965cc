package grpcretry_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/tokenhttp/tokenhttp/oauth2adapt"
	"github.com/tokenhttp/tokenhttp/oauth2adapt/grpcretry"
	"github.com/tokenhttp/tokenhttp/oauth2adapt/internal/grpctest"
	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/sourcetest"
)

const checkMethod = "/grpc.health.v1.Health/Check"

// setup starts a sourcetest emulator, a cached source over it, and a TLS
// gRPC server that accepts what the emulator's API accepts; it returns a
// connection with the credentials and the interceptor. All end with t.
func setup(t *testing.T, opts ...grpcretry.Option) (*sourcetest.Server, *grpctest.Server, source.TokenSource, *grpc.ClientConn) {
	t.Helper()
	idp := sourcetest.NewStandard(sourcetest.Options{})
	t.Cleanup(idp.Close)
	src, err := source.New(source.Config{TokenURL: idp.TokenURL, HTTPClient: idp.Client(),
		ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	srv, conn := serve(t, grpctest.ResourceAccepts(idp.Client(), idp.ResourceURL), src, opts...)
	return idp, srv, src, conn
}

// serve starts a TLS gRPC server with accept and connects to it with src's
// credentials and the interceptor.
func serve(t *testing.T, accept func(context.Context, string) bool, src source.TokenSource, opts ...grpcretry.Option) (*grpctest.Server, *grpc.ClientConn) {
	t.Helper()
	srv, err := grpctest.Start(true, accept)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///"+srv.Addr,
		grpc.WithTransportCredentials(credentials.NewTLS(srv.ClientTLS)),
		grpc.WithPerRPCCredentials(oauth2adapt.PerRPCCredentials(src)),
		grpc.WithUnaryInterceptor(grpcretry.UnaryClientInterceptor(src, opts...)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return srv, conn
}

// TestRetryIdempotent: a call marked idempotent whose token was revoked is
// sent once more with a new token, and succeeds.
func TestRetryIdempotent(t *testing.T) {
	for _, tt := range []struct {
		name     string
		opts     []grpcretry.Option
		callOpts []grpc.CallOption
	}{
		{"call option", nil, []grpc.CallOption{grpcretry.Idempotent()}},
		{"method", []grpcretry.Option{grpcretry.WithIdempotentMethods(func(m string) bool { return m == checkMethod })}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			idp, srv, _, conn := setup(t, tt.opts...)
			if err := grpctest.Check(t.Context(), conn, tt.callOpts...); err != nil {
				t.Fatal(err)
			}
			idp.RevokeAll()
			if err := grpctest.Check(t.Context(), conn, tt.callOpts...); err != nil {
				t.Fatalf("Check after the revocation = %v, want it retried with a new token", err)
			}
			seen := srv.Seen()
			if len(seen) != 3 || seen[0] != seen[1] || seen[1] == seen[2] {
				t.Errorf("the server saw %d values; want 3: the first token twice, then a new one", len(seen))
			}
			if got, want := idp.TokenRequests(), 2; got != want {
				t.Errorf("token requests = %d, want %d", got, want)
			}
		})
	}
}

// TestNoRetryByDefault: a call not said to be idempotent fails, but its
// token is dropped, so the next call has a new one.
func TestNoRetryByDefault(t *testing.T) {
	idp, srv, _, conn := setup(t, grpcretry.WithIdempotentMethods(func(string) bool { return false }))
	if err := grpctest.Check(t.Context(), conn); err != nil {
		t.Fatal(err)
	}
	idp.RevokeAll()
	if err := grpctest.Check(t.Context(), conn); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Check after the revocation = %v, want Unauthenticated, not retried", err)
	}
	if got := len(srv.Seen()); got != 2 {
		t.Errorf("the server saw %d calls, want 2", got)
	}
	if err := grpctest.Check(t.Context(), conn); err != nil {
		t.Errorf("the next Check = %v, want it to carry a new token", err)
	}
	if got, want := idp.TokenRequests(), 2; got != want {
		t.Errorf("token requests = %d, want %d", got, want)
	}
}

// TestRetryOnce: an API that refuses every token sees a call twice at most.
func TestRetryOnce(t *testing.T) {
	idp := sourcetest.NewStandard(sourcetest.Options{})
	defer idp.Close()
	src, err := source.New(source.Config{TokenURL: idp.TokenURL, HTTPClient: idp.Client(),
		ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	srv, conn := serve(t, func(context.Context, string) bool { return false }, src)
	err = grpctest.Check(t.Context(), conn, grpcretry.Idempotent())
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("Check = %v, want Unauthenticated", err)
	}
	if got := len(srv.Seen()); got != 2 {
		t.Errorf("the server saw %d calls, want 2 (one retry)", got)
	}
}

// recSource hands out cur and records what it is told was rejected.
type recSource struct {
	mu       sync.Mutex
	cur      *source.Token
	next     *source.Token // becomes cur on Invalidate of cur
	rejected []*source.Token
	fail     error
}

func (s *recSource) Token(context.Context) (*source.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur, s.fail
}

func (s *recSource) Invalidate(t *source.Token) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejected = append(s.rejected, t)
	if t != s.cur || s.next == nil {
		return false
	}
	s.cur, s.next = s.next, nil
	return true
}

// TestInvalidatesTheCallsToken: the source is told of exactly the token
// the call carried; a call that carried none invalidates nothing.
func TestInvalidatesTheCallsToken(t *testing.T) {
	old := &source.Token{AccessToken: "old-token-1"}
	s := &recSource{cur: old, next: &source.Token{AccessToken: "new-token-2"}}
	srv, conn := serve(t, func(_ context.Context, v string) bool { return v != "Bearer old-token-1" }, s)
	if err := grpctest.Check(t.Context(), conn, grpcretry.Idempotent()); err != nil {
		t.Fatalf("Check = %v, want the retry to succeed", err)
	}
	if len(s.rejected) != 1 || s.rejected[0] != old {
		t.Errorf("Invalidate got %v, want exactly the call's token", s.rejected)
	}
	if got := srv.Seen(); len(got) != 2 || got[1] != "Bearer new-token-2" {
		t.Errorf("the server saw %q", got)
	}

	// The source fails: gRPC reports Unauthenticated, but no token went.
	s.fail, s.rejected = errors.New("endpoint down"), nil
	if err := grpctest.Check(t.Context(), conn, grpcretry.Idempotent()); status.Code(err) != codes.Unauthenticated {
		t.Errorf("Check with a failing source = %v, want Unauthenticated", err)
	}
	if len(s.rejected) != 0 || len(srv.Seen()) != 2 {
		t.Errorf("a call that carried no token: invalidated %v, server saw %d calls; want none, 2", s.rejected, len(srv.Seen()))
	}
}

// TestNoRetryWithTheSameToken: a source that hands out the rejected token
// again is not asked to send the call twice.
func TestNoRetryWithTheSameToken(t *testing.T) {
	s := &recSource{cur: &source.Token{AccessToken: "old-token-1"}} // Invalidate keeps it
	srv, conn := serve(t, func(context.Context, string) bool { return false }, s)
	if err := grpctest.Check(t.Context(), conn, grpcretry.Idempotent()); status.Code(err) != codes.Unauthenticated {
		t.Errorf("Check = %v, want Unauthenticated", err)
	}
	if got := len(srv.Seen()); got != 1 {
		t.Errorf("the server saw %d calls, want 1", got)
	}
}

// TestRejectEveryTokenBounded: against a server that refuses every token,
// a retried call whose fresh token is refused too tells the source
// (RejectedAfterRenewal), which then backs off as the Transport's 401
// path makes it: 100 calls cost a few token requests, not one per call.
func TestRejectEveryTokenBounded(t *testing.T) {
	idp := sourcetest.NewStandard(sourcetest.Options{})
	defer idp.Close()
	src, err := source.New(source.Config{TokenURL: idp.TokenURL, HTTPClient: idp.Client(),
		ClientID: sourcetest.DefaultClientID, ClientSecret: sourcetest.DefaultClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, conn := serve(t, func(context.Context, string) bool { return false }, src)
	for range 100 {
		if err := grpctest.Check(t.Context(), conn, grpcretry.Idempotent()); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("Check = %v, want Unauthenticated", err)
		}
	}
	if got := idp.TokenRequests(); got > 5 {
		t.Errorf("token requests for 100 calls refused whatever the token = %d, want at most 5", got)
	}
}
