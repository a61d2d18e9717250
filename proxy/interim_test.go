package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// interimOrigin answers with a 102, then a 103 with a Link and another
// field, then the final response made by final. The interim fields are
// removed before the final response, as an origin does.
func interimOrigin(final http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusProcessing)
		w.Header().Set("Link", "</s.css>; rel=preload; as=style")
		w.Header().Set("X-Hint", "early")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Del("X-Hint")
		final(w, r)
	}
}

// interimSeen is one interim response a client got.
type interimSeen struct {
	Code   int
	Header textproto.MIMEHeader
}

// doInterim sends a request through the proxy and also returns the
// interim responses that came before the final one.
func (h *harness) doInterim(method, path string, hdr ...string) (response, []interimSeen) {
	h.t.Helper()
	var mu sync.Mutex
	var got []interimSeen
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, hd textproto.MIMEHeader) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, interimSeen{code, hd})
		return nil
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), method, "http://"+h.addr+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Host = "www.example.com"
	for _, line := range hdr {
		k, v, _ := strings.Cut(line, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	mu.Lock()
	defer mu.Unlock()
	return response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}, got
}

func wantInterims(t *testing.T, got []interimSeen) {
	t.Helper()
	if len(got) != 2 || got[0].Code != 102 || got[1].Code != 103 {
		t.Fatalf("interim responses = %+v, want 102 then 103", got)
	}
	if v := got[1].Header.Get("Link"); v != "</s.css>; rel=preload; as=style" {
		t.Errorf("103 Link = %q", v)
	}
	if v := got[1].Header.Get("X-Hint"); v != "early" {
		t.Errorf("103 X-Hint = %q", v)
	}
	for _, k := range []string{"Content-Length", "Transfer-Encoding", "Content-Type"} {
		if v := got[1].Header.Get(k); v != "" {
			t.Errorf("103 has %s %q", k, v)
		}
	}
}

func wantNoInterimFields(t *testing.T, r response) {
	t.Helper()
	for _, k := range []string{"Link", "X-Hint"} {
		if v := r.Header.Get(k); v != "" {
			t.Errorf("final response has the interim field %s: %q", k, v)
		}
	}
}

// TestInterimResponsesPassThrough: a miss gets the origin's 102 and 103
// before its final response; the stored response has none of the 103's
// fields, and hits get no interim response.
func TestInterimResponsesPassThrough(t *testing.T) {
	h := newHarness(t, interimOrigin(page("cached page", "Cache-Control: max-age=60")))
	r, got := h.doInterim(http.MethodGet, "/i/")
	if r.Status != 200 || r.Body != "cached page" {
		t.Fatalf("miss = %d %q", r.Status, r.Body)
	}
	wantCacheStatus(t, r, "fwd=uri-miss", "stored")
	wantInterims(t, got)
	wantNoInterimFields(t, r)

	r, got = h.doInterim(http.MethodGet, "/i/")
	wantCacheStatus(t, r, "; hit")
	if len(got) != 0 {
		t.Errorf("a hit got interim responses %+v", got)
	}
	wantNoInterimFields(t, r)
	if n := h.originCount(); n != 1 {
		t.Errorf("origin saw %d requests, want 1", n)
	}
}

// TestInterimResponsesOnPassAndBypass: requests that are not stored (a
// bypass, an uncacheable response) get them too, with bodies streamed
// through and the origin connection reused afterwards.
func TestInterimResponsesOnPassAndBypass(t *testing.T) {
	big := strings.Repeat("b", 3<<20) // over max_object_bytes: streamed, not stored
	h := newHarness(t, interimOrigin(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big/":
			w.Header().Set("Cache-Control", "max-age=60")
			fmt.Fprint(w, big)
		default:
			w.Header().Set("Cache-Control", "private")
			fmt.Fprint(w, "private page")
		}
	}))
	for i := range 3 {
		r, got := h.doInterim(http.MethodGet, "/big/")
		if r.Status != 200 || r.Body != big {
			t.Fatalf("big %d = %d with %d bytes", i, r.Status, len(r.Body))
		}
		wantInterims(t, got)
		wantNoInterimFields(t, r)
	}
	// Each streamed body was read to its end: one origin connection, kept.
	if n := h.proxy.sitesNow()[0].pool.origins[0].hc.ConnsCount(); n != 1 {
		t.Errorf("origin connections = %d after three streamed bodies, want the one reused", n)
	}
	for _, hdr := range [][]string{nil, {"Authorization: Bearer x"}} {
		for range 2 {
			r, got := h.doInterim(http.MethodGet, "/private/", hdr...)
			if r.Status != 200 || r.Body != "private page" {
				t.Fatalf("%q = %d %q", hdr, r.Status, r.Body)
			}
			wantInterims(t, got)
			wantNoInterimFields(t, r)
		}
	}
}

