package lab

import (
	"math"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/vitals/store"
	"github.com/edgevitals/edgevitals/vitals/vitalstest"
)

// Helpers the tests of this package share with those of vitals/store
// (whose own tests cannot import vitalstest: it imports the store).

func openTestStore(t *testing.T, path string) *store.Store { return vitalstest.OpenStore(t, path) }

func dur(d time.Duration) *time.Duration { return &d }

func flt(v float64) *float64 { return &v }

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }
