package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hostileOrigin is a WordPress-like origin on a raw loopback listener that
// frames request bodies as nginx in front of php-fpm does (readFramedBody:
// it waits for every announced byte), and that notes every field a
// cacheable request must never carry to it.
//
//   - /page/...: a cacheable page of about 30 KB with 256 surrogate keys,
//     Vary: Accept-Encoding, an encoding chosen from Accept-Encoding (br
//     first) and named in the body; without X-Forwarded-Proto: https, a
//     cacheable redirect to https, as a site that forces https sends;
//   - /vary17: a page that varies on 17 fields and names the 17th's value;
//   - /my-account/: a private page for logged-in visitors;
//   - /doc/big.pdf: 20 MiB, no-store;
//   - any POST: the body read, then 200.
type hostileOrigin struct {
	url string

	poisoned   atomic.Int64 // cacheable requests that arrived with a poison field
	lastPoison atomic.Pointer[string]
	queryMu    sync.Mutex
	queries    []string // request targets of /page/query
}

var bigPDF = bytes.Repeat([]byte("%PDF-1.7 edgevitals "), 1<<20) // 20 MiB

func newHostileOrigin(t *testing.T) *hostileOrigin {
	t.Helper()
	o := &hostileOrigin{}
	o.url = serveLoopback(t, o.serve)
	return o
}

// hostilePoison are fields no cacheable request may bring to the origin,
// with '_' read as '-' as PHP's $_SERVER does.
var hostilePoison = []string{"x-original-url", "x-forwarded-server", "cf-visitor", "x-original-uri", "proxy", "x-rewrite-url"}

func (o *hostileOrigin) serve(c net.Conn) {
	defer c.Close()
	tp := textproto.NewReader(bufio.NewReader(c))
	for {
		method, target, hdr, err := readFramedRequest(tp)
		if err != nil {
			return
		}
		if !o.answer(c, method, target, hdr) {
			return
		}
	}
}

func (o *hostileOrigin) answer(c net.Conn, method, target string, hdr textproto.MIMEHeader) bool {
	path, _, _ := strings.Cut(target, "?")
	write := func(status, fields string, body []byte) bool {
		_, err := fmt.Fprintf(c, "HTTP/1.1 %s\r\n%sContent-Length: %d\r\n\r\n", status, fields, len(body))
		if err == nil {
			_, err = c.Write(body)
		}
		return err == nil
	}
	if method == http.MethodPost {
		return write("200 OK", "Cache-Control: private\r\n", []byte("ok"))
	}
	switch {
	case path == "/my-account/":
		return write("200 OK", "Cache-Control: private\r\n", []byte("account"))
	case path == "/doc/big.pdf":
		return write("200 OK", "Content-Type: application/pdf\r\nCache-Control: no-store\r\n", bigPDF)
	case path == "/vary17":
		var vary []string
		for i := 1; i <= 17; i++ {
			vary = append(vary, "X-A"+strconv.Itoa(i))
		}
		return write("200 OK", "Cache-Control: max-age=600\r\nVary: "+strings.Join(vary, ", ")+"\r\n",
			[]byte("for "+hdr.Get("X-A17")))
	case strings.HasPrefix(path, "/page/"):
		for k := range hdr {
			if o.isPoison(k) {
				o.poisoned.Add(1)
				o.lastPoison.Store(&k)
			}
		}
		if path == "/page/query" {
			o.queryMu.Lock()
			o.queries = append(o.queries, target)
			o.queryMu.Unlock()
		}
		if hdr.Get("X-Forwarded-Proto") != "https" {
			return write("301 Moved Permanently", "Location: https://www.example.com"+target+"\r\nCache-Control: max-age=600\r\n", nil)
		}
		enc := "identity"
		switch ae := strings.Join(hdr.Values("Accept-Encoding"), ","); {
		case strings.Contains(ae, "br"):
			enc = "br"
		case strings.Contains(ae, "gzip"):
			enc = "gzip"
		}
		fields := "Cache-Control: max-age=600\r\nContent-Type: text/html\r\nVary: Accept-Encoding\r\nSurrogate-Key: " + pageTags(path) + "\r\n"
		if enc != "identity" {
			fields += "Content-Encoding: " + enc + "\r\n"
		}
		body := append([]byte(fmt.Sprintf("page %s https enc=%s\n", path, enc)), pagePad...)
		return write("200 OK", fields, body)
	}
	return write("404 Not Found", "Cache-Control: max-age=60\r\n", []byte("not found"))
}

