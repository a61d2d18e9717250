//go:build !race

// The race detector makes sync.Pool drop items on purpose, so allocation
// counts are only meaningful without it.

package proxy

import (
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestHitPathAllocsBrowserHeaders: the field scan that looks for poison,
// empty bypass and repeated Accept-Encoding fields keeps a hit with a
// browser's full set of fields allocation-free.
func TestHitPathAllocsBrowserHeaders(t *testing.T) {
	h := newHarness(t, page(strings.Repeat("x", 10<<10), "Cache-Control: max-age=3600", "Content-Type: text/html", "Vary: Accept-Encoding"))
	var req fasthttp.Request
	req.SetRequestURI("/article/?b=2&a=1")
	req.Header.SetHost("www.example.com")
	for _, line := range []string{
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		"Accept-Language: en-GB,en;q=0.9", "Accept-Encoding: gzip, deflate, br, zstd",
		"Upgrade-Insecure-Requests: 1", "Sec-Fetch-Dest: document", "Sec-Fetch-Mode: navigate",
		"Sec-Fetch-Site: none", "Sec-Fetch-User: ?1", `Sec-Ch-Ua: "Chromium";v="131"`, "Sec-Ch-Ua-Mobile: ?0",
		`Sec-Ch-Ua-Platform: "Linux"`, "Priority: u=0, i", "Cache-Control: max-age=0", "Pragma: no-cache",
		"Referer: https://www.example.com/", "Dnt: 1", "Cookie: _ga=GA1.2.3; _gid=GA1.2.4",
	} {
		k, v, _ := strings.Cut(line, ": ")
		req.Header.Add(k, v)
	}
	ctx := &fasthttp.RequestCtx{}
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}, nil)
	h.proxy.Handler(ctx) // a miss: stores the page
	ctx.Response.Reset()
	h.proxy.Handler(ctx)
	if cs := string(ctx.Response.Header.Peek("Cache-Status")); !strings.Contains(cs, "; hit") {
		t.Fatalf("Cache-Status = %q, want a hit", cs)
	}
	allocs := testing.AllocsPerRun(500, func() {
		ctx.Response.Reset()
		h.proxy.Handler(ctx)
	})
	if allocs != 0 {
		t.Errorf("a cache hit with browser fields allocates %.1f times, want 0", allocs)
	}
}
