package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// phpOrigin is a raw loopback TCP origin that frames request bodies as
// nginx in front of php-fpm does: it reads exactly Content-Length bytes (or
// chunks up to the last one) before it answers, and waits for as long as
// they do not come. POSTs to /slow-upload are read whole and then never
// answered, as a PHP script stuck on an upload.
type phpOrigin struct {
	url string

	mu   sync.Mutex
	seen []textproto.MIMEHeader // fields of each request answered
}

func newPHPOrigin(t *testing.T) *phpOrigin {
	t.Helper()
	o := &phpOrigin{}
	o.url = serveLoopback(t, o.serve)
	return o
}

func (o *phpOrigin) serve(c net.Conn) {
	defer c.Close()
	tp := textproto.NewReader(bufio.NewReader(c))
	for {
		method, target, hdr, err := readFramedRequest(tp)
		if err != nil {
			return // the proxy gave up before the bytes came
		}
		if method == http.MethodPost && strings.HasPrefix(target, "/slow-upload") {
			_, _ = io.Copy(io.Discard, tp.R) // never answer; ends at a close
			return
		}
		o.mu.Lock()
		o.seen = append(o.seen, hdr)
		o.mu.Unlock()
		body := "page " + target
		if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
			return
		}
	}
}

// readFramedRequest reads one request as nginx in front of php-fpm does:
// the request line, the header, and then the whole body (readFramedBody).
func readFramedRequest(tp *textproto.Reader) (method, target string, hdr textproto.MIMEHeader, err error) {
	line, err := tp.ReadLine()
	if err != nil {
		return "", "", nil, err
	}
	method, rest, _ := strings.Cut(line, " ")
	target, _, _ = strings.Cut(rest, " ")
	if hdr, err = tp.ReadMIMEHeader(); err != nil {
		return "", "", nil, err
	}
	return method, target, hdr, readFramedBody(tp, hdr)
}

// readFramedBody reads a request body as nginx in front of php-fpm does:
// chunks up to the last one, or exactly Content-Length bytes, waiting for
// as long as they do not come.
func readFramedBody(tp *textproto.Reader, hdr textproto.MIMEHeader) error {
	switch {
	case strings.EqualFold(hdr.Get("Transfer-Encoding"), "chunked"):
		if _, err := io.Copy(io.Discard, httputil.NewChunkedReader(tp.R)); err != nil {
			return err
		}
		_, err := tp.ReadLine() // the CRLF after the last chunk
		return err
	case hdr.Get("Content-Length") != "":
		n, err := strconv.ParseInt(hdr.Get("Content-Length"), 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("bad Content-Length %q", hdr.Get("Content-Length"))
		}
		_, err = io.CopyN(io.Discard, tp.R, n)
		return err
	}
	return nil
}

func (o *phpOrigin) last(t *testing.T) textproto.MIMEHeader {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.seen) == 0 {
		t.Fatal("origin answered no request")
	}
	return o.seen[len(o.seen)-1]
}

// rawDo writes raw bytes to the proxy and reads one response.
func rawDo(t *testing.T, addr, raw string) (int, string) {
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
	method, _, _ := strings.Cut(raw, " ")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, string(b)
}

// TestSafeRequestBodyDroppedWithItsFraming: a GET or HEAD with a body is
// cacheable; its body is not forwarded, and neither are the fields that
// announce it. Forwarding "Content-Length: 3" (or "Transfer-Encoding:
// chunked") without the bytes made nginx + php-fpm wait until the origin
// timeout; five such requests opened the circuit and took the site down.
func TestSafeRequestBodyDroppedWithItsFraming(t *testing.T) {
	po := newPHPOrigin(t)
	h := newFaultHarness(t, []string{po.url}, nil)
	tests := []struct{ name, method, fields, body string }{
		{"content-length", "GET", "Content-Length: 3\r\nContent-Type: application/x-www-form-urlencoded\r\n", "a=1"},
		{"chunked", "GET", "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n", "3\r\na=1\r\n0\r\n\r\n"},
		{"head", "HEAD", "Content-Length: 3\r\nContent-Language: en\r\n", "a=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range 7 { // more than BreakerFailures
				raw := fmt.Sprintf("%s /%s/%d/ HTTP/1.1\r\nHost: www.example.com\r\n%s\r\n%s", tt.method, tt.name, i, tt.fields, tt.body)
				if status, _ := rawDo(t, h.addr, raw); status != http.StatusOK {
					t.Fatalf("request %d = %d, want 200", i, status)
				}
				seen := po.last(t)
				for k := range seen {
					if isBodyField([]byte(k)) {
						t.Errorf("request %d: origin got %s: %q for a body it did not get", i, k, seen.Values(k))
					}
				}
			}
			if st := h.originStates()[0]; st.Circuit != "closed" || st.Failures != 0 {
				t.Errorf("origin state = %+v, want closed without failures", st)
			}
		})
	}
}

// TestClientBodyTimeoutSparesBreaker: an origin that times out on requests
// carrying a client body (an upload PHP is stuck on) does not open the
// circuit: logins and checkout keep working. The same timeouts on requests
// without a body still do (TestBreakerOpensThenProbesBack).
func TestClientBodyTimeoutSparesBreaker(t *testing.T) {
	po := newPHPOrigin(t)
	h := newFaultHarness(t, []string{po.url}, func(o *OriginOptions) { o.BreakerFailures = 3 })
	for i := range 6 {
		raw := fmt.Sprintf("POST /slow-upload/%d HTTP/1.1\r\nHost: www.example.com\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello", i)
		if status, body := rawDo(t, h.addr, raw); status != http.StatusGatewayTimeout {
			t.Fatalf("upload %d = %d %q, want 504", i, status, body)
		}
	}
	if st := h.originStates()[0]; st.Circuit != "closed" || st.Failures != 0 {
		t.Errorf("after 6 upload timeouts, origin state = %+v, want closed without failures", st)
	}
	if status, body := rawDo(t, h.addr, "POST /wp-login.php HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 3\r\n\r\na=1"); status != http.StatusOK {
		t.Errorf("login after the upload timeouts = %d %q, want 200", status, body)
	}
}

// TestRequestShaped is the table of which failures are the request's doing.
func TestRequestShaped(t *testing.T) {
	f := func(method, body string, chunked bool, err error, want bool) {
		t.Helper()
		req := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(req)
		req.Header.SetMethod(method)
		req.SetBodyString(body)
		if chunked {
			req.Header.SetContentLength(-1)
		}
		if got := requestShaped(req, err); got != want {
			t.Errorf("requestShaped(%s, body %q, chunked %v, %v) = %v, want %v", method, body, chunked, err, got, want)
		}
	}
	f("POST", "a=1", false, fasthttp.ErrTimeout, true)
	f("PUT", "", true, fmt.Errorf("read: %w", fasthttp.ErrTimeout), true)
	f("GET", "", false, fasthttp.ErrTimeout, false)         // no body: the origin is slow
	f("POST", "a=1", false, fasthttp.ErrDialTimeout, false) // never connected
	f("POST", "a=1", false, fmt.Errorf("dial: %w", syscall.ECONNREFUSED), false)
	f("POST", "a=1", false, fasthttp.ErrConnectionClosed, false)
	f("POST", "a=1", false, errors.New("cannot parse response"), false)
}
