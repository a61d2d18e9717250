package proxy

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// withCompress turns on compression at the edge for the harness's site.
func withCompress(o *Options) { o.Sites[0].Compress = true }

// cmsPage is a deterministic HTML page of about n bytes that compresses
// like a CMS article: markup repeated around varied words.
func cmsPage(n int) string {
	r := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("the edge cache serves pages from memory while the origin renders each article once " +
		"visitors read posts comments categories tags about contact privacy checkout basket shipping returns")
	var b strings.Builder
	b.WriteString(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Article</title>` +
		`<link rel="stylesheet" href="/wp-content/themes/site/style.css?ver=6.4"></head><body class="post-template">`)
	for i := 0; b.Len() < n-40; i++ {
		fmt.Fprintf(&b, `<article id="post-%d" class="post type-post status-publish"><h2 class="entry-title"><a href="/%d/">`, i, r.IntN(99999))
		for range 8 + r.IntN(20) {
			b.WriteString(words[r.IntN(len(words))])
			b.WriteByte(' ')
		}
		b.WriteString(`</a></h2><div class="entry-content"><p>`)
		for range 30 + r.IntN(60) {
			b.WriteString(words[r.IntN(len(words))])
			b.WriteByte(' ')
		}
		b.WriteString("</p></div></article>\n")
	}
	b.WriteString("</body></html>")
	return b.String()
}

// decoded returns a response body decoded per its Content-Encoding.
func decoded(t *testing.T, r response) string {
	t.Helper()
	var (
		b   []byte
		err error
	)
	switch ce := r.Header.Get("Content-Encoding"); ce {
	case "":
		return r.Body
	case "br":
		b, err = fasthttp.AppendUnbrotliBytes(nil, []byte(r.Body))
	case "gzip":
		b, err = fasthttp.AppendGunzipBytes(nil, []byte(r.Body))
	default:
		t.Fatalf("Content-Encoding %q", ce)
	}
	if err != nil {
		t.Fatalf("decode %s body: %v", r.Header.Get("Content-Encoding"), err)
	}
	return string(b)
}

func varyList(h http.Header) []string {
	var out []string
	for _, v := range h.Values("Vary") {
		for m := range strings.SplitSeq(v, ",") {
			out = append(out, strings.ToLower(strings.TrimSpace(m)))
		}
	}
	return out
}

// TestCompressChoosesCoding: one stored object answers every
// Accept-Encoding with the coding it prefers (q-values, "*", q=0), the
// bytes decode to the origin's, and Content-Length, Vary and the ETag
// name that representation.
func TestCompressChoosesCoding(t *testing.T) {
	body := cmsPage(30 << 10)
	h := newHarness(t, page(body, "Cache-Control: max-age=3600", "Content-Type: text/html; charset=utf-8",
		"Vary: Accept-Encoding", `ETag: "v1"`), withCompress)
	f := func(ae, wantCE string) {
		t.Helper()
		var hdr []string
		if ae != "-" {
			hdr = append(hdr, "Accept-Encoding: "+ae)
		}
		r := h.get("/post/", hdr...)
		if r.Status != 200 {
			t.Fatalf("Accept-Encoding %q: status %d", ae, r.Status)
		}
		if got := r.Header.Get("Content-Encoding"); got != wantCE {
			t.Errorf("Accept-Encoding %q: Content-Encoding = %q, want %q", ae, got, wantCE)
		}
		if got := decoded(t, r); got != body {
			t.Errorf("Accept-Encoding %q: decoded body differs from the origin's (%d bytes, want %d)", ae, len(got), len(body))
		}
		if cl := r.Header.Get("Content-Length"); cl != strconv.Itoa(len(r.Body)) {
			t.Errorf("Accept-Encoding %q: Content-Length = %q, body %d bytes", ae, cl, len(r.Body))
		}
		if v := varyList(r.Header); len(v) != 1 || v[0] != "accept-encoding" {
			t.Errorf("Accept-Encoding %q: Vary = %q, want [accept-encoding]", ae, v)
		}
		wantTag := `"v1"`
		if wantCE != "" {
			wantTag = `"v1-` + wantCE + `"`
		}
		if got := r.Header.Values("ETag"); len(got) != 1 || got[0] != wantTag {
			t.Errorf("Accept-Encoding %q: ETag = %q, want %s", ae, got, wantTag)
		}
	}
	f("gzip, deflate, br, zstd", "br")
	f("br", "br")
	f("gzip", "gzip")
	f("-", "")
	f("", "")
	f("gzip;q=0, br", "br")
	f("gzip, br;q=0", "gzip")
	f("br;q=0.5, gzip", "gzip")
	f("br;q=0.5, gzip;q=0.5", "br")
	f("BR;Q=1.0, GZIP;q=0.9", "br")
	f("x-gzip", "gzip")
	f("*", "br")
	f("*;q=0", "")
	f("gzip;q=0, *", "br")
	f("identity;q=0", "") // nothing else acceptable: identity as the last resort
	f("identity;q=0, gzip;q=0.1", "gzip")
	f("gzip;q=0.5, identity", "")
	f("br;q=0.0001", "") // not a qvalue: ignored
	f("deflate, zstd", "")
	if n := h.originCount(); n != 1 {
		t.Errorf("origin saw %d requests, want 1 (one stored object for every coding)", n)
	}
	if ae := h.lastSeen().Header.Values("Accept-Encoding"); len(ae) != 0 {
		t.Errorf("origin was asked for Accept-Encoding %q, want identity (no field)", ae)
	}
}

// TestCompressAddsVary: an origin that sent no Vary gets one from the edge
// on every representation, identity too; another Vary name of the origin's
// stays keyed.
func TestCompressAddsVary(t *testing.T) {
	body := cmsPage(4 << 10)
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Content-Type", "text/css")
		w.Header().Set("Vary", "Accept-Language")
		fmt.Fprint(w, r.Header.Get("Accept-Language")+body)
	}, withCompress)
	for _, ae := range []string{"br", "gzip", "identity"} {
		r := h.get("/style.css", "Accept-Encoding: "+ae, "Accept-Language: fr")
		if v := varyList(r.Header); !strings.Contains(strings.Join(v, ","), "accept-encoding") || !strings.Contains(strings.Join(v, ","), "accept-language") {
			t.Errorf("Accept-Encoding %q: Vary = %q, want accept-language and accept-encoding", ae, v)
		}
		if got := decoded(t, r); got != "fr"+body {
			t.Errorf("Accept-Encoding %q: body starts %q", ae, got[:8])
		}
	}
	if r := h.get("/style.css", "Accept-Encoding: br", "Accept-Language: de"); !strings.HasPrefix(decoded(t, r), "de") {
		t.Errorf("another Accept-Language got the fr variant")
	}
	if n := h.originCount(); n != 2 {
		t.Errorf("origin saw %d requests, want 2 (one per language)", n)
	}
}

// TestCompressKeepsOriginEncoding: a body the origin encoded itself is
// stored and sent as it came, never encoded twice.
func TestCompressKeepsOriginEncoding(t *testing.T) {
	body := cmsPage(8 << 10)
	gz := fasthttp.AppendGzipBytesLevel(nil, []byte(body), 1)
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Vary", "Accept-Encoding")
		w.Header().Set("ETag", `W/"o1"`)
		w.Write(gz)
	}, withCompress)
	for range 2 {
		r := h.get("/gz/", "Accept-Encoding: br, gzip")
		if r.Header.Get("Content-Encoding") != "gzip" || r.Body != string(gz) || r.Header.Get("ETag") != `W/"o1"` {
			t.Errorf("origin gzip: Content-Encoding %q, ETag %q, body same %v; want the origin's bytes and fields",
				r.Header.Get("Content-Encoding"), r.Header.Get("ETag"), r.Body == string(gz))
		}
	}
}

// TestCompressLeavesIncompressible: images, fonts, tiny bodies and
// no-transform responses go out byte for byte, with no Vary added.
func TestCompressLeavesIncompressible(t *testing.T) {
	big := strings.Repeat("A", 4<<10)
	f := func(path, ct, body string, extra ...string) {
		t.Helper()
		h := newHarness(t, page(body, append([]string{"Cache-Control: max-age=3600", "Content-Type: " + ct}, extra...)...), withCompress)
		for range 2 {
			r := h.get(path, "Accept-Encoding: br, gzip")
			if ce := r.Header.Get("Content-Encoding"); ce != "" || r.Body != body || len(r.Header.Values("Vary")) != 0 {
				t.Errorf("%s (%s): Content-Encoding %q, Vary %q, body same %v; want it untouched", path, ct, ce, r.Header.Values("Vary"), r.Body == body)
			}
		}
	}
	f("/a.png", "image/png", big)
	f("/a.woff2", "font/woff2", big)
	f("/a.jpg", "image/jpeg", big)
	f("/tiny/", "text/html", strings.Repeat("x", minCompressBytes-1))
	f("/nt/", "text/html", big, "Cache-Control: no-transform")
}

// TestCompressHeadAndNotModified: HEAD and 304 describe the representation
// the request's Accept-Encoding selects.
func TestCompressHeadAndNotModified(t *testing.T) {
	body := cmsPage(16 << 10)
	h := newHarness(t, page(body, "Cache-Control: max-age=3600", "Content-Type: text/html", `ETag: "v2"`), withCompress)
	br := h.get("/p/", "Accept-Encoding: br")
	gz := h.get("/p/", "Accept-Encoding: gzip")

	head := h.do(http.MethodHead, "/p/", "Accept-Encoding: br")
	if head.Header.Get("Content-Encoding") != "br" || head.Header.Get("Content-Length") != strconv.Itoa(len(br.Body)) || head.Body != "" {
		t.Errorf("HEAD br: Content-Encoding %q, Content-Length %q (GET had %d), body %d bytes",
			head.Header.Get("Content-Encoding"), head.Header.Get("Content-Length"), len(br.Body), len(head.Body))
	}
	head = h.do(http.MethodHead, "/p/", "Accept-Encoding: gzip")
	if head.Header.Get("Content-Length") != strconv.Itoa(len(gz.Body)) || head.Header.Get("ETag") != `"v2-gzip"` {
		t.Errorf("HEAD gzip: Content-Length %q (GET had %d), ETag %q", head.Header.Get("Content-Length"), len(gz.Body), head.Header.Get("ETag"))
	}
	head = h.do(http.MethodHead, "/p/")
	if head.Header.Get("Content-Encoding") != "" || head.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
		t.Errorf("HEAD identity: Content-Encoding %q, Content-Length %q, want none and %d",
			head.Header.Get("Content-Encoding"), head.Header.Get("Content-Length"), len(body))
	}

	f := func(ae, inm string, want int, wantTag string) {
		t.Helper()
		hdr := []string{"If-None-Match: " + inm}
		if ae != "" {
			hdr = append(hdr, "Accept-Encoding: "+ae)
		}
		r := h.get("/p/", hdr...)
		if r.Status != want || r.Header.Get("ETag") != wantTag || !strings.Contains(strings.Join(varyList(r.Header), ","), "accept-encoding") {
			t.Errorf("Accept-Encoding %q, If-None-Match %s: %d ETag %q Vary %q, want %d %s with Vary", ae, inm, r.Status, r.Header.Get("ETag"), r.Header.Values("Vary"), want, wantTag)
		}
		if want == 200 && decoded(t, r) != body {
			t.Errorf("Accept-Encoding %q, If-None-Match %s: body differs", ae, inm)
		}
	}
	f("br", `"v2-br"`, 304, `"v2-br"`)
	f("br", `W/"v2-br"`, 304, `"v2-br"`) // If-None-Match compares weakly
	f("br", `"v2", "v2-br"`, 304, `"v2-br"`)
	f("gzip", `"v2-gzip"`, 304, `"v2-gzip"`)
	f("", `"v2"`, 304, `"v2"`)
	f("br", `"v2"`, 200, `"v2-br"`)        // the client holds identity: it gets the br representation
	f("gzip", `"v2-br"`, 200, `"v2-gzip"`) // another coding's tag does not validate this one
	f("", `"v2-gzip"`, 200, `"v2"`)
	if n := h.originCount(); n != 1 {
		t.Errorf("origin saw %d requests, want 1", n)
	}
}

// TestCompressAfterRUM: the beacon script is injected into the identity
// body first, then every coding is made from it.
func TestCompressAfterRUM(t *testing.T) {
	body := cmsPage(12 << 10)
	h := newHarness(t, page(body, "Cache-Control: max-age=3600", "Content-Type: text/html", `ETag: "r1"`),
		withRUM(t), withCompress)
	var plain string
	for _, ae := range []string{"", "gzip", "br"} {
		var hdr []string
		if ae != "" {
			hdr = append(hdr, "Accept-Encoding: "+ae)
		}
		r := h.get("/rum/", hdr...)
		got := decoded(t, r)
		if !strings.Contains(got, `<script src="`+rumScriptPath+`" async></script></head>`) {
			t.Errorf("Accept-Encoding %q: page has no beacon script before </head>", ae)
		}
		if plain == "" {
			plain = got
		} else if got != plain {
			t.Errorf("Accept-Encoding %q: decoded page differs from the identity one", ae)
		}
		want := `W/"r1"`
		if ae != "" {
			want = `W/"r1-` + ae + `"`
		}
		if tag := r.Header.Get("ETag"); tag != want {
			t.Errorf("Accept-Encoding %q: ETag %q, want %s (weak: the page was rewritten)", ae, tag, want)
		}
	}
}

// TestCompressRangeGetsIdentity: a Range request is cut from the identity
// body whatever its Accept-Encoding, and If-Range keeps the identity tag.
func TestCompressRangeGetsIdentity(t *testing.T) {
	body := cmsPage(8 << 10)
	h := newHarness(t, page(body, "Cache-Control: max-age=3600", "Content-Type: application/javascript", `ETag: "j1"`), withCompress)
	h.get("/app.js", "Accept-Encoding: br")
	f := func(hdr ...string) {
		t.Helper()
		r := h.get("/app.js", append([]string{"Accept-Encoding: br, gzip", "Range: bytes=100-199"}, hdr...)...)
		if r.Status != 206 || r.Header.Get("Content-Encoding") != "" || r.Body != body[100:200] ||
			r.Header.Get("Content-Range") != "bytes 100-199/"+strconv.Itoa(len(body)) || r.Header.Get("ETag") != `"j1"` {
			t.Errorf("Range %q: %d, Content-Encoding %q, Content-Range %q, ETag %q, identity bytes %v",
				hdr, r.Status, r.Header.Get("Content-Encoding"), r.Header.Get("Content-Range"), r.Header.Get("ETag"), r.Body == body[100:200])
		}
	}
	f()
	f(`If-Range: "j1"`)
	// A tag of a coded copy does not match the identity body: the whole
	// identity body comes back.
	r := h.get("/app.js", "Accept-Encoding: br", "Range: bytes=0-9", `If-Range: "j1-br"`)
	if r.Status != 200 || r.Header.Get("Content-Encoding") != "" || r.Body != body {
		t.Errorf("If-Range with the br tag: %d, Content-Encoding %q, whole identity body %v", r.Status, r.Header.Get("Content-Encoding"), r.Body == body)
	}
}

// TestCompressOffAsksOriginForGzip: a site that does not compress keeps the
// origin in charge: gzip or nothing is asked, and nothing is encoded.
func TestCompressOffAsksOriginForGzip(t *testing.T) {
	body := cmsPage(8 << 10)
	h := newHarness(t, page(body, "Cache-Control: max-age=3600", "Content-Type: text/html", "Vary: Accept-Encoding"))
	r := h.get("/off/", "Accept-Encoding: br, gzip")
	if r.Header.Get("Content-Encoding") != "" || r.Body != body {
		t.Errorf("compress off: Content-Encoding %q", r.Header.Get("Content-Encoding"))
	}
	if ae := h.lastSeen().Header.Values("Accept-Encoding"); len(ae) != 1 || ae[0] != "gzip" {
		t.Errorf("origin got Accept-Encoding %q, want [gzip]", ae)
	}
}

// TestCompressPassForwardsFolded: an uncacheable answer's later requests go
// to the origin with the folded Accept-Encoding, so the origin may still
// compress what the edge does not store.
func TestCompressPassForwardsFolded(t *testing.T) {
	h := newHarness(t, page("private", "Cache-Control: private", "Content-Type: text/html"), withCompress)
	h.get("/me/", "Accept-Encoding: gzip;q=0.8, br")
	h.get("/me/", "Accept-Encoding: gzip;q=0.8, br")
	if ae := h.lastSeen().Header.Values("Accept-Encoding"); len(ae) != 1 || ae[0] != foldBrGzip {
		t.Errorf("pass: origin got Accept-Encoding %q, want [%q]", ae, foldBrGzip)
	}
}

// TestCompressCurl: curl decodes what the edge sends to the origin's bytes,
// as a user checking the site with curl --compressed would see it.
func TestCompressCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed")
	}
	version, err := exec.Command(curl, "-V").Output()
	if err != nil {
		t.Fatalf("curl -V: %v", err)
	}
	body := cmsPage(30 << 10)
	h := newHarness(t, page(body, "Cache-Control: max-age=3600", "Content-Type: text/html"), withCompress)
	f := func(ae, wantCE string) {
		t.Helper()
		if ae == "br" && !bytes.Contains(bytes.ToLower(version), []byte("brotli")) {
			t.Logf("curl has no brotli: the br case is covered by TestCompressChoosesCoding with Go's decoder")
			return
		}
		out, err := exec.Command(curl, "-sS", "--compressed", "-H", "Host: www.example.com", "-H", "Accept-Encoding: "+ae,
			"-w", "\n%header{content-encoding}", "http://"+h.addr+"/curl/").Output()
		if err != nil {
			t.Fatalf("curl Accept-Encoding %q: %v", ae, err)
		}
		i := bytes.LastIndexByte(out, '\n') // -w writes the field after the body
		if i < 0 {
			t.Fatalf("curl Accept-Encoding %q: no -w output", ae)
		}
		got, ce := out[:i], out[i+1:]
		if string(ce) != wantCE || string(got) != body {
			t.Errorf("curl Accept-Encoding %q: Content-Encoding %q, decoded %d bytes; want %q and the origin's %d", ae, ce, len(got), wantCE, len(body))
		}
	}
	f("br", "br")
	f("gzip", "gzip")
	f("identity", "")
}

// TestAcceptEncodingFold: the folded Accept-Encoding of a compressing site,
// and whether a site that does not compress asks the origin for gzip.
func TestAcceptEncodingFold(t *testing.T) {
	f := func(want string, wantGzip bool, lines ...string) {
		t.Helper()
		a := newAcceptEncoding()
		for _, l := range lines {
			a.add([]byte(l))
		}
		if got := a.edgeFold(); got != want {
			t.Errorf("edgeFold(%q) = %q, want %q", lines, got, want)
		}
		if got := a.acceptsGzip(); got != wantGzip {
			t.Errorf("acceptsGzip(%q) = %v, want %v", lines, got, wantGzip)
		}
	}
	f(foldBrGzip, true, "gzip, deflate, br, zstd")
	f(foldBrGzip, true, "gzip", "br") // two lines are one list
	f(foldGzipBr, true, "br;q=0.2, gzip;q=0.3")
	f(foldBr, false, "gzip;q=0, br")
	f(foldBr, false, "gzip ; q=0.000, br")
	f(foldGzip, true, "gzip, br;q=0")
	f("", false, "br;q=0")
	f("", false, "")
	f("", false, "identity")
	f(foldBrGzip, true, "*")
	f("", false, "*;q=0")
	f("", true, "gzip;q=0.5, identity") // identity preferred; the origin may still gzip
	f(foldGzip, true, "gzip;q=0.5, identity;q=0.5")
	f("", false, "gzip;q=2")   // not a qvalue
	f("", false, "gzip;q=1.5") // not a qvalue
	f(foldGzip, true, "gzip;q=1.000")
	f(foldGzip, true, "gzip;level=1;q=0.9")
	f(foldGzip, true, "gzip, gzip;q=0") // the first weight counts
}

func TestCodingETag(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := string(codingETag([]byte(in), codingBr)); got != want {
			t.Errorf("codingETag(%q) = %q, want %q", in, got, want)
		}
	}
	f(`"abc"`, `"abc-br"`)
	f(`W/"abc"`, `W/"abc-br"`)
	f(`""`, `"-br"`)
	f(``, ``)
	f(`abc`, ``)
	f(`"abc`, ``)
	f(`W/`, ``)
}

func TestCompressible(t *testing.T) {
	f := func(ct string, want bool) {
		t.Helper()
		if got := compressible([]byte(ct)); got != want {
			t.Errorf("compressible(%q) = %v, want %v", ct, got, want)
		}
	}
	f("text/html; charset=utf-8", true)
	f("TEXT/CSS", true)
	f("text/plain", true)
	f("application/javascript", true)
	f("application/json", true)
	f("application/ld+json", true)
	f("application/rss+xml", true)
	f("image/svg+xml", true)
	f("text/event-stream", false)
	f("image/png", false)
	f("image/webp", false)
	f("font/woff2", false)
	f("application/octet-stream", false)
	f("application/zip", false)
	f("video/mp4", false)
	f("", false)
	f("html", false)
}

// TestCompressRevalidation: revalidating a stored page asks the origin with
// its own tag (never a coded copy's), and the coded copies survive a 304.
func TestCompressRevalidation(t *testing.T) {
	body := cmsPage(8 << 10)
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, body)
	}, withCompress)
	h.get("/reval/", "Accept-Encoding: br")
	h.clock.Advance(2 * time.Minute)
	r := h.get("/reval/", "Accept-Encoding: gzip", `If-None-Match: "v1-br"`)
	if inm := h.lastSeen().Header.Get("If-None-Match"); inm != `"v1"` {
		t.Errorf("origin got If-None-Match %q, want the identity tag \"v1\"", inm)
	}
	if n := h.originCount(); n != 2 {
		t.Fatalf("origin saw %d requests, want 2 (store, revalidate)", n)
	}
	if r.Status != 200 || r.Header.Get("Content-Encoding") != "gzip" || r.Header.Get("ETag") != `"v1-gzip"` || decoded(t, r) != body {
		t.Errorf("after a 304: %d, Content-Encoding %q, ETag %q; want 200 gzip \"v1-gzip\" with the page", r.Status, r.Header.Get("Content-Encoding"), r.Header.Get("ETag"))
	}
	r = h.get("/reval/", "Accept-Encoding: br", `If-None-Match: "v1-br"`)
	if r.Status != 304 || r.Header.Get("ETag") != `"v1-br"` {
		t.Errorf("revalidated entry, br tag: %d ETag %q, want 304 \"v1-br\"", r.Status, r.Header.Get("ETag"))
	}
}

