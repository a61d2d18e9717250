package proxy

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgevitals/edgevitals/vitals/field"
)

// Real client tests. Loopback is all of 127.0.0.0/8 on Linux, so a test can
// be a trusted terminator (127.0.0.1) and an untrusted stranger (127.0.0.2)
// on one machine, over real TCP.

var (
	terminator = netip.MustParsePrefix("127.0.0.1/32") // the local TLS terminator
	purgers    = netip.MustParsePrefix("192.0.2.0/24") // where the CMS that purges lives
)

// behindTerminator trusts the local terminator and lets only purgers purge.
func behindTerminator(o *Options) {
	o.TrustedProxies = []netip.Prefix{terminator, netip.MustParsePrefix("10.0.0.0/8")}
	o.PurgeAllow = []netip.Prefix{purgers}
}

// doFrom is h.do from a given loopback source address.
func (h *harness) doFrom(local, method, path string, hdr ...string) response {
	h.t.Helper()
	saved := h.client
	h.client = &http.Client{Transport: &http.Transport{
		DisableCompression: true,
		DialContext:        (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}).DialContext,
	}}
	defer func() { h.client.CloseIdleConnections(); h.client = saved }()
	return h.do(method, path, hdr...)
}

// rawExchange opens a TCP connection to the proxy, writes raw bytes (a PROXY
// header and a request) and reads one response. It returns the error of
// that read when the proxy closed the connection without answering.
func rawExchange(t *testing.T, addr string, raw []byte) (*http.Response, string, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if len(raw) > 0 {
		if _, err := c.Write(raw); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(b), nil
}

// proxyV1 is a PROXY protocol v1 header, as hitch and haproxy write it.
func proxyV1(src, dst netip.AddrPort) []byte {
	fam := "TCP4"
	if src.Addr().Is6() {
		fam = "TCP6"
	}
	return []byte("PROXY " + fam + " " + src.Addr().String() + " " + dst.Addr().String() + " " +
		strconv.Itoa(int(src.Port())) + " " + strconv.Itoa(int(dst.Port())) + "\r\n")
}

// proxyV2 is a PROXY protocol v2 header, byte by byte from the spec
// (section 2.2), with tlvs after the addresses.
func proxyV2(src, dst netip.AddrPort, tlvs []byte) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n")
	b = append(b, 0x21) // version 2, command PROXY
	if src.Addr().Is4() {
		b = append(b, 0x11) // AF_INET, STREAM
	} else {
		b = append(b, 0x21) // AF_INET6, STREAM
	}
	addrs := append(src.Addr().AsSlice(), dst.Addr().AsSlice()...)
	addrs = binary.BigEndian.AppendUint16(addrs, src.Port())
	addrs = binary.BigEndian.AppendUint16(addrs, dst.Port())
	b = binary.BigEndian.AppendUint16(b, uint16(len(addrs)+len(tlvs)))
	return append(append(b, addrs...), tlvs...)
}

// tlv is one PROXY v2 TLV.
func tlv(typ byte, value []byte) []byte {
	return append(binary.BigEndian.AppendUint16([]byte{typ}, uint16(len(value))), value...)
}

// sslTLV is PP2_TYPE_SSL saying the client used TLS (PP2_CLIENT_SSL, a
// verified-or-absent certificate, the version sub-TLV), as hitch sends it.
func sslTLV(version string) []byte {
	v := []byte{0x01, 0, 0, 0, 0}
	return tlv(0x20, append(v, tlv(0x21, []byte(version))...))
}

var edgeAddr = netip.MustParseAddrPort("127.0.0.1:8080")

