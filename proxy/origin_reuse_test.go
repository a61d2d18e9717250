package proxy

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"sync/atomic"
	"testing"
)

// TestOriginClosedIdleConnRetried: an origin that closes a keep-alive
// connection right after answering on it, without saying so (what Apache
// does when its 5 s keep-alive timeout ends just as the proxy reuses the
// connection). The proxy's next GET on that connection finds it dead before
// the first byte: it is sent once more on a new connection and the visitor
// gets the page, not a 502. A POST is never sent twice.
func TestOriginClosedIdleConnRetried(t *testing.T) {
	var posts atomic.Int64
	url := serveLoopback(t, func(c net.Conn) {
		defer c.Close()
		tp := textproto.NewReader(bufio.NewReader(c))
		method, target, _, err := readFramedRequest(tp)
		if err != nil {
			return
		}
		if method == http.MethodPost {
			posts.Add(1)
		}
		body := "page " + target
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nCache-Control: private\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		// The connection closes here, with no Connection: close said.
	})
	h := newHarness(t, func(http.ResponseWriter, *http.Request) {}, func(o *Options) {
		o.Sites[0].Origins = []string{url}
		o.Sites[0].Origin.MaxConns = 1 // every request reuses the one connection
	})
	for i := range 5 {
		path := fmt.Sprintf("/page-%d", i)
		if r := h.get(path); r.Status != 200 || r.Body != "page "+path {
			t.Fatalf("GET %s on a reused connection the origin closed = %d %q, want 200", path, r.Status, r.Body)
		}
	}
	// The POST after the last GET finds that GET's connection dead: 502,
	// not sent again; the next POST gets a new connection.
	want := []int{http.StatusBadGateway, http.StatusOK, http.StatusBadGateway}
	for i, code := range want {
		if r := h.do(http.MethodPost, fmt.Sprintf("/form-%d", i)); r.Status != code {
			t.Errorf("POST %d = %d %q, want %d", i, r.Status, r.Body, code)
		}
	}
	if n := posts.Load(); n != 1 {
		t.Errorf("origin got %d POSTs, want 1: a POST on a dead connection is never sent again", n)
	}
}
