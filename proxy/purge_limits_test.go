package proxy

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/edgevitals/edgevitals/cache"
)

// TestPurgeByKeyTheIndexDoesNotHold: a page tagged with more surrogate keys than the index
// holds per object, or with a longer key, is still purged by each of its keys; such keys used
// to be dropped, and the page served stale until it expired.
func TestPurgeByKeyTheIndexDoesNotHold(t *testing.T) {
	many := make([]string, cache.MaxKeys+1)
	for i := range many {
		many[i] = fmt.Sprintf("node:%d", i)
	}
	long := "views:" + strings.Repeat("x", cache.MaxKeyBytes)
	tests := []struct {
		name, header, value, purge string
	}{
		{"the key past the limit", "Cache-Tag", strings.Join(many, ","), many[cache.MaxKeys]},
		{"the first key", "Surrogate-Key", strings.Join(many, " "), many[0]},
		{"a key too long", "Surrogate-Key", "node:1 " + long, long},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gen atomic.Int64
			h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", "max-age=3600")
				w.Header().Set(tt.header, tt.value)
				fmt.Fprintf(w, "gen %d", gen.Load())
			})
			warm(t, h, "/listing/")
			gen.Add(1)
			r := h.do("PURGE", "/", "Surrogate-Key: "+tt.purge)
			if r.Status != 200 || !strings.Contains(r.Body, `"purged":1`) {
				t.Fatalf("PURGE = %d %s, want 1 purged", r.Status, r.Body)
			}
			if r := h.get("/listing/"); r.Body != "gen 1" {
				t.Errorf("after the purge the page is %q, want gen 1", r.Body)
			}
		})
	}
}
