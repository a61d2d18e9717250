package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// raw sends bytes as they are on a fresh connection and returns the status
// line's code (0 when the proxy closed without answering).
func (h *harness) raw(t *testing.T, request string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", h.addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, request); err != nil {
		return 0
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestBadRequestsNeverReachOrigin(t *testing.T) {
	h := newHarness(t, page("x", "Cache-Control: max-age=60"))
	big := strings.Repeat("a", 32<<10)
	cases := []struct {
		name, req string
		want      []int // acceptable statuses; 0 = connection closed without an answer
	}{
		{"oversized header", "GET / HTTP/1.1\r\nHost: www.example.com\r\nX-Big: " + big + "\r\n\r\n", []int{431}},
		{"oversized body", "POST /form HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 2000000\r\n\r\n" + strings.Repeat("b", 1000), []int{413}},
		{"CL and TE", "POST /form HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", []int{400}},
		{"two CL", "POST /form HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", []int{400}},
		{"bad CL", "POST /form HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: -1\r\n\r\n", []int{400}},
		{"space in method", "G ET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n", []int{400}},
		{"no host", "GET / HTTP/1.1\r\n\r\n", []int{400, 421}},
		{"unknown host", "GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n", []int{421}},
		{"bad version", "GET / HTTP/9.9\r\nHost: www.example.com\r\n\r\n", []int{400, 505}},
		{"control char in URI", "GET /a\x00b HTTP/1.1\r\nHost: www.example.com\r\n\r\n", []int{400}},
	}
	h2 := newHarness(t, page("x"), func(o *Options) { o.Sites[0].Hosts = []string{"www.example.com"} })
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			target := h
			if c.name == "unknown host" || c.name == "no host" {
				target = h2
			}
			got := target.raw(t, c.req)
			ok := false
			for _, w := range c.want {
				ok = ok || got == w
			}
			if !ok {
				t.Errorf("status = %d, want one of %v", got, c.want)
			}
		})
	}
	if n := h.originCount() + h2.originCount(); n != 0 {
		t.Errorf("the origin saw %d bad requests, want 0", n)
	}
}

// TestSlowClientTimesOut: a client that sends its headers a byte at a time
// (slowloris) is cut off after the read timeout; nothing reaches the origin.
func TestSlowClientTimesOut(t *testing.T) {
	h := newHarness(t, page("x"), func(o *Options) { o.ReadTimeout = 300 * time.Millisecond })
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: www.example.com\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, _ := c.Read(buf) // the proxy answers 408 or closes
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the slow client held the connection %v", took)
	}
	if n > 0 && !strings.Contains(string(buf[:n]), "408") {
		t.Errorf("answer to a slow client = %q, want 408 or a closed connection", buf[:n])
	}
	if h.originCount() != 0 {
		t.Error("a slow client's request reached the origin")
	}
}