// TestRealClientRules holds the walk of X-Forwarded-For and the reading of
// X-Forwarded-Proto, case by case, on requests as fasthttp parses them.
func TestRealClientRules(t *testing.T) {
	s := &Server{opt: Options{TrustedProxies: []netip.Prefix{terminator, netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:1::/48")}}}
	f := func(peer, rawHeaders, wantClient, wantXFF string, wantHTTPS bool) {
		t.Helper()
		var req fasthttp.Request
		raw := "GET / HTTP/1.1\r\nHost: www.example.com\r\n" + rawHeaders + "\r\n"
		if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
			t.Fatalf("parse %q: %v", raw, err)
		}
		ctx := &fasthttp.RequestCtx{}
		ctx.Init(&req, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(peer)), nil)
		c := s.realClient(ctx)
		proto, xff := s.forwardingFields(ctx)
		if c.addr.String() != wantClient || string(xff) != wantXFF || c.https != wantHTTPS {
			t.Errorf("peer %s, %q:\nclient %s, X-Forwarded-For %q, https %v\nwant   %s, X-Forwarded-For %q, https %v",
				peer, rawHeaders, c.addr, xff, c.https, wantClient, wantXFF, wantHTTPS)
		}
		if got := string(s.requestScheme(ctx)); got != string(proto) {
			t.Errorf("peer %s, %q: the cache key's scheme %q differs from the origin's X-Forwarded-Proto %q", peer, rawHeaders, got, proto)
		}
	}
	// An untrusted peer is the client, whatever it says.
	f("198.51.100.9:1", "X-Forwarded-For: 192.0.2.10\r\nX-Forwarded-Proto: https\r\n", "198.51.100.9", "198.51.100.9", false)
	// A trusted peer without the field is the client.
	f("127.0.0.1:1", "", "127.0.0.1", "127.0.0.1", false)
	// One hop: the terminator appended the visitor.
	f("127.0.0.1:1", "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n", "203.0.113.7", "203.0.113.7, 127.0.0.1", true)
	// A spoofed prefix from the visitor is not believed beyond the trusted hop.
	f("127.0.0.1:1", "X-Forwarded-For: 192.0.2.10, 127.0.0.1, 203.0.113.7\r\n", "203.0.113.7", "203.0.113.7, 127.0.0.1", false)
	// Trusted hops are skipped (real_ip_recursive): CDN 10.x, then the terminator.
	f("127.0.0.1:1", "X-Forwarded-For: 6.6.6.6, 203.0.113.7, 10.1.2.3\r\n", "203.0.113.7", "203.0.113.7, 10.1.2.3, 127.0.0.1", false)
	// Every address trusted: the leftmost is the client.
	f("127.0.0.1:1", "X-Forwarded-For: 10.9.9.9, 10.1.2.3\r\n", "10.9.9.9", "10.9.9.9, 10.1.2.3, 127.0.0.1", false)
	// Several field lines are one list, in order; empty elements count for nothing.
	f("127.0.0.1:1", "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 203.0.113.7,, 10.1.2.3 ,\r\n", "203.0.113.7", "203.0.113.7, 10.1.2.3, 127.0.0.1", false)
	// Ports and brackets, IPv6, IPv4-mapped IPv6.
	f("127.0.0.1:1", "X-Forwarded-For: 203.0.113.7:4711\r\n", "203.0.113.7", "203.0.113.7, 127.0.0.1", false)
	f("127.0.0.1:1", "X-Forwarded-For: [2001:db8::7]:443\r\n", "2001:db8::7", "2001:db8::7, 127.0.0.1", false)
	f("127.0.0.1:1", "X-Forwarded-For: [2001:db8::7]\r\n", "2001:db8::7", "2001:db8::7, 127.0.0.1", false)
	f("127.0.0.1:1", "X-Forwarded-For: 2001:db8::7, 2001:db8:1::1\r\n", "2001:db8::7", "2001:db8::7, 2001:db8:1::1, 127.0.0.1", false)
	f("[::ffff:127.0.0.1]:1", "X-Forwarded-For: ::ffff:203.0.113.7\r\n", "203.0.113.7", "203.0.113.7, 127.0.0.1", false)
	// Malformed entries stop the walk: the last good address is the client.
	f("127.0.0.1:1", "X-Forwarded-For: 192.0.2.10, garbage\r\n", "127.0.0.1", "127.0.0.1", false)
	f("127.0.0.1:1", "X-Forwarded-For: 192.0.2.10, unknown, 10.1.2.3\r\n", "10.1.2.3", "10.1.2.3, 127.0.0.1", false)
	f("127.0.0.1:1", "X-Forwarded-For: 192.0.2.10, fe80::1%eth0\r\n", "127.0.0.1", "127.0.0.1", false)
	f("127.0.0.1:1", "X-Forwarded-For: 192.0.2.10, [203.0.113.7]\r\n", "127.0.0.1", "127.0.0.1", false)
	f("127.0.0.1:1", "X-Forwarded-For: 192.0.2.10, "+strings.Repeat("1", 100)+"\r\n", "127.0.0.1", "127.0.0.1", false)
	f("127.0.0.1:1", "X-Forwarded-For: 192.0.2.10, 203.0.113.7:99999\r\n", "127.0.0.1", "127.0.0.1", false)
	// X-Forwarded-Proto: the last value of the last line; anything but
	// http or https says nothing.
	f("127.0.0.1:1", "X-Forwarded-Proto: http\r\nX-Forwarded-Proto: HTTPS\r\n", "127.0.0.1", "127.0.0.1", true)
	f("127.0.0.1:1", "X-Forwarded-Proto: https, http\r\n", "127.0.0.1", "127.0.0.1", false)
	f("127.0.0.1:1", "X-Forwarded-Proto: wss\r\n", "127.0.0.1", "127.0.0.1", false)
}

// TestForwardedTrailersRefused: a trailer arrives after the body, past the
// proxy that vouched for the header, so it must never name the client.
// fasthttp refuses X-Forwarded-* trailers outright; the walk relies on it.
func TestForwardedTrailersRefused(t *testing.T) {
	h := newHarness(t, page("x"), behindTerminator)
	for _, name := range []string{"X-Forwarded-For", "X-Forwarded-Proto"} {
		raw := "PURGE / HTTP/1.1\r\nHost: www.example.com\r\nTransfer-Encoding: chunked\r\nTrailer: " + name + "\r\n" +
			"X-Forwarded-For: 198.51.100.9\r\nConnection: close\r\n\r\n1\r\nx\r\n0\r\n" + name + ": 192.0.2.10\r\n\r\n"
		resp, _, err := rawExchange(t, h.addr, []byte(raw))
		if err == nil && resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s trailer: %s, want 400 or the connection closed", name, resp.Status)
		}
	}
	if n := h.originCount(); n != 0 {
		t.Errorf("origin saw %d requests, want none", n)
	}
}

