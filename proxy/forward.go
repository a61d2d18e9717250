package proxy

import (
	"bytes"
	"io"
	"slices"
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
// variants stay few. Repeated lines of one field are joined into one line
// (RFC 9110 §5.3), so Vary matching, the key and the origin all read the
// same value, whichever line an application would have picked. It does not
// allocate unless the request repeats a field.
func normalizeCacheable(h *fasthttp.RequestHeader) {
	h.DelAllCookies() // every Cookie line: fasthttp refuses Cookie as a trailer
	if removePoison(h) && hasRepeated(h) {
		joinRepeated(h)
	}
	if ae := h.Peek("Accept-Encoding"); len(ae) > 0 {
		gzip := acceptsGzip(ae)
		delAll(h, "Accept-Encoding")
		if gzip {
			h.Set("Accept-Encoding", "gzip")
		}
	}
}

// removePoison deletes every field isPoison names, and every bypass field
// whose first line is empty (absentFields), and reports whether two fields
// may share a name (a small hash of the names collided; usually false). One
// pass over the fields finds them (usually none): deleting each name
// unconditionally cost a key normalisation per name on every request. It
// does not allocate.
func removePoison(h *fasthttp.RequestHeader) (mayRepeat bool) {
	emptyBypass := false
	for pass := 0; ; pass++ {
		var found [8][maxFieldName]byte
		var lens [8]int
		var seen [4]uint64
		n, more := 0, false
		for k, v := range h.All() {
			if isPoison(k) {
				if n < len(found) {
					lens[n] = copy(found[n][:], k)
					n++
				} else {
					more = true
				}
			} else if len(v) == 0 && pass == 0 && isField(absentSet, k) {
				emptyBypass = true
			}
			if pass == 0 && !mayRepeat {
				b := nameHash(k)
				mayRepeat = seen[b>>6]&(1<<(b&63)) != 0
				seen[b>>6] |= 1 << (b & 63)
			}
		}
		for i := range n {
			h.DelBytes(found[i][:lens[i]])
		}
		// Each pass deletes up to 8 names; a request holds far fewer
		// fields than the bound (MaxHeaderBytes).
		if !more || pass > 4096 {
			break
		}
	}
	if emptyBypass {
		// The bypass rules read the first line: an empty one made the
		// request cacheable, so no later line may reach the origin. Every
		// name is judged before any is deleted: fasthttp's Del moves the
		// last fields into the holes, which reorders the lines of others.
		var empty [maxAbsentFields]bool
		for i, k := range absentFields {
			v := h.PeekAll(k)
			empty[i] = len(v) > 0 && len(v[0]) == 0
		}
		for i, k := range absentFields {
			if empty[i] {
				delAll(h, k)
			}
		}
	}
	return mayRepeat
}

// nameHash is an 8-bit hash of a field name, ignoring case.
func nameHash(k []byte) uint8 {
	x := uint32(2166136261)
	for _, c := range k {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		x = (x ^ uint32(c)) * 16777619
	}
	return uint8(x ^ x>>8 ^ x>>16 ^ x>>24)
}

// hasRepeated reports whether two fields of h share a name, ignoring case.
// It compares every pair, without allocating; removePoison's hash calls it
// only when two names may be equal.
func hasRepeated(h *fasthttp.RequestHeader) bool {
	i := 0
	for k := range h.All() {
		j := 0
		for k2 := range h.All() {
			if j == i {
				break
			}
			if len(k2) == len(k) && bytes.EqualFold(k2, k) && !isHopByHop(k) {
				return true
			}
			j++
		}
		i++
	}
	return false
}

// joinRepeated replaces the lines of each repeated field with one line of
// their values joined by ", ", in order (RFC 9110 §5.3). Hop-by-hop fields
// are left: they never reach the origin.
func joinRepeated(h *fasthttp.RequestHeader) {
	count := map[string]int{}
	var names []string
	for k := range h.All() {
		if isHopByHop(k) {
			continue
		}
		name := string(k)
		if count[name]++; count[name] == 2 {
			names = append(names, name)
		}
	}
	for _, name := range names {
		v := bytes.Join(h.PeekAll(name), []byte(", ")) // a copy: it outlives the lines
		setOnly(h, name, v)
	}
}

// poisonSet holds poisonHeaders, ownedSet forwardingHeaders and absentSet
// absentFields, lowercased, for isPoison and isField.
var poisonSet, ownedSet, absentSet = lowerSet(poisonHeaders), lowerSet(forwardingHeaders), lowerSet(absentFields)

func lowerSet(names []string) map[string]struct{} {
	m := make(map[string]struct{}, len(names))
	for _, k := range names {
		m[string(bytes.ToLower([]byte(k)))] = struct{}{}
	}
	return m
}

// absentFields are the request fields whose presence bypasses the cache in
// some preset (rules.check reads their first line): Authorization, Range and
// the presets' own. When the first line is empty the request is cacheable,
// and removePoison deletes the field, so that a second line cannot reach the
// origin behind it.
var absentFields = func() []string {
	names := []string{"Authorization", "Range"}
	for _, p := range presets {
		names = append(names, p.headers...)
	}
	slices.Sort(names)
	return slices.Compact(names)
}()

// maxAbsentFields bounds absentFields (TestPoisonNamesFit), so removePoison
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
		_, ok := ownedSet[string(buf[:n])]
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
			delAll(h, k)
		}
		// The whole object, stored once, answers every range of it.
		h.Del("Range")
		if h.IsHead() {
			// Fetch the whole object so it can be stored and serve both.
			h.SetMethod(fasthttp.MethodGet)
		}
		dropBody(req)
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
		delAll(h, "Surrogate-Capability")
		h.Set("Surrogate-Capability", cache.SurrogateName+`="Surrogate/1.0"`)
	}
	req.UseHostHeader = true
	h.SetHostBytes(ctx.Host())
	setOnly(h, "X-Forwarded-For", forwardedFor)
	setOnly(h, "X-Forwarded-Proto", scheme)
	setOnly(h, "X-Forwarded-Host", ctx.Host())
	h.Add("Via", "1.1 edgevitals")
	return req
}

// dropBody removes a request's body together with every field that
// describes it (isBodyField): a GET or HEAD that came with a body must reach
// the origin without a Content-Length or Transfer-Encoding announcing bytes
// that never come (nginx and php-fpm wait for them until the origin
// timeout), and without a Content-Type or Content-Encoding for a body that
// is not there. It does not allocate when the request has no such field.
func dropBody(req *fasthttp.Request) {
	req.ResetBody()
	h := &req.Header
	h.Del("Content-Length") // also the parsed length, -1 for chunked
	for range 4096 {        // each pass removes one name; bounded by MaxHeaderBytes
		var name string
		for k := range h.All() {
			if isBodyField(k) {
				name = string(k) // rare: such a field on a GET or HEAD
				break
			}
		}
		if name == "" {
			return
		}
		delAll(h, name)
	}
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
		st.metrics.observe(outcomeError, start)
		return
	}
	st.metrics.observe(outcomeBypass, start)
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
