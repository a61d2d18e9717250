package proxy

import (
	"bytes"
	"net/netip"
	"slices"

	"github.com/valyala/fasthttp"
)

// The real client. Behind a TLS terminator or load balancer the TCP peer is
// the proxy in front, not the visitor. Options.TrustedProxies names the
// proxies whose X-Forwarded-For and X-Forwarded-Proto are believed; with
// Options.ProxyProtocol the PROXY header's source address stands in for the
// TCP peer (proxyproto.go). Everything that depends on who the visitor is —
// purge.allow, the beacon rate limit, the X-Forwarded-For the origin gets,
// the scheme in the cache key and in X-Forwarded-Proto — asks this file.
//
// The rules, as nginx's realip module with real_ip_recursive on and Caddy's
// trusted_proxies apply them:
//   - an untrusted peer is the client; its X-Forwarded-For and
//     X-Forwarded-Proto are ignored (and overwritten towards the origin);
//   - from a trusted peer, X-Forwarded-For is walked right to left, skipping
//     trusted addresses: the first untrusted one is the client. When every
//     address is trusted, the leftmost is. An entry that is not an address
//     (garbage, "unknown", an obfuscated identifier) stops the walk: the last
//     good address is the client;
//   - a trusted peer's X-Forwarded-Proto is believed when it says http or
//     https: its last value (the one the nearest proxy set or appended), as
//     Caddy reads it. Otherwise the connection tells: TLS, or a PROXY v2
//     header whose SSL TLV says the client used TLS.

// visitor is who sent a request, seen through the trusted proxies in front.
type visitor struct {
	addr  netip.Addr // the visitor; invalid when the connection has no IP address
	https bool       // the visitor used HTTPS
	// chain is addr, then the trusted proxies after it, then the peer:
	// the vouched-for part of X-Forwarded-For, as the origin gets it.
	chain []netip.Addr
}

// realClient computes the real client of a request. It parses
// X-Forwarded-For and allocates, so only the paths that need the address
// call it, once each (purge, forwarding to the origin, beacons); a hit asks
// requestScheme alone.
func (s *Server) realClient(ctx *fasthttp.RequestCtx) visitor {
	peer := peerAddr(ctx)
	c := visitor{https: s.https(ctx, peer), chain: []netip.Addr{peer}}
	if s.trusted(peer) {
		c.chain = s.walkForwardedFor(&ctx.Request.Header, c.chain)
	} else {
		s.warnUntrustedTerminator(&ctx.Request.Header, peer)
	}
	slices.Reverse(c.chain)
	c.addr = c.chain[0]
	return c
}

// warnUntrustedTerminator logs, once, that a proxy on this host sends
// forwarding fields that are ignored because it is not trusted: the sign of
// a TLS terminator left out of trusted_proxies, where every visitor is the
// terminator and https pages are fetched and keyed as http. Only loopback
// peers count: visitors' own proxies add X-Forwarded-For too.
func (s *Server) warnUntrustedTerminator(h *fasthttp.RequestHeader, peer netip.Addr) {
	if !peer.IsLoopback() || s.log == nil || s.warnedForwarded.Load() {
		return
	}
	if len(h.Peek(fasthttp.HeaderXForwardedFor)) == 0 && len(h.Peek(fasthttp.HeaderXForwardedProto)) == 0 {
		return
	}
	if s.warnedForwarded.CompareAndSwap(false, true) {
		s.log.Warn("X-Forwarded-For and X-Forwarded-Proto from a proxy on this host are ignored: list it in server.trusted_proxies if it is the TLS terminator",
			"peer", peer.String())
	}
}

// forwardingFields are the X-Forwarded-Proto and X-Forwarded-For values the
// origin gets: the visitor's scheme, and the real client followed by the
// trusted proxies it came through and the peer. What is left of the real
// client in the incoming field is vouched for by nobody and not passed on.
func (s *Server) forwardingFields(ctx *fasthttp.RequestCtx) (proto, forwardedFor []byte) {
	c := s.realClient(ctx)
	proto = schemeHTTP
	if c.https {
		proto = schemeHTTPS
	}
	for i, a := range c.chain {
		if i > 0 {
			forwardedFor = append(forwardedFor, ", "...)
		}
		if a.IsValid() {
			forwardedFor = a.AppendTo(forwardedFor)
		} else {
			forwardedFor = append(forwardedFor, "unknown"...)
		}
	}
	return proto, forwardedFor
}

