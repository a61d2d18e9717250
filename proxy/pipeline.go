package proxy

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgevitals/edgevitals/cache"
)

// keyPool holds cache-key buffers so building a key does not allocate.
var keyPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// cached runs the cache pipeline for a request the site's rules allow to be
// cached: normalise, look up, then serve fresh, serve stale and refresh, or
// fetch (coalesced) from the origin.
func (s *Server) cached(ctx *fasthttp.RequestCtx, st *site, path []byte, start time.Time) {
	h := &ctx.Request.Header
	normalizeCacheable(h, st.Compress)
	kp := keyPool.Get().(*[]byte)
	key := s.keyer.AppendKey((*kp)[:0], s.requestScheme(ctx), ctx.Host(), path, ctx.URI().QueryString())
	s.lookup(ctx, st, path, key, start)
	*kp = key[:0]
	keyPool.Put(kp)
}

func (s *Server) lookup(ctx *fasthttp.RequestCtx, st *site, path, key []byte, start time.Time) {
	now := s.clock()
	e := s.store.Get(key, &ctx.Request.Header)
	if e != nil {
		switch e.State(now) {
		case cache.Fresh:
			s.serveEntry(ctx, st, e, now, cacheStatus{hit: true, ttl: ttlSeconds(e, now), hasTTL: true})
			st.metrics.observe(OutcomeHit, start)
			return
		case cache.StaleRevalidate:
			s.serveEntry(ctx, st, e, now, cacheStatus{fwd: "stale", ttl: ttlSeconds(e, now), hasTTL: true, detail: "stale-while-revalidate"})
			s.refresh(ctx, st, path, key, e)
			st.metrics.observe(OutcomeStale, start)
			return
		}
	} else if s.flight.Passing(key) {
		s.pass(ctx, st, path, key, start, "hit-for-miss")
		return
	}
	s.miss(ctx, st, path, key, e, start)
}

// standIn is the stored copy when it may answer for a failed fetch
// (stale-if-error), else nil.
func standIn(stale *cache.Entry, now time.Time) *cache.Entry {
	if stale != nil && stale.State(now) != cache.Expired {
		return stale
	}
	return nil
}

func ttlSeconds(e *cache.Entry, now time.Time) int64 {
	return int64(e.TTL(now) / time.Second)
}

// miss fetches from the origin, joining the fetch already in flight for the
// key when there is one. stale is the stored copy that needs revalidation, or nil.
func (s *Server) miss(ctx *fasthttp.RequestCtx, st *site, path, key []byte, stale *cache.Entry, start time.Time) {
	var own fetchResult // the leader's own origin response when it is not shareable
	e, leader, err := s.flight.Do(key, func() (*cache.Entry, error) {
		req := s.originRequest(ctx, st, true, path)
		own = s.fetch(st, req, key, stale, &ctx.Request.Header, s.interimSink(ctx))
		if own.entry != nil && own.entry == stale {
			// Waiters serve the stale copy too rather than each asking a
			// failing origin again.
			return own.entry, nil
		}
		return own.entry, own.err
	})
	fwd := "uri-miss"
	if stale != nil {
		fwd = "stale"
	}
	now := s.clock()
	if e == nil && err != nil {
		// The fetch this request led or joined got no response. A waiter's
		// own stored copy may stand in as the leader's did: the leader's
		// copy may have been missing, expired or replaced by a purge.
		e = standIn(stale, now)
	}
	switch {
	case e != nil && e == stale:
		// The origin failed and the stored copy may stand in (stale-if-error).
		s.serveEntry(ctx, st, e, now, cacheStatus{fwd: "stale", fwdStatus: own.code, ttl: ttlSeconds(e, now), hasTTL: true, detail: "stale-if-error"})
		st.metrics.observe(OutcomeStale, start)
	case e != nil && (leader || e.Matches(&ctx.Request.Header)):
		cs := cacheStatus{fwd: fwd, fwdStatus: e.Status, stored: true, collapsed: !leader}
		if leader && own.code == fasthttp.StatusNotModified {
			cs.fwdStatus = fasthttp.StatusNotModified
		}
		s.serveEntry(ctx, st, e, now, cs)
		st.metrics.observe(OutcomeMiss, start)
	case e != nil:
		// Another request's variant (Vary): fetch our own.
		s.pass(ctx, st, path, key, start, "vary-mismatch")
	case leader && own.resp != nil && rangeRetry(&ctx.Request.Header, own):
		// Too large to store, and nothing of it read yet: let the origin
		// cut the client's range rather than relay the whole object.
		closeResponse(own.resp)
		s.pass(ctx, st, path, key, start, "too-large")
	case leader && own.resp != nil:
		s.relay(ctx, st, own.resp, own.prefix, cacheStatus{fwd: fwd, fwdStatus: own.code, detail: reasonDetail(own.reason)})
		st.metrics.observe(OutcomeMiss, start)
	case errors.Is(err, cache.ErrBusy):
		ctx.Error("origin busy", fasthttp.StatusServiceUnavailable)
		s.addCacheStatus(&ctx.Response.Header, cacheStatus{fwd: fwd, collapsed: true, detail: "busy"})
		st.metrics.observe(OutcomeError, start)
	case errors.Is(err, cache.ErrWaitTimeout):
		ctx.Error("origin timeout", fasthttp.StatusGatewayTimeout)
		s.addCacheStatus(&ctx.Response.Header, cacheStatus{fwd: fwd, collapsed: true, detail: "origin-timeout"})
		st.metrics.observe(OutcomeError, start)
	case err != nil:
		// The origin gave no response, to the leader's fetch this waiter joined too.
		s.originFailed(ctx, err, cacheStatus{fwd: fwd, collapsed: !leader})
		st.metrics.observe(OutcomeError, start)
	default:
		// Waited for a response that turned out not to be shareable: go to
		// the origin on our own, at once.
		s.pass(ctx, st, path, key, start, "uncacheable")
	}
}

