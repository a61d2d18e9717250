package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Interim responses (RFC 9110 §15.2): a 102 Processing or 103 Early Hints
// the origin sends before its final response is passed to the client that
// caused the origin request, then forgotten. It is never stored, its
// fields never join the final response's, and waiters coalesced on the
// same fetch, hits and background refreshes never see it.
//
// fasthttp's client reads and discards interim responses inside
// Response.ReadLimitBody, and its server can only send a 103 made of the
// Link fields of the response being built (RequestCtx.EarlyHints). So the
// origin exchanges that have a client to tell go through interimTransport,
// which reads the interim responses itself before handing the rest to
// fasthttp, and they are written to the client's connection directly,
// when nothing of an earlier response is waiting in fasthttp's write
// buffer (see interimConn).

// maxInterim bounds the interim responses read before one final response;
// past it the exchange fails, as fasthttp's own reader does.
const maxInterim = 100

var errTooManyInterim = errors.New("too many interim responses from the origin")

// interimFunc receives one interim response of an origin exchange, on the
// goroutine that called originPool.do. It must not keep h.
type interimFunc func(h *fasthttp.ResponseHeader)

// interimTransport is the RoundTripper of every origin HostClient. An
// exchange registered in sinks (by originPool.doInterim) is run here so
// that its interim responses reach the sink; every other one is
// fasthttp's DefaultTransport unchanged.
type interimTransport struct {
	sinks *sync.Map // *fasthttp.Request -> interimFunc
}

func (t *interimTransport) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (retry bool, err error) {
	v, ok := t.sinks.Load(req)
	if !ok {
		return fasthttp.DefaultTransport.RoundTrip(hc, req, resp)
	}
	return roundTripInterim(hc, req, resp, v.(interimFunc))
}

