//go:build !race

// The race detector makes sync.Pool drop items on purpose, so allocation
// counts are only meaningful without it.

package proxy

import (
	"testing"
)

// TestCompressedHitAllocs: choosing a coded copy on a hit (Accept-Encoding
// scan, its ETag, Content-Encoding and Vary) allocates nothing, for br,
// gzip and identity, and for a conditional request answered 304.
func TestCompressedHitAllocs(t *testing.T) {
	h := newHarness(t, page(cmsPage(30<<10), "Cache-Control: max-age=3600", "Content-Type: text/html", `ETag: "a1"`), withCompress)
	f := func(ae, inm, wantCE string, wantStatus int) {
		t.Helper()
		ctx := hitCtx(t, h, "/article/")
		ctx.Request.Header.Set("Accept-Encoding", ae)
		if inm != "" {
			ctx.Request.Header.Set("If-None-Match", inm)
		}
		ctx.Response.Reset()
		h.proxy.Handler(ctx)
		if got := string(ctx.Response.Header.Peek("Content-Encoding")); got != wantCE || ctx.Response.StatusCode() != wantStatus {
			t.Fatalf("Accept-Encoding %q: %d Content-Encoding %q, want %d %q", ae, ctx.Response.StatusCode(), got, wantStatus, wantCE)
		}
		allocs := testing.AllocsPerRun(500, func() {
			ctx.Response.Reset()
			h.proxy.Handler(ctx)
		})
		if allocs != 0 {
			t.Errorf("a hit for Accept-Encoding %q allocates %.1f times, want 0", ae, allocs)
		}
	}
	f("gzip, deflate, br, zstd", "", "br", 200)
	f("gzip", "", "gzip", 200)
	f("identity", "", "", 200)
	f("br;q=0.5, gzip;q=0.9", "", "gzip", 200)
	f("br", `"a1-br"`, "br", 304)
}