// FuzzAcceptEncoding: any Accept-Encoding folds to one of the five values
// without a panic, and a folded value folds to itself, so a stored
// variant's key is stable.
func FuzzAcceptEncoding(f *testing.F) {
	for _, s := range []string{"gzip, deflate, br, zstd", "br;q=0.5, gzip;q=0.9", "*;q=0", "identity;q=0", "gzip;q=", ";;,,q=1", "x-gzip;Q=0.001", "br;q=1.0001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		a := newAcceptEncoding()
		a.add([]byte(v))
		got := a.edgeFold()
		switch got {
		case "", foldBr, foldGzip, foldBrGzip, foldGzipBr:
		default:
			t.Fatalf("edgeFold(%q) = %q, not a folded value", v, got)
		}
		b := newAcceptEncoding()
		b.add([]byte(got))
		if again := b.edgeFold(); again != got {
			t.Fatalf("edgeFold(%q) = %q, which folds to %q", v, got, again)
		}
	})
}

// TestCompressCoalescedWaiters: requests that wait for one origin fetch
// each get the coding their own Accept-Encoding prefers.
func TestCompressCoalescedWaiters(t *testing.T) {
	body := cmsPage(16 << 10)
	release := make(chan struct{})
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Vary", "Accept-Encoding")
		fmt.Fprint(w, body)
	}, withCompress)
	encodings := []struct{ ae, want string }{
		{"br", "br"}, {"gzip", "gzip"}, {"identity", ""}, {"gzip, br", "br"}, {"br;q=0.1, gzip", "gzip"}, {"*;q=0", ""},
	}
	got := make([]response, len(encodings))
	var wg sync.WaitGroup
	for i, c := range encodings {
		wg.Go(func() { got[i] = h.get("/busy/", "Accept-Encoding: "+c.ae) })
	}
	waitFor(t, "every request to join the fetch", func() bool { return h.flight.Waiting() == len(encodings)-1 })
	close(release)
	wg.Wait()
	for i, c := range encodings {
		if ce := got[i].Header.Get("Content-Encoding"); ce != c.want || decoded(t, got[i]) != body {
			t.Errorf("waiter with Accept-Encoding %q: Content-Encoding %q, want %q (body same %v)", c.ae, ce, c.want, decoded(t, got[i]) == body)
		}
	}
	if n := h.originCount(); n != 1 {
		t.Errorf("origin saw %d requests, want 1", n)
	}
}
