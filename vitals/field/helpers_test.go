package field

import (
	"testing"

	"github.com/edgevitals/edgevitals/vitals/store"
	"github.com/edgevitals/edgevitals/vitals/vitalstest"
)

// Helpers the tests of this package share with those of vitals/store
// (whose own tests cannot import vitalstest: it imports the store).

func openTestStore(t *testing.T, path string) *store.Store { return vitalstest.OpenStore(t, path) }
