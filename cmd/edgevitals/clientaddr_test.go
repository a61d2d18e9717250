package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/config"
)

// TestServeBehindTerminator: server.trusted_proxies and server.proxy_protocol
// reach the proxy. A PROXY v1 header, as hitch writes it, names the client
// that purge.allow judges and the origin is told of; a connection without
// one is refused.
func TestServeBehindTerminator(t *testing.T) {
	seen := make(chan string, 1)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("X-Forwarded-For")
	}))
	defer origin.Close()
	a := startTestAppWith(t, origin.URL, func(c *config.Config) {
		c.Server.TrustedProxies = []string{"10.0.0.0/8"}
		c.Server.ProxyProtocol = true
		c.Purge.Allow = []string{"192.0.2.0/24"}
	})
	addr := a.proxyLn.Addr().String()
	exchange := func(raw string) (int, error) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	purge := "PURGE / HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n"
	if code, err := exchange("PROXY TCP4 192.0.2.10 127.0.0.1 40000 8080\r\n" + purge); code != http.StatusOK {
		t.Errorf("PURGE from a purge.allow client through the terminator = %d (%v), want 200", code, err)
	}
	if code, err := exchange("PROXY TCP4 198.51.100.9 127.0.0.1 40000 8080\r\n" + purge); code != http.StatusForbidden {
		t.Errorf("PURGE from a visitor through the terminator = %d (%v), want 403", code, err)
	}
	if code, err := exchange(purge); err == nil {
		t.Errorf("PURGE without a PROXY header = %d, want the connection refused", code)
	}
	code, err := exchange("PROXY TCP4 10.1.2.3 127.0.0.1 40000 8080\r\nGET /p/ HTTP/1.1\r\nHost: www.example.com\r\n" +
		"X-Forwarded-For: 203.0.113.7\r\nConnection: close\r\n\r\n")
	if code != http.StatusOK {
		t.Fatalf("GET through a trusted balancer = %d (%v)", code, err)
	}
	if got := <-seen; got != "203.0.113.7, 10.1.2.3" {
		t.Errorf("origin X-Forwarded-For = %q, want the real client, then the trusted balancer", got)
	}
}
