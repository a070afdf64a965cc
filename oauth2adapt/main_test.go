package oauth2adapt_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine (a server's, a
// waiting x/oauth2 call's, a gRPC connection's) outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
