package storetest_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/storetest"
)

// TestMain fails the package's tests if a goroutine (a source's, an
// emulator's) outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRunMemoryStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.NewStore {
		m := source.NewMemoryStore() // the scenario's backing data
		return func(*testing.T) source.Store { return m }
	})
}
