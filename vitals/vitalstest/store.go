package vitalstest

import (
	"testing"

	"github.com/edgevitals/edgevitals/vitals/store"
)

// OpenStore opens a store at path for a test and closes it when the test
// ends; it fails the test when the store does not open.
func OpenStore(t testing.TB, path string) *store.Store {
	t.Helper()
	st, err := store.OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return st
}
