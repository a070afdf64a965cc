package grpcretry_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if a gRPC server's or connection's
// goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
