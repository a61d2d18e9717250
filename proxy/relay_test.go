package proxy

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// bigBody is the 20 MiB document of the slow reader tests, bytes that
// differ from one offset to the next so a reordering would show.
var bigBody = func() []byte {
	b := make([]byte, 20<<20)
	for i := range b {
		b[i] = byte(i*7 + i>>11)
	}
	return b
}()

// largeOrigin serves bigBody under /doc/ (as http.ServeContent does:
// Content-Length, ranges), with the Cache-Control of its "cc" query
// parameter, and reports on sent when it has written a response's body,
// or failed to; /my-account/ is a small logged-in page. A whole body that
// the proxy refused to read on (too large to store, asked for because a
// Range request missed a cacheable URL: the proxy then asks for the range
// itself) is not reported.
func largeOrigin(sent chan<- error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/doc/") {
			w.Header().Set("Cache-Control", "private")
			io.WriteString(w, "account")
			return
		}
		w.Header().Set("Content-Type", "application/pdf")
		w.Header().Set("Cache-Control", r.URL.Query().Get("cc"))
		cw := &countWriter{w: w}
		http.ServeContent(cw, r, "doc.pdf", time.Time{}, bytes.NewReader(bigBody))
		if cw.err != nil && r.Header.Get("Range") == "" && r.URL.Query().Get("range") == "1" {
			return
		}
		sent <- cw.err
	}
}

type countWriter struct {
	w   http.ResponseWriter
	err error
}

func (c *countWriter) Header() http.Header { return c.w.Header() }
func (c *countWriter) WriteHeader(s int)   { c.w.WriteHeader(s) }
func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

// slowReader sends request on a connection with a receive buffer of
// rcvbuf bytes and reads nothing.
func (h *harness) slowReader(t *testing.T, request string, rcvbuf int) net.Conn {
	t.Helper()
	c := h.dialRaw(t)
	if err := c.(*net.TCPConn).SetReadBuffer(rcvbuf); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	return c
}

// loggedIn asks for a logged-in page (a bypass cookie: always the origin)
// with a deadline, as a visitor who is not attacking anyone.
func (h *harness) loggedIn(t *testing.T) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, "http://"+h.addr+"/my-account/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "www.example.com"
	req.Header.Set("Cookie", "wordpress_logged_in_0123=editor")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("logged-in request: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || string(body) != "account" {
		t.Fatalf("logged-in request = %d %q (%v), want 200 \"account\"", resp.StatusCode, body, err)
	}
}

// TestSlowReadersDoNotHoldOriginConns: clients that never read a large
// uncacheable response (too large to store, no-store, a Range request) do
// not keep the origin connection it came on: the proxy reads the origin at
// the origin's pace into its buffers and temporary files, releases the
// connection, and a logged-in visitor still gets through an origin limited
// to two connections. A reader that comes back gets every byte, and no
// buffer or temporary file is left once the clients are gone. Before, each
// such response was piped at the client's pace and held its connection.
func TestSlowReadersDoNotHoldOriginConns(t *testing.T) {
	f := func(name, target, header string, want []byte, wantStatus int) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			sent := make(chan error, 8)
			h := newHarness(t, largeOrigin(sent), func(o *Options) {
				o.Sites[0].Origin.MaxConns = 2
				o.WriteTimeout = time.Minute // the slow readers are not cut by the clock
				o.TempDir = dir
			})
			var slow []net.Conn
			for i := range 4 {
				// The first comes back to read later: its buffer is small
				// beside 20 MiB, but not so small that the kernel's
				// silly-window avoidance starves it once it reads.
				rcvbuf := 4096
				if i == 0 {
					rcvbuf = 128 << 10
				}
				slow = append(slow, h.slowReader(t, "GET "+target+" HTTP/1.1\r\nHost: www.example.com\r\n"+header+"\r\n", rcvbuf))
				select {
				case err := <-sent:
					if err != nil {
						t.Fatalf("origin failed sending to slow reader %d: %v", i+1, err)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("origin still sending 20 MiB to slow reader %d after 10 s: the reader holds the origin connection", i+1)
				}
			}
			if left, err := os.ReadDir(dir); err != nil || len(left) != 0 {
				t.Errorf("temporary files are visible (%d, %v): they must be unlinked at creation", len(left), err)
			}
			h.loggedIn(t)

			// The first slow reader reads at last: all of it, in order.
			resp := readStatus(t, slow[0], 30*time.Second)
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != wantStatus || !bytes.Equal(got, want) {
				t.Errorf("slow reader got %d and %d bytes (sha256 %x, %v), want %d and %d bytes (sha256 %x)",
					resp.StatusCode, len(got), sha256.Sum256(got), err, wantStatus, len(want), sha256.Sum256(want))
			}
			for _, c := range slow {
				c.Close()
			}
			waitFor(t, "response buffers given back", func() bool {
				return h.proxy.responses.mem.inUse() == 0 && h.proxy.responses.disk.inUse() == 0
			})
		})
	}
	f("too large to store", "/doc/big.pdf?cc=max-age%3D600", "", bigBody, http.StatusOK)
	f("no-store", "/doc/report.pdf?cc=no-store", "", bigBody, http.StatusOK)
	f("range", "/doc/big.pdf?cc=max-age%3D600&range=1", "Range: bytes=1000-\r\n", bigBody[1000:], http.StatusPartialContent)
}

// TestSlowReaderCutWhenBuffersFull: when a slow reader's response outgrows
// every buffer (here one ring and no temporary files), the reader is cut,
// not waited for: the origin connection is closed at once, the reader gets
// a short body on a closed connection, and the logged-in visitor gets
// through. With no room left at all, a response streams as it did before
// buffers, so a small page is still served.
func TestSlowReaderCutWhenBuffersFull(t *testing.T) {
	sent := make(chan error, 8)
	h := newHarness(t, largeOrigin(sent), func(o *Options) {
		o.Sites[0].Origin.MaxConns = 2
		o.WriteTimeout = time.Minute
		o.ResponseBufferBytes = spoolMemBytes
		o.TempFileBytes = -1
		o.TempDir = t.TempDir()
	})
	c := h.slowReader(t, "GET /doc/big.pdf?cc=no-store HTTP/1.1\r\nHost: www.example.com\r\n\r\n", 128<<10)
	select {
	case <-sent: // an error: the proxy closed the origin connection
	case <-time.After(10 * time.Second):
		t.Fatal("origin still sending to a slow reader whose buffers are full")
	}
	h.loggedIn(t)
	// With every buffer taken (as by other slow readers), a page streams at
	// its client's pace as it did before buffers: it is still served.
	waitFor(t, "the cut reader's buffer given back", func() bool { return h.proxy.responses.mem.inUse() == 0 })
	if !h.proxy.responses.mem.tryReserve(spoolMemBytes) {
		t.Fatal("could not take the response budget")
	}
	h.loggedIn(t)
	h.proxy.responses.mem.release(spoolMemBytes)
	resp := readStatus(t, c, 30*time.Second)
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || len(got) >= len(bigBody) {
		t.Errorf("cut reader got %d bytes and %v, want a short body and an error", len(got), err)
	}
	c.Close()
	// One cut, one page streamed for want of room.
	if want := `edgevitals_body_buffer_full_total{kind="response"} 2`; !strings.Contains(h.metricsText(), want) {
		t.Errorf("metrics lack %s", want)
	}
}
