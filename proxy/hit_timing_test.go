package proxy

import (
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/edgevitals/edgevitals/vitals"
)

// hitCtx prepares a request context for a stored page, to drive the handler
// directly (no sockets), as fasthttp's own handler benchmarks do.
func hitCtx(tb testing.TB, h *harness, path string) *fasthttp.RequestCtx {
	tb.Helper()
	var req fasthttp.Request
	req.SetRequestURI(path)
	req.Header.SetHost("www.example.com")
	req.Header.Set("Accept-Encoding", "gzip, deflate, br")
	req.Header.Set("User-Agent", "Mozilla/5.0 (bench)")
	req.Header.Set("Cookie", "_ga=GA1.2.3; _gid=GA1.2.4")
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}, nil)
	h.proxy.Handler(ctx) // a miss: stores the page
	ctx.Response.Reset()
	h.proxy.Handler(ctx)
	if cs := string(ctx.Response.Header.Peek("Cache-Status")); !strings.Contains(cs, "; hit") {
		tb.Fatalf("Cache-Status = %q, want a hit", cs)
	}
	return ctx
}

func BenchmarkHit(b *testing.B) {
	h := newHarness(&testing.T{}, page(strings.Repeat("x", 30<<10), "Cache-Control: max-age=3600", "Content-Type: text/html"))
	ctx := hitCtx(b, h, "/article/?b=2&a=1&utm_source=x")
	b.ReportAllocs()
	b.SetBytes(30 << 10)
	b.ResetTimer()
	for b.Loop() {
		ctx.Response.Reset()
		h.proxy.Handler(ctx)
	}
}

func BenchmarkHitParallel(b *testing.B) {
	h := newHarness(&testing.T{}, page(strings.Repeat("x", 30<<10), "Cache-Control: max-age=3600", "Content-Type: text/html"))
	hitCtx(b, h, "/article/")
	b.ReportAllocs()
	b.SetBytes(30 << 10)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var req fasthttp.Request
		req.SetRequestURI("/article/")
		req.Header.SetHost("www.example.com")
		ctx := &fasthttp.RequestCtx{}
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}, nil)
		for pb.Next() {
			ctx.Response.Reset()
			h.proxy.Handler(ctx)
		}
	})
}

// BenchmarkHitRUM is BenchmarkHit with field data on, for the "within 3%"
// promise: compare the two with benchstat.
func BenchmarkHitRUM(b *testing.B) {
	body := "<html><head></head><body>" + strings.Repeat("x", 30<<10) + "</body></html>"
	h := newHarness(&testing.T{}, page(body, "Cache-Control: max-age=3600", "Content-Type: text/html"), withRUM(b))
	ctx := hitCtx(b, h, "/article/?b=2&a=1&utm_source=x")
	b.ReportAllocs()
	b.SetBytes(30 << 10)
	b.ResetTimer()
	for b.Loop() {
		ctx.Response.Reset()
		h.proxy.Handler(ctx)
	}
}

// withRUM turns field data on with a real collector.
func withRUM(tb testing.TB) func(*Options) {
	return func(o *Options) {
		c, err := vitals.NewCollector(vitals.CollectorOptions{Sites: []string{"blog"}, SampleRate: 1, Metrics: o.Metrics})
		if err != nil {
			tb.Fatal(err)
		}
		o.RUM = c
	}
}
