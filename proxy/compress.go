package proxy

import (
	"bytes"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/edgevitals/edgevitals/cache"
)

// Compression at the edge (Site.Compress): a compressible response the
// origin sent uncompressed is compressed once, when it is stored, as brotli
// and gzip, beside its identity body (cache.Entry.Encoded). Each client then
// gets the best coding its Accept-Encoding allows, chosen on the hit path by
// a scan of the (normalised) field that does not allocate. What the origin
// compressed itself is stored and served as it came.
//
// Validators: each coded copy gets the entity-tag of the identity body with
// "-br" or "-gzip" appended inside the quotes (W/ kept), so that a strong
// tag names one representation only (RFC 9110 §8.8.3) while staying strong:
// If-None-Match compares with the tag of the representation selected for
// the request, and If-Range keeps working on the identity body. The origin
// only ever sees its own tag (revalidation sends the stored identity tag).
//
// The origin: fetches that may be stored go without Accept-Encoding, so a
// well-behaved origin answers identity and the edge holds the one body every
// coding is made from (after beacon injection). Requests sent to the origin
// without storing (URLs remembered as uncacheable) carry the folded
// Accept-Encoding, so the origin may still compress those.
//
// Ranges: a request with a Range field gets the identity body, whole or cut,
// so that byte offsets always refer to one representation whatever the
// client's Accept-Encoding (RFC 9110 §14: ranges apply to the selected
// representation; identity is selected for every Range request).

const (
	// minCompressBytes: below this a body gains less from compression than
	// the Content-Encoding and Vary fields cost.
	minCompressBytes = 256
	// Levels: gzip 6 is zlib's default and nginx's common choice. Brotli 5
	// is the lowest level that comes out smaller than gzip 6 on CMS pages
	// (4 does not), at about twice gzip's time; 6 saves a few percent more
	// for another third (BenchmarkStoreCompress). Both run once per stored
	// object, never on a hit.
	gzipLevel   = 6
	brotliLevel = 5
	// maxPooledScratch: scratch buffers grown past this for a large body are
	// left to the collector rather than kept for ever.
	maxPooledScratch = 1 << 20
)

// Content-coding tokens, as sent in Content-Encoding and matched in
// Accept-Encoding.
var (
	codingBr   = []byte("br")
	codingGzip = []byte("gzip")
)

// Folded Accept-Encoding values for sites that compress (see
// acceptEncoding.edgeFold): the codings the edge may send, most preferred
// first, with weights that say so to the origin too (a folded value folds
// to itself); identity is always acceptable as the last resort, so it is
// not listed. Five values keep the variants of origin-encoded pages few.
const (
	foldBrGzip = "br, gzip"
	foldGzipBr = "gzip, br;q=0.5"
	foldBr     = "br"
	foldGzip   = "gzip"
)

// acceptEncoding gathers the weights an Accept-Encoding field gives the
// codings the edge knows (RFC 9110 §12.5.3), over all of its lines. Weights
// are in thousandths; -1 means not listed.
type acceptEncoding struct {
	br, gzip, identity, star int
}

func newAcceptEncoding() acceptEncoding {
	return acceptEncoding{br: -1, gzip: -1, identity: -1, star: -1}
}

// add reads one Accept-Encoding line. A member whose weight does not parse
// is ignored (so not acceptable, unless "*" allows it); a coding listed
// twice keeps its first weight. It does not allocate.
func (a *acceptEncoding) add(v []byte) {
	forEachToken(v, func(tok []byte) {
		name, params, _ := bytes.Cut(tok, []byte(";"))
		name = bytes.TrimSpace(name)
		var dst *int
		switch {
		case bytes.EqualFold(name, codingBr):
			dst = &a.br
		case bytes.EqualFold(name, codingGzip), bytes.EqualFold(name, []byte("x-gzip")):
			dst = &a.gzip // x-gzip is gzip (RFC 9110 §8.4.1.3)
		case bytes.EqualFold(name, []byte("identity")):
			dst = &a.identity
		case len(name) == 1 && name[0] == '*':
			dst = &a.star
		default:
			return
		}
		q, ok := weight(params)
		if ok && *dst < 0 {
			*dst = q
		}
	})
}