// requestScheme is the scheme the visitor used, by the rules above. It is
// part of the cache key (WordPress writes absolute URLs), and the same
// answer goes to the origin in X-Forwarded-Proto, so a stored page is always
// one the origin built for its scheme. It does not allocate: a hit asks it.
func (s *Server) requestScheme(ctx *fasthttp.RequestCtx) []byte {
	if s.https(ctx, peerAddr(ctx)) {
		return schemeHTTPS
	}
	return schemeHTTP
}

// https reports whether the visitor used HTTPS: a trusted peer's
// X-Forwarded-Proto when it says, else the connection. It does not allocate.
func (s *Server) https(ctx *fasthttp.RequestCtx, peer netip.Addr) bool {
	if s.trusted(peer) {
		if https, ok := forwardedProto(&ctx.Request.Header); ok {
			return https
		}
	}
	if ctx.IsTLS() {
		return true
	}
	pc, ok := acceptedConn(ctx).(*proxyConn)
	return ok && pc.clientTLS()
}

// peerAddr is the address of the other end of the connection: the TCP peer,
// or the source address of the connection's PROXY header. It is invalid when
// the connection has no IP address. It does not allocate.
func peerAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	a, ok := netip.AddrFromSlice(ctx.RemoteIP())
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

// trusted reports whether a is one of Options.TrustedProxies.
func (s *Server) trusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range s.opt.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// walkForwardedFor appends to chain (whose last element is a trusted peer)
// the X-Forwarded-For addresses, right to left across every field line,
// while they are trusted: the last one appended is the real client. It stops
// at the first untrusted address (appended: it is the client) and at the
// first entry that is not an address (not appended: the last good one is).
func (s *Server) walkForwardedFor(h *fasthttp.RequestHeader, chain []netip.Addr) []netip.Addr {
	// Every field line, in order. fasthttp refuses X-Forwarded-* trailers
	// (TestForwardedTrailersRefused), so these all came before the body.
	lines := h.PeekAll(fasthttp.HeaderXForwardedFor)
	for i := len(lines) - 1; i >= 0; i-- {
		v := lines[i]
		for len(v) > 0 {
			elem := v
			if j := bytes.LastIndexByte(v, ','); j >= 0 {
				elem, v = v[j+1:], v[:j]
			} else {
				v = nil
			}
			elem = bytes.TrimSpace(elem)
			if len(elem) == 0 {
				continue // "a, , b": empty list elements count for nothing (RFC 9110 §5.6.1)
			}
			a, ok := parseForwardedAddr(elem)
			if !ok {
				return chain
			}
			chain = append(chain, a)
			if !s.trusted(a) {
				return chain
			}
		}
	}
	return chain
}

// maxForwardedAddr bounds one X-Forwarded-For entry: "[v6]:port" is at most 47 bytes.
const maxForwardedAddr = 64

// parseForwardedAddr reads one X-Forwarded-For entry: an IPv4 or IPv6
// address, optionally with a port ("192.0.2.1:443", "[2001:db8::1]:443") or
// in brackets. Zones, names and anything else are not addresses.
func parseForwardedAddr(b []byte) (netip.Addr, bool) {
	if len(b) > maxForwardedAddr {
		return netip.Addr{}, false
	}
	s := string(b)
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		switch {
		case perr == nil:
			a = ap.Addr()
		case len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']':
			if a, err = netip.ParseAddr(s[1 : len(s)-1]); err != nil || !a.Is6() {
				return netip.Addr{}, false
			}
		default:
			return netip.Addr{}, false
		}
	}
	if a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// forwardedProto reads X-Forwarded-Proto: its last value, https or http
// (any case). ok is false when the field is absent or says something else.
// It does not allocate.
func forwardedProto(h *fasthttp.RequestHeader) (https, ok bool) {
	lines := h.PeekAll(fasthttp.HeaderXForwardedProto)
	if len(lines) == 0 {
		return false, false
	}
	v := lines[len(lines)-1]
	if j := bytes.LastIndexByte(v, ','); j >= 0 {
		v = v[j+1:]
	}
	switch v = bytes.TrimSpace(v); {
	case bytes.EqualFold(v, schemeHTTPS):
		return true, true
	case bytes.EqualFold(v, schemeHTTP):
		return false, true
	}
	return false, false
}
