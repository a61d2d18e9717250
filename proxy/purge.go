package proxy

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"regexp"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/edgevitals/edgevitals/cache"
)

// maxPurgePattern bounds a regex purge pattern; Go's regexp runs in linear
// time, so length is the only cost to bound.
const maxPurgePattern = 1024

// purge takes the invalidation requests CMS plugins send to a Varnish in
// front of the site:
//   - PURGE <url>: that URL, every variant;
//   - PURGE with Surrogate-Key: k1 k2 (Fastly style): every object tagged k1 or k2;
//   - BAN with Cache-Tags: k1 k2 (Drupal's Varnish purger): the same;
//   - PURGE with X-Purge-Method: regex (WordPress' Proxy Cache Purge): every
//     object of the site whose path matches the request path as a regular
//     expression, ".*" being the whole site.
//
// Soft purge (Fastly-Soft-Purge: 1 or X-Purge-Soft: 1) marks objects stale
// instead of deleting them. Only purge.allow addresses may purge.
func (s *Server) purge(ctx *fasthttp.RequestCtx, st *site) {
	if !s.purgeAllowed(ctx) {
		ctx.Error("purge not allowed from this address", fasthttp.StatusForbidden)
		return
	}
	h := &ctx.Request.Header
	soft := isOne(h.Peek("Fastly-Soft-Purge")) || isOne(h.Peek("X-Purge-Soft"))
	var n int
	var kind string
	switch {
	case len(h.Peek("Surrogate-Key")) > 0 || len(h.Peek("Cache-Tags")) > 0 || len(h.Peek("Cache-Tag")) > 0:
		var keys []string
		for _, name := range []string{"Surrogate-Key", "Cache-Tags", "Cache-Tag"} {
			for _, v := range h.PeekAll(name) {
				keys = cache.AppendKeys(keys, v)
			}
		}
		kind = "key"
		n = s.store.PurgeKeys(st.Name, keys, soft)
	case bytes.EqualFold(h.Peek("X-Purge-Method"), []byte("regex")):
		pattern := string(ctx.URI().PathOriginal())
		kind = "regex"
		if len(pattern) > maxPurgePattern {
			ctx.Error("purge pattern too long", fasthttp.StatusBadRequest)
			return
		}
		if pattern == "/.*" || pattern == ".*" {
			kind = "all"
			n = s.store.PurgeAll(st.Name, soft)
			break
		}
		re, err := regexp.Compile(pattern)
		if err != nil {
			ctx.Error("bad purge pattern: "+err.Error(), fasthttp.StatusBadRequest)
			return
		}
		n = s.store.PurgeMatch(st.Name, func(key string) bool { return re.MatchString(keyPath(key)) }, soft)
	case string(ctx.Method()) == "BAN":
		ctx.Error("BAN needs a Cache-Tags header", fasthttp.StatusBadRequest)
		return
	default:
		kind = "url"
		n = s.purgeURL(st, ctx.Host(), ctx.URI().Path(), ctx.URI().QueryString(), soft)
	}
	s.countPurge(kind, soft, n)
	ctx.SetContentType("application/json")
	body, _ := json.Marshal(map[string]int{"purged": n}) // a map of ints always marshals
	ctx.SetBody(body)
}

// purgeURL removes (or soft-purges) every variant of one URL under both schemes.
func (s *Server) purgeURL(st *site, host, path, query []byte, soft bool) int {
	var buf [1024]byte
	n := 0
	for _, scheme := range [][]byte{schemeHTTP, schemeHTTPS} {
		key := s.keyer.AppendKey(buf[:0], scheme, host, path, query)
		if soft {
			k := string(key)
			n += s.store.PurgeMatch(st.Name, func(other string) bool { return other == k }, true)
			continue
		}
		n += s.store.Delete(key)
	}
	return n
}

// keyPath returns the path and query of a cache key "scheme://host/path?q".
func keyPath(key string) string {
	if i := strings.Index(key, "://"); i >= 0 {
		rest := key[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			return rest[j:]
		}
		return "/"
	}
	return key
}

func (s *Server) purgeAllowed(ctx *fasthttp.RequestCtx) bool {
	addr, ok := netip.AddrFromSlice(ctx.RemoteIP())
	if !ok {
		return false
	}
	addr = addr.Unmap()
	for _, p := range s.opt.PurgeAllow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

func isOne(v []byte) bool { return len(v) == 1 && v[0] == '1' }