// pass sends a cacheable request to the origin without storing or
// coalescing: keys remembered as uncacheable, and waiters released when the
// shared response was not shareable. The request is still the normalised one.
func (s *Server) pass(ctx *fasthttp.RequestCtx, st *site, path, key []byte, start time.Time, detail string) {
	req := s.originRequest(ctx, st, true, path)
	var seen func(*fasthttp.ResponseHeader, time.Time)
	if ctx.IsHead() {
		req.Header.SetMethod(fasthttp.MethodHead)
		seen = func(h *fasthttp.ResponseHeader, sent time.Time) { s.headUpdate(ctx, st, key, h, sent) }
	}
	keepClientRange(&req.Header, &ctx.Request.Header)
	if s.forward(ctx, st, req, cacheStatus{fwd: "uri-miss", detail: detail}, seen) == 0 {
		st.metrics.observe(OutcomeError, start)
		return
	}
	st.metrics.observe(OutcomePass, start)
}

// refresh revalidates a stale-while-revalidate entry in the background, once
// per key however many requests see it stale.
func (s *Server) refresh(ctx *fasthttp.RequestCtx, st *site, path, key []byte, stale *cache.Entry) {
	if s.flight.Inflight(key) {
		return
	}
	k := string(key)
	if _, busy := s.refreshing.LoadOrStore(k, struct{}{}); busy {
		return
	}
	req := s.originRequest(ctx, st, true, path)
	vary := fasthttp.AcquireRequest()
	ctx.Request.Header.CopyTo(&vary.Header) // for Vary values, outlives ctx
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer s.refreshing.Delete(k)
		defer fasthttp.ReleaseRequest(vary)
		// Errors were counted in fetch; a failed refresh leaves the stale
		// copy to serve until its windows end.
		_, _, _ = s.flight.Do([]byte(k), func() (*cache.Entry, error) {
			r := s.fetch(st, req, []byte(k), stale, &vary.Header, nil)
			if r.resp != nil {
				fasthttp.ReleaseResponse(r.resp)
			}
			return r.entry, r.err
		})
	}()
}

// fetchResult is the outcome of one origin fetch for a cacheable request.
type fetchResult struct {
	entry  *cache.Entry       // stored (or storable) entry; the stale entry when it stands in for an origin failure
	resp   *fasthttp.Response // origin response not stored, body unread past prefix; the caller relays or releases it
	prefix []byte             // body bytes already read from resp
	code   int                // origin status, 0 when none
	reason cache.Reason       // why resp was not stored
	err    error              // no usable response
}

