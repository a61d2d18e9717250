package proxy

import (
	"bytes"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/edgevitals/edgevitals/cache"
)

// Range requests (RFC 9110 §14) are answered from stored complete
// responses: a miss for a Range request fetches the whole object without
// Range, stores it when the policy allows, and cuts the range from it, so
// every later range of the object is a hit. Nothing partial is stored.

// rangeAnswer is what a Range field asks of a stored representation.
type rangeAnswer uint8

const (
	rangeWhole         rangeAnswer = iota // no usable Range: the whole 200, as if none was sent
	rangePartial                          // one satisfiable range: 206 with Content-Range
	rangeUnsatisfiable                    // no range overlaps the representation: 416
)

// maxRangeSpecs bounds the comma-separated ranges one Range field is
// parsed for; a longer list is answered with the whole representation.
const maxRangeSpecs = 64

// parseRange evaluates a Range field value against a representation of
// size bytes (RFC 9110 §14.1.2, §14.2). A single satisfiable range gives
// rangePartial with its first and last byte (last clipped to the end). An
// invalid field, another unit, an empty representation and a list of
// several ranges with one satisfiable give rangeWhole: a server may always
// ignore Range, and several ranges would need multipart/byteranges. A set
// with no satisfiable range gives rangeUnsatisfiable. It does not allocate.
func parseRange(v []byte, size int64) (first, last int64, a rangeAnswer) {
	unit, set, ok := bytes.Cut(v, []byte("="))
	if !ok || !bytes.EqualFold(bytes.TrimSpace(unit), []byte("bytes")) || size <= 0 {
		return 0, 0, rangeWhole
	}
	specs, satisfiable := 0, 0
	for len(set) > 0 {
		var spec []byte
		if i := bytes.IndexByte(set, ','); i >= 0 {
			spec, set = set[:i], set[i+1:]
		} else {
			spec, set = set, nil
		}
		spec = bytes.TrimSpace(spec)
		if len(spec) == 0 {
			continue // empty list elements are allowed (RFC 9110 §5.6.1)
		}
		if specs++; specs > maxRangeSpecs {
			return 0, 0, rangeWhole
		}
		lo, hi, ok := bytes.Cut(spec, []byte("-"))
		if !ok {
			return 0, 0, rangeWhole
		}
		var f, l int64
		switch {
		case len(lo) == 0: // suffix-range: the last n bytes
			n, ok := rangeNumber(hi)
			if !ok {
				return 0, 0, rangeWhole
			}
			if n == 0 {
				continue
			}
			f, l = max(0, size-n), size-1
		default:
			var ok bool
			if f, ok = rangeNumber(lo); !ok {
				return 0, 0, rangeWhole
			}
			l = size - 1
			if len(hi) > 0 {
				n, ok := rangeNumber(hi)
				if !ok || n < f {
					return 0, 0, rangeWhole // last-pos before first-pos: invalid
				}
				l = min(n, size-1)
			}
			if f >= size {
				continue
			}
		}
		satisfiable++
		first, last = f, l
	}
	switch {
	case specs == 0:
		return 0, 0, rangeWhole
	case satisfiable == 0:
		return 0, 0, rangeUnsatisfiable
	case specs > 1:
		return 0, 0, rangeWhole
	}
	return first, last, rangePartial
}

// rangeNumber parses the digits of a first-pos, last-pos or suffix-length.
// Values too large for int64 are refused.
func rangeNumber(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// ifRangeHolds evaluates If-Range against a stored response (RFC 9110
// §13.1.5): an entity-tag must match the stored ETag by the strong
// comparison, a date must equal the stored Last-Modified. Absent, it holds.
func ifRangeHolds(v []byte, e *cache.Entry) bool {
	if len(v) == 0 {
		return true
	}
	if v[0] == '"' || bytes.HasPrefix(v, []byte("W/")) {
		return len(e.ETag) > 0 && v[0] == '"' && e.ETag[0] == '"' && bytes.Equal(v, e.ETag)
	}
	if len(e.LastModified) == 0 {
		return false
	}
	since, err := fasthttp.ParseHTTPDate(v)
	if err != nil {
		return false
	}
	lm, err := fasthttp.ParseHTTPDate(e.LastModified)
	return err == nil && lm.Equal(since)
}

// entryRange decides how a request's Range applies to a stored entry: only
// GET has range semantics (RFC 9110 §14.2: HEAD and others get the whole
// response), only a 200 is cut, and a failed If-Range means the whole 200.
func entryRange(h *fasthttp.RequestHeader, e *cache.Entry) (first, last int64, a rangeAnswer) {
	v := h.Peek("Range")
	if len(v) == 0 || e.Status != fasthttp.StatusOK || !h.IsGet() {
		return 0, 0, rangeWhole
	}
	if !ifRangeHolds(h.Peek("If-Range"), e) {
		return 0, 0, rangeWhole
	}
	return parseRange(v, int64(len(e.Body)))
}

// appendContentRange formats a Content-Range value: "bytes first-last/size",
// or "bytes */size" for a 416 (first < 0).
func appendContentRange(dst []byte, first, last, size int64) []byte {
	dst = append(dst, "bytes "...)
	if first < 0 {
		dst = append(dst, '*')
	} else {
		dst = strconv.AppendInt(dst, first, 10)
		dst = append(dst, '-')
		dst = strconv.AppendInt(dst, last, 10)
	}
	dst = append(dst, '/')
	return strconv.AppendInt(dst, size, 10)
}

// keepClientRange puts the client's Range and If-Range back on a request
// that goes to the origin without being stored (a pass), so the origin cuts
// the range itself; both or neither, or a range of a newer representation
// could be joined to the client's older bytes.
func keepClientRange(dst, client *fasthttp.RequestHeader) {
	v := client.Peek("Range")
	if len(v) == 0 {
		return
	}
	dst.SetBytesV("Range", v)
	if ir := client.Peek("If-Range"); len(ir) > 0 {
		dst.SetBytesV("If-Range", ir)
	}
}

// rangeErrorField reports whether a stored field goes on a 416 made from
// the stored response: its metadata (Cache-Control, ETag, Date...) does,
// the Content-* fields describing a body the 416 does not carry do not.
func rangeErrorField(name []byte) bool {
	return len(name) < 8 || !bytes.EqualFold(name[:8], []byte("Content-"))
}

// rangeRetry reports whether a Range request's miss, whose whole object
// turned out too large to store before any of its body was read, should go
// to the origin again with the client's Range (see keepClientRange)
// instead of relaying the whole object.
func rangeRetry(h *fasthttp.RequestHeader, r fetchResult) bool {
	return r.reason == cache.ReasonTooLarge && len(r.prefix) == 0 && r.code == fasthttp.StatusOK &&
		h.IsGet() && len(h.Peek("Range")) > 0
}
