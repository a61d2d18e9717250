package proxy

import (
	"bytes"
	"slices"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgevitals/edgevitals/cache"
)

// Shared, never modified.
var schemeHTTP, schemeHTTPS = []byte("http"), []byte("https")

// normalizeCacheable rewrites a cacheable request in place so that nothing
// outside the cache key reaches the origin: no cookies (bypass cookies were
// handled before), no URL/host/method rewriting fields, no bypass field
// hidden behind an empty first line, and at most one Accept-Encoding line,
// folded so that variants stay few: gzip or none, or for a site that
// compresses at the edge (compress) the codings it may send in the
// client's order (acceptEncoding.edgeFold). Other fields keep every line,
// in order: Vary matching keys on all of them, and the origin gets them
// all. It does not allocate unless there is a field to remove.
func normalizeCacheable(h *fasthttp.RequestHeader, compress bool) {
	h.DelAllCookies() // every Cookie line: fasthttp refuses Cookie as a trailer
	sc := scanFields(h)
	var empty [maxAbsentFields]bool
	if sc.emptyBypass {
		// The bypass rules read the first line: an empty one made the
		// request cacheable, so no later line may reach the origin.
		for i, k := range absentFields {
			v := h.PeekAll(k)
			empty[i] = len(v) > 0 && len(v[0]) == 0
		}
	}
	fold := ""
	switch {
	case compress:
		fold = sc.ae.edgeFold()
	case sc.ae.acceptsGzip():
		fold = foldGzip
	}
	dropAE := sc.encodings > 1 || sc.encodings == 1 && fold == ""
	if sc.poison || sc.emptyBypass || dropAE {
		keepFields(h, func(k, _ []byte) bool {
			if isPoison(k) || dropAE && bytes.EqualFold(k, []byte("Accept-Encoding")) {
				return true
			}
			for i, name := range absentFields {
				if empty[i] && bytes.EqualFold(k, []byte(name)) {
					return true
				}
			}
			return false
		})
	}
	if fold != "" {
		h.Set("Accept-Encoding", fold) // in place when it was the one line
	}
}

// fieldScan is what one pass over a request's fields found.
type fieldScan struct {
	poison      bool           // a field isPoison flags
	emptyBypass bool           // a field of absentFields has an empty line
	encodings   int            // Accept-Encoding lines
	ae          acceptEncoding // what they accept
}

// scanFields looks at every field once: removing each poison name
// unconditionally cost a key normalisation per name on every request. It
// does not allocate.
func scanFields(h *fasthttp.RequestHeader) fieldScan {
	sc := fieldScan{ae: newAcceptEncoding()}
	for k, v := range h.All() {
		switch {
		case len(k) == len("Accept-Encoding") && bytes.EqualFold(k, []byte("Accept-Encoding")):
			sc.encodings++
			sc.ae.add(v)
		case isPoison(k):
			sc.poison = true
		case len(v) == 0 && isField(absentSet, k):
			sc.emptyBypass = true
		}
	}
	return sc
}

// The field lists, lowercased, for isPoison and isField.
var (
	poisonSet         = lowerSet(poisonHeaders)
	forwardingSet     = lowerSet(forwardingHeaders)
	absentSet         = lowerSet(absentFields)
	neverForwardedSet = lowerSet(neverForwarded)
	conditionalSet    = lowerSet(conditionalHeaders)
)

func lowerSet(names []string) map[string]struct{} {
	m := make(map[string]struct{}, len(names))
	for _, k := range names {
		m[string(bytes.ToLower([]byte(k)))] = struct{}{}
	}
	return m
}

// absentFields are the request fields whose presence bypasses the cache in
// some preset (rules.check reads their first line): Authorization and the
// presets' own. When the first line is empty the request is cacheable, and
// normalizeCacheable removes the field, so that no second line reaches the
// origin behind it.
var absentFields = func() []string {
	names := []string{"Authorization"}
	for _, p := range presets {
		names = append(names, p.headers...)
	}
	slices.Sort(names)
	return slices.Compact(names)
}()

// maxAbsentFields bounds absentFields (TestPoisonNamesFit), so normalizeCacheable
// judges them on the stack.
const maxAbsentFields = 16

// isPoison reports whether k must not reach the origin on a cacheable
// request: one of poisonHeaders, ignoring case and reading '_' as '-' (nginx
// and PHP file both spellings under one $_SERVER name), or one of
// forwardingHeaders spelled with an underscore (the proxy replaces the real
// spelling itself). It does not allocate.
func isPoison(k []byte) bool {
	var buf [maxFieldName]byte
	n, underscore := foldName(&buf, k)
	if n == 0 {
		return false
	}
	if _, ok := poisonSet[string(buf[:n])]; ok {
		return true
	}
	if underscore {
		_, ok := forwardingSet[string(buf[:n])]
		return ok
	}
	return false
}

