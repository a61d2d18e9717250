package proxy

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/cache"
)

func TestParseRange(t *testing.T) {
	f := func(v string, size int64, wantFirst, wantLast int64, want rangeAnswer) {
		t.Helper()
		first, last, a := parseRange([]byte(v), size)
		if a != want || a == rangePartial && (first != wantFirst || last != wantLast) {
			t.Errorf("parseRange(%q, %d) = %d-%d %d, want %d-%d %d", v, size, first, last, a, wantFirst, wantLast, want)
		}
	}
	f("bytes=0-1", 10, 0, 1, rangePartial)
	f("bytes=100-199", 1000, 100, 199, rangePartial)
	f("bytes=5-", 10, 5, 9, rangePartial)
	f("bytes=-3", 10, 7, 9, rangePartial)
	f("bytes=-500", 10, 0, 9, rangePartial) // longer than the representation: all of it
	f("bytes=8-100", 10, 8, 9, rangePartial)
	f("bytes=9-9", 10, 9, 9, rangePartial)
	f("Bytes = 2-3", 10, 2, 3, rangePartial) // the unit is case-insensitive
	f("bytes= 2-3 ,", 10, 2, 3, rangePartial)
	f("bytes=10-", 10, 0, 0, rangeUnsatisfiable)
	f("bytes=10-20", 10, 0, 0, rangeUnsatisfiable)
	f("bytes=-0", 10, 0, 0, rangeUnsatisfiable)
	f("bytes=10-,20-30", 10, 0, 0, rangeUnsatisfiable)
	f("bytes=0-1,5-6", 10, 0, 0, rangeWhole) // several ranges: the whole 200
	f("bytes=0-1,10-", 10, 0, 0, rangeWhole)
	f("bytes=3-2", 10, 0, 0, rangeWhole) // invalid: ignored
	f("bytes=a-2", 10, 0, 0, rangeWhole)
	f("bytes=1-b", 10, 0, 0, rangeWhole)
	f("bytes=-", 10, 0, 0, rangeWhole)
	f("bytes=5", 10, 0, 0, rangeWhole)
	f("bytes=", 10, 0, 0, rangeWhole)
	f("bytes=,", 10, 0, 0, rangeWhole)
	f("items=0-1", 10, 0, 0, rangeWhole)
	f("0-1", 10, 0, 0, rangeWhole)
	f("bytes=0-1", 0, 0, 0, rangeWhole)                    // empty representation: the whole (empty) 200
	f("bytes=99999999999999999999-", 10, 0, 0, rangeWhole) // overflows int64: invalid
	f("bytes=0-99999999999999999999", 10, 0, 0, rangeWhole)
	many := "bytes=0-0" + string(bytes.Repeat([]byte(",0-0"), maxRangeSpecs))
	f(many, 10, 0, 0, rangeWhole)
}

func TestIfRangeHolds(t *testing.T) {
	lm := "Tue, 01 Dec 2026 10:00:00 GMT"
	strong := &cache.Entry{ETag: []byte(`"v1"`), LastModified: []byte(lm)}
	weak := &cache.Entry{ETag: []byte(`W/"v1"`)}
	f := func(v string, e *cache.Entry, want bool) {
		t.Helper()
		if got := ifRangeHolds([]byte(v), e); got != want {
			t.Errorf("ifRangeHolds(%q, ETag %q, Last-Modified %q) = %v, want %v", v, e.ETag, e.LastModified, got, want)
		}
	}
	f("", strong, true)
	f(`"v1"`, strong, true)
	f(`"v2"`, strong, false)
	f(`W/"v1"`, strong, false) // a weak tag never matches (strong comparison)
	f(`"v1"`, weak, false)
	f(`W/"v1"`, weak, false)
	f(lm, strong, true)
	f("Tue, 01 Dec 2026 10:00:01 GMT", strong, false)
	f("yesterday", strong, false)
	f(lm, weak, false) // no Last-Modified stored
}

// pdfBody is a deterministic incompressible body of n bytes.
func pdfBody(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	copy(b, "%PDF-1.7\n")
	return b
}

// withMaxObject raises the site's max_object_bytes and the store's budget
// for large objects.
func withMaxObject(t *testing.T, n int64) func(*Options) {
	return func(o *Options) {
		o.Sites[0].Defaults.MaxObjectBytes = n
		st, err := cache.New(cache.Options{MaxBytes: 4 * n, Clock: o.Clock})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		o.Store = st
	}
}

