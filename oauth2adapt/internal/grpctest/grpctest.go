// Package grpctest starts a real gRPC server on loopback for the tests and
// examples of oauth2adapt and grpcretry: the standard health service,
// behind an interceptor that checks each call's authorization metadata.
package grpctest

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"

	"github.com/tokenhttp/tokenhttp/source/sourcetest"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Server is a gRPC health server on loopback whose calls need an accepted
// authorization value.
type Server struct {
	// Addr is the host:port to dial.
	Addr string
	// ClientTLS is the client side's TLS configuration that trusts the
	// server's certificate; nil for a server without TLS.
	ClientTLS *tls.Config

	srv    *grpc.Server
	accept func(ctx context.Context, authorization string) bool

	mu   sync.Mutex
	seen []string // guarded by mu
}

// Start starts a server, with a self-signed certificate when useTLS is set.
// accept says whether a call's authorization value is good; a missing or
// refused one fails the call with codes.Unauthenticated.
func Start(useTLS bool, accept func(ctx context.Context, authorization string) bool) (*Server, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: lis.Addr().String(), accept: accept}
	opts := []grpc.ServerOption{grpc.UnaryInterceptor(s.check)}
	if useTLS {
		ca := sourcetest.NewCA()
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{ca.ServerCertificate()}})))
		s.ClientTLS = &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"}
	}
	s.srv = grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(s.srv, health.NewServer())
	go s.srv.Serve(lis)
	return s, nil
}

// Stop stops the server and ends its connections.
func (s *Server) Stop() { s.srv.Stop() }

// Seen returns the authorization values of the calls so far.
func (s *Server) Seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// Check calls the health service's Check on conn.
func Check(ctx context.Context, conn grpc.ClientConnInterface, opts ...grpc.CallOption) error {
	_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, opts...)
	return err
}

func (s *Server) check(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) != 1 {
		return nil, status.Error(codes.Unauthenticated, "want one authorization value")
	}
	s.mu.Lock()
	s.seen = append(s.seen, vals[0])
	s.mu.Unlock()
	if !s.accept(ctx, vals[0]) {
		return nil, status.Error(codes.Unauthenticated, "token rejected")
	}
	return h(ctx, req)
}

// ResourceAccepts returns an accept function that asks a sourcetest
// emulator's protected resource whether it takes the value.
func ResourceAccepts(client *http.Client, resourceURL string) func(context.Context, string) bool {
	return func(ctx context.Context, authorization string) bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, resourceURL, nil)
		if err != nil {
			return false
		}
		req.Header.Set("Authorization", authorization)
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
}