// TestPurgeThroughTrustedProxy: behind a local terminator every visitor's
// TCP peer is loopback; purge.allow must judge the real client.
func TestPurgeThroughTrustedProxy(t *testing.T) {
	var gen atomic.Int64
	h := newHarness(t, wordpressLike(&gen), behindTerminator)
	f := func(from, xff string, want int) {
		t.Helper()
		warm(t, h, "/")
		var hdr []string
		if xff != "" {
			hdr = append(hdr, "X-Forwarded-For: "+xff)
		}
		if r := h.doFrom(from, "PURGE", "/", hdr...); r.Status != want {
			t.Errorf("PURGE from %s with X-Forwarded-For %q = %d, want %d", from, xff, r.Status, want)
		}
		regex := append(hdr, "X-Purge-Method: regex")
		if r := h.doFrom(from, "PURGE", "/.*", regex...); r.Status != want {
			t.Errorf("PURGE /.* (whole site) from %s with X-Forwarded-For %q = %d, want %d", from, xff, r.Status, want)
		}
	}
	f("127.0.0.1", "192.0.2.10", http.StatusOK)                                 // the CMS, through the terminator
	f("127.0.0.1", "198.51.100.9", http.StatusForbidden)                        // a visitor, through the terminator
	f("127.0.0.1", "", http.StatusForbidden)                                    // the terminator itself is no purger
	f("127.0.0.1", "192.0.2.10, 198.51.100.9", http.StatusForbidden)            // spoofed prefix
	f("127.0.0.1", "192.0.2.10, 127.0.0.1, 198.51.100.9", http.StatusForbidden) // spoofed trusted hop
	f("127.0.0.1", "192.0.2.10, not-an-address", http.StatusForbidden)          // stops at garbage
	f("127.0.0.1", "198.51.100.9, 10.1.2.3, 192.0.2.10", http.StatusOK)         // a purger behind two trusted hops
	f("127.0.0.2", "192.0.2.10", http.StatusForbidden)                          // an untrusted peer's field is ignored
	wantCacheStatus(t, h.get("/"), "; hit")
}