// TestInterimNotSentToHTTP10: an HTTP/1.0 client must not get 1xx (RFC
// 9110 §15.2); its first bytes are the final status line.
func TestInterimNotSentToHTTP10(t *testing.T) {
	h := newHarness(t, interimOrigin(page("old client", "Cache-Control: private")))
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /old/ HTTP/1.0\r\nHost: www.example.com\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line, "HTTP/1.1 200") && !strings.HasPrefix(line, "HTTP/1.0 200") {
		t.Errorf("first line to an HTTP/1.0 client = %q, want the final 200", line)
	}
}

// TestInterimSinkAfterWrite: once fasthttp wrote to a connection since its
// last read (a response partly flushed while pipelined requests wait),
// interim responses are dropped rather than written into that response.
func TestInterimSinkAfterWrite(t *testing.T) {
	srv, cli := net.Pipe()
	defer cli.Close()
	c := &interimConn{Conn: srv}
	var ctx fasthttp.RequestCtx
	ctx.Init2(c, nil, false)
	ctx.Request.Header.SetProtocol("HTTP/1.1")
	s := &Server{}
	sink := s.interimSink(&ctx)
	if sink == nil {
		t.Fatal("no sink for an HTTP/1.1 client")
	}
	var h fasthttp.ResponseHeader
	h.SetStatusCode(fasthttp.StatusEarlyHints)
	h.Set("Link", "</a.js>; rel=preload")

	read := make(chan []byte, 1)
	go func() {
		b := make([]byte, 512)
		n, _ := cli.Read(b)
		read <- b[:n]
	}()
	sink(&h) // fresh connection: written
	if got := <-read; !bytes.HasPrefix(got, []byte("HTTP/1.1 103 Early Hints\r\n")) || !bytes.Contains(got, []byte("Link: </a.js>; rel=preload\r\n")) {
		t.Fatalf("interim written = %q", got)
	}

	go func() { _, _ = io.Copy(io.Discard, cli) }()
	if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart of a body")); err != nil {
		t.Fatal(err)
	}
	c.Conn = &failConn{Conn: srv, t: t} // any write now fails the test
	sink(&h)
}

// failConn fails the test on any write.
type failConn struct {
	net.Conn
	t *testing.T
}

func (c *failConn) Write(p []byte) (int, error) {
	c.t.Errorf("interim response written after a partial response: %q", p)
	return len(p), nil
}

// TestInterimListenerKeepsTLS: a TLS connection wrapped for interim
// responses still looks like TLS to fasthttp, and still gets them.
func TestInterimListenerKeepsTLS(t *testing.T) {
	cert := selfSigned(t)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := interimListener{tls.NewListener(raw, &tls.Config{Certificates: []tls.Certificate{cert}})}
	defer ln.Close()
	type seen struct{ tls, sink bool }
	got := make(chan seen, 1)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		got <- seen{ctx.IsTLS(), (&Server{}).interimSink(ctx) != nil}
	}}
	go func() { _ = srv.Serve(ln) }() // ends with ln.Close
	defer func() { _ = srv.Shutdown() }()
	c, err := tls.Dial("tcp", raw.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if s := <-got; !s.tls || !s.sink {
		t.Errorf("IsTLS = %v, interim sink = %v; want both", s.tls, s.sink)
	}
}

// selfSigned makes a certificate for 127.0.0.1, valid for an hour.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestInterimFloodFails: an origin that sends interim responses without
// end fails the exchange after maxInterim of them, like no answer.
func TestInterimFloodFails(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</x.css>; rel=preload")
		for range maxInterim + 1 {
			w.WriteHeader(http.StatusEarlyHints)
		}
		fmt.Fprint(w, "never seen")
	})
	r, got := h.doInterim(http.MethodGet, "/flood/")
	if r.Status != http.StatusBadGateway {
		t.Errorf("status = %d, want 502", r.Status)
	}
	if len(got) != maxInterim {
		t.Errorf("client got %d interim responses, want %d", len(got), maxInterim)
	}
}

// TestInterimListenerKeepsTCPConn: plain TCP connections reach fasthttp as
// *net.TCPConn, which it writes a large response's header and body to with
// one writev. Wrapped, every hit on a 30 KB page took a second write system
// call (a third more server CPU per hit in the paired edgebench run).
func TestInterimListenerKeepsTCPConn(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	go func() {
		if c, err := net.Dial("tcp", raw.Addr().String()); err == nil {
			defer c.Close()
			_, _ = io.Copy(io.Discard, c) // until the test closes its side
		}
	}()
	c, err := interimListener{raw}.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*net.TCPConn); !ok {
		t.Errorf("interimListener handed fasthttp a %T, want *net.TCPConn (writev)", c)
	}
}
