package proxy

import (
	"bytes"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgevitals/edgevitals/cache"
)

// responseInfo gathers the fields the cache policy reads. Multi-line fields
// are joined with ", " (a fresh copy, so it outlives resp).
func responseInfo(h *fasthttp.ResponseHeader, status int) cache.Response {
	r := cache.Response{
		Status:           status,
		CacheControl:     joined(h, "Cache-Control"),
		CDNCacheControl:  joined(h, "CDN-Cache-Control"),
		SurrogateControl: joined(h, "Surrogate-Control"),
		Expires:          joined(h, "Expires"), // repeated lines make it invalid (stale)
		Date:             joined(h, "Date"),    // likewise (no apparent age)
		Age:              joined(h, "Age"),     // the first line's first member counts
		LastModified:     joined(h, "Last-Modified"),
		ETag:             copyBytes(h.Peek("ETag")),
		Vary:             joined(h, "Vary"),
		SetCookie:        len(h.PeekAll("Set-Cookie")) > 0,
		ContentLength:    int64(h.ContentLength()),
	}
	if r.ContentLength < 0 {
		r.ContentLength = -1
	}
	return r
}

// fillFromStored completes the fields of a 304 with those of the stored
// response it validates (RFC 9111 §4.3.4).
func fillFromStored(r *cache.Response, e *cache.Entry) {
	get := func(name string) []byte {
		for _, f := range e.Header {
			if bytes.EqualFold(f.Name, []byte(name)) {
				return f.Value
			}
		}
		return nil
	}
	fill := func(dst *[]byte, name string) {
		if len(*dst) == 0 {
			*dst = get(name)
		}
	}
	fill(&r.CacheControl, "Cache-Control")
	fill(&r.CDNCacheControl, "CDN-Cache-Control")
	fill(&r.Expires, "Expires")
	fill(&r.Vary, "Vary")
	fill(&r.ETag, "ETag")
	fill(&r.LastModified, "Last-Modified")
	fill(&r.Date, "Date")
	r.ContentLength = int64(len(e.Body))
}

func joined(h *fasthttp.ResponseHeader, name string) []byte {
	vs := h.PeekAll(name)
	switch len(vs) {
	case 0:
		return nil
	case 1:
		return copyBytes(vs[0])
	}
	return bytes.Join(vs, []byte(", "))
}

// storedFields copies the response fields an entry replays. One backing
// array holds every name and value.
func storedFields(h *fasthttp.ResponseHeader) []cache.Field {
	n, size := 0, 0
	for k, v := range endToEnd(h) {
		if !storedHeaderSkip(k) {
			n++
			size += len(k) + len(v)
		}
	}
	fields := make([]cache.Field, 0, n)
	buf := make([]byte, 0, size)
	for k, v := range endToEnd(h) {
		if storedHeaderSkip(k) {
			continue
		}
		buf = append(buf, k...)
		name := buf[len(buf)-len(k):]
		buf = append(buf, v...)
		fields = append(fields, cache.Field{Name: name, Value: buf[len(buf)-len(v):]})
	}
	return fields
}

func copyBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// serveEntry answers from a stored entry. It does not allocate: the body is
// shared, not copied, and numbers are formatted on the stack. An entry with
// coded copies (compress.go) answers with the one the client's
// Accept-Encoding prefers, its ETag and Content-Encoding, and always with
// Vary: Accept-Encoding. A Range request gets its range cut from the stored
// identity body (see entryRange), after the client's preconditions: a 304
// wins over a range.
func (s *Server) serveEntry(ctx *fasthttp.RequestCtx, st *site, e *cache.Entry, now time.Time, cs cacheStatus) {
	out := &ctx.Response
	// Every name added below is canonical already: stored names are as
	// fasthttp parsed them from the origin, the rest are literals, so
	// fasthttp need not normalise them again on every hit.
	out.Header.DisableNormalizing()
	rh := &ctx.Request.Header
	var enc *cache.Encoded
	if len(e.Encoded) > 0 && len(rh.Peek("Range")) == 0 {
		enc = selectEncoded(rh.Peek("Accept-Encoding"), e)
	}
	body, etag := e.Body, e.ETag
	if enc != nil {
		body, etag = enc.Body, enc.ETag
	}
	nm := notModified(rh, e, etag)
	var first, last int64
	ra := rangeWhole
	if !nm {
		first, last, ra = entryRange(&ctx.Request.Header, e)
	}
	switch ra {
	case rangePartial:
		out.SetStatusCode(fasthttp.StatusPartialContent)
	case rangeUnsatisfiable:
		out.SetStatusCode(fasthttp.StatusRequestedRangeNotSatisfiable)
	default:
		out.SetStatusCode(e.Status)
	}
	debug := s.opt.DebugHeaders
	dated, varied := false, len(e.Encoded) == 0
	for i := range e.Header {
		f := &e.Header[i]
		if clientHeaderSkip(f.Name, debug, st.StripCDNCacheControl) || ra == rangeUnsatisfiable && !rangeErrorField(f.Name) {
			continue
		}
		switch len(f.Name) {
		case 4:
			if bytes.EqualFold(f.Name, []byte("Date")) {
				setDate(&out.Header, f.Value)
				dated = true
				continue
			}
			if enc != nil && bytes.EqualFold(f.Name, []byte("ETag")) {
				continue // the coded copy's own, below
			}
			varied = varied || bytes.EqualFold(f.Name, []byte("Vary")) && listsAcceptEncoding(f.Value)
		}
		out.Header.AddBytesKV(f.Name, f.Value)
	}
	if !dated {
		stampDate(&out.Header)
	}
	if !varied {
		out.Header.AddBytesKV(varyName, acceptEncodingName)
	}
	if enc != nil {
		out.Header.SetBytesKV(contentEncodingName, enc.Coding)
		if len(enc.ETag) > 0 {
			out.Header.AddBytesKV(etagName, enc.ETag)
		}
	}
	var buf [20]byte
	age := max(0, int64(e.Age(now)/time.Second))
	out.Header.SetBytesV("Age", strconv.AppendInt(buf[:0], age, 10))
	s.addCacheStatus(&out.Header, cs)
	if s.opt.RUM != nil {
		s.addServerTiming(&out.Header, st, cs)
	}
	if nm {
		out.SetStatusCode(fasthttp.StatusNotModified)
		out.SkipBody = true
		return
	}
	switch ra {
	case rangePartial:
		var cr [72]byte
		out.Header.SetBytesV("Content-Range", appendContentRange(cr[:0], first, last, int64(len(e.Body))))
		out.SetBodyRaw(e.Body[first : last+1])
	case rangeUnsatisfiable:
		var cr [72]byte
		out.Header.SetBytesV("Content-Range", appendContentRange(cr[:0], -1, 0, int64(len(e.Body))))
		out.ResetBody()
	default:
		out.SetBodyRaw(body)
	}
}

// notModified evaluates a client's If-None-Match / If-Modified-Since against
// a stored 200 (RFC 9110 §13.2.2): If-None-Match wins when present, and is
// compared with etag, the tag of the representation selected for this
// request (the identity body's, or a coded copy's).
func notModified(h *fasthttp.RequestHeader, e *cache.Entry, etag []byte) bool {
	if e.Status != fasthttp.StatusOK {
		return false
	}
	if inm := h.Peek("If-None-Match"); len(inm) > 0 {
		if len(etag) == 0 {
			return false
		}
		match := false
		forEachToken(inm, func(tok []byte) {
			if len(tok) == 1 && tok[0] == '*' || weakEqual(tok, etag) {
				match = true
			}
		})
		return match
	}
	ims := h.Peek("If-Modified-Since")
	if len(ims) == 0 || len(e.LastModified) == 0 {
		return false
	}
	// The policy's one HTTP-date parser: the three forms of RFC 9110 §5.6.7,
	// nothing else. "A recipient MUST ignore the If-Modified-Since header field
	// if the received field value is not a valid HTTP-date" (§13.1.3).
	since, ok := cache.ParseHTTPDate(ims, e.ResponseTime)
	if !ok {
		return false
	}
	lm, ok := cache.ParseHTTPDate(e.LastModified, e.ResponseTime)
	return ok && !lm.After(since)
}

// weakEqual compares entity tags ignoring the weak marker (RFC 9110 §8.8.3.2).
func weakEqual(a, b []byte) bool {
	a = bytes.TrimPrefix(a, []byte("W/"))
	b = bytes.TrimPrefix(b, []byte("W/"))
	return bytes.Equal(a, b)
}

// Canonical names and values serveEntry adds for coded copies.
var (
	varyName            = []byte("Vary")
	acceptEncodingName  = []byte("Accept-Encoding")
	contentEncodingName = []byte("Content-Encoding")
	etagName            = []byte("ETag")
)
