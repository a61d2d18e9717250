package proxy

import (
	"bytes"
	"compress/gzip"
	"io"
	"regexp"

	"github.com/valyala/fasthttp"

	"github.com/edgevitals/edgevitals/cache"
)

// Field data (real user monitoring): when Options.RUM is set, HTML pages get
// a <script> tag for /__edgevitals/rum.js inserted before </head> as they are
// stored, so a hit costs nothing extra; the script reads the cache status and
// release from the Server-Timing header the proxy adds, and sends one beacon
// to /__edgevitals/rum when the page is hidden.

// Collector is the part of the field-data collector the proxy uses.
type Collector interface {
	Script() []byte
	Beacon(site, client string, gpc bool, body []byte) int
	// MaxBeaconBytes is the largest beacon body Beacon accepts: the proxy
	// refuses a larger one unread, and reads a beacon into a buffer of
	// that size.
	MaxBeaconBytes() int
}

const (
	rumScriptPath = "/__edgevitals/rum.js"
	rumBeaconPath = "/__edgevitals/rum"
	// maxRewriteBytes bounds an unstored HTML page read to add the script;
	// larger pages stream through untouched.
	maxRewriteBytes = 2 << 20
)

// isHTML tells an HTML response by its Content-Type. It does not allocate:
// the hit path asks it.
func isHTML(h *fasthttp.ResponseHeader) bool {
	ct := h.ContentType()
	return len(ct) >= 9 && bytes.EqualFold(ct[:9], []byte("text/html"))
}

// weakenValidator marks a rewritten page's ETag weak: the representation is
// no longer byte-for-byte the origin's (RFC 9110 §8.8.1).
func weakenValidator(h *fasthttp.ResponseHeader) {
	if et := h.Peek("ETag"); len(et) > 0 && !bytes.HasPrefix(et, []byte("W/")) {
		h.Set("ETag", "W/"+string(et))
	}
	h.Del("Content-MD5")
}

// serverTimingName is the canonical name of the field the script reads.
var serverTimingName = []byte("Server-Timing")

// addServerTiming adds the Server-Timing member the field script reads,
// beside any the origin sent. It does not allocate. Only HTML responses
// carry it: the script reads it from the page's navigation entry, and
// images, styles and scripts, most of a site's hits, are spared the bytes.
func (s *Server) addServerTiming(h *fasthttp.ResponseHeader, st *site, cs cacheStatus) {
	if !isHTML(h) {
		return
	}
	rel := st.release.Load()
	t := st.timing.Load()
	if t == nil || t.release != rel {
		// The release changed (rare): format the four values once.
		t = &serverTimings{release: rel}
		name := ""
		if rel != nil {
			name = *rel
		}
		for i, v := range viewStatuses {
			t.values[i] = appendServerTiming(nil, v, name)
		}
		st.timing.Store(t)
	}
	h.AddBytesKV(serverTimingName, t.values[cs.viewIndex()])
}

// serverTimings are a site's Server-Timing values for its current release,
// one per view status, formatted once rather than on every hit.
type serverTimings struct {
	release *string
	values  [len(viewStatuses)][]byte
}

var viewStatuses = [...]string{"hit", "stale", "bypass", "miss"}

// serveReserved answers the reserved paths: the field script and beacons.
// Nothing under /__edgevitals/ reaches the origin.
func (s *Server) serveReserved(ctx *fasthttp.RequestCtx, st *site, path []byte) {
	stampDate(&ctx.Response.Header)
	c := s.opt.RUM
	switch {
	case c == nil:
		ctx.Error("not found", fasthttp.StatusNotFound)
	case string(path) == rumScriptPath && (ctx.IsGet() || ctx.IsHead()):
		ctx.SetContentType("application/javascript; charset=utf-8")
		ctx.Response.Header.Set("Cache-Control", "public, max-age=3600")
		ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
		ctx.SetBody(c.Script())
	case string(path) == rumBeaconPath && ctx.IsPost():
		// Larger Content-Lengths were refused unread (refuseBody).
		status := s.withBeacon(ctx, func(body []byte) int {
			gpc := isOne(ctx.Request.Header.Peek("Sec-GPC"))
			return c.Beacon(st.Name, s.realClient(ctx).addr.String(), gpc, body)
		})
		ctx.Response.Header.Set("Cache-Control", "no-store")
		ctx.SetStatusCode(status)
	case string(path) == rumBeaconPath:
		ctx.Response.Header.Set("Allow", "POST")
		ctx.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
	default:
		ctx.Error("not found", fasthttp.StatusNotFound)
	}
}

var (
	headClose = regexp.MustCompile(`(?i)</head\s*>`)
	cspNonce  = regexp.MustCompile(`'nonce-([A-Za-z0-9+/=_-]{8,128})'`)
)

// injectRUM returns the body with the field script inserted before </head>,
// or the body unchanged (and false) when the page cannot be rewritten safely:
// not HTML, Cache-Control: no-transform, no </head>, or an encoding other
// than gzip. A gzip body is decompressed, rewritten and compressed again; it
// happens once, when the page is stored.
func injectRUM(h *fasthttp.ResponseHeader, body []byte, nonce bool) ([]byte, bool) {
	if !isHTML(h) {
		return body, false
	}
	for _, v := range h.PeekAll("Cache-Control") {
		if cache.ParseCacheControl(v).NoTransform {
			return body, false
		}
	}
	enc := bytes.ToLower(bytes.TrimSpace(h.Peek("Content-Encoding")))
	plain := body
	switch string(enc) {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return body, false
		}
		plain, err = io.ReadAll(io.LimitReader(zr, 64<<20))
		if err != nil {
			return body, false
		}
	default:
		return body, false
	}
	loc := headClose.FindIndex(plain)
	if loc == nil {
		return body, false
	}
	tag := []byte(`<script src="` + rumScriptPath + `" async`)
	if nonce {
		if m := cspNonce.FindSubmatch(h.Peek("Content-Security-Policy")); m != nil {
			tag = append(append(append(tag, ` nonce="`...), m[1]...), '"')
		}
	}
	tag = append(tag, "></script>"...)
	out := make([]byte, 0, len(plain)+len(tag))
	out = append(append(append(out, plain[:loc[0]]...), tag...), plain[loc[0]:]...)
	if string(enc) == "gzip" {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(out); err != nil {
			return body, false
		}
		if err := zw.Close(); err != nil {
			return body, false
		}
		out = append([]byte(nil), buf.Bytes()...)
	}
	return out, true
}

// appendServerTiming writes the Server-Timing value the field script reads:
// the cache status of this page view and the release that served it.
func appendServerTiming(dst []byte, status, release string) []byte {
	dst = append(dst, `edgevitals;desc="`...)
	dst = append(dst, status...)
	dst = append(dst, '"')
	if release != "" {
		dst = append(dst, `, edgevitals-release;desc="`...)
		dst = append(dst, release...)
		dst = append(dst, '"')
	}
	return dst
}
