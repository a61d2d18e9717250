package proxy

import (
	"bytes"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

// AccessLog writes one JSON line per request the proxy listener answers:
//
//	{"time":"2026-12-07T23:59:01.123Z","site":"blog","client":"198.51.100.7","method":"GET",
//	 "host":"www.example.com","path":"/","status":200,"cache":"hit",
//	 "cache_status":"edgevitals; hit; ttl=118","bytes":30000,"duration_s":0.000412,"release":"v42"}
//
// cache is the request's outcome as edgevitals_requests_total counts it
// (hit, stale, miss, bypass, pass, error); cache_status is the Cache-Status
// member the client got; bytes is the response body's length (announced
// for a streamed body, -1 when it was sent chunked); duration_s runs from
// the request's headers to the handler's end (a streamed body may still be
// on its way); release is the site's current release. The path carries no
// query string: parameters can hold what visitors would not want logged.
//
// Lines are written whole, one Write each, serialised: the writer (a file,
// stdout) sees no interleaving. A failed write drops its line and is
// counted (Dropped); the request path never waits on more than the one
// Write. With Options.AccessLog nil nothing of this runs.
type AccessLog struct {
	mu      sync.Mutex
	w       io.Writer
	buf     []byte
	dropped atomic.Uint64
}

// NewAccessLog returns an access log writing to w.
func NewAccessLog(w io.Writer) *AccessLog { return &AccessLog{w: w} }

// Dropped is how many lines failed to be written.
func (a *AccessLog) Dropped() uint64 { return a.dropped.Load() }

// logAccess writes the line of the request ctx answered; site is empty for
// a host no site answers.
func (s *Server) logAccess(ctx *fasthttp.RequestCtx, start time.Time) {
	st := s.route(ctx.Host())
	a := s.opt.AccessLog
	a.mu.Lock()
	defer a.mu.Unlock()
	b := append(a.buf[:0], `{"time":"`...)
	b = s.clock().UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","site":`...)
	name, release := "", ""
	if st != nil {
		name = st.Name
		if r := st.release.Load(); r != nil {
			release = *r
		}
	}
	b = appendJSONString(b, []byte(name))
	b = append(b, `,"client":"`...)
	b = s.realClient(ctx).addr.AppendTo(b)
	b = append(b, `","method":`...)
	b = appendJSONString(b, ctx.Method())
	b = append(b, `,"host":`...)
	b = appendJSONString(b, ctx.Host())
	b = append(b, `,"path":`...)
	b = appendJSONString(b, ctx.URI().PathOriginal())
	b = append(b, `,"status":`...)
	status := ctx.Response.StatusCode()
	b = strconv.AppendInt(b, int64(status), 10)
	member := ourCacheStatus(&ctx.Response.Header)
	b = append(b, `,"cache":"`...)
	b = append(b, accessOutcome(member, status)...)
	b = append(b, `","cache_status":`...)
	b = appendJSONString(b, member)
	b = append(b, `,"bytes":`...)
	n := int64(len(ctx.Response.Body()))
	if ctx.Response.IsBodyStream() {
		n = int64(ctx.Response.Header.ContentLength())
	}
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `,"duration_s":`...)
	b = strconv.AppendFloat(b, time.Since(start).Seconds(), 'f', 6, 64)
	b = append(b, `,"release":`...)
	b = appendJSONString(b, []byte(release))
	b = append(b, "}\n"...)
	a.buf = b
	if _, err := a.w.Write(b); err != nil {
		a.dropped.Add(1)
	}
}

// ourCacheStatus is the Cache-Status member edgevitals added to h, or nil.
func ourCacheStatus(h *fasthttp.ResponseHeader) []byte {
	for k, v := range h.All() {
		if len(k) == len("Cache-Status") && bytes.EqualFold(k, []byte("Cache-Status")) &&
			bytes.HasPrefix(v, []byte(cacheName)) && (len(v) == len(cacheName) || v[len(cacheName)] == ';') {
			return v
		}
	}
	return nil
}

// accessOutcome names a request's outcome from the Cache-Status member it
// got (see cacheStatus.appendTo), as edgevitals_requests_total counts it:
// an answer the edge made itself for lack of an origin's is an error.
func accessOutcome(member []byte, status int) string {
	has := func(s string) bool { return bytes.Contains(member, []byte(s)) }
	switch {
	case has("; hit"):
		return "hit"
	case has("fwd=stale") && has("fwd-status="):
		return "stale"
	case status >= 500 && !has("fwd-status="):
		return "error"
	case has("fwd=bypass"):
		return "bypass"
	case has("fwd=request"):
		return "pass"
	case has("fwd="):
		return "miss"
	}
	return "error"
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for len(s) > 0 {
		c := s[0]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20 || c == 0x7f:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			s = s[1:]
			continue
		}
		r, size := utf8.DecodeRune(s)
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[:size]...)
		}
		s = s[size:]
	}
	return append(dst, '"')
}
