package report

import (
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/vitals/store"
	"github.com/edgevitals/edgevitals/vitals/vitalstest"
)

// Helpers the tests of this package share with those of vitals/store
// (whose own tests cannot import vitalstest: it imports the store).

func openTestStore(t *testing.T, path string) *store.Store { return vitalstest.OpenStore(t, path) }

func dur(d time.Duration) *time.Duration { return &d }

func buckets(at map[int]uint64) []uint64 {
	b := make([]uint64, len(store.OriginBounds())+1)
	for i, n := range at {
		b[i] = n
	}
	return b
}

func ids(rs []store.Release) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Site+"/"+r.ID)
	}
	return out
}
