package proxy

import (
	"bytes"
	"iter"

	"github.com/valyala/fasthttp"
)

// hopByHop are the connection-specific fields of RFC 9110 §7.6.1 that a proxy
// must not forward, on requests and on responses. Fields named by the
// Connection header are removed as well (see connectionTokens).
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// poisonHeaders are request fields that common CMS stacks and frameworks
// read to rewrite the URL, host, scheme or method of a request. They are not
// part of the cache key, so they must never reach the origin on a cacheable
// request: one client could otherwise plant a response for everyone
// (web cache poisoning). edgevitals sets the X-Forwarded-* fields itself.
var poisonHeaders = []string{
	"X-Forwarded-Host", "X-Forwarded-Server", "X-Forwarded-Port", "X-Forwarded-Scheme",
	"X-Forwarded-Prefix", "X-Forwarded-Ssl", "X-Original-Url", "X-Rewrite-Url", "X-Original-Host",
	"X-Host", "X-Http-Method-Override", "X-Http-Method", "X-Method-Override", "Forwarded",
	"X-Real-Ip", "X-Client-Ip", "True-Client-Ip", "X-Cluster-Client-Ip", "X-Forwarded-Uri",
	"X-Wap-Profile", "X-Original-Method", "Front-End-Https", "X-Url-Scheme",
	"X-Forwarded-Protocol", "X-Original-Uri", "Cf-Visitor",
}

// forwardingHeaders are the request fields edgevitals owns: it removes every
// line the client sent of them from every origin request, and sets its own
// (Surrogate-Capability on cacheable requests only). Written with
// underscores they are other names to fasthttp but the same $_SERVER entry
// to nginx and PHP, so those spellings go too (isPoison, isField).
var forwardingHeaders = []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Surrogate-Capability"}

// neverForwarded are request fields removed from every origin request,
// cacheable or not: Proxy is httpoxy (CGI turns it into HTTP_PROXY, which
// PHP libraries take as their outgoing proxy), and Expect is answered by
// edgevitals, which has read the whole body before it forwards anything.
var neverForwarded = []string{"Proxy", "Expect"}

// maxFieldName bounds the names isPoison and isField look up; the lists
// fit (TestPoisonNamesFit).
const maxFieldName = 32

// isBodyField reports whether a request field describes the request's body
// (its framing, type, encoding, digest): when the proxy drops the body, these
// go with it, or the origin waits for bytes that never come (Content-Length,
// Transfer-Encoding) or parses a body that is not there.
func isBodyField(k []byte) bool {
	return len(k) > 8 && bytes.EqualFold(k[:8], []byte("Content-")) ||
		bytes.EqualFold(k, []byte("Transfer-Encoding")) || bytes.EqualFold(k, []byte("Digest"))
}

// forEachToken calls f for each comma-separated, trimmed token of v.
func forEachToken(v []byte, f func(tok []byte)) {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		var tok []byte
		if i < 0 {
			tok, v = v, nil
		} else {
			tok, v = v[:i], v[i+1:]
		}
		tok = bytes.TrimSpace(tok)
		if len(tok) > 0 {
			f(tok)
		}
	}
}

// connectionTokens returns a copy of the field names listed in Connection
// values, comma-separated, leaving out "close" and "keep-alive"; nil when there
// are none (the common case, which does not allocate). The copy lets callers
// delete fields while walking the names.
func connectionTokens(vals [][]byte) []byte {
	var out []byte
	for _, v := range vals {
		forEachToken(v, func(tok []byte) {
			if bytes.EqualFold(tok, []byte("close")) || bytes.EqualFold(tok, []byte("keep-alive")) {
				return
			}
			out = append(append(out, tok...), ',')
		})
	}
	return out
}

// storedHeaderSkip reports whether a response field is left out of a stored
// entry, beside the hop-by-hop fields (isHopByHop: Connection, Keep-Alive,
// Proxy-Connection, TE, Transfer-Encoding, Upgrade, Trailer and the proxy
// authentication fields) and those the Connection lines name (listed). RFC 9111
// §3.1: the connection-specific fields are removed before forwarding, "and
// this MAY be implemented by doing so before storage", and "Header fields that
// are specific to the proxy that a cache uses when forwarding a request MUST
// NOT be stored ... Effectively, this is limited to Proxy-Authenticate ...,
// Proxy-Authentication-Info ..., and Proxy-Authorization". Also left out: the
// fields that describe this one transfer (Content-Length, Age; Date is kept),
// cookies (a response with Set-Cookie is never stored, see cache.Evaluate), and
// Surrogate-Control, which is meant for surrogates like this one alone.
// CDN-Cache-Control is kept: it is forwarded to clients (see clientHeaderSkip).
func storedHeaderSkip(k []byte) bool {
	switch len(k) {
	case 3:
		return bytes.EqualFold(k, []byte("Age"))
	case 10:
		return bytes.EqualFold(k, []byte("Set-Cookie"))
	case 14:
		return bytes.EqualFold(k, []byte("Content-Length"))
	case 17:
		return bytes.EqualFold(k, []byte("Surrogate-Control"))
	case 25:
		return bytes.EqualFold(k, []byte("Proxy-Authentication-Info"))
	}
	return false
}

// clientHeaderSkip reports whether an origin response field is withheld from
// clients: Surrogate-Control always (Edge Architecture 1.0: a surrogate
// removes the directives meant for it), CDN-Cache-Control only when stripCDN
// (site.strip_cdn_cache_control), and the purge tags unless debug headers are
// on. RFC 9213 §3: "CDN caches that use CDN-Cache-Control will typically
// forward this header so that downstream CDN caches can use it as well.
// However, they MAY remove it when this is undesirable".
func clientHeaderSkip(k []byte, debug, stripCDN bool) bool {
	switch len(k) {
	case 17:
		return bytes.EqualFold(k, []byte("Surrogate-Control")) || stripCDN && bytes.EqualFold(k, []byte("CDN-Cache-Control"))
	case 13:
		return !debug && bytes.EqualFold(k, []byte("Surrogate-Key"))
	case 9:
		return !debug && bytes.EqualFold(k, []byte("Cache-Tag"))
	}
	return false
}

// isHopByHop reports whether k is one of the fixed hop-by-hop fields.
// endToEnd yields the fields of h that go on past this hop: neither the
// hop-by-hop fields nor those its Connection field names (RFC 9110
// §7.6.1). Responses copied to a client, to the cache or to an interim
// answer all pass through it.
func endToEnd(h *fasthttp.ResponseHeader) iter.Seq2[[]byte, []byte] {
	conn := connectionTokens(h.PeekAll("Connection"))
	return func(yield func(k, v []byte) bool) {
		for k, v := range h.All() {
			if isHopByHop(k) || listed(conn, k) {
				continue
			}
			if !yield(k, v) {
				return
			}
		}
	}
}

func isHopByHop(k []byte) bool {
	for _, h := range hopByHop {
		if bytes.EqualFold(k, []byte(h)) {
			return true
		}
	}
	return false
}

// listed reports whether k is among the comma-separated names in tokens
// (from connectionTokens).
func listed(tokens, k []byte) bool {
	found := false
	if len(tokens) > 0 {
		forEachToken(tokens, func(tok []byte) {
			found = found || bytes.EqualFold(tok, k)
		})
	}
	return found
}
