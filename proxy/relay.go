package proxy

import (
	"bytes"
	"errors"
	"io"

	"github.com/valyala/fasthttp"
)

// relay copies an origin response (owned and released here) to the client:
// status, end-to-end fields, and the body, from prefix (already read) and
// then the rest of the stream.
func (s *Server) relay(ctx *fasthttp.RequestCtx, st *site, resp *fasthttp.Response, prefix []byte, cs cacheStatus) {
	out := &ctx.Response
	var whole []byte // the body, when read here to add the field script
	if s.opt.RUM != nil && len(prefix) == 0 && !ctx.IsHead() && isHTML(&resp.Header) {
		// Pages that are never stored (checkout, thank-you, logged-in
		// views) carry the field script too, or conversions on them could
		// not be counted. They cost an origin request anyway; a small
		// rewrite is nothing beside it.
		body, complete, err := readBody(resp, maxRewriteBytes)
		switch {
		case err != nil:
			fasthttp.ReleaseResponse(resp)
			s.originFailed(ctx, err, cs)
			return
		case !complete:
			prefix = body
		default:
			whole = body
			if b, ok := injectRUM(&resp.Header, body, s.opt.RUMNonce); ok {
				whole = b
				weakenValidator(&resp.Header)
			}
		}
	}
	out.SetStatusCode(resp.StatusCode())
	dated := false
	for k, v := range endToEnd(&resp.Header) {
		if clientHeaderSkip(k, s.opt.DebugHeaders, st.StripCDNCacheControl) || bytes.EqualFold(k, []byte("Content-Length")) {
			continue
		}
		if len(k) == 4 && bytes.EqualFold(k, []byte("Date")) {
			setDate(&out.Header, v) // the origin's
			dated = true
			continue
		}
		out.Header.AddBytesKV(k, v)
	}
	if !dated {
		stampDate(&out.Header)
	}
	out.Header.Add("Via", "1.1 edgevitals")
	s.addCacheStatus(&out.Header, cs)
	if s.opt.RUM != nil {
		s.addServerTiming(&out.Header, st, cs)
	}
	if whole != nil {
		closeResponse(resp)
		s.relayBody(ctx, whole, nil, nil, len(whole))
		return
	}
	if ctx.IsHead() {
		out.SkipBody = true
		if cl := resp.Header.ContentLength(); cl >= 0 {
			out.Header.SetContentLength(cl)
		}
		fasthttp.ReleaseResponse(resp)
		return
	}
	stream := resp.BodyStream()
	if stream == nil {
		out.SetBody(append(prefix, resp.Body()...))
		fasthttp.ReleaseResponse(resp)
		return
	}
	size := resp.Header.ContentLength()
	if size < 0 {
		size = -1 // chunked to the client
	}
	s.relayBody(ctx, prefix, resp, stream, size)
}

// relayBody sends the client a body that does not come from the cache:
// head (already read), then, when resp is not nil, the rest of its stream.
// The body goes through a spool: the origin is read as fast as it sends,
// whatever the client's pace, and its connection is released (resp closed)
// as soon as the body has been read. A client too slow for the buffers
// (ResponseBufferBytes, then TempFileBytes) is cut when they are full. When
// there is no room at all to start with, the body streams at the client's
// pace (or, read already, is sent from memory), as it would without
// buffers: the buffers' bounds hold, and small pages still get through.
func (s *Server) relayBody(ctx *fasthttp.RequestCtx, head []byte, resp *fasthttp.Response, stream io.Reader, size int) {
	sp := s.responses.newSpool(int64(size), 0, true)
	ok := sp.memHeld > 0 || s.responses.disk != nil && s.responses.disk.inUse() < s.responses.disk.size
	if ok && len(head) > 0 {
		_, err := sp.Write(head)
		ok = err == nil
	}
	if !ok {
		s.buffers.responsesFull.Inc()
		sp.finish(errSpoolFull)
		// Closed at once: nothing else holds it.
		_ = sp.Close()
		switch {
		case resp == nil:
			ctx.Response.SetBody(head)
		case len(head) > 0:
			ctx.Response.SetBodyStream(&originBody{r: io.MultiReader(bytes.NewReader(head), stream), resp: resp}, size)
		default:
			ctx.Response.SetBodyStream(&originBody{r: stream, resp: resp}, size)
		}
		return
	}
	ctx.Response.SetBodyStream(sp, size)
	if resp == nil {
		sp.finish(nil)
		return
	}
	s.bg.Add(1)
	go s.pump(sp, resp, stream)
}

// originBody streams an origin body to a client at the client's pace and
// releases the origin response (and its connection) when fasthttp closes
// it: the way a body goes when no buffer has room for it.
type originBody struct {
	r    io.Reader
	resp *fasthttp.Response
}

func (b *originBody) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *originBody) Close() error {
	err := b.resp.CloseBodyStream()
	fasthttp.ReleaseResponse(b.resp)
	return err
}

// pump copies an origin body into sp until its end, then releases the
// origin response at once. It stops early, closing the origin connection,
// when the client has gone or the buffers are full; the client then gets
// what was buffered and a cut connection.
func (s *Server) pump(sp *spool, resp *fasthttp.Response, stream io.Reader) {
	defer s.bg.Done()
	bp := copyBufPool.Get().(*[]byte)
	_, err := io.CopyBuffer(sp, stream, *bp)
	copyBufPool.Put(bp)
	if errors.Is(err, errSpoolFull) {
		s.buffers.responsesFull.Inc()
	}
	// The connection goes back to the pool when the body was read to its
	// end, and is closed otherwise.
	closeResponse(resp)
	sp.finish(err)
}