// fetch sends req (released here) to the origin, conditionally when stale
// has validators, and stores what the policy allows. vary is the client's
// request header: the stored entry's Vary values come from it, and whether it
// carried Authorization (RFC 9111 §3.5). interim, when not nil, gets the
// origin's interim responses (never stored).
func (s *Server) fetch(st *site, req *fasthttp.Request, key []byte, stale *cache.Entry, vary cache.Header, interim interimFunc) fetchResult {
	if st.Compress {
		// The edge compresses what it stores: the identity body, beacon
		// injected, is the one every coding is made from.
		req.Header.Del("Accept-Encoding")
	}
	if stale != nil {
		if len(stale.ETag) > 0 {
			req.Header.SetBytesV("If-None-Match", stale.ETag)
		}
		if len(stale.LastModified) > 0 {
			req.Header.SetBytesV("If-Modified-Since", stale.LastModified)
		}
	}
	resp := fasthttp.AcquireResponse()
	reqTime := s.clock()
	t := time.Now()
	err := st.pool.doInterim(req, resp, interim)
	respTime := s.clock()
	fasthttp.ReleaseRequest(req)
	sie := standIn(stale, respTime) // what answers for a failed fetch (stale-if-error)
	if err != nil {
		fasthttp.ReleaseResponse(resp)
		st.metrics.originDone(0, t)
		return fetchResult{entry: sie, err: err}
	}
	code := resp.StatusCode()
	st.metrics.originDone(code, t)
	s.noteRelease(st, &resp.Header)

	creq := policyRequest(vary)
	if stale != nil && code == fasthttp.StatusNotModified {
		ne := s.updateStored(st, key, stale, creq, &resp.Header, reqTime, respTime)
		closeResponse(resp)
		return fetchResult{entry: ne, code: code}
	}
	if sie != nil && code >= 500 {
		closeResponse(resp)
		return fetchResult{entry: sie, code: code}
	}

	info := responseInfo(&resp.Header, code)
	p := cache.Evaluate(creq, info, reqTime, respTime, st.Defaults)
	varyNames, keyable := cache.VaryNames(info.Vary)
	if p.Store && !keyable {
		p = cache.Policy{Reason: cache.ReasonVaryTooMany}
	}
	if !p.Store {
		st.metrics.uncacheableInc(p.Reason)
		if passReason(p.Reason) {
			s.flight.Pass(key)
			if stale != nil {
				// The origin's current answer for this URL may not be
				// stored: the old copy must not stand in for it any more.
				s.store.Delete(key)
			}
		}
		return fetchResult{resp: resp, code: code, reason: p.Reason}
	}
	body, complete, err := readBody(resp, st.Defaults.MaxObjectBytes)
	if err != nil {
		// The origin failed mid-body: like no answer at all.
		closeResponse(resp)
		return fetchResult{entry: sie, err: err}
	}
	if !complete {
		st.metrics.uncacheableInc(cache.ReasonTooLarge)
		s.flight.Pass(key)
		return fetchResult{resp: resp, prefix: body, code: code, reason: cache.ReasonTooLarge}
	}
	if s.opt.RUM != nil {
		var injected bool
		if body, injected = injectRUM(&resp.Header, body, s.opt.RUMNonce); injected {
			weakenValidator(&resp.Header)
		}
	}
	var encoded []cache.Encoded
	if st.Compress {
		if encoded = encodeBody(&resp.Header, code, body); len(encoded) > 0 {
			// A digest of the identity body describes no coded copy.
			resp.Header.Del("Content-MD5")
			varyNames = withoutAcceptEncoding(varyNames)
		}
	}
	e := &cache.Entry{
		Key:          string(key),
		Site:         st.Name,
		Status:       code,
		Header:       storedFields(&resp.Header),
		Body:         body,
		ETag:         copyBytes(resp.Header.Peek("ETag")),
		LastModified: copyBytes(resp.Header.Peek("Last-Modified")),
		RequestTime:  reqTime,
		ResponseTime: respTime,
		Policy:       p,
		Encoded:      encoded,
	}
	if len(varyNames) > 0 {
		e.Vary = varyNames
		e.VaryValues = cache.AppendVaryValues(nil, e.Vary, vary)
	}
	for _, v := range resp.Header.PeekAll("Surrogate-Key") {
		e.Keys = cache.AppendKeys(e.Keys, v)
	}
	for _, v := range resp.Header.PeekAll("Cache-Tag") {
		e.Keys = cache.AppendKeys(e.Keys, v)
	}
	closeResponse(resp)
	s.store.Set(e)
	return fetchResult{entry: e, code: code}
}

