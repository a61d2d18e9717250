package proxy

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dialRaw opens a connection to the proxy that the test closes at cleanup.
func (h *harness) dialRaw(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", h.addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readStatus reads one response's status line and header from c within
// limit, and returns the response with its body unread.
func readStatus(t *testing.T, c net.Conn, limit time.Duration) *http.Response {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(limit)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer within %v: %v", limit, err)
	}
	return resp
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// bodyEcho is an origin that reads the whole request body, as nginx and
// php-fpm do before the application runs, and answers with its length, its
// SHA-256 and the framing it came with.
func bodyEcho(w http.ResponseWriter, r *http.Request) {
	hash := sha256.New()
	n, err := io.Copy(hash, r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Cache-Control", "private")
	fmt.Fprintf(w, "%d %s cl=%d te=%v", n, hex.EncodeToString(hash.Sum(nil)), r.ContentLength, r.TransferEncoding)
}

// TestUnfinishedUploadsHoldBoundedMemory: uploads that declare 30 MiB and
// stall after a part of it hold what they sent, within the body budget,
// not what they declared. Before, fasthttp buffered each body whole up to
// max_body_bytes, so a dozen such uploads took hundreds of MiB.
func TestUnfinishedUploadsHoldBoundedMemory(t *testing.T) {
	const (
		n        = 12
		declared = 30 << 20
		sent     = 16 << 10 // past fasthttp's 8 KiB pre-read, so each waits in the proxy's own read
	)
	f := func(name, header string, first string) {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, bodyEcho, func(o *Options) {
				o.MaxBodyBytes = 32 << 20
				o.TempDir = t.TempDir()
			})
			before := heapInUse()
			for range n {
				c := h.dialRaw(t)
				if _, err := io.WriteString(c, "POST /wp-admin/async-upload.php HTTP/1.1\r\nHost: www.example.com\r\n"+header+"\r\n"+first); err != nil {
					t.Fatal(err)
				}
			}
			// Every upload is being read into its spool: each holds its ring.
			waitFor(t, "every upload in the proxy", func() bool { return h.proxy.bodies.mem.inUse() == n*spoolMemBytes })
			grown := int64(heapInUse()) - int64(before)
			// What the uploads may hold: their rings and what they sent,
			// plus per-connection buffers (fasthttp's read and write
			// buffers, the request, the pre-read) and the GC's slack.
			bound := int64(n*(spoolMemBytes+sent+64<<10) + 8<<20)
			if grown > bound {
				t.Errorf("%d unfinished uploads grew the heap by %d bytes, want at most %d", n, grown, bound)
			}
			if got := h.originCount(); got != 0 {
				t.Errorf("the origin saw %d unfinished uploads, want 0 (a slow upload must not hold an origin connection)", got)
			}
		})
	}
	body := strings.Repeat("u", sent)
	f("content-length", "Content-Length: "+strconv.Itoa(declared)+"\r\n", body)
	f("expecting 100-continue", "Content-Length: "+strconv.Itoa(declared)+"\r\nExpect: 100-continue\r\n", body)
	// WordPress' media upload: fasthttp would parse a multipart form itself,
	// holding up to 16 MiB of it in memory, before the handler runs.
	f("multipart form", "Content-Length: "+strconv.Itoa(declared)+"\r\nContent-Type: multipart/form-data; boundary=xyz\r\n",
		"--xyz\r\nContent-Disposition: form-data; name=\"async-upload\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n"+body)
	f("chunked", "Transfer-Encoding: chunked\r\n", fmt.Sprintf("%x\r\n%s\r\n", sent, body))
}

// TestBodyRefusedUnread: a Content-Length over the limit of its path gets
// 413 at once, before any of the body is sent: a beacon over the collector's
// limit (the collector's MaxBeaconBytes), also under "Expect: 100-continue",
// and an upload over max_body_bytes: neither waits for the whole body (nor
// says 100 Continue) only to refuse it.
func TestBodyRefusedUnread(t *testing.T) {
	h := newHarness(t, bodyEcho, withRUM(t))
	f := func(name, req string) {
		t.Run(name, func(t *testing.T) {
			c := h.dialRaw(t)
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			resp := readStatus(t, c, 2*time.Second) // the read timeout is 5 s: no waiting for the body
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("status = %d, want 413", resp.StatusCode)
			}
		})
	}
	f("beacon", "POST "+rumBeaconPath+" HTTP/1.1\r\nHost: www.example.com\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n")
	f("beacon expecting 100-continue", "POST "+rumBeaconPath+" HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
	f("beacon by an encoded path", "POST /%5F_edgevitals/rum HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 6000\r\n\r\n"+strings.Repeat("x", 9000))
	f("upload", "POST /wp-admin/async-upload.php HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 2000000\r\n\r\n")
	f("upload expecting 100-continue", "PUT /wp-json/wp/v2/media HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 2000000\r\nExpect: 100-continue\r\n\r\n")
	if got := h.originCount(); got != 0 {
		t.Errorf("the origin saw %d refused requests, want 0", got)
	}
}

// TestBeaconChunkedOverLimit: a chunked beacon has no length to refuse by;
// reading stops one byte past the limit.
func TestBeaconChunkedOverLimit(t *testing.T) {
	h := newHarness(t, bodyEcho, withRUM(t))
	c := h.dialRaw(t)
	big := strings.Repeat("x", 8000)
	if _, err := fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: www.example.com\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", rumBeaconPath, len(big), big); err != nil {
		t.Fatal(err)
	}
	resp := readStatus(t, c, 2*time.Second)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status = %d, want 413", resp.StatusCode)
	}
	// A beacon within the limit still goes to the collector.
	r := h.do(http.MethodPost, rumBeaconPath, "Content-Type: application/json")
	if r.Status == http.StatusRequestEntityTooLarge || r.Status == http.StatusServiceUnavailable {
		t.Errorf("an empty beacon got %d", r.Status)
	}
}

