// Package vitalstest serves ground-truth pages for testing Core Web Vitals
// measurement: each page has one designed value (a delayed LCP image, a
// layout shift of known size, a long task of known length, a late document,
// a click handler that blocks a known time), so a lab sampler or a field
// beacon can be checked against what the page was built to show.
package vitalstest

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"strconv"
	"time"
)

// The designed values of the pages.
const (
	// LCPImageDelay is how long the server holds /img.png on /lcp. LCP
	// also holds the document's load before the image request and the
	// image's decode and paint after it: 50..130 ms on desktop, 100..190
	// ms with mobile's 4x slower CPU, measured. 3 s keeps that inside the
	// 10% tolerance on both profiles, with room for a busy machine.
	LCPImageDelay = 3000 * time.Millisecond
	// TTFBDelay is how long /ttfb waits before its first byte.
	TTFBDelay = 400 * time.Millisecond
	// LongTask is the one task /tbt runs after first paint: TBT is
	// LongTask - 50 ms.
	LongTask = 300 * time.Millisecond
	// ClickBlock is how long /inp's button handler blocks the main thread.
	ClickBlock = 200 * time.Millisecond
	// ShiftedHeight is the height in px of the block that moves on /cls,
	// ShiftBy how far it moves down, 300 ms after the script runs.
	ShiftedHeight = 400
	ShiftBy       = 200
)

// HeadHTML opens every page: a mobile viewport and no margins, so layout
// shift scores follow from the viewport alone.
const HeadHTML = `<!doctype html><html><head><meta name="viewport" content="width=device-width, initial-scale=1"><style>body{margin:0;font:16px sans-serif}</style></head><body>`

// Paths of the pages, each with its designed value.
const (
	LCPPage    = "/lcp"    // LCP = LCPImageDelay (the image)
	TTFBPage   = "/ttfb"   // TTFB = TTFBDelay
	TBTPage    = "/tbt"    // TBT = LongTask - 50 ms
	CLSPage    = "/cls"    // CLS = ShiftScore(viewport)
	INPPage    = "/inp"    // INP = ClickBlock, clicking #b
	StaticPage = "/static" // nothing to click: no INP
)

// ShiftScore is the layout-shift score of the /cls page in a viewport of
// width x height CSS px: impact fraction (area of the block before and
// after, over the viewport) times distance fraction (the move over the
// larger viewport side).
func ShiftScore(width, height int) float64 {
	impact := float64(ShiftedHeight+ShiftBy) / float64(height)
	distance := float64(ShiftBy) / float64(max(width, height))
	return impact * distance
}

// Handler serves the ground-truth pages. Pages are cacheable for a minute
// (so an edge in front can serve hits); the LCP image is never stored, so
// its designed delay holds on every load, hit or miss.
func Handler() http.Handler {
	img := pngImage(600, 400)
	mux := http.NewServeMux()
	page := func(path, html string) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "public, max-age=60")
			fmt.Fprint(w, HeadHTML+html+`</body></html>`)
		})
	}
	mux.HandleFunc("/img.png", func(w http.ResponseWriter, r *http.Request) {
		if d, err := time.ParseDuration(r.URL.Query().Get("delay")); err == nil {
			wait(r, d)
		}
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(img)
	})
	page(LCPPage, `<p>small text</p><img src="/img.png?delay=`+LCPImageDelay.String()+`" width="600" height="400">`)
	mux.HandleFunc(TTFBPage, func(w http.ResponseWriter, r *http.Request) {
		wait(r, TTFBDelay)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprint(w, HeadHTML+`<h1>late document</h1></body></html>`)
	})
	page(TBTPage, `<h1>a page with one long task</h1><script>
new PerformanceObserver(function (l) {
  if (l.getEntries().some(function (e) { return e.name === 'first-contentful-paint'; })) {
    setTimeout(function () { var t = performance.now(); while (performance.now() - t < `+ms(LongTask)+`) {} }, 50);
  }
}).observe({type: 'paint', buffered: true});
</script>`)
	page(CLSPage, `<div id="top"></div><div style="height:`+strconv.Itoa(ShiftedHeight)+`px;background:#c33;color:#fff">block that moves</div><script>
setTimeout(function () { document.getElementById('top').style.height = '`+strconv.Itoa(ShiftBy)+`px'; }, 300);
</script>`)
	page(INPPage, `<h1>a slow button</h1><button id="b" onclick="var t=performance.now(); while (performance.now()-t < `+ms(ClickBlock)+`) {} this.textContent='done'">press</button>`)
	page(StaticPage, `<h1>nothing to click</h1>`)
	return mux
}

// wait holds d unless the client goes away. It is the designed value of a
// page, not a wait for state.
func wait(r *http.Request, d time.Duration) {
	select {
	case <-time.After(d):
	case <-r.Context().Done():
	}
}

func pngImage(w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{R: uint8(x), G: uint8(y), B: 200, A: 255})
		}
	}
	var buf bytes.Buffer
	png.Encode(&buf, img) // an in-memory RGBA image always encodes
	return buf.Bytes()
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
