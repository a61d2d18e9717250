package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
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
	req := PurgeRequest{Site: st.Name, Soft: &soft}
	switch {
	case len(h.Peek("Surrogate-Key")) > 0 || len(h.Peek("Cache-Tags")) > 0 || len(h.Peek("Cache-Tag")) > 0:
		for _, name := range []string{"Surrogate-Key", "Cache-Tags", "Cache-Tag"} {
			for _, v := range h.PeekAll(name) {
				req.Keys = cache.AppendKeys(req.Keys, v)
			}
		}
	case bytes.EqualFold(h.Peek("X-Purge-Method"), []byte("regex")):
		req.Regex = string(ctx.URI().PathOriginal())
	case string(ctx.Method()) == "BAN":
		ctx.Error("BAN needs a Cache-Tags header", fasthttp.StatusBadRequest)
		return
	default:
		req.URLs = []string{"http://" + string(ctx.Host()) + string(ctx.RequestURI())}
	}
	n, err := s.Purge(req)
	if err != nil {
		ctx.Error(err.Error(), fasthttp.StatusBadRequest)
		return
	}
	failed := []string{}
	if s.opt.Fanout != nil {
		failed = s.opt.Fanout(context.Background(), req)
	}
	stampDate(&ctx.Response.Header)
	b, _ := json.Marshal(PurgeResponse{Purged: n, FailedPeers: failed}) // an int and strings always marshal
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}

// purgeURL removes (or soft-purges) every variant of one URL under both schemes.
func (s *Server) purgeURL(st *site, host, path, query []byte, soft bool) int {
	var buf [1024]byte
	n := 0
	for _, scheme := range [][]byte{schemeHTTP, schemeHTTPS} {
		key := s.keyer.AppendKey(buf[:0], scheme, host, path, query)
		if soft {
			n += s.store.PurgeKey(st.Name, key, true)
			continue
		}
		n += s.store.Delete(key)
	}
	return n
}

// purgeAllowed reports whether the real client (seen through the trusted
// proxies) is in purge.allow: behind a local TLS terminator the TCP peer is
// loopback for every visitor.
func (s *Server) purgeAllowed(ctx *fasthttp.RequestCtx) bool {
	addr := s.realClient(ctx).addr
	if !addr.IsValid() {
		return false
	}
	for _, p := range s.opt.PurgeAllow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

func isOne(v []byte) bool { return len(v) == 1 && v[0] == '1' }

// PurgeRequest is the body of POST /api/purge.
type PurgeRequest struct {
	Site   string   `json:"site"`
	URLs   []string `json:"urls"`
	Keys   []string `json:"keys"`
	Prefix string   `json:"prefix"`
	Regex  string   `json:"regex"` // a regular expression over path and query
	All    bool     `json:"all"`
	Soft   *bool    `json:"soft"` // default: soft for all, hard otherwise
}

// PurgeResponse is its answer.
type PurgeResponse struct {
	Purged      int      `json:"purged"`
	FailedPeers []string `json:"failed_peers"`
}

// Purge applies a purge request to the local cache and returns the number
// of objects purged.
func (s *Server) Purge(req PurgeRequest) (int, error) {
	modes := 0
	if len(req.URLs) > 0 {
		modes++
	}
	if len(req.Keys) > 0 {
		modes++
	}
	if req.Prefix != "" {
		modes++
	}
	if req.Regex != "" {
		modes++
	}
	if req.All {
		modes++
	}
	if modes != 1 {
		return 0, fmt.Errorf("give exactly one of urls, keys, prefix, regex or all")
	}
	soft := req.All
	if req.Soft != nil {
		soft = *req.Soft
	}
	var st *site
	if req.Site != "" {
		if st = s.siteNamed(req.Site); st == nil {
			return 0, fmt.Errorf("unknown site %q", req.Site)
		}
	} else if len(req.URLs) == 0 && !req.All {
		return 0, fmt.Errorf("site is required for keys, prefix and regex")
	}
	if req.Regex == ".*" || req.Regex == "/.*" {
		req.Regex, req.All = "", true
	}
	switch {
	case req.All:
		name := ""
		if st != nil {
			name = st.Name
		}
		n := s.store.PurgeAll(name, soft)
		s.countPurge("all", soft, n)
		return n, nil
	case len(req.Keys) > 0:
		n := s.store.PurgeKeys(st.Name, req.Keys, soft)
		s.countPurge("key", soft, n)
		return n, nil
	case req.Regex != "":
		if len(req.Regex) > maxPurgePattern {
			return 0, fmt.Errorf("regex longer than %d bytes", maxPurgePattern)
		}
		re, err := regexp.Compile(req.Regex)
		if err != nil {
			return 0, fmt.Errorf("bad regex: %w", err)
		}
		n := s.store.PurgeMatch(st.Name, func(key string) bool { return re.MatchString(cache.KeyPath(key)) }, soft)
		s.countPurge("regex", soft, n)
		return n, nil
	case req.Prefix != "":
		if !strings.HasPrefix(req.Prefix, "/") {
			return 0, fmt.Errorf("prefix must start with /, got %q", req.Prefix)
		}
		prefix := req.Prefix
		n := s.store.PurgeMatch(st.Name, func(key string) bool { return strings.HasPrefix(cache.KeyPath(key), prefix) }, soft)
		s.countPurge("prefix", soft, n)
		return n, nil
	}
	total := 0
	for _, raw := range req.URLs {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return total, fmt.Errorf("url %q: want an absolute URL", raw)
		}
		target := s.route([]byte(u.Host))
		if target == nil || (st != nil && target != st) {
			return total, fmt.Errorf("url %q: host is not served by site %q", raw, req.Site)
		}
		path := u.EscapedPath()
		if path == "" {
			path = "/"
		}
		// Key the path as the proxy does: fasthttp's normalised, decoded path.
		uri := fasthttp.AcquireURI()
		uri.SetPath(path)
		n := s.purgeURL(target, []byte(u.Host), uri.Path(), []byte(u.RawQuery), soft)
		fasthttp.ReleaseURI(uri)
		s.countPurge("url", soft, n)
		total += n
	}
	return total, nil
}
