package proxy

import "strconv"

// cacheStatus is one member of the Cache-Status response field (RFC 9211)
// that edgevitals adds, e.g. `edgevitals; hit; ttl=118` or
// `edgevitals; fwd=uri-miss; fwd-status=200; stored`.
type cacheStatus struct {
	hit       bool
	fwd       string // "", "uri-miss", "vary-miss", "stale", "bypass", "request"
	fwdStatus int    // status the origin answered, 0 when not forwarded (or no answer)
	ttl       int64  // remaining freshness in seconds, shown when hasTTL
	hasTTL    bool
	stored    bool
	collapsed bool   // this request waited for another request's origin fetch
	detail    string // short token: "cookie", "stale-while-revalidate", "origin-timeout"...
}

// cacheName is the cache's identifier in Cache-Status.
const cacheName = "edgevitals"

// appendTo writes the member to dst without allocating (dst has room).
func (c cacheStatus) appendTo(dst []byte) []byte {
	dst = append(dst, cacheName...)
	if c.hit {
		dst = append(dst, "; hit"...)
	}
	if c.fwd != "" {
		dst = append(dst, "; fwd="...)
		dst = append(dst, c.fwd...)
	}
	if c.fwdStatus != 0 {
		dst = append(dst, "; fwd-status="...)
		dst = strconv.AppendInt(dst, int64(c.fwdStatus), 10)
	}
	if c.hasTTL {
		dst = append(dst, "; ttl="...)
		dst = strconv.AppendInt(dst, c.ttl, 10)
	}
	if c.stored {
		dst = append(dst, "; stored"...)
	}
	if c.collapsed {
		dst = append(dst, "; collapsed"...)
	}
	if c.detail != "" {
		dst = append(dst, "; detail="...)
		dst = append(dst, c.detail...)
	}
	return dst
}

// viewIndex is the page view's cache status as the field beacon reports it,
// an index into viewStatuses.
func (c cacheStatus) viewIndex() int {
	switch {
	case c.hit:
		return 0
	case c.fwd == "stale" && c.fwdStatus != 304:
		return 1
	case c.fwd == "bypass":
		return 2
	}
	return 3
}