// TestOriginSeesRealClient: the origin gets the real client and the
// trusted hops in X-Forwarded-For, and the visitor's scheme, on a miss and
// on a bypass; from an untrusted peer, the peer and plain http.
func TestOriginSeesRealClient(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Forwarded-Proto")+" "+r.Header.Get("X-Forwarded-For"))
	}, behindTerminator)
	f := func(from, path string, hdr []string, wantProto, wantXFF string) {
		t.Helper()
		n := h.originCount()
		h.doFrom(from, http.MethodGet, path, hdr...)
		if h.originCount() != n+1 {
			t.Fatalf("GET %s from %s did not reach the origin", path, from)
		}
		seen := h.lastSeen().Header
		if got := seen.Values("X-Forwarded-For"); len(got) != 1 || got[0] != wantXFF {
			t.Errorf("GET %s from %s with %q: origin X-Forwarded-For = %q, want %q", path, from, hdr, got, wantXFF)
		}
		if got := seen.Values("X-Forwarded-Proto"); len(got) != 1 || got[0] != wantProto {
			t.Errorf("GET %s from %s with %q: origin X-Forwarded-Proto = %q, want %q", path, from, hdr, got, wantProto)
		}
	}
	spoof := []string{"X-Forwarded-For: 6.6.6.6", "X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: https"}
	f("127.0.0.1", "/a/", spoof, "https", "203.0.113.7, 127.0.0.1")
	f("127.0.0.1", "/wp-admin/", spoof, "https", "203.0.113.7, 127.0.0.1") // bypass
	f("127.0.0.1", "/b/", []string{"X-Forwarded-For: 203.0.113.7, 10.1.2.3"}, "http", "203.0.113.7, 10.1.2.3, 127.0.0.1")
	f("127.0.0.2", "/c/", spoof, "http", "127.0.0.2")
	f("127.0.0.2", "/wp-admin/x", spoof, "http", "127.0.0.2")
}

// TestUntrustedSchemeSharesTheHTTPCopy: X-Forwarded-Proto from a peer that
// is not trusted changes neither the cache key nor what the origin is told,
// so a stranger cannot have the origin build the https page over http.
func TestUntrustedSchemeSharesTheHTTPCopy(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, r.Header.Get("X-Forwarded-Proto")+"://"+r.Host)
	}, behindTerminator)
	if r := h.doFrom("127.0.0.2", http.MethodGet, "/", "X-Forwarded-Proto: https"); r.Body != "http://www.example.com" {
		t.Errorf("untrusted peer claiming https got %q, want the http page", r.Body)
	}
	if r := h.doFrom("127.0.0.1", http.MethodGet, "/", "X-Forwarded-Proto: https"); r.Body != "https://www.example.com" {
		t.Errorf("terminator saying https got %q, want the https page", r.Body)
	}
	if r := h.doFrom("127.0.0.2", http.MethodGet, "/"); r.Body != "http://www.example.com" {
		t.Errorf("plain http got %q", r.Body)
	}
	if n := h.originCount(); n != 2 {
		t.Errorf("origin saw %d requests, want 2 (one per scheme)", n)
	}
}

