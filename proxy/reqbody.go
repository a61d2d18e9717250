package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"

	"github.com/valyala/fasthttp"
)

// Request bodies. fasthttp streams them (Server.StreamRequestBody): it reads
// at most 8 KiB of one before the handler runs, and does not refuse a body
// over its limit any more. So the proxy:
//
//   - refuses a Content-Length over the path's limit before reading any of
//     it (413, and no 100 Continue): MaxBodyBytes, or a beacon's
//     the collector's MaxBeaconBytes under the reserved prefix (headerReceived,
//     refuseBody, expect);
//   - reads a body it forwards into a spool (takeBody) before the origin
//     is asked, so a client slow to send holds no origin connection, within
//     the body budget: its memory part waits at most BodyBufferWait for
//     room, then the request gets 503 (a client can retry a 503; waiting
//     longer would let held connections pile up behind the budget);
//   - counts what a chunked body sends against the same limit as it reads;
//   - reads a beacon into a small buffer from the same budget (readBeacon).
//
// Bodies of cacheable requests and of purges are never read: fasthttp
// discards a small rest after the response, or closes the connection.

// bodyLimit is the largest body a request to path may send.
func (s *Server) bodyLimit(path []byte) int {
	if bytes.HasPrefix(path, reservedPrefix) {
		return s.beaconMax // no collector: 0, there is no endpoint to take a body
	}
	return s.opt.MaxBodyBytes
}

// headerReceived runs when a request's header has been read, before
// fasthttp pre-reads up to 8 KiB of its body (waiting for those bytes). A
// Content-Length over the limit is refused there, unread: the request is
// marked (bodyRefusedField, and Connection: close so the unread bytes are
// never parsed as a request) and its length set to 0, so fasthttp reads
// none of it and refuseBody answers 413 at once. The path is the raw
// request target here; refuseBody checks the normalised path again.
func (s *Server) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if cl := h.ContentLength(); cl > 0 && cl > s.bodyLimit(h.RequestURI()) {
		h.SetContentLength(0)
		h.Set(bodyRefusedField, "1")
		h.SetConnectionClose()
	}
	return fasthttp.RequestConfig{}
}

// bodyRefusedField marks a request headerReceived refused. A client that
// sends it itself only gets its own request refused.
const bodyRefusedField = "X-Edgevitals-Body-Refused"

// refuseBody answers 413, and reports true, when the request's body is over
// its path's limit by its Content-Length. Nothing of the body is read. It
// does not allocate.
func (s *Server) refuseBody(ctx *fasthttp.RequestCtx) bool {
	h := &ctx.Request.Header
	cl := h.ContentLength()
	switch {
	case h.ConnectionClose() && len(h.Peek(bodyRefusedField)) > 0:
	case cl > 0 && cl > s.bodyLimit(ctx.URI().Path()):
	default:
		return false // no body, a small one, or chunked (counted as it is read)
	}
	s.bodyTooLarge(ctx)
	return true
}

// expect answers "Expect: 100-continue": a body over its limit is refused
// before the client sends it.
func (s *Server) expect(ctx *fasthttp.RequestCtx) int {
	h := &ctx.Request.Header
	if len(h.Peek(bodyRefusedField)) > 0 || h.ContentLength() > s.bodyLimit(ctx.URI().Path()) {
		return fasthttp.StatusRequestEntityTooLarge
	}
	return fasthttp.StatusContinue
}

// The answers below close the connection: the rest of the body is never
// read. ctx.Error resets the response, so fields are set after it.

func (s *Server) bodyTooLarge(ctx *fasthttp.RequestCtx) {
	ctx.Error("request body too large", fasthttp.StatusRequestEntityTooLarge)
	ctx.SetConnectionClose()
}

func (s *Server) bodyBusy(ctx *fasthttp.RequestCtx) {
	s.buffers.requestsBusy.Inc()
	ctx.Error("busy: too many request bodies in flight", fasthttp.StatusServiceUnavailable)
	ctx.Response.Header.Set("Retry-After", "1")
	ctx.SetConnectionClose()
}

