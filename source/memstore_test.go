package source_test

import (
	"testing"

	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/storetest"
)

// TestMemoryStoreConformance runs the Store contract over a MemoryStore
// shared by every source of a scenario.
func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.NewStore {
		m := source.NewMemoryStore()
		return func(*testing.T) source.Store { return m }
	})
}