// TestProxyProtocol: with proxy_protocol on, the PROXY header's source is
// the peer, for purge.allow and X-Forwarded-For, in v1 and v2, IPv4 and
// IPv6; v2's SSL TLV gives the scheme; the source is itself subject to
// trusted_proxies.
func TestProxyProtocol(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Forwarded-Proto")+" "+r.Header.Get("X-Forwarded-For"))
	}, behindTerminator, func(o *Options) { o.ProxyProtocol = true })
	purger, visitor := netip.MustParseAddrPort("192.0.2.10:40000"), netip.MustParseAddrPort("198.51.100.9:40001")
	purge := "PURGE / HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n"
	f := func(name string, header []byte, req string, wantStatus int, wantBody string) {
		t.Helper()
		resp, body, err := rawExchange(t, h.addr, append(header, req...))
		if err != nil {
			t.Fatalf("%s: no response: %v", name, err)
		}
		if resp.StatusCode != wantStatus || (wantBody != "" && body != wantBody) {
			t.Errorf("%s: %d %q, want %d %q", name, resp.StatusCode, body, wantStatus, wantBody)
		}
	}
	f("v1 purger", proxyV1(purger, edgeAddr), purge, http.StatusOK, "")
	f("v1 visitor", proxyV1(visitor, edgeAddr), purge, http.StatusForbidden, "")
	f("v2 purger", proxyV2(purger, edgeAddr, nil), purge, http.StatusOK, "")
	f("v2 visitor", proxyV2(visitor, edgeAddr, sslTLV("TLSv1.3")), purge, http.StatusForbidden, "")
	// The header's source is the peer: a visitor's own X-Forwarded-For is
	// not believed, for purge or for the origin.
	f("v1 visitor claiming to be the purger", proxyV1(visitor, edgeAddr),
		"PURGE / HTTP/1.1\r\nHost: www.example.com\r\nX-Forwarded-For: 192.0.2.10\r\nConnection: close\r\n\r\n", http.StatusForbidden, "")
	get := func(path string, hdr ...string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: www.example.com\r\n" + strings.Join(append(hdr, ""), "\r\n") + "Connection: close\r\n\r\n"
	}
	f("v1 to the origin", proxyV1(visitor, edgeAddr), get("/v1/", "X-Forwarded-For: 192.0.2.10", "X-Forwarded-Proto: https"),
		http.StatusOK, "http 198.51.100.9")
	f("v2 with TLS", proxyV2(visitor, edgeAddr, sslTLV("TLSv1.3")), get("/v2/"), http.StatusOK, "https 198.51.100.9")
	f("v2 without TLS", proxyV2(visitor, edgeAddr, tlv(0x01, []byte("h2"))), get("/v2plain/"), http.StatusOK, "http 198.51.100.9")
	f("v2 IPv6 with TLS", proxyV2(netip.MustParseAddrPort("[2001:db8::7]:5000"), netip.MustParseAddrPort("[::1]:8080"), sslTLV("TLSv1.2")),
		get("/v6/"), http.StatusOK, "https 2001:db8::7")
	// Health checks: a v2 LOCAL header (haproxy) and v1 UNKNOWN name no
	// client; the TCP peer (here the trusted terminator) stands.
	local := append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x20, 0x00, 0x00, 0x00)
	f("v2 LOCAL", local, get("/local/"), http.StatusOK, "http 127.0.0.1")
	f("v1 UNKNOWN", []byte("PROXY UNKNOWN\r\n"), get("/unknown/"), http.StatusOK, "http 127.0.0.1")
	// A trusted source (a load balancer at 10.x in front of the
	// terminator): its X-Forwarded-For and X-Forwarded-Proto count.
	lb := netip.MustParseAddrPort("10.1.2.3:6000")
	f("v2 from a trusted balancer", proxyV2(lb, edgeAddr, nil), get("/lb/", "X-Forwarded-For: 6.6.6.6, 203.0.113.7", "X-Forwarded-Proto: https"),
		http.StatusOK, "https 203.0.113.7, 10.1.2.3")
	f("v1 purge through a trusted balancer", proxyV1(lb, edgeAddr),
		"PURGE / HTTP/1.1\r\nHost: www.example.com\r\nX-Forwarded-For: 192.0.2.10\r\nConnection: close\r\n\r\n", http.StatusOK, "")
	// Keep-alive: the second request on a connection has the same peer and scheme.
	t.Run("keep-alive", func(t *testing.T) {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		raw := append(proxyV2(visitor, edgeAddr, sslTLV("TLSv1.3")), "GET /ka1/ HTTP/1.1\r\nHost: www.example.com\r\n\r\n"+get("/ka2/")...)
		if _, err := c.Write(raw); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		for _, path := range []string{"/ka1/", "/ka2/"} {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(b) != "https 198.51.100.9" {
				t.Errorf("%s on a kept-alive connection: origin saw %q (%v), want https 198.51.100.9", path, b, err)
			}
		}
	})
}