// TestForwardedBodiesReachOrigin: bodies of every framing and size reach
// the origin whole and with their exact length (a chunked body is sent
// with its Content-Length, as php-fpm wants), through memory or a
// temporary file, and nothing is left in the temporary directory.
func TestForwardedBodiesReachOrigin(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, bodyEcho, func(o *Options) {
		o.MaxBodyBytes = 4 << 20
		o.TempDir = dir
	})
	f := func(name string, size int, chunked bool, extra ...string) {
		t.Run(name, func(t *testing.T) {
			body := strings.Repeat("0123456789abcdef", size/16+1)[:size]
			sum := sha256.Sum256([]byte(body))
			c := h.dialRaw(t)
			req := "POST /wp-comments-post.php HTTP/1.1\r\nHost: www.example.com\r\n" + strings.Join(extra, "")
			if chunked {
				req += "Transfer-Encoding: chunked\r\n\r\n"
				for rest := body; len(rest) > 0; {
					part := rest[:min(len(rest), 10000)]
					rest = rest[len(part):]
					req += fmt.Sprintf("%x\r\n%s\r\n", len(part), part)
				}
				req += "0\r\n\r\n"
			} else {
				req += "Content-Length: " + strconv.Itoa(size) + "\r\n\r\n" + body
			}
			go io.WriteString(c, req) // a large body is read while it is written
			br := bufio.NewReader(c)
			if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			for err == nil && resp.StatusCode == http.StatusContinue {
				resp, err = http.ReadResponse(br, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("%d %s cl=%d te=[]", size, hex.EncodeToString(sum[:]), size)
			if resp.StatusCode != http.StatusOK || string(got) != want {
				t.Errorf("origin answered %d %q, want 200 %q", resp.StatusCode, got, want)
			}
		})
	}
	f("small form", 300, false)
	f("past the ring", 3*spoolMemBytes+17, false)
	f("upload", 3<<20, false)
	f("chunked small", 500, true)
	f("chunked past the ring", 2*spoolMemBytes+5, true)
	f("expecting 100-continue", 3*spoolMemBytes, false, "Expect: 100-continue\r\n")
	f("multipart form, as bytes", 2*spoolMemBytes, false, "Content-Type: multipart/form-data; boundary=0123\r\n")
	waitFor(t, "body buffers given back", func() bool {
		return h.proxy.bodies.mem.inUse() == 0 && h.proxy.bodies.disk.inUse() == 0
	})
	if left, err := os.ReadDir(dir); err != nil || len(left) != 0 {
		t.Errorf("temporary directory holds %d entries (%v), want none", len(left), err)
	}
}

// TestChunkedBodyOverLimit: a chunked upload is counted as it is read and
// refused one byte past max_body_bytes; the origin never sees it.
func TestChunkedBodyOverLimit(t *testing.T) {
	h := newHarness(t, bodyEcho, func(o *Options) { o.TempDir = t.TempDir() }) // 1 MiB limit
	c := h.dialRaw(t)
	go func() {
		part := strings.Repeat("z", 64<<10)
		io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: www.example.com\r\nTransfer-Encoding: chunked\r\n\r\n")
		for range 20 {
			if _, err := fmt.Fprintf(c, "%x\r\n%s\r\n", len(part), part); err != nil {
				return // the proxy closed: it refused the body
			}
		}
	}()
	resp := readStatus(t, c, 5*time.Second)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status = %d, want 413", resp.StatusCode)
	}
	if got := h.originCount(); got != 0 {
		t.Errorf("the origin saw %d requests, want 0", got)
	}
}

// TestBodyBudgetFull: while stalled uploads hold the whole body budget, a
// new request with a body waits at most BodyBufferWait and gets 503 with
// Retry-After; once an upload goes, bodies are taken again. Requests
// without a body are not affected.
func TestBodyBudgetFull(t *testing.T) {
	h := newHarness(t, bodyEcho, func(o *Options) {
		o.BodyBufferBytes = 2 * spoolMemBytes
		o.BodyBufferWait = 50 * time.Millisecond
		o.TempDir = t.TempDir()
	})
	var stalled []net.Conn
	for range 2 {
		c := h.dialRaw(t)
		if _, err := io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 1000000\r\n\r\n"+strings.Repeat("s", 16<<10)); err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, c)
	}
	waitFor(t, "the budget taken", func() bool { return h.proxy.bodies.mem.inUse() == 2*spoolMemBytes })
	r := h.do(http.MethodPost, "/wp-login.php", "Content-Length: 0") // no body: not affected
	if r.Status != http.StatusOK {
		t.Errorf("a POST without a body got %d while the budget was full, want 200", r.Status)
	}
	c := h.dialRaw(t)
	if _, err := io.WriteString(c, "POST /wp-login.php HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 20\r\n\r\nlog=admin&pwd=secret"); err != nil {
		t.Fatal(err)
	}
	resp := readStatus(t, c, 2*time.Second)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a body while the budget is full got %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if want := `edgevitals_body_buffer_full_total{kind="request"} 1`; !strings.Contains(h.metricsText(), want) {
		t.Errorf("metrics lack %s", want)
	}
	stalled[0].Close()
	waitFor(t, "an upload's ring given back", func() bool { return h.proxy.bodies.mem.inUse() == spoolMemBytes })
	c = h.dialRaw(t)
	if _, err := io.WriteString(c, "POST /wp-login.php HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 20\r\n\r\nlog=admin&pwd=secret"); err != nil {
		t.Fatal(err)
	}
	resp = readStatus(t, c, 2*time.Second)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a body after the budget freed got %d, want 200", resp.StatusCode)
	}
}
