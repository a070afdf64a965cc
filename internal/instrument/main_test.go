package instrument

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if an SDK goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