func (o *hostileOrigin) isPoison(k string) bool {
	k = strings.ToLower(strings.ReplaceAll(k, "_", "-"))
	for _, p := range hostilePoison {
		if k == p {
			return true
		}
	}
	return false
}

var pagePad = bytes.Repeat([]byte("<p>Lorem ipsum dolor sit amet.</p>\n"), 850) // ~30 KB

// pageTags are a page's 256 surrogate keys, as Drupal sends cache tags: a
// few shared by every page, the rest its own.
func pageTags(path string) string {
	var b strings.Builder
	b.WriteString("all node_list config:system.site")
	for i := range 253 {
		fmt.Fprintf(&b, " %s:%d", path, i)
	}
	return b.String()
}

// from returns an HTTP client whose connections come from the local
// address ip (127.0.0.1 plays the TLS terminator on the same host, which
// the edge trusts; 127.0.0.2 an attacker connecting directly).
func from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext:         d.DialContext,
			DisableCompression:  true,
			MaxIdleConnsPerHost: 16,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// rawFrom writes request on a connection from ip and returns the status
// line's code, or an error when no answer came within limit.
func rawFrom(ip, addr, request string, limit time.Duration) (int, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(limit)); err != nil {
		return 0, err
	}
	if _, err := io.WriteString(c, request); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 500 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 200)) // only for the failure message
		return resp.StatusCode, fmt.Errorf("%s: %q", resp.Status, b)
	}
	return resp.StatusCode, nil
}

