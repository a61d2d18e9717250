package proxy

import (
	"bytes"
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
	conn := connectionTokens(resp.Header.PeekAll("Connection"))
	dated := false
	for k, v := range resp.Header.All() {
		if clientHeaderSkip(k, s.opt.DebugHeaders) || bytes.EqualFold(k, []byte("Content-Length")) ||
			isHopByHop(k) || listed(conn, k) {
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
		out.SetBody(whole)
		closeResponse(resp)
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
	var r io.Reader = stream
	if len(prefix) > 0 {
		r = io.MultiReader(bytes.NewReader(prefix), stream)
	}
	out.SetBodyStream(&originBody{r: r, resp: resp}, size)
}

// originBody streams an origin body to a client and releases the origin
// response (and its connection) when fasthttp closes it.
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