// TestRangeServedFromStoredObject: a 30 MB PDF fetched once (without Range,
// whatever range the first visitor asked for) answers every range from
// memory: single, suffix and open-ended ranges get 206 with the right
// Content-Range, Content-Length and bytes; unsatisfiable ranges 416;
// several ranges, failed If-Range and HEAD the whole 200.
func TestRangeServedFromStoredObject(t *testing.T) {
	const size = 30_000_000
	pdf := pdfBody(size)
	etag := `"pdf-1"`
	lm := "Tue, 01 Dec 2026 10:00:00 GMT"
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pdf")
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("ETag", etag)
		w.Header().Set("Last-Modified", lm)
		w.Header().Set("Content-Length", strconv.Itoa(size))
		if _, err := w.Write(pdf); err != nil {
			t.Errorf("origin write: %v", err)
		}
	}, withMaxObject(t, 32<<20))

	partial := func(r response, first, last int64) {
		t.Helper()
		if r.Status != http.StatusPartialContent {
			t.Fatalf("status = %d, want 206 (Cache-Status %q)", r.Status, r.Header.Get("Cache-Status"))
		}
		if got, want := r.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", first, last, size); got != want {
			t.Errorf("Content-Range = %q, want %q", got, want)
		}
		if got, want := r.Header.Get("Content-Length"), strconv.FormatInt(last-first+1, 10); got != want {
			t.Errorf("Content-Length = %q, want %q", got, want)
		}
		if !bytes.Equal([]byte(r.Body), pdf[first:last+1]) {
			t.Errorf("body of %d bytes is not pdf[%d:%d]", len(r.Body), first, last+1)
		}
		if got := r.Header.Get("Content-Type"); got != "application/pdf" {
			t.Errorf("Content-Type = %q", got)
		}
		if r.Header.Get("Age") == "" {
			t.Error("no Age")
		}
	}

	// A miss for a range: the origin is asked for the whole object.
	r := h.get("/doc.pdf", "Range: bytes=100-199")
	partial(r, 100, 199)
	wantCacheStatus(t, r, "fwd=uri-miss", "stored")
	if seen := h.lastSeen(); seen.Header.Get("Range") != "" || seen.Method != http.MethodGet {
		t.Errorf("origin got %s with Range %q, want a GET without Range", seen.Method, seen.Header.Get("Range"))
	}
	h.clock.Advance(5 * time.Second)

	hit := func(hdr ...string) response {
		t.Helper()
		r := h.get("/doc.pdf", hdr...)
		wantCacheStatus(t, r, "; hit")
		if got := r.Header.Get("Age"); got != "5" {
			t.Errorf("%q: Age = %q, want 5", hdr, got)
		}
		return r
	}
	partial(hit("Range: bytes=-500"), size-500, size-1)
	partial(hit("Range: bytes=29999000-"), 29999000, size-1)
	partial(hit("Range: bytes=0-0"), 0, 0)
	partial(hit("Range: bytes=10000000-20000000"), 10000000, 20000000)
	partial(hit("Range: bytes=29999990-40000000"), 29999990, size-1)
	partial(hit("Range: bytes=1-2", `If-Range: "pdf-1"`), 1, 2)
	partial(hit("Range: bytes=1-2", "If-Range: "+lm), 1, 2)

	whole := func(r response) {
		t.Helper()
		if r.Status != http.StatusOK || r.Header.Get("Content-Range") != "" || !bytes.Equal([]byte(r.Body), pdf) {
			t.Errorf("status %d, Content-Range %q, %d bytes; want the whole 200", r.Status, r.Header.Get("Content-Range"), len(r.Body))
		}
	}
	whole(hit("Range: bytes=0-1,5-6"))
	whole(hit("Range: bytes=1-2", `If-Range: "pdf-0"`))
	whole(hit("Range: bytes=1-2", `If-Range: W/"pdf-1"`))
	whole(hit("Range: bytes=1-2", "If-Range: Tue, 01 Dec 2026 09:00:00 GMT"))
	whole(hit("Range: bytes=5-1"))
	whole(hit("Range: pages=1-2"))

	for _, v := range []string{"bytes=30000000-", "bytes=-0", "bytes=40000000-50000000"} {
		r := hit("Range: " + v)
		if r.Status != http.StatusRequestedRangeNotSatisfiable || r.Body != "" {
			t.Errorf("Range %q: %d with %d bytes, want an empty 416", v, r.Status, len(r.Body))
		}
		if got, want := r.Header.Get("Content-Range"), "bytes */30000000"; got != want {
			t.Errorf("Range %q: Content-Range = %q, want %q", v, got, want)
		}
		if got := r.Header.Get("Content-Type"); got != "" {
			t.Errorf("Range %q: 416 carries Content-Type %q of the stored body", v, got)
		}
		if got := r.Header.Get("ETag"); got != etag {
			t.Errorf("Range %q: 416 ETag = %q, want the stored %q", v, got, etag)
		}
	}

	// A client's precondition comes before its range.
	if r := hit("Range: bytes=0-1", `If-None-Match: "pdf-1"`); r.Status != http.StatusNotModified {
		t.Errorf("If-None-Match with Range = %d, want 304", r.Status)
	}
	// HEAD has no range semantics (RFC 9110 §14.2): the 200's headers.
	r = h.do(http.MethodHead, "/doc.pdf", "Range: bytes=0-1")
	wantCacheStatus(t, r, "; hit")
	if r.Status != http.StatusOK || r.Header.Get("Content-Length") != "30000000" || r.Body != "" {
		t.Errorf("HEAD with Range = %d, Content-Length %q, %d body bytes; want 200, 30000000, none",
			r.Status, r.Header.Get("Content-Length"), len(r.Body))
	}
	if n := h.originCount(); n != 1 {
		t.Errorf("origin saw %d requests, want 1", n)
	}

	// The same bytes as curl's own range request, when curl is installed.
	if curl, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command(curl, "-sS", "--noproxy", "*", "-r", "12345-67890", "-H", "Host: www.example.com",
			"http://"+h.addr+"/doc.pdf").Output()
		if err != nil {
			t.Fatalf("curl -r: %v", err)
		}
		if !bytes.Equal(out, pdf[12345:67891]) {
			t.Errorf("curl -r 12345-67890 got %d bytes, not pdf[12345:67891]", len(out))
		}
		if n := h.originCount(); n != 1 {
			t.Errorf("origin saw %d requests after curl, want 1", n)
		}
	}
}

