package admin

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/edgevitals/edgevitals/proxy/proxytest"
)

// TestAdminHostCheck is the table of Host values each kind of admin
// listener answers: its own names and addresses, never a name a DNS
// rebinding page would send.
func TestAdminHostCheck(t *testing.T) {
	f := func(listen string, extra []string, host string, want bool) {
		t.Helper()
		if got := newHostCheck(listen, extra).allows([]byte(host)); got != want {
			t.Errorf("listen %q, hosts %q: allows(%q) = %v, want %v", listen, extra, host, got, want)
		}
	}
	// Loopback: loopback names and addresses, nothing else.
	for _, h := range []string{"127.0.0.1:9145", "127.0.0.1", "localhost:9145", "LOCALHOST.", "[::1]:9145", "[::1]"} {
		f("127.0.0.1:9145", nil, h, true)
	}
	for _, h := range []string{"evil.example:9145", "evil.example", "10.0.0.5:9145", ":9145", "[]", "127.0.0.1.evil.example", "localhost.evil.example"} {
		f("127.0.0.1:9145", nil, h, false)
	}
	// No Host at all (HTTP/1.0): no browser sends that.
	f("127.0.0.1:9145", nil, "", true)
	f("localhost:9145", nil, "127.0.0.1:9145", true)
	f("[::1]:9145", nil, "localhost", true)
	// A wildcard: any address (Prometheus scrapes by address, behind NAT
	// too), loopback names, and the configured names only.
	for _, listen := range []string{":9145", "0.0.0.0:9145", "[::]:9145", ""} {
		for _, h := range []string{"10.0.0.5:9145", "[fd00::5]:9145", "localhost:9145", "127.0.0.1", "edgevitals:9145", "EdgeVitals"} {
			f(listen, []string{"edgevitals"}, h, true)
		}
		f(listen, []string{"edgevitals"}, "evil.example:9145", false)
		f(listen, nil, "edgevitals:9145", false)
	}
	// One address: that address and the configured names.
	f("10.0.0.5:9145", nil, "10.0.0.5:9145", true)
	f("10.0.0.5:9145", nil, "10.0.0.6:9145", false)
	f("10.0.0.5:9145", nil, "localhost:9145", false)
	f("edge-1.internal:9145", nil, "edge-1.internal:9145", true)
	f("edge-1.internal:9145", nil, "evil.example:9145", false)
}

// TestAdminRefusesForeignHost: a browser page rebound to the admin
// listener's address sends its own name as Host and gets 421 with a short
// reason on every endpoint; Prometheus (by address), localhost and peers
// holding the token are answered.
func TestAdminRefusesForeignHost(t *testing.T) {
	h := proxytest.New(t, proxytest.Page("x"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := NewAdmin(h.Proxy, AdminOptions{Token: testToken, Loopback: true, Metrics: h.Set, Listen: ln.Addr().String(), Hosts: []string{"edgevitals"}})
	a.SetReady(true)
	srv := &fasthttp.Server{Handler: a.Handler}
	go srv.Serve(ln) //nolint:errcheck // ends with Shutdown below
	t.Cleanup(func() { srv.Shutdown() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	do := func(method, path, host, token string) (int, string) {
		t.Helper()
		return send(t, method, "http://"+ln.Addr().String()+path, host, token, `{"site":"blog","all":true}`)
	}
	for _, path := range []string{"/metrics", "/healthz", "/readyz", "/api/releases", "/"} {
		for _, host := range []string{"evil.example:" + port, "evil.example", "10.1.2.3:" + port} {
			status, body := do("GET", path, host, "")
			if status != fasthttp.StatusMisdirectedRequest || !strings.Contains(body, "host not served") {
				t.Errorf("GET %s with Host %q = %d %q, want 421 with the reason", path, host, status, body)
			}
			if strings.Contains(body, "edgevitals_") {
				t.Errorf("GET %s with Host %q leaked metrics", path, host)
			}
		}
	}
	for _, host := range []string{ln.Addr().String(), "localhost:" + port, "[::1]:" + port, "edgevitals:" + port} {
		if status, body := do("GET", "/metrics", host, ""); status != http.StatusOK || !strings.Contains(body, "edgevitals_") {
			t.Errorf("GET /metrics with Host %q = %d, want 200 with the metrics", host, status)
		}
	}
	// A peer fanning a purge out by a name this node was not told of.
	if status, body := do("POST", "/api/purge", "edge-2.internal:"+port, testToken); status != http.StatusOK {
		t.Errorf("POST /api/purge with the token and Host edge-2.internal = %d %q, want 200", status, body)
	}
	if status, _ := do("POST", "/api/purge", "edge-2.internal:"+port, "wrong"); status != fasthttp.StatusMisdirectedRequest {
		t.Errorf("POST /api/purge with a wrong token and a foreign Host = %d, want 421", status)
	}
}
