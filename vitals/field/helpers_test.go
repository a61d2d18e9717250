package field

import (
	"testing"

	"github.com/edgevitals/edgevitals/vitals/store"
)

// Helpers the tests of this package share with those of vitals/store.

func openTestStore(t *testing.T, path string) *store.Store {
	t.Helper()
	st, err := store.OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