// TestHostileClients runs every attack of the hardening audit at once,
// bounded in count, against one edge in front of the WordPress-like origin,
// while visitors come through the TLS terminator on the same host. The edge
// keeps serving cached pages with no 5xx, serves logged-in pages, never
// lets a poison field or a second line of a keyed field reach the origin,
// and its memory stays within 1.25 × cache.max_bytes + 64 MiB plus the
// configured body buffers.
func TestHostileClients(t *testing.T) {
	const maxBytes = 64 << 20
	const bodyBudget = 8 << 20
	// What the test process holds before the edge starts (other tests of
	// the package, package-level bodies): the bounds below are on what the
	// edge adds to it.
	heap0, rss0 := processMemory()
	origin := newHostileOrigin(t)
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "unused", http.StatusGone) }, func(o *Options) {
		o.Sites[0].Origins = []string{origin.url}
		o.Sites[0].Origin.MaxConns = 8
		o.Sites[0].Origin.Timeout = 3 * time.Second
		o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		o.PurgeAllow = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		o.MaxBodyBytes = 32 << 20
		o.BodyBufferBytes = bodyBudget
		o.ResponseBufferBytes = bodyBudget
		o.TempFileBytes = 64 << 20
		o.TempDir = t.TempDir()
		o.WriteTimeout = time.Minute // slow readers are cut by the buffers, not the clock
	})
	terminator, attacker := from("127.0.0.1"), from("127.0.0.2")
	defer terminator.CloseIdleConnections()
	defer attacker.CloseIdleConnections()
	base := "http://" + h.addr
	visit := func(c *http.Client, method, path string, hdr ...string) (int, http.Header, string, error) {
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			return 0, nil, "", err
		}
		req.Host = "www.example.com"
		for _, l := range hdr {
			k, v, _ := strings.Cut(l, ":")
			req.Header.Add(k, strings.TrimSpace(v))
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, nil, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b), err
	}
	viaTLS := []string{"X-Forwarded-For: 198.51.100.7", "X-Forwarded-Proto: https", "Accept-Encoding: gzip"}

	// Fill the cache past its budget with Drupal-tagged pages, and warm the
	// pages visitors will read.
	for i := range 2600 {
		if code, _, _, err := visit(terminator, "GET", fmt.Sprintf("/page/fill-%d", i), viaTLS...); err != nil || code != 200 {
			t.Fatalf("fill %d = %d, %v", i, code, err)
		}
	}
	for i := range 20 {
		visit(terminator, "GET", fmt.Sprintf("/page/hot-%d", i), viaTLS...)
	}

	var wg sync.WaitGroup
	var failures sync.Map // what went wrong, once each
	fail := func(format string, args ...any) { failures.LoadOrStore(fmt.Sprintf(format, args...), struct{}{}) }
	attack := func(n int, f func(i int)) {
		wg.Go(func() {
			for i := range n {
				f(i)
			}
		})
	}
	addr := h.addr

	// 1. Repeated lines of the fields the key holds.
	attack(20, func(i int) {
		visit(attacker, "GET", fmt.Sprintf("/page/ae-%d", i%5), "Accept-Encoding: gzip", "Accept-Encoding: br")
		visit(terminator, "GET", fmt.Sprintf("/page/ae-%d", i%5), "X-Forwarded-Proto: https", "Accept-Encoding: gzip", "Accept-Encoding: br")
	})
	attack(20, func(i int) {
		visit(terminator, "GET", fmt.Sprintf("/page/xfp-%d", i%5), "X-Forwarded-Proto: https", "X-Forwarded-Proto: http", "Accept-Encoding: gzip")
	})
	// 2. GETs with a body the origin would wait for.
	attack(10, func(i int) {
		code, err := rawFrom("127.0.0.2", addr, fmt.Sprintf("GET /page/body-%d HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 3\r\n\r\nabc", i), 10*time.Second)
		if err != nil || code >= 500 {
			fail("GET with a body = %d, %v: want an answer below 500", code, err)
		}
	})
	// 3. Uploads that announce 30 MiB and stall after 64 KiB.
	var stalled []net.Conn
	var stalledMu sync.Mutex
	attack(12, func(i int) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			fail("dial: %v", err)
			return
		}
		stalledMu.Lock()
		stalled = append(stalled, c)
		stalledMu.Unlock()
		fmt.Fprintf(c, "POST /wp-admin/async-upload.php HTTP/1.1\r\nHost: www.example.com\r\nCookie: wordpress_logged_in_x=y\r\nContent-Length: %d\r\n\r\n", 30<<20)
		c.Write(make([]byte, 64<<10))
	})
	// 4. Readers that never read a large uncacheable response.
	attack(4, func(i int) {
		c := h.slowReaderFrom(t, "127.0.0.2", "GET /doc/big.pdf HTTP/1.1\r\nHost: www.example.com\r\n\r\n", 4096)
		stalledMu.Lock()
		stalled = append(stalled, c)
		stalledMu.Unlock()
	})
	// 5. Purges from outside purge.allow, direct and through the terminator.
	attack(10, func(i int) {
		for _, c := range []*http.Client{attacker, terminator} {
			code, _, _, err := visit(c, "PURGE", "/.*", "X-Purge-Method: regex", "X-Forwarded-For: 203.0.113.9")
			if err != nil || code != http.StatusForbidden {
				fail("PURGE /.* from 203.0.113.9 = %d, %v: want 403", code, err)
			}
		}
	})
	// 6. POSTs to cached pages (RFC 9111 §4.4), counted as purges.
	attack(5, func(i int) {
		visit(attacker, "POST", "/page/hot-3")
	})
	// 7. Users told apart only by the 17th Vary field.
	attack(10, func(i int) {
		hdr := []string{}
		for j := 1; j <= 16; j++ {
			hdr = append(hdr, fmt.Sprintf("X-A%d: same", j))
		}
		for _, who := range []string{"alice", "bob"} {
			_, _, body, err := visit(attacker, "GET", "/vary17", append(hdr, "X-A17: "+who)...)
			if err == nil && body != "for "+who {
				fail("%s got %q from /vary17", who, body)
			}
		}
	})
	// 8. Poison fields, and a repeated parameter PHP reads the last of.
	attack(10, func(i int) {
		visit(attacker, "GET", fmt.Sprintf("/page/poison-%d", i), "X-Original-URL: /my-account/", "X_Forwarded_Host: evil.example",
			"CF-Visitor: {\"scheme\":\"https\"}", "X-Original-URI: /wp-admin/", "Proxy: http://evil.example:3128")
		visit(attacker, "GET", "/page/query?page=5&page=1")
	})

	// Visitors through the terminator all along: cached pages, never a 5xx,
	// never another encoding than theirs; and logged-in pages.
	var served atomic.Int64
	visitors := func(n int) {
		for i := range n {
			path := fmt.Sprintf("/page/hot-%d", i%20)
			code, hdr, body, err := visit(terminator, "GET", path, viaTLS...)
			switch {
			case err != nil:
				fail("visitor %s: %v", path, err)
			case code != 200 || !strings.HasPrefix(body, "page "+path+" https enc=gzip\n"):
				fail("visitor %s = %d %q (%s)", path, code, body[:min(len(body), 60)], hdr.Get("Cache-Status"))
			default:
				served.Add(1)
			}
			if i%10 == 0 {
				code, _, body, err := visit(terminator, "GET", "/my-account/", "X-Forwarded-Proto: https", "Cookie: wordpress_logged_in_abc=editor")
				if err != nil || code != 200 || body != "account" {
					fail("logged-in visitor = %d %q, %v", code, body, err)
				}
			}
		}
	}
	wg.Go(func() { visitors(300) })
	wg.Go(func() { visitors(300) })
	wg.Wait()

	// After the attacks: the keyed fields' pages are right for everybody.
	for i := range 5 {
		_, _, body, _ := visit(terminator, "GET", fmt.Sprintf("/page/ae-%d", i), viaTLS...)
		if !strings.HasPrefix(body, fmt.Sprintf("page /page/ae-%d https enc=gzip", i)) {
			t.Errorf("a gzip visitor of /page/ae-%d got %q after repeated Accept-Encoding lines", i, body[:min(len(body), 60)])
		}
		code, hdr, _, _ := visit(terminator, "GET", fmt.Sprintf("/page/xfp-%d", i), viaTLS...)
		if code != 200 {
			t.Errorf("an https visitor of /page/xfp-%d got %d (Location %q) after repeated X-Forwarded-Proto lines", i, code, hdr.Get("Location"))
		}
	}
	if n := origin.poisoned.Load(); n > 0 {
		t.Errorf("%d cacheable requests reached the origin with a poison field (last %q)", n, *origin.lastPoison.Load())
	}
	origin.queryMu.Lock()
	for _, q := range origin.queries {
		if q != "/page/query?page=5&page=1" {
			t.Errorf("origin got %q, want the parameters in the client's order", q)
		}
	}
	origin.queryMu.Unlock()
	if m := h.metricsText(); !strings.Contains(m, `edgevitals_purges_total{kind="unsafe_method",mode="hard"} 5`) {
		t.Errorf("5 POSTs to a cached page are not counted as unsafe_method purges:\n%s", grepLines(m, "edgevitals_purges_total"))
	}
	failures.Range(func(k, _ any) bool {
		t.Error(k)
		return true
	})
	if served.Load() != 600 {
		t.Errorf("visitors were served %d of 600 pages", served.Load())
	}

	// Memory, with the stalled uploads and slow readers still connected.
	heap1, rss1 := processMemory()
	heap, rss := heap1-min(heap0, heap1), rss1-min(rss0, rss1)
	bound := uint64(maxBytes*5/4 + 64<<20 + 2*bodyBudget)
	t.Logf("cache %d MiB; the edge added %d MiB of live heap and %d MiB of RSS; bound %d MiB", h.store.Bytes()>>20, heap>>20, rss>>20, bound>>20)
	if heap > bound {
		t.Errorf("live heap grew %d MiB, want at most 1.25 × cache.max_bytes + 64 MiB + body buffers = %d MiB", heap>>20, bound>>20)
	}
	if raceEnabled {
		t.Log("RSS not held under -race (the race detector's shadow memory); the heap bound above still is")
	} else if rss1 > 0 && rss > bound {
		t.Errorf("RSS grew %d MiB, want at most %d MiB", rss>>20, bound>>20)
	}
	stalledMu.Lock()
	for _, c := range stalled {
		c.Close()
	}
	stalledMu.Unlock()
	waitFor(t, "body buffers given back", func() bool {
		return h.proxy.responses.mem.inUse() == 0 && h.proxy.bodies.mem.inUse() == 0
	})
}

// grepLines returns the lines of text that contain s.
func grepLines(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// slowReaderFrom is slowReader on a connection from the local address ip.
func (h *harness) slowReaderFrom(t *testing.T, ip, request string, rcvbuf int) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", h.addr)
	if err != nil {
		t.Error(err)
		return nil
	}
	if err := c.(*net.TCPConn).SetReadBuffer(rcvbuf); err != nil {
		t.Error(err)
	}
	if _, err := io.WriteString(c, request); err != nil {
		t.Error(err)
	}
	return c
}

// processMemory is the live heap after a collection and the resident set
// once freed memory went back to the system (0 where /proc has none).
func processMemory() (heap, rss uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	debug.FreeOSMemory()
	rss, _ = residentBytes()
	return ms.HeapAlloc, rss
}

// residentBytes is the process's resident set (VmRSS), where /proc has it.
func residentBytes() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}
