package proxy

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/edgevitals/edgevitals/vitals/field"
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

// benchHit runs the handler alone on a hit for a stored 30 KB page.
func benchHit(b *testing.B, h *harness) {
	ctx := hitCtx(b, h, "/article/?b=2&a=1&utm_source=x")
	b.ReportAllocs()
	b.SetBytes(30 << 10)
	b.ResetTimer()
	for b.Loop() {
		ctx.Response.Reset()
		h.proxy.Handler(ctx)
	}
}

func BenchmarkHit(b *testing.B) {
	benchHit(b, newHarness(&testing.T{}, page(strings.Repeat("x", 30<<10), "Cache-Control: max-age=3600", "Content-Type: text/html")))
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
	benchHit(b, newHarness(&testing.T{}, page(body, "Cache-Control: max-age=3600", "Content-Type: text/html"), withRUM(b)))
}

// withRUM turns field data on with a real collector.
func withRUM(tb testing.TB) func(*Options) {
	return func(o *Options) {
		c, err := field.NewCollector(field.CollectorOptions{Sites: []string{"blog"}, SampleRate: 1, Metrics: o.Metrics})
		if err != nil {
			tb.Fatal(err)
		}
		o.RUM = c
	}
}

// browserGet is a browser's request for a page, as the server reads it off
// the connection.
const browserGet = "GET /article/?b=2&a=1&utm_source=x HTTP/1.1\r\n" +
	"Host: www.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Cookie: _ga=GA1.2.3; _gid=GA1.2.4\r\n" +
	"Sec-Fetch-Dest: document\r\n" +
	"Sec-Fetch-Mode: navigate\r\n" +
	"\r\n"

// benchServed is the server's whole work for one hit but the socket calls:
// read and parse the request, run the handler, write the response (headers
// and body) out, as fasthttp's server loop does per request.
func benchServed(b *testing.B, h *harness) {
	ctx := hitCtx(b, h, "/article/?b=2&a=1&utm_source=x")
	raw := strings.NewReader(browserGet)
	br := bufio.NewReader(raw)
	bw := bufio.NewWriterSize(io.Discard, 4096)
	serve := func() {
		raw.Reset(browserGet)
		br.Reset(raw)
		ctx.Request.Reset()
		if err := ctx.Request.Read(br); err != nil {
			b.Fatal(err)
		}
		ctx.Response.Reset()
		h.proxy.Handler(ctx)
		if err := ctx.Response.Write(bw); err != nil {
			b.Fatal(err)
		}
		if err := bw.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	serve()
	if cs := string(ctx.Response.Header.Peek("Cache-Status")); !strings.Contains(cs, "; hit") {
		b.Fatalf("Cache-Status = %q, want a hit", cs)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(ctx.Response.Body())))
	b.ResetTimer()
	for b.Loop() {
		serve()
	}
}

// BenchmarkHitServed is a hit on a 30 KB page from the request's bytes to the
// response's.
func BenchmarkHitServed(b *testing.B) {
	benchServed(b, newHarness(&testing.T{}, page(strings.Repeat("x", 30<<10), "Cache-Control: max-age=3600", "Content-Type: text/html")))
}

// BenchmarkHitServedRUM is BenchmarkHitServed with field data on: the page
// carries the script (added when stored) and the response Server-Timing.
func BenchmarkHitServedRUM(b *testing.B) {
	body := "<html><head></head><body>" + strings.Repeat("x", 30<<10) + "</body></html>"
	benchServed(b, newHarness(&testing.T{}, page(body, "Cache-Control: max-age=3600", "Content-Type: text/html"), withRUM(b)))
}
