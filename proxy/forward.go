package proxy

import (
	"bytes"
	"io"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgevitals/edgevitals/cache"
)

// Shared, never modified.
var schemeHTTP, schemeHTTPS = []byte("http"), []byte("https")

// normalizeCacheable rewrites a cacheable request in place so that nothing
// outside the cache key reaches the origin: no cookies (bypass cookies were
// handled before), no URL/host/method rewriting fields, no client
// conditionals or body, and Accept-Encoding folded to gzip or nothing so
// variants stay few. It does not allocate.
func normalizeCacheable(h *fasthttp.RequestHeader) {
	h.DelAllCookies() // every Cookie line: fasthttp refuses Cookie as a trailer
	// One pass over the request's fields finds the poison ones (usually
	// none); deleting each name unconditionally cost a key normalisation
	// per name on every request.
	var found [8][32]byte
	var lens [8]int
	n := 0
	for k := range h.All() {
		if n < len(found) && isPoison(k) {
			lens[n] = copy(found[n][:], k)
			n++
		}
	}
	for i := range n {
		h.DelBytes(found[i][:lens[i]])
	}
	if n == len(found) {
		for _, k := range poisonHeaders { // more than fit: the slow, thorough way
			h.Del(k)
		}
	}
	if ae := h.Peek("Accept-Encoding"); len(ae) > 0 {
		if acceptsGzip(ae) {
			h.Set("Accept-Encoding", "gzip")
		} else {
			h.Del("Accept-Encoding")
		}
	}
}

// poisonSet holds poisonHeaders lowercased, for isPoison.
var poisonSet = func() map[string]struct{} {
	m := make(map[string]struct{}, len(poisonHeaders))
	for _, k := range poisonHeaders {
		m[string(bytes.ToLower([]byte(k)))] = struct{}{}
	}
	return m
}()

// isPoison reports whether k is one of poisonHeaders, ignoring case. It
// does not allocate.
func isPoison(k []byte) bool {
	if len(k) < 6 || len(k) > 32 {
		return false
	}
	var buf [32]byte
	for i, c := range k {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	_, ok := poisonSet[string(buf[:len(k)])]
	return ok
}

// acceptsGzip reports whether an Accept-Encoding value admits gzip (q>0).
func acceptsGzip(v []byte) bool {
	found := false
	forEachToken(v, func(tok []byte) {
		name, params, _ := bytes.Cut(tok, []byte(";"))
		if !bytes.EqualFold(bytes.TrimSpace(name), []byte("gzip")) {
			return
		}
		params = bytes.TrimSpace(params)
		if q, ok := bytes.CutPrefix(params, []byte("q=")); ok {
			q = bytes.TrimSpace(q)
			if len(q) > 0 && len(bytes.Trim(q, "0.")) == 0 {
				return // q=0: refused
			}
		}
		found = true
	})
	return found
}

// originRequest builds the request the origin gets from a client request:
// hop-by-hop fields removed, forwarding fields set by the proxy (never
// trusted from the client), and for a cacheable request the cleaned URI.
// The caller releases it.
func (s *Server) originRequest(ctx *fasthttp.RequestCtx, st *site, cacheable bool, path []byte) *fasthttp.Request {
	req := fasthttp.AcquireRequest()
	ctx.Request.CopyTo(req)
	h := &req.Header
	stripRequestHopByHop(h)
	scheme, forwardedFor := s.forwardingFields(ctx)
	if cacheable {
		for _, k := range conditionalHeaders {
			h.Del(k)
		}
		if h.IsHead() {
			// Fetch the whole object so it can be stored and serve both.
			h.SetMethod(fasthttp.MethodGet)
		}
		req.ResetBody()
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
	h.Del("X-Forwarded-For")
	h.SetBytesV("X-Forwarded-For", forwardedFor)
	h.SetBytesV("X-Forwarded-Proto", scheme)
	h.SetBytesV("X-Forwarded-Host", ctx.Host())
	h.Add("Via", "1.1 edgevitals")
	// A request that came over TLS has an https URI; the origin's own
	// scheme is the one to use (fasthttp refuses a mismatch).
	req.URI().SetScheme(st.pool.scheme)
	return req
}

// conditionalHeaders are the client's preconditions. On a cacheable request
// edgevitals evaluates them against its stored copy itself and asks the
// origin for the whole object (with its own validators when revalidating).
var conditionalHeaders = []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"}

// bypass forwards a request the site's rules keep out of the cache, untouched
// but for the hop-by-hop and forwarding fields. A successful unsafe method
// invalidates the stored copies of its target (RFC 9111 §4.4).
func (s *Server) bypass(ctx *fasthttp.RequestCtx, st *site, d bypassDetail, start time.Time) {
	st.metrics.uncacheableInc(d.reason())
	req := s.originRequest(ctx, st, false, nil)
	status := s.forward(ctx, st, req, cacheStatus{fwd: "bypass", detail: d.String()})
	if d == bypassMethod && status >= 200 && status < 400 && !ctx.IsOptions() && !ctx.IsTrace() {
		s.invalidateAfterWrite(ctx, st)
	}
	if status == 0 {
		st.metrics.observe(outcomeError, start)
		return
	}
	st.metrics.observe(outcomeBypass, start)
}

// forward sends req (released here) to the site's origin and relays the
// answer to the client, streaming the body. It returns the origin's status,
// or 0 when the origin gave none (the client then got 502/503/504).
func (s *Server) forward(ctx *fasthttp.RequestCtx, st *site, req *fasthttp.Request, cs cacheStatus) int {
	resp := fasthttp.AcquireResponse()
	if req.Header.IsHead() {
		resp.SkipBody = true
	}
	t := time.Now()
	err := st.pool.do(req, resp)
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
		if clientHeaderSkip(k, s.opt.DebugHeaders, st.StripCDNCacheControl) || bytes.EqualFold(k, []byte("Content-Length")) ||
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

func (s *Server) addCacheStatus(h *fasthttp.ResponseHeader, cs cacheStatus) {
	var buf [160]byte
	h.AddBytesV("Cache-Status", cs.appendTo(buf[:0]))
}

// invalidateAfterWrite drops the stored copies of a changed resource: the
// request's target and same-host Location / Content-Location (RFC 9111 §4.4),
// under both schemes.
func (s *Server) invalidateAfterWrite(ctx *fasthttp.RequestCtx, st *site) {
	host := ctx.Host()
	s.purgeURL(st, host, ctx.URI().Path(), ctx.URI().QueryString(), false)
	for _, name := range []string{"Location", "Content-Location"} {
		v := ctx.Response.Header.Peek(name)
		if len(v) == 0 {
			continue
		}
		u := fasthttp.AcquireURI()
		if err := u.Parse(host, v); err == nil && bytes.EqualFold(u.Host(), host) {
			s.purgeURL(st, host, u.Path(), u.QueryString(), false)
		}
		fasthttp.ReleaseURI(u)
	}
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
