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

// TestHitPathAllocsWithRUM: field data on (script injected at store time,
// Server-Timing per response) keeps hits allocation-free.
func TestHitPathAllocsWithRUM(t *testing.T) {
	h := newHarness(t, page("<html><head></head><body>x</body></html>", "Cache-Control: max-age=3600", "Content-Type: text/html", "X-Release: v1"),
		withRUM(t))
	ctx := hitCtx(t, h, "/article/")
	if st := string(ctx.Response.Header.Peek("Server-Timing")); !strings.Contains(st, `edgevitals;desc="hit"`) {
		t.Fatalf("Server-Timing = %q", st)
	}
	allocs := testing.AllocsPerRun(500, func() {
		ctx.Response.Reset()
		h.proxy.Handler(ctx)
	})
	if allocs != 0 {
		t.Errorf("a cache hit with field data on allocates %.1f times, want 0", allocs)
	}
}

// TestRangeHitAllocs: a range cut from a stored object is a hit like any
// other, allocation-free too.
func TestRangeHitAllocs(t *testing.T) {
	h := newHarness(t, page(strings.Repeat("x", 30<<10), "Cache-Control: max-age=3600", "Content-Type: application/pdf", `ETag: "r1"`))
	ctx := hitCtx(t, h, "/doc.pdf")
	ctx.Request.Header.Set("Range", "bytes=100-199")
	ctx.Request.Header.Set("If-Range", `"r1"`)
	ctx.Response.Reset()
	h.proxy.Handler(ctx)
	if got := string(ctx.Response.Header.Peek("Content-Range")); ctx.Response.StatusCode() != 206 || got != "bytes 100-199/30720" {
		t.Fatalf("range hit = %d, Content-Range %q", ctx.Response.StatusCode(), got)
	}
	allocs := testing.AllocsPerRun(500, func() {
		ctx.Response.Reset()
		h.proxy.Handler(ctx)
	})
	if allocs != 0 {
		t.Errorf("a range hit allocates %.1f times, want 0", allocs)
	}
}
