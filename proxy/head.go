package proxy

import (
	"time"

	"github.com/valyala/fasthttp"
)

// headUpdate applies a 200 the origin gave to a HEAD for a cacheable URL to
// the stored GET response that request could have been answered with (RFC
// 9111 §4.3.5): when the HEAD's validators and Content-Length say it
// describes the stored body, its header fields update the stored response
// as a 304's would; otherwise the stored response is marked stale, so the
// next request revalidates it. h is the origin's response header; sent is
// when the HEAD was sent.
func (s *Server) headUpdate(ctx *fasthttp.RequestCtx, st *site, key []byte, h *fasthttp.ResponseHeader, sent time.Time) {
	if h.StatusCode() != fasthttp.StatusOK {
		return
	}
	e := s.store.Get(key, &ctx.Request.Header)
	if e == nil {
		return
	}
	if !e.HeadMatches(h.Peek("ETag"), h.Peek("Last-Modified"), int64(h.ContentLength())) {
		e.MarkStale()
		return
	}
	s.updateStored(st, key, e, policyRequest(&ctx.Request.Header), h, sent, s.clock())
}
