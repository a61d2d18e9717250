package proxy

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// unsafePurges reads edgevitals_purges_total{kind="unsafe_method",mode="hard"}.
func unsafePurges(t *testing.T, h *harness) int {
	t.Helper()
	prefix := `edgevitals_purges_total{kind="unsafe_method",mode="hard"} `
	for line := range strings.Lines(h.metricsText()) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s%s: %v", prefix, v, err)
			}
			return n
		}
	}
	t.Fatalf("no %s series in\n%s", prefix, h.metricsText())
	return 0
}

// TestUnsafeMethodInvalidationSwitch: a POST, PUT, DELETE or other unsafe
// method the origin accepts (2xx, 3xx) drops the stored copies of its target
// (RFC 9111 §4.4), counted as a purge of kind unsafe_method, unless the site
// keeps them (invalidate_on_unsafe_methods = false): then nobody can empty a
// cached page by posting to it. A refused write (4xx, 5xx) never invalidates.
func TestUnsafeMethodInvalidationSwitch(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			var gen atomic.Int64
			h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == "/refused/" && r.Method != http.MethodGet:
					w.WriteHeader(http.StatusForbidden)
					return
				case r.Method != http.MethodGet:
					gen.Add(1)
					w.Header().Set("Location", "/list/")
					w.WriteHeader(http.StatusSeeOther)
					return
				}
				w.Header().Set("Cache-Control", "max-age=600")
				fmt.Fprintf(w, "gen %d", gen.Load())
			}, func(o *Options) { o.Sites[0].KeepOnUnsafe = keep })

			h.get("/refused/")
			h.do(http.MethodPost, "/refused/")
			wantCacheStatus(t, h.get("/refused/"), "; hit")
			if n := unsafePurges(t, h); n != 0 {
				t.Errorf("a refused POST counted %d unsafe_method purges, want 0", n)
			}

			for i, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, "PROPPATCH"} {
				h.get("/item/")
				h.get("/list/")
				if r := h.do(method, "/item/"); r.Status != http.StatusSeeOther {
					t.Fatalf("%s = %d, want 303", method, r.Status)
				}
				want, wantPurges := "; hit", 0
				if !keep {
					want, wantPurges = "fwd=uri-miss", i+1
				}
				wantCacheStatus(t, h.get("/item/"), want)
				wantCacheStatus(t, h.get("/list/"), want) // the Location too
				if n := unsafePurges(t, h); n != wantPurges {
					t.Errorf("after %s: %d unsafe_method purges, want %d", method, n, wantPurges)
				}
			}
		})
	}
}