// requestBodyKey is the user value under which takeBody leaves the spooled
// body for attachBody. fasthttp closes it (an io.Closer) when the request
// ends, so it is freed even when no origin request takes it.
type requestBodyKey struct{}

// copyBufPool holds the buffers bodies are copied through.
var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// takeBody reads the body of a request to be forwarded into a spool. It
// answers the client itself (413, 400, 408 or 503) and returns false when
// the body cannot be taken.
func (s *Server) takeBody(ctx *fasthttp.RequestCtx) bool {
	stream := ctx.RequestBodyStream()
	cl := ctx.Request.Header.ContentLength()
	if stream == nil || cl == 0 {
		return true
	}
	sp := s.bodies.newSpool(int64(cl), s.opt.BodyBufferWait, false)
	if sp == nil {
		s.bodyBusy(ctx)
		return false
	}
	limit := int64(s.opt.MaxBodyBytes)
	bp := copyBufPool.Get().(*[]byte)
	n, err := io.CopyBuffer(sp, io.LimitReader(stream, limit+1), *bp)
	copyBufPool.Put(bp)
	if err == nil && cl > 0 && n < int64(cl) {
		err = io.ErrUnexpectedEOF // the client closed before the end
	}
	sp.finish(err)
	if err != nil || n > limit {
		// Closed twice is fine: the ctx does not hold it yet.
		_ = sp.Close()
		var ne net.Error
		switch {
		case err == nil:
			s.bodyTooLarge(ctx)
		case errors.Is(err, errSpoolFull):
			s.bodyBusy(ctx)
		case errors.As(err, &ne) && ne.Timeout():
			ctx.Error("request timeout", fasthttp.StatusRequestTimeout)
			ctx.SetConnectionClose()
		default:
			ctx.Error("bad request: body ended early", fasthttp.StatusBadRequest)
			ctx.SetConnectionClose()
		}
		return false
	}
	ctx.SetUserValue(requestBodyKey{}, sp)
	return true
}

// attachBody gives req (the origin request made from ctx) the body takeBody
// spooled, with its exact length. Releasing req closes the spool.
func attachBody(ctx *fasthttp.RequestCtx, req *fasthttp.Request) {
	if sp, ok := ctx.UserValue(requestBodyKey{}).(*spool); ok {
		req.SetBodyStream(sp, int(sp.Len()))
	}
}

// withBeacon reads a beacon's body into a buffer from s.beacons, within
// the body budget, and returns f's status for it; or a refusal's status
// without calling f. body is valid only during f.
func (s *Server) withBeacon(ctx *fasthttp.RequestCtx, f func(body []byte) int) int {
	stream := ctx.RequestBodyStream()
	if stream == nil {
		return f(nil)
	}
	cl := ctx.Request.Header.ContentLength()
	want := int64(s.beaconMax + 1)
	if cl >= 0 {
		want = int64(cl)
	}
	want = min(want, s.bodies.mem.size) // a budget smaller than a beacon still takes them
	if !s.bodies.mem.reserve(want, s.opt.BodyBufferWait) {
		s.buffers.requestsBusy.Inc()
		ctx.SetConnectionClose()
		ctx.Response.Header.Set("Retry-After", "1")
		return fasthttp.StatusServiceUnavailable
	}
	defer s.bodies.mem.release(want)
	buf := s.beacons.Get().(*[]byte)
	defer s.beacons.Put(buf)
	n, err := io.ReadFull(stream, *buf)
	switch {
	case err == nil:
		ctx.SetConnectionClose() // the rest is never read
		return fasthttp.StatusRequestEntityTooLarge
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		if cl >= 0 && n < cl {
			ctx.SetConnectionClose() // the client closed before the end
			return fasthttp.StatusBadRequest
		}
		return f((*buf)[:n])
	}
	ctx.SetConnectionClose()
	return fasthttp.StatusBadRequest
}