// roundTripInterim is fasthttp's DefaultTransport.RoundTrip (v1.78) with
// interim responses handed to sink: one connection from hc's pool, the
// request written under hc.WriteTimeout, the response read under
// hc.ReadTimeout, and a streamed body that gives the connection back (or
// closes it when it was not read to its end) when the body is closed. It
// relies on the HostClient settings of newOriginPool: MaxConnDuration and
// DisableHeaderNamesNormalizing, which the proxy does not set, are not
// applied here.
func roundTripInterim(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response, sink interimFunc) (bool, error) {
	skipBody, streamBody := resp.SkipBody, resp.StreamBody
	cc, err := hc.AcquireConn(hc.ReadTimeout, req.ConnectionClose())
	if err != nil {
		return false, err
	}
	conn := cc.Conn()
	resp.ParseNetConn(conn)
	if hc.WriteTimeout > 0 {
		if err := conn.SetWriteDeadline(time.Now().Add(hc.WriteTimeout)); err != nil {
			hc.CloseConn(cc)
			return true, err
		}
	}
	bw := hc.AcquireWriter(conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err != nil {
		hc.CloseConn(cc)
		return true, timeoutError(err)
	}
	if hc.ReadTimeout > 0 {
		if err := conn.SetReadDeadline(time.Now().Add(hc.ReadTimeout)); err != nil {
			hc.CloseConn(cc)
			return true, err
		}
	}
	br := hc.AcquireReader(conn)
	sunk := 0 // interim responses passed to the client
	fail := func(err error) (bool, error) {
		hc.ReleaseReader(br)
		hc.CloseConn(cc)
		// As fasthttp's transport: the exchange may be tried again (the
		// HostClient's RetryIfErr decides), unless the client has already
		// been sent an interim response of it.
		return sunk == 0, timeoutError(err)
	}
	var ih fasthttp.ResponseHeader
	ih.SetNoDefaultContentType(true)
	for n := 0; isInterim(br); n++ {
		if n >= maxInterim {
			return fail(errTooManyInterim)
		}
		if err := ih.Read(br); err != nil {
			return fail(err)
		}
		sink(&ih)
		sunk++
	}

	final := fasthttp.AcquireResponse()
	final.SkipBody = skipBody || req.Header.IsHead()
	final.StreamBody = streamBody
	if err := final.ReadLimitBody(br, hc.MaxResponseBodySize); err != nil {
		fasthttp.ReleaseResponse(final)
		return fail(err)
	}
	// A body that ends when the origin closes (no length, not chunked)
	// leaves nothing to reuse.
	closeConn := req.ConnectionClose() || final.ConnectionClose() || final.Header.ContentLength() == -2
	release := func(reuse bool) {
		hc.ReleaseReader(br)
		if reuse && !closeConn {
			hc.ReleaseConn(cc)
		} else {
			hc.CloseConn(cc)
		}
	}
	final.Header.CopyTo(&resp.Header)
	stream := final.BodyStream()
	if stream == nil {
		// No body, or a body read whole: the connection is free now.
		resp.SetBody(final.Body())
		fasthttp.ReleaseResponse(final)
		release(true)
		return false, nil
	}
	cl := final.Header.ContentLength()
	resp.SetBodyStream(&interimBody{r: stream, resp: final, release: release, eof: cl == 0}, cl)
	return false, nil
}

// interimBody is the streamed body of a final response read by
// roundTripInterim. Closing it (fasthttp does when the response is released
// or its stream closed) frees the origin response and gives the connection
// back when the body was read to its end, else closes it. Read and Close are
// called from one goroutine at a time, as the proxy does.
type interimBody struct {
	r       io.Reader
	resp    *fasthttp.Response
	release func(reuse bool)
	eof     bool
	closed  bool
}

func (b *interimBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *interimBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	err := b.resp.CloseBodyStream()
	fasthttp.ReleaseResponse(b.resp)
	b.release(b.eof && err == nil)
	return err
}

// isInterim reports whether the next response on br has a 1xx status other
// than 101 (which ends HTTP/1.1 on the connection, and fasthttp handles).
// A response too short to tell is left to fasthttp's reader.
func isInterim(br *bufio.Reader) bool {
	b, err := br.Peek(len("HTTP/1.1 1xx"))
	if err != nil || !bytes.HasPrefix(b, []byte("HTTP/1.")) || b[8] != ' ' || b[9] != '1' {
		return false
	}
	return !bytes.Equal(b[9:12], []byte("101"))
}

func timeoutError(err error) error {
	var t interface{ Timeout() bool }
	if errors.As(err, &t) && t.Timeout() {
		return fasthttp.ErrTimeout
	}
	return err
}

// doInterim is do with interim responses handed to sink; nil sink is do.
func (p *originPool) doInterim(req *fasthttp.Request, resp *fasthttp.Response, sink interimFunc) error {
	if sink == nil {
		return p.do(req, resp)
	}
	p.interim.Store(req, sink)
	defer p.interim.Delete(req)
	return p.do(req, resp)
}

// interimListener wraps the proxy's accepted TLS connections in
// interimConn. Plain TCP connections are handed to fasthttp as they are: a
// wrapper would hide the *net.TCPConn fasthttp writes a large response's
// header and body to with one writev, and every hit would cost a second
// write system call (about a third more server CPU per hit, measured). A
// TLS connection never gets a writev, so its wrapper costs nothing.
type interimListener struct{ net.Listener }

func (l interimListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(tlsConn); ok {
		// fasthttp finds TLS by these methods (RequestCtx.IsTLS).
		return &interimTLSConn{interimConn: interimConn{Conn: c}, tc: tc}, nil
	}
	return c, nil
}

// tlsConn is what fasthttp's server asks of a TLS connection.
type tlsConn interface {
	Handshake() error
	ConnectionState() tls.ConnectionState
}

// interimTLSConn is an interimConn over TLS that still looks like TLS to fasthttp.
type interimTLSConn struct {
	interimConn
	tc tlsConn
}

func (c *interimTLSConn) Handshake() error                     { return c.tc.Handshake() }
func (c *interimTLSConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }
func (c *interimTLSConn) interim() *interimConn                { return &c.interimConn }

// interimConn is a client connection that knows whether fasthttp wrote to
// it since it last read from it. fasthttp flushes a response before it
// waits for the next request, and keeps responses to pipelined requests in
// its write buffer; so when the last operation was a read, no part of an
// earlier response is on the wire without the rest, and an interim
// response written now cannot land inside one. After a write (a response
// partly flushed while pipelined requests wait) interim responses are
// dropped, which RFC 9110 §15.2 allows a proxy that cannot send them.
type interimConn struct {
	net.Conn
	wrote  atomic.Bool
	broken atomic.Bool // an interim write failed: send no more
}

func (c *interimConn) interim() *interimConn { return c }

func (c *interimConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.wrote.Store(false)
	}
	return n, err
}

