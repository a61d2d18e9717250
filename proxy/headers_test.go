package proxy

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestStoredFields: what an entry keeps of an origin response. RFC 9111 §3.1: "the Connection
// header field and fields whose names are listed in it are required by Section 7.6.1 of [HTTP]
// to be removed before forwarding the message. This MAY be implemented by doing so before
// storage"; "Header fields that are specific to the proxy that a cache uses when forwarding a
// request MUST NOT be stored ... Proxy-Authenticate ..., Proxy-Authentication-Info ..., and
// Proxy-Authorization". Connection may come as several lines, each a comma list, any case.
func TestStoredFields(t *testing.T) {
	f := func(raw string, want ...string) {
		t.Helper()
		var h fasthttp.ResponseHeader
		if err := h.Read(bufio.NewReader(strings.NewReader(strings.ReplaceAll(raw, "\n", "\r\n") + "\r\n\r\n"))); err != nil {
			t.Fatalf("read %q: %v", raw, err)
		}
		var got []string
		for _, fl := range storedFields(&h) {
			got = append(got, string(fl.Name)+": "+string(fl.Value))
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("storedFields(%q) =\n  %q\nwant\n  %q", raw, got, want)
		}
	}
	const ct = "Content-Type: text/plain; charset=utf-8" // fasthttp's default, first
	f("HTTP/1.1 200 OK\nContent-Length: 1\nConnection: a, B\nconnection: X-Third ,, x-fourth\nA: 1\nb: 2\nX-Third: 3\nX-Fourth: 4\nC: 5",
		ct, "C: 5")
	f("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nTE: trailers\nTrailer: X-T\nUpgrade: h2c\nKeep-Alive: timeout=5\nProxy-Connection: keep-alive\nX-Kept: 1",
		ct, "X-Kept: 1")
	f("HTTP/1.1 200 OK\nContent-Length: 0\nProxy-Authenticate: Basic realm=\"p\"\nProxy-Authentication-Info: nextnonce=\"x\"\nProxy-Authorization: Basic eDp5\nWWW-Authenticate: Basic",
		ct, "Www-Authenticate: Basic")
	f("HTTP/1.1 200 OK\nContent-Length: 0\nConnection: close, X-Hint\nX-Hint: 1\nAge: 5\nSet-Cookie: a=b\nSurrogate-Control: max-age=5\nCDN-Cache-Control: max-age=60\nDate: Sun, 06 Nov 1994 08:49:37 GMT",
		ct, "Cdn-Cache-Control: max-age=60", "Date: Sun, 06 Nov 1994 08:49:37 GMT")
}
