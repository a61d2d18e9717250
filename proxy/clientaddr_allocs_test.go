//go:build !race

package proxy

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/pires/go-proxyproto"
	"github.com/valyala/fasthttp"
)

// TestHitPathAllocsBehindTerminator: the real client costs a hit nothing.
// Only the scheme is asked on a hit, from a trusted terminator's
// X-Forwarded-Proto or a PROXY v2 header's SSL TLV (read once per
// connection); X-Forwarded-For is walked only where the address matters.
func TestHitPathAllocsBehindTerminator(t *testing.T) {
	h := newHarness(t, page(strings.Repeat("x", 30<<10), "Cache-Control: max-age=3600", "Content-Type: text/html"), behindTerminator)
	newReq := func() *fasthttp.Request {
		req := &fasthttp.Request{}
		req.SetRequestURI("/article/")
		req.Header.SetHost("www.example.com")
		req.Header.Set("Accept-Encoding", "gzip, deflate, br")
		req.Header.Set("X-Forwarded-For", "6.6.6.6, 203.0.113.7")
		req.Header.Set("X-Forwarded-Proto", "https")
		return req
	}
	f := func(name string, ctx *fasthttp.RequestCtx) {
		t.Helper()
		h.proxy.Handler(ctx) // a miss: stores the https page
		ctx.Response.Reset()
		h.proxy.Handler(ctx)
		if cs := string(ctx.Response.Header.Peek("Cache-Status")); !strings.Contains(cs, "; hit") {
			t.Fatalf("%s: Cache-Status = %q, want a hit", name, cs)
		}
		allocs := testing.AllocsPerRun(500, func() {
			ctx.Response.Reset()
			h.proxy.Handler(ctx)
		})
		if allocs != 0 {
			t.Errorf("%s: a cache hit allocates %.1f times, want 0", name, allocs)
		}
	}

	ctx := &fasthttp.RequestCtx{}
	ctx.Init(newReq(), net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:4242")), nil)
	f("trusted X-Forwarded-Proto", ctx)

	// A connection that opened with a PROXY v2 header carrying the SSL TLV.
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close(); server.Close() })
	go client.Write(proxyV2(netip.MustParseAddrPort("203.0.113.7:5000"), edgeAddr, sslTLV("TLSv1.3"))) //nolint:errcheck // the header is checked below
	pc := &proxyConn{Conn: proxyproto.NewConn(server)}
	if !pc.clientTLS() {
		t.Fatal("the PROXY v2 SSL TLV was not read as TLS")
	}
	ctx = &fasthttp.RequestCtx{}
	ctx.Init2(pc, nil, false)
	req := newReq()
	req.Header.Del("X-Forwarded-Proto")
	req.CopyTo(&ctx.Request)
	f("PROXY v2 with TLS", ctx)
}
