package sourcetest_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine (a server's, a hung
// request's) outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