// weight reads the q parameter of a member's parameters: 1000 when there
// is none; ok is false when it is not a qvalue (RFC 9110 §12.4.2).
func weight(params []byte) (q int, ok bool) {
	for len(params) > 0 {
		var p []byte
		p, params, _ = bytes.Cut(params, []byte(";"))
		k, v, _ := bytes.Cut(bytes.TrimSpace(p), []byte("="))
		if !bytes.EqualFold(bytes.TrimSpace(k), []byte("q")) {
			continue
		}
		return parseQValue(bytes.TrimSpace(v))
	}
	return 1000, true
}

// parseQValue parses qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
// into thousandths.
func parseQValue(v []byte) (int, bool) {
	if len(v) == 0 || len(v) > 5 || v[0] != '0' && v[0] != '1' {
		return 0, false
	}
	q := int(v[0]-'0') * 1000
	if len(v) == 1 {
		return q, true
	}
	if v[1] != '.' {
		return 0, false
	}
	scale := 100
	for _, c := range v[2:] {
		if c < '0' || c > '9' || q == 1000 && c != '0' {
			return 0, false
		}
		q += int(c-'0') * scale
		scale /= 10
	}
	return q, true
}

// of is the weight of a coding given its own (-1 when not listed): "*"
// stands for any coding not listed, and a coding neither listed nor
// covered by "*" is not acceptable.
func (a *acceptEncoding) of(w int) int {
	switch {
	case w >= 0:
		return w
	case a.star >= 0:
		return a.star
	}
	return 0
}

// acceptsGzip reports whether gzip is acceptable (q > 0): the one coding
// the origin is asked for on sites that do not compress.
func (a *acceptEncoding) acceptsGzip() bool { return a.of(a.gzip) > 0 }

// edgeFold is the folded value for a site that compresses: the codings the
// client accepts at least as much as identity, the more wanted first, br
// before gzip when the client ranks them equal (the edge prefers the
// smaller); "" when none. Identity unlisted and not covered by "*" counts
// as acceptable at the lowest weight, so any acceptable coding beats it;
// identity;q=0 only means that a coding is sent whenever one is acceptable
// (the edge never answers 406: identity is the last resort).
func (a *acceptEncoding) edgeFold() string {
	id := 1
	if a.identity >= 0 || a.star >= 0 {
		id = a.of(a.identity)
	}
	br, gz := a.of(a.br), a.of(a.gzip)
	okBr, okGz := br > 0 && br >= id, gz > 0 && gz >= id
	switch {
	case okBr && okGz && gz > br:
		return foldGzipBr
	case okBr && okGz:
		return foldBrGzip
	case okBr:
		return foldBr
	case okGz:
		return foldGzip
	}
	return ""
}

// selectEncoded picks the stored copy to send to a request whose
// Accept-Encoding was folded by normalizeCacheable (ae, a list of codings
// in the client's order of preference): the first listed that e holds, or
// nil for the identity body. It does not allocate.
func selectEncoded(ae []byte, e *cache.Entry) *cache.Encoded {
	if len(e.Encoded) == 0 || len(ae) == 0 {
		return nil
	}
	var pick *cache.Encoded
	forEachToken(ae, func(tok []byte) {
		if pick != nil {
			return
		}
		name, _, _ := bytes.Cut(tok, []byte(";"))
		for i := range e.Encoded {
			if bytes.Equal(e.Encoded[i].Coding, name) {
				pick = &e.Encoded[i]
				return
			}
		}
	})
	return pick
}

// compressible tells, by Content-Type, the responses worth compressing:
// text (HTML, CSS, JavaScript, plain, CSV, XML), JSON, XML and SVG. Images
// but SVG, fonts, archives and media are compressed already or gain little.
// It does not allocate.
func compressible(ct []byte) bool {
	ct, _, _ = bytes.Cut(ct, []byte(";"))
	ct = bytes.TrimSpace(ct)
	typ, sub, ok := bytes.Cut(ct, []byte("/"))
	if !ok {
		return false
	}
	eq := bytes.EqualFold
	switch {
	case eq(typ, []byte("text")):
		return !eq(sub, []byte("event-stream")) // a stream, never stored whole
	case eq(typ, []byte("application")):
		for _, s := range compressibleApplication {
			if eq(sub, []byte(s)) {
				return true
			}
		}
		return hasSuffixFold(sub, "+json") || hasSuffixFold(sub, "+xml")
	case eq(typ, []byte("image")):
		return eq(sub, []byte("svg+xml")) || eq(sub, []byte("x-icon")) || eq(sub, []byte("vnd.microsoft.icon"))
	}
	return false
}

