package lab

import (
	"math"
	"testing"
	"time"

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

func dur(d time.Duration) *time.Duration { return &d }

func flt(v float64) *float64 { return &v }

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }
