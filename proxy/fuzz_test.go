package proxy

import (
	"bufio"
	"bytes"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// FuzzHandler sends arbitrary requests (as fasthttp parses them off the
// wire) through the whole request path against a real origin. The handler
// must never panic: its recover would count it in edgevitals_panics_total.
func FuzzHandler(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
		"GET /a/b?utm_source=x&b=2&a=1 HTTP/1.1\r\nHost: WWW.Example.com:80\r\nCookie: _ga=1; wordpress_logged_in_x=y\r\n\r\n",
		"PURGE /.* HTTP/1.1\r\nHost: www.example.com\r\nX-Purge-Method: regex\r\n\r\n",
		"BAN / HTTP/1.1\r\nHost: x\r\nCache-Tags: a b,c\r\n\r\n",
		"POST /__edgevitals/rum HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
		"GET /wp-admin/../%2e%2e/x HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\nAccept-Encoding: gzip;q=0, br\r\nConnection: X-A, close\r\nX-A: 1\r\n\r\n",
		"HEAD /p?%zz&&=&a== HTTP/1.1\r\nHost: x\r\nIf-None-Match: *\r\nIf-Modified-Since: yesterday\r\nRange: bytes=0-1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=-99999999999999999999, 5-, 3-1\r\nIf-Range: W/\"x\"\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=40-\r\nIf-Range: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	h := newHarness(&testing.T{}, page("<html><head></head><body>x</body></html>", "Cache-Control: max-age=60", "Content-Type: text/html", "Vary: Accept-Language", "Surrogate-Key: k"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var req fasthttp.Request
		if err := req.Read(bufio.NewReader(bytes.NewReader(raw))); err != nil {
			return // fasthttp answers these itself; they never reach the handler
		}
		ctx := &fasthttp.RequestCtx{}
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}, nil)
		h.proxy.Handler(ctx)
		if n := h.proxy.panics.Get(); n != 0 {
			t.Fatalf("the handler panicked on %q", raw)
		}
		if code := ctx.Response.StatusCode(); code < 100 || code > 599 {
			t.Fatalf("status %d for %q", code, raw)
		}
	})
}