// TestRangeWaitersGetTheirOwnRanges: concurrent misses for different
// ranges of one object make one origin request, and each visitor gets the
// range it asked for.
func TestRangeWaitersGetTheirOwnRanges(t *testing.T) {
	body := pdfBody(1 << 20)
	release := make(chan struct{})
	first := make(chan struct{}, 1)
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case first <- struct{}{}:
		default:
		}
		<-release
		w.Header().Set("Cache-Control", "max-age=60")
		if _, err := w.Write(body); err != nil {
			t.Errorf("origin write: %v", err)
		}
	}, withMaxObject(t, 2<<20))
	const clients = 50
	var wg sync.WaitGroup
	got := make([]response, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = h.get("/v.mp4", fmt.Sprintf("Range: bytes=%d-%d", i*1000, i*1000+99))
		}()
	}
	<-first
	waitFor(t, "clients to connect", func() bool { return h.proxy.srv.GetOpenConnectionsCount() >= clients })
	close(release)
	wg.Wait()
	for i, r := range got {
		lo := i * 1000
		if r.Status != http.StatusPartialContent || r.Body != string(body[lo:lo+100]) {
			t.Errorf("client %d: %d with %d bytes, want 206 with bytes %d-%d", i, r.Status, len(r.Body), lo, lo+99)
		}
		if want := fmt.Sprintf("bytes %d-%d/%d", lo, lo+99, len(body)); r.Header.Get("Content-Range") != want {
			t.Errorf("client %d: Content-Range = %q, want %q", i, r.Header.Get("Content-Range"), want)
		}
	}
	if n := h.originCount(); n != 1 {
		t.Errorf("origin saw %d requests for %d concurrent ranges, want 1", n, clients)
	}
	if h.flight.Coalesced() == 0 {
		t.Error("no request was coalesced")
	}
}

// TestRangeOnRevalidatedEntry: a range of a stale object revalidates the
// whole object (a conditional request without Range) and cuts the range
// from the stored body the 304 confirmed.
func TestRangeOnRevalidatedEntry(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Cache-Control", "max-age=10")
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		fmt.Fprint(w, "0123456789")
	})
	h.get("/r/")
	h.clock.Advance(60 * time.Second) // past max-age and stale-while-revalidate
	r := h.get("/r/", "Range: bytes=2-4")
	if r.Status != http.StatusPartialContent || r.Body != "234" || r.Header.Get("Content-Range") != "bytes 2-4/10" {
		t.Fatalf("revalidated range = %d %q %q", r.Status, r.Body, r.Header.Get("Content-Range"))
	}
	wantCacheStatus(t, r, "fwd=stale", "fwd-status=304")
	seen := h.lastSeen()
	if seen.Header.Get("If-None-Match") != `"v1"` || seen.Header.Get("Range") != "" {
		t.Errorf("origin got If-None-Match %q, Range %q; want the stored ETag and no Range",
			seen.Header.Get("If-None-Match"), seen.Header.Get("Range"))
	}
	// Stale within stale-while-revalidate: the range comes from the stale copy.
	h.clock.Advance(15 * time.Second)
	r = h.get("/r/", "Range: bytes=-1")
	if r.Status != http.StatusPartialContent || r.Body != "9" {
		t.Errorf("stale range = %d %q", r.Status, r.Body)
	}
	wantCacheStatus(t, r, "fwd=stale", "detail=stale-while-revalidate")
}