// compressibleApplication are the application/ subtypes compressed beside
// those ending in +json or +xml.
var compressibleApplication = []string{
	"javascript", "x-javascript", "ecmascript", "json", "xml", "xhtml+xml",
	"wasm", "x-www-form-urlencoded", "graphql", "manifest+json",
}

func hasSuffixFold(b []byte, suffix string) bool {
	return len(b) >= len(suffix) && bytes.EqualFold(b[len(b)-len(suffix):], []byte(suffix))
}

// encodeBody compresses the body of a response about to be stored, as
// brotli and gzip, when that is allowed and worth it: a 200 that the origin
// did not encode (no Content-Encoding at all), without Cache-Control:
// no-transform (RFC 9110 §7.7), of a compressible type, of at least
// minCompressBytes (the body is at most the site's max_object_bytes
// already: readBody). A copy that does not come out smaller is left out.
// The copies are exact-size allocations, so the store's accounting is the
// heap's. h is the header as it will be stored (after beacon injection).
func encodeBody(h *fasthttp.ResponseHeader, status int, body []byte) []cache.Encoded {
	if status != fasthttp.StatusOK || len(body) < minCompressBytes || len(h.Peek("Content-Encoding")) > 0 ||
		len(h.Peek("Content-Range")) > 0 || !compressible(h.ContentType()) {
		return nil
	}
	for _, v := range h.PeekAll("Cache-Control") {
		if cache.ParseCacheControl(v).NoTransform {
			return nil
		}
	}
	etag := h.Peek("ETag")
	var out []cache.Encoded
	add := func(coding []byte, encoded []byte) {
		if len(encoded) >= len(body) {
			return
		}
		out = append(out, cache.Encoded{Coding: coding, Body: copyBytes(encoded), ETag: codingETag(etag, coding)})
	}
	scratch := encodePool.Get().(*[]byte)
	buf := fasthttp.AppendBrotliBytesLevel((*scratch)[:0], body, brotliLevel)
	add(codingBr, buf)
	buf = fasthttp.AppendGzipBytesLevel(buf[:0], body, gzipLevel)
	add(codingGzip, buf)
	if cap(buf) <= maxPooledScratch {
		*scratch = buf[:0]
		encodePool.Put(scratch)
	}
	return out
}

// codingETag marks an entity-tag for one content coding: `"abc"` becomes
// `"abc-br"`, `W/"abc"` becomes `W/"abc-br"`. It returns nil for no tag or
// one that is not an entity-tag, so the coded copy has no validator rather
// than a wrong one. The result is a fresh copy.
func codingETag(etag, coding []byte) []byte {
	op := bytes.TrimPrefix(etag, []byte("W/"))
	if len(op) < 2 || op[0] != '"' || op[len(op)-1] != '"' {
		return nil
	}
	n := len(etag) - 1
	out := make([]byte, 0, len(etag)+1+len(coding))
	out = append(out, etag[:n]...)
	out = append(out, '-')
	out = append(out, coding...)
	return append(out, '"')
}

// listsAcceptEncoding reports whether a Vary value names Accept-Encoding. It
// does not allocate.
func listsAcceptEncoding(v []byte) bool {
	found := false
	forEachToken(v, func(tok []byte) {
		found = found || bytes.EqualFold(tok, []byte("Accept-Encoding"))
	})
	return found
}

// withoutAcceptEncoding drops accept-encoding from lowercased Vary names
// (cache.VaryNames): an entry holding every coding answers any
// Accept-Encoding, so it must not be keyed on it.
func withoutAcceptEncoding(names []string) []string {
	out := names[:0:0]
	for _, n := range names {
		if n != "accept-encoding" {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// encodePool holds the scratch buffer compression writes into before the
// exact-size copy is kept.
var encodePool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}