// TestProxyProtocolRequired: with proxy_protocol on, a connection that does
// not open with a PROXY header is closed unanswered, whether it speaks HTTP
// at once, sends a damaged header, or says nothing until the header timeout.
func TestProxyProtocolRequired(t *testing.T) {
	h := newHarness(t, page("x", "Cache-Control: max-age=60"), func(o *Options) {
		o.ProxyProtocol = true
		o.ProxyHeaderTimeout = 200 * time.Millisecond
	})
	f := func(name string, raw []byte) {
		t.Helper()
		resp, _, err := rawExchange(t, h.addr, raw)
		if err == nil {
			t.Errorf("%s: got %s, want the connection closed without an answer", name, resp.Status)
			return
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s: the proxy neither answered nor closed the connection", name)
		}
	}
	purge := "PURGE / HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n"
	f("plain HTTP", []byte("GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n"))
	f("plain PURGE from loopback", []byte(purge))
	f("damaged v1", []byte("PROXY TCP4 192.0.2.10 nonsense\r\n"+purge))
	f("v1 with an impossible address", []byte("PROXY TCP4 999.0.2.10 127.0.0.1 1 2\r\n"+purge))
	f("truncated v2", proxyV2(netip.MustParseAddrPort("192.0.2.10:1"), edgeAddr, nil)[:20])
	f("silence", nil)
	if n := h.originCount(); n != 0 {
		t.Errorf("origin saw %d requests, want none", n)
	}
}

// beaconClients records the client each beacon is charged to, and passes
// it on to the real collector and its rate limiter.
type beaconClients struct {
	*field.Collector
	mu      sync.Mutex
	clients []string
}

func (b *beaconClients) Beacon(site, client string, gpc bool, body []byte) int {
	b.mu.Lock()
	b.clients = append(b.clients, client)
	b.mu.Unlock()
	return b.Collector.Beacon(site, client, gpc, body)
}

