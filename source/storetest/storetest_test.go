package storetest_test

import (
	"testing"

	"github.com/tokenhttp/tokenhttp/source"
	"github.com/tokenhttp/tokenhttp/source/storetest"
)

func TestRunMemoryStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.NewStore {
		m := source.NewMemoryStore() // the scenario's backing data
		return func(*testing.T) source.Store { return m }
	})
}