// TestRangePassKeepsClientRange: a URL remembered as uncacheable passes to
// the origin with the client's Range and If-Range together, so the origin
// cuts the range; the first request, made without them to try to store the
// object, got the whole 200.
func TestRangePassKeepsClientRange(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "private")
		w.Header().Set("ETag", `"p1"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader([]byte("0123456789")))
	})
	r := h.get("/p/", "Range: bytes=0-1")
	if r.Status != http.StatusOK || r.Body != "0123456789" {
		t.Errorf("first = %d %q, want the whole 200", r.Status, r.Body)
	}
	r = h.get("/p/", "Range: bytes=0-1", `If-Range: "p1"`)
	if r.Status != http.StatusPartialContent || r.Body != "01" {
		t.Errorf("pass = %d %q, want the origin's 206", r.Status, r.Body)
	}
	wantCacheStatus(t, r, "detail=hit-for-miss")
	if seen := h.lastSeen(); seen.Header.Get("Range") != "bytes=0-1" || seen.Header.Get("If-Range") != `"p1"` {
		t.Errorf("origin got Range %q If-Range %q", seen.Header.Get("Range"), seen.Header.Get("If-Range"))
	}
	// The origin judges If-Range itself: a changed representation, the whole 200.
	r = h.get("/p/", "Range: bytes=0-1", `If-Range: "old"`)
	if r.Status != http.StatusOK || r.Body != "0123456789" {
		t.Errorf("pass with stale If-Range = %d %q, want the whole 200", r.Status, r.Body)
	}
}

// TestRangeOfObjectTooLargeToStore: a range of an object larger than
// max_object_bytes is cut by the origin (asked again, with the client's
// Range), not relayed whole; later ranges pass with their Range.
func TestRangeOfObjectTooLargeToStore(t *testing.T) {
	big := pdfBody(3 << 20) // over the harness's 1 MiB max_object_bytes
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "video/mp4")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(big))
	})
	for i, want := range []int{2, 3} {
		r := h.get("/v.mp4", "Range: bytes=1000-1999")
		if r.Status != http.StatusPartialContent || !bytes.Equal([]byte(r.Body), big[1000:2000]) {
			t.Fatalf("request %d: %d with %d bytes, want 206 with bytes 1000-1999", i, r.Status, len(r.Body))
		}
		if got := r.Header.Get("Content-Range"); got != fmt.Sprintf("bytes 1000-1999/%d", len(big)) {
			t.Errorf("request %d: Content-Range = %q", i, got)
		}
		if n := h.originCount(); n != want {
			t.Errorf("request %d: origin saw %d requests, want %d", i, n, want)
		}
		if got := h.lastSeen().Header.Get("Range"); got != "bytes=1000-1999" {
			t.Errorf("request %d: origin's last request had Range %q", i, got)
		}
	}
	// Without Range the whole object streams through, as before.
	if r := h.get("/v.mp4"); r.Status != http.StatusOK || len(r.Body) != len(big) {
		t.Errorf("whole = %d with %d bytes", r.Status, len(r.Body))
	}
}

// FuzzParseRange: whatever a client sends, a partial answer lies inside
// the representation, first before last.
func FuzzParseRange(f *testing.F) {
	for _, seed := range []string{"bytes=0-1", "bytes=-5", "bytes=5-", "bytes=0-1,2-3", "bytes=9-1", "bytes=-", "BYTES = 1-2", "bytes=99999999999999999999-"} {
		f.Add(seed, int64(10))
	}
	f.Fuzz(func(t *testing.T, v string, size int64) {
		first, last, a := parseRange([]byte(v), size)
		if a == rangePartial && (first < 0 || first > last || last >= size) {
			t.Fatalf("parseRange(%q, %d) = %d-%d, outside the representation", v, size, first, last)
		}
	})
}