// updateStored applies the header fields of a response that validates the
// stored response e (a 304, or a 200 to a HEAD) to it (RFC 9111 §3.2,
// §4.3.4), stores the updated entry when the new fields allow and returns
// it. When they forbid storing, the stored copy is dropped; the returned
// entry may still answer the request that brought them.
func (s *Server) updateStored(st *site, key []byte, e *cache.Entry, creq cache.Request, h *fasthttp.ResponseHeader, reqTime, respTime time.Time) *cache.Entry {
	info := responseInfo(h, e.Status)
	fillFromStored(&info, e)
	p := cache.Evaluate(creq, info, reqTime, respTime, st.Defaults)
	ne := e.Revalidated(storedFields(h), p, reqTime, respTime)
	if p.Store {
		s.store.Set(ne)
	} else {
		// The new headers forbid storing; the stored body is still the
		// current representation for this one response.
		s.store.Delete(key)
		st.metrics.uncacheableInc(p.Reason)
	}
	return ne
}

// policyRequest is what the cache policy reads of the client's request
// for a response fetched on its behalf: always a GET (HEAD fetches GET),
// and whether it carried Authorization (RFC 9111 §3.5).
func policyRequest(h cache.Header) cache.Request {
	return cache.Request{Method: []byte(fasthttp.MethodGet), Authorization: len(h.Peek("Authorization")) > 0}
}

// passReason tells which refusals are a property of the URL (remember it as
// hit-for-miss) rather than of one moment (an error status).
func passReason(r cache.Reason) bool {
	switch r {
	case cache.ReasonSetCookie, cache.ReasonPrivate, cache.ReasonNoStore, cache.ReasonVaryStar,
		cache.ReasonVaryTooMany, cache.ReasonTooLarge, cache.ReasonNoFreshness:
		return true
	}
	return false
}

func reasonDetail(r cache.Reason) string {
	switch r {
	case cache.ReasonNone:
		return ""
	case cache.ReasonSetCookie:
		return "set-cookie"
	case cache.ReasonNoStore:
		return "no-store"
	case cache.ReasonVaryStar:
		return "vary-star"
	case cache.ReasonVaryTooMany:
		return "vary-too-many"
	case cache.ReasonTooLarge:
		return "too-large"
	case cache.ReasonNoFreshness:
		return "no-freshness"
	}
	return r.String()
}

// readBody reads an origin body up to limit bytes. complete is false when the
// body is larger: body then holds what was read and the rest is still in
// resp's stream. A complete body is exactly as long as its capacity, so the
// bytes the store accounts for are the bytes the heap holds.
func readBody(resp *fasthttp.Response, limit int64) (body []byte, complete bool, err error) {
	cl := resp.Header.ContentLength()
	if cl > 0 && int64(cl) > limit {
		return nil, false, nil
	}
	stream := resp.BodyStream()
	if stream == nil {
		b := resp.Body()
		if int64(len(b)) > limit {
			return nil, false, nil
		}
		return copyBytes(b), true, nil
	}
	if cl >= 0 {
		body = make([]byte, cl)
		if _, err := io.ReadFull(stream, body); err != nil {
			return nil, false, err
		}
		return body, true, nil
	}
	// Chunked: read into a growing buffer, then keep an exact copy.
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(stream, limit+1))
	if err != nil {
		return nil, false, err
	}
	if n > limit {
		return buf.Bytes(), false, nil
	}
	return copyBytes(buf.Bytes()), true, nil
}

func closeResponse(resp *fasthttp.Response) {
	// The error only says the body was not read to its end; the connection
	// is then closed rather than reused, which is what we want.
	_ = resp.CloseBodyStream()
	fasthttp.ReleaseResponse(resp)
}