func (c *interimConn) Write(p []byte) (int, error) {
	c.wrote.Store(true)
	return c.Conn.Write(p)
}

// acceptedConn is ctx's connection as the proxy's listeners made it, under
// the interimConn that Serve wraps every connection in.
func acceptedConn(ctx *fasthttp.RequestCtx) net.Conn {
	c := ctx.Conn()
	if ic, ok := c.(interface{ interim() *interimConn }); ok {
		return ic.interim().Conn
	}
	return c
}

// interimSink returns the function that passes an origin's interim
// responses to ctx's client, or nil when they cannot be passed: an
// HTTP/1.0 client (RFC 9110 §15.2 forbids it). On TLS connections
// (interimConn) they are dropped once fasthttp has written since it last
// read (a response partly flushed while pipelined requests wait); plain
// TCP connections are not watched (see interimListener), so a client that
// pipelines requests may see an interim response before the end of an
// earlier response, as with fasthttp's own EarlyHints. Browsers do not
// pipeline. 100 Continue is not passed: it answers the
// proxy's own request, and fasthttp already answered the client's Expect.
func (s *Server) interimSink(ctx *fasthttp.RequestCtx) interimFunc {
	if !ctx.Request.Header.IsHTTP11() || ctx.Conn() == nil {
		return nil
	}
	conn := ctx.Conn()
	guard, _ := conn.(interface{ interim() *interimConn })
	var ic *interimConn
	if guard != nil {
		ic = guard.interim()
		conn = ic.Conn
	}
	broken := false // an interim write of this request failed
	return func(h *fasthttp.ResponseHeader) {
		if h.StatusCode() == fasthttp.StatusContinue || broken || (ic != nil && (ic.broken.Load() || ic.wrote.Load())) {
			return
		}
		buf := appendInterim(make([]byte, 0, 256), h)
		fail := func() {
			// The client is gone or stuck; the final response will meet
			// the same fate, and the connection must not be reused after
			// a partial interim response.
			broken = true
			if ic != nil {
				ic.broken.Store(true)
			}
			ctx.SetConnectionClose()
		}
		if s.opt.WriteTimeout > 0 {
			if err := conn.SetWriteDeadline(time.Now().Add(s.opt.WriteTimeout)); err != nil {
				fail()
				return
			}
		}
		if _, err := conn.Write(buf); err != nil {
			fail()
		}
	}
}

// appendInterim formats an interim response for the client: its status
// line and its end-to-end fields (no hop-by-hop field, none named in
// Connection, no framing).
func appendInterim(dst []byte, h *fasthttp.ResponseHeader) []byte {
	code := h.StatusCode()
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, ' ')
	dst = append(dst, fasthttp.StatusMessage(code)...)
	dst = append(dst, "\r\n"...)
	for k, v := range endToEnd(h) {
		if bytes.EqualFold(k, []byte("Content-Length")) {
			continue
		}
		dst = append(dst, k...)
		dst = append(dst, ": "...)
		dst = append(dst, v...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}