// isField reports whether k, folded as isPoison folds it, is in set. It does
// not allocate.
func isField(set map[string]struct{}, k []byte) bool {
	var buf [maxFieldName]byte
	n, _ := foldName(&buf, k)
	if n == 0 {
		return false
	}
	_, ok := set[string(buf[:n])]
	return ok
}

// foldName writes k into buf lowercased, with '_' read as '-', and returns
// its length: 0 when k is too short or too long to be a listed name.
func foldName(buf *[maxFieldName]byte, k []byte) (n int, underscore bool) {
	if len(k) < 5 || len(k) > maxFieldName {
		return 0, false
	}
	for i, c := range k {
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c, underscore = '-', true
		}
		buf[i] = c
	}
	return len(k), underscore
}

// originRequest builds the request the origin gets from a client request:
// hop-by-hop fields removed, forwarding fields set by the proxy (never
// trusted from the client), and for a cacheable request the cleaned URI and
// no body. Every field the proxy sets or removes loses all its lines, and
// the client's other lines keep their order (keepFields). The caller
// releases it.
func (s *Server) originRequest(ctx *fasthttp.RequestCtx, st *site, cacheable bool, path []byte) *fasthttp.Request {
	req := fasthttp.AcquireRequest()
	ctx.Request.CopyTo(req)
	attachBody(ctx, req)
	h := &req.Header
	conn := connectionTokens(h.PeekAll("Connection"))
	keepFields(h, func(k, _ []byte) bool {
		return isHopByHop(k) || listed(conn, k) || isField(neverForwardedSet, k) || isField(forwardingSet, k) ||
			// The whole object, stored once, answers every range of it.
			cacheable && (isField(conditionalSet, k) || isBodyField(k) || bytes.EqualFold(k, []byte("Range")))
	})
	h.ResetConnectionClose()
	scheme, forwardedFor := s.forwardingFields(ctx)
	if cacheable {
		if h.IsHead() {
			// Fetch the whole object so it can be stored and serve both.
			h.SetMethod(fasthttp.MethodGet)
		}
		// A GET or HEAD that came with a body reaches the origin without
		// it, and without the fields that described it (isBodyField, above):
		// a Content-Length or Transfer-Encoding announcing bytes that never
		// come made nginx and php-fpm wait until the origin timeout.
		req.ResetBody()
		h.Del("Content-Length") // also the parsed length, -1 for chunked
		uri := appendEscapedPath(make([]byte, 0, len(path)+64), path)
		if q := ctx.URI().QueryString(); len(q) > 0 {
			n := len(uri)
			uri = s.keyer.AppendQuery(append(uri, '?'), q)
			if len(uri) == n+1 {
				uri = uri[:n] // every parameter was stripped
			}
		}
		req.SetRequestURIBytes(uri)
		// Announce the Surrogate-Control target this cache answers to.
		h.Set("Surrogate-Capability", cache.SurrogateName+`="Surrogate/1.0"`)
	}
	req.UseHostHeader = true
	h.SetHostBytes(ctx.Host())
	h.SetBytesV("X-Forwarded-For", forwardedFor)
	h.SetBytesV("X-Forwarded-Proto", scheme)
	h.SetBytesV("X-Forwarded-Host", ctx.Host())
	h.Add("Via", "1.1 edgevitals")
	// A request that came over TLS has an https URI; the origin's own
	// scheme is the one to use (fasthttp refuses a mismatch).
	req.URI().SetScheme(st.pool.scheme)
	return req
}

// keepFields removes every field line drop matches and keeps the others in
// the order they came. fasthttp's Del moves the last field into the hole it
// leaves, which reorders the lines of repeated fields (Vary matching and
// X-Forwarded-For read them in order), so keepFields rebuilds: the kept
// lines are copied, every name is deleted, and the copies are added back in
// order. The fields fasthttp keeps apart (isSpecialField) have one line
// each and stay unless drop matches them. It allocates: callers look first
// whether there is anything to remove, or are on the way to the origin.
func keepFields(h *fasthttp.RequestHeader, drop func(k, v []byte) bool) {
	type line struct{ k, v int } // ends, in buf, of the name and the value
	var (
		buf     []byte
		kept    []line
		names   []string
		special []string
	)
	for k, v := range h.All() {
		if isSpecialField(k) {
			if drop(k, v) {
				special = append(special, string(k))
			}
			continue
		}
		if !slices.Contains(names, string(k)) {
			names = append(names, string(k))
		}
		if !drop(k, v) {
			buf = append(buf, k...)
			kl := len(buf)
			buf = append(buf, v...)
			kept = append(kept, line{kl, len(buf)})
		}
	}
	for _, k := range append(names, special...) {
		h.Del(k)
	}
	start := 0
	for _, l := range kept {
		h.AddBytesKV(buf[start:l.k], buf[l.k:l.v])
		start = l.v
	}
}

// isSpecialField reports whether fasthttp keeps the field k apart from its
// list of fields (Host, Content-Length, Content-Type, User-Agent, Cookie,
// Trailer), so that deleting it moves no other field.
func isSpecialField(k []byte) bool {
	for _, name := range []string{"Host", "Content-Length", "Content-Type", "User-Agent", "Cookie", "Trailer"} {
		if bytes.EqualFold(k, []byte(name)) {
			return true
		}
	}
	return false
}

