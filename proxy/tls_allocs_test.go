//go:build !race

package proxy

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestHitPathAllocsHSTS: the redirect check and Strict-Transport-Security
// cost a hit nothing, whether the header is set (HTTPS, here vouched for by
// the terminator) or the origin's is withheld (plain HTTP).
func TestHitPathAllocsHSTS(t *testing.T) {
	const hsts = "max-age=31536000; includeSubDomains"
	f := func(name string, redirect bool, proto, want string) {
		t.Helper()
		h := newHarness(t, page(strings.Repeat("x", 30<<10), "Cache-Control: max-age=3600", "Content-Type: text/html", "Strict-Transport-Security: max-age=5"),
			behindTerminator, func(o *Options) { o.Sites[0].TLS = SiteTLS{HTTPSRedirect: redirect, HSTS: hsts} })
		req := &fasthttp.Request{}
		req.SetRequestURI("/article/")
		req.Header.SetHost("www.example.com")
		if proto != "" {
			req.Header.Set("X-Forwarded-Proto", proto)
		}
		ctx := &fasthttp.RequestCtx{}
		ctx.Init(req, net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:4242")), nil)
		h.proxy.Handler(ctx) // a miss: stores the page
		ctx.Response.Reset()
		h.proxy.Handler(ctx)
		if cs := string(ctx.Response.Header.Peek("Cache-Status")); !strings.Contains(cs, "; hit") {
			t.Fatalf("%s: Cache-Status = %q, want a hit", name, cs)
		}
		if got := string(ctx.Response.Header.Peek("Strict-Transport-Security")); got != want {
			t.Errorf("%s: Strict-Transport-Security = %q, want %q", name, got, want)
		}
		allocs := testing.AllocsPerRun(500, func() {
			ctx.Response.Reset()
			h.proxy.Handler(ctx)
		})
		if allocs != 0 {
			t.Errorf("%s: a cache hit allocates %.1f times, want 0", name, allocs)
		}
	}
	f("https with redirect on", true, "https", hsts)
	f("plain http", false, "", "")
}