// TestBeaconRateLimitPerRealClient: behind a terminator, the beacon rate
// limit is a budget per visitor, not one for the whole site.
func TestBeaconRateLimitPerRealClient(t *testing.T) {
	rec := &beaconClients{}
	h := newHarness(t, page("x"), behindTerminator, func(o *Options) {
		c, err := field.NewCollector(field.CollectorOptions{Sites: []string{"blog"}, SampleRate: 1, RatePerMinute: 1, Metrics: o.Metrics})
		if err != nil {
			t.Fatal(err)
		}
		rec.Collector = c
		o.RUM = rec
	})
	beacon := func(xff string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, "http://"+h.addr+rumBeaconPath,
			strings.NewReader(`{"v":1,"sid":"abcdefghABCDEFGH0123-_","path":"/","lcp":100,"dev":"desktop","cache":"hit"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "www.example.com"
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := beacon("203.0.113.7"); got != http.StatusNoContent {
		t.Fatalf("first beacon of 203.0.113.7 = %d, want 204", got)
	}
	if got := beacon("203.0.113.7"); got != http.StatusTooManyRequests {
		t.Errorf("second beacon of 203.0.113.7 within the minute = %d, want 429", got)
	}
	// Another visitor has a budget of its own. The limiter hashes clients
	// into 16,384 slots; two other visitors both sharing the first one's
	// slot is a one in 2^28 chance.
	b, c := beacon("198.51.100.9"), beacon("198.51.100.10")
	if b != http.StatusNoContent && c != http.StatusNoContent {
		t.Errorf("beacons of two other visitors = %d, %d, want 204: they were charged to the first visitor's budget", b, c)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	want := []string{"203.0.113.7", "203.0.113.7", "198.51.100.9", "198.51.100.10"}
	if strings.Join(rec.clients, " ") != strings.Join(want, " ") {
		t.Errorf("beacons were charged to %q, want %q", rec.clients, want)
	}
}

// FuzzRealClient: any X-Forwarded-For and X-Forwarded-Proto from a trusted
// peer give a client without a panic; the client is the peer or one of the
// addresses sent, and what the origin is told parses back to the same chain.
func FuzzRealClient(f *testing.F) {
	f.Add("203.0.113.7, 10.1.2.3", "https")
	f.Add("192.0.2.10, garbage, 10.1.2.3", "http, https")
	f.Add("[2001:db8::7]:443,,  ,::ffff:10.0.0.1", "HTTPS")
	f.Add(",,,", "")
	f.Add("fe80::1%eth0, 1.2.3.4:99999, [::1", "wss")
	s := &Server{opt: Options{TrustedProxies: []netip.Prefix{terminator, netip.MustParsePrefix("10.0.0.0/8")}}}
	f.Fuzz(func(t *testing.T, xff, proto string) {
		var req fasthttp.Request
		req.Header.SetHost("www.example.com")
		req.Header.Set("X-Forwarded-For", xff)
		req.Header.Set("X-Forwarded-Proto", proto)
		ctx := &fasthttp.RequestCtx{}
		ctx.Init(&req, net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:1")), nil)
		c := s.realClient(ctx)
		if len(c.chain) == 0 || c.chain[0] != c.addr || c.chain[len(c.chain)-1] != netip.MustParseAddr("127.0.0.1") {
			t.Fatalf("chain %v for client %s", c.chain, c.addr)
		}
		for _, a := range c.chain[1:] {
			if !s.trusted(a) {
				t.Fatalf("chain %v: %s after the client is not trusted", c.chain, a)
			}
		}
		_, out := s.forwardingFields(ctx)
		var again fasthttp.Request
		again.Header.Set("X-Forwarded-For", string(out))
		ctx2 := &fasthttp.RequestCtx{}
		ctx2.Init(&again, net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:1")), nil)
		if _, out2 := s.forwardingFields(ctx2); string(out2) != string(out)+", 127.0.0.1" {
			t.Fatalf("X-Forwarded-For %q, read back through the terminator, gives %q", out, out2)
		}
	})
}

// TestWarnsOfUntrustedTerminator: a local proxy whose forwarding fields are
// ignored is named once in the log, so an upgrade behind hitch or nginx
// without trusted_proxies does not fail silently.
func TestWarnsOfUntrustedTerminator(t *testing.T) {
	var logs syncBuffer
	h := newHarness(t, page("x"), func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	h.get("/a/") // no forwarding fields: nothing to say
	if strings.Contains(logs.String(), "trusted_proxies") {
		t.Fatalf("warned without forwarding fields:\n%s", logs.String())
	}
	h.get("/b/", "X-Forwarded-Proto: https")
	h.get("/c/", "X-Forwarded-For: 203.0.113.7")
	if n := strings.Count(logs.String(), "server.trusted_proxies"); n != 1 {
		t.Errorf("the log names server.trusted_proxies %d times, want once:\n%s", n, logs.String())
	}
}

// syncBuffer is a bytes.Buffer for a logger written from server goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