// conditionalHeaders are the client's preconditions. On a cacheable request
// edgevitals evaluates them against its stored copy itself and asks the
// origin for the whole object (with its own validators when revalidating).
var conditionalHeaders = []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"}

// bypass forwards a request the site's rules keep out of the cache, untouched
// but for the hop-by-hop and forwarding fields. An unsafe method the origin
// accepted (2xx or 3xx) invalidates the stored copies of its target (RFC 9111
// §4.4), unless the site keeps them (Site.KeepOnUnsafe).
func (s *Server) bypass(ctx *fasthttp.RequestCtx, st *site, d bypassDetail, start time.Time) {
	st.metrics.uncacheableInc(d.reason())
	req := s.originRequest(ctx, st, false, nil)
	status := s.forward(ctx, st, req, cacheStatus{fwd: "bypass", detail: d.String()}, nil)
	if d == bypassMethod && !st.KeepOnUnsafe && status >= 200 && status < 400 && !ctx.IsOptions() && !ctx.IsTrace() {
		s.invalidateAfterWrite(ctx, st)
	}
	if status == 0 {
		st.metrics.observe(OutcomeError, start)
		return
	}
	st.metrics.observe(OutcomeBypass, start)
}

// forward sends req (released here) to the site's origin and relays the
// answer to the client, streaming the body. It returns the origin's status,
// or 0 when the origin gave none (the client then got 502/503/504). seen,
// when not nil, is called on this goroutine with the origin's response
// header and the time the request was sent, before the relay; it must not
// keep the header.
func (s *Server) forward(ctx *fasthttp.RequestCtx, st *site, req *fasthttp.Request, cs cacheStatus, seen func(*fasthttp.ResponseHeader, time.Time)) int {
	resp := fasthttp.AcquireResponse()
	if req.Header.IsHead() {
		resp.SkipBody = true
	}
	sent := s.clock()
	t := time.Now()
	err := st.pool.doInterim(req, resp, s.interimSink(ctx))
	fasthttp.ReleaseRequest(req)
	if err != nil {
		fasthttp.ReleaseResponse(resp)
		st.metrics.originDone(0, t)
		s.originFailed(ctx, err, cs)
		return 0
	}
	code := resp.StatusCode()
	st.metrics.originDone(code, t)
	s.noteRelease(st, &resp.Header)
	if seen != nil {
		seen(&resp.Header, sent)
	}
	cs.fwdStatus = code
	s.relay(ctx, st, resp, nil, cs)
	return code
}

// originFailed answers a client when the origin gave no response.
func (s *Server) originFailed(ctx *fasthttp.RequestCtx, err error, cs cacheStatus) {
	status, reason := originError(err)
	ctx.Response.Reset()
	ctx.Error(reason, status)
	cs.detail = errorDetail(status)
	s.addCacheStatus(&ctx.Response.Header, cs)
}

func errorDetail(status int) string {
	switch status {
	case fasthttp.StatusGatewayTimeout:
		return "origin-timeout"
	case fasthttp.StatusServiceUnavailable:
		return "origin-unavailable"
	}
	return "origin-error"
}

func (s *Server) addCacheStatus(h *fasthttp.ResponseHeader, cs cacheStatus) {
	var buf [160]byte
	h.AddBytesV("Cache-Status", cs.appendTo(buf[:0]))
}

// invalidateAfterWrite drops the stored copies of a changed resource: the
// request's target and same-host Location / Content-Location (RFC 9111 §4.4),
// under both schemes. Each call counts as one purge of kind "unsafe_method".
func (s *Server) invalidateAfterWrite(ctx *fasthttp.RequestCtx, st *site) {
	host := ctx.Host()
	n := s.purgeURL(st, host, ctx.URI().Path(), ctx.URI().QueryString(), false)
	for _, name := range []string{"Location", "Content-Location"} {
		v := ctx.Response.Header.Peek(name)
		if len(v) == 0 {
			continue
		}
		u := fasthttp.AcquireURI()
		if err := u.Parse(host, v); err == nil && bytes.EqualFold(u.Host(), host) {
			n += s.purgeURL(st, host, u.Path(), u.QueryString(), false)
		}
		fasthttp.ReleaseURI(u)
	}
	s.countPurge(purgeUnsafeMethod, false, n)
}

// appendEscapedPath percent-encodes a decoded, normalised path for the
// request line, so the origin decodes it back to exactly the path that was
// keyed: '%' itself is encoded, so nothing is decoded twice.
func appendEscapedPath(dst, path []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range path {
		if pathSafe(c) {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', hex[c>>4], hex[c&0xf])
	}
	return dst
}

// pathSafe reports whether c may stand unencoded in a path (RFC 3986 pchar and '/').
func pathSafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@', '/':
		return true
	}
	return false
}
