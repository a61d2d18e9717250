//go:build !race

// The race detector makes sync.Pool drop items on purpose, so allocation
// counts are only meaningful without it; test.sh runs this file separately.

package proxy

import (
	"strings"
	"testing"
)

// TestHitPathAllocs holds the promise that serving a hit allocates nothing:
// routing, bypass rules, key building, lookup, headers, Cache-Status, Age
// and the per-site metrics.
func TestHitPathAllocs(t *testing.T) {
	h := newHarness(t, page(strings.Repeat("x", 30<<10), "Cache-Control: max-age=3600", "Content-Type: text/html", "Vary: Accept-Encoding"))
	ctx := hitCtx(t, h, "/article/?b=2&a=1&utm_source=x")
	allocs := testing.AllocsPerRun(500, func() {
		ctx.Response.Reset()
		h.proxy.Handler(ctx)
	})
	if allocs != 0 {
		t.Errorf("a cache hit allocates %.1f times, want 0", allocs)
	}
}
