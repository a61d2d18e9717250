package proxy

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestInjectRUM(t *testing.T) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		io.WriteString(w, s)
		w.Close()
		return b.Bytes()
	}
	gunzip := func(b []byte) string {
		r, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("gunzip: %v", err)
		}
		out, _ := io.ReadAll(r)
		return string(out)
	}
	page := "<html><head><title>x</title></HEAD ><body>hi</body></html>"
	tag := `<script src="/__edgevitals/rum.js" async></script>`
	f := func(name string, hdr []string, body []byte, nonce bool, want string, wantOK bool) {
		t.Helper()
		var h fasthttp.ResponseHeader
		for i := 0; i < len(hdr); i += 2 {
			h.Add(hdr[i], hdr[i+1])
		}
		got, ok := injectRUM(&h, body, nonce)
		if ok != wantOK {
			t.Errorf("%s: injected = %v, want %v", name, ok, wantOK)
		}
		s := string(got)
		if string(h.Peek("Content-Encoding")) == "gzip" {
			s = gunzip(got)
		}
		if s != want {
			t.Errorf("%s: body = %q, want %q", name, s, want)
		}
		if !ok && !bytes.Equal(got, body) {
			t.Errorf("%s: body changed although nothing was injected", name)
		}
	}
	injected := strings.Replace(page, "</HEAD >", tag+"</HEAD >", 1)
	f("html", []string{"Content-Type", "text/html; charset=UTF-8"}, []byte(page), false, injected, true)
	f("gzip", []string{"Content-Type", "text/html", "Content-Encoding", "gzip"}, gz(page), false, injected, true)
	f("no-transform", []string{"Content-Type", "text/html", "Cache-Control", "public, no-transform"}, []byte(page), false, page, false)
	f("not html", []string{"Content-Type", "application/json"}, []byte(page), false, page, false)
	f("no head", []string{"Content-Type", "text/html"}, []byte("<p>fragment</p>"), false, "<p>fragment</p>", false)
	f("brotli", []string{"Content-Type", "text/html", "Content-Encoding", "br"}, []byte("\x1b\x00"), false, "\x1b\x00", false)
	f("csp nonce", []string{"Content-Type", "text/html", "Content-Security-Policy", "script-src 'nonce-abcDEF123456' 'strict-dynamic'"}, []byte(page), true,
		strings.Replace(page, "</HEAD >", `<script src="/__edgevitals/rum.js" async nonce="abcDEF123456"></script></HEAD >`, 1), true)
}

func TestServerTimingValue(t *testing.T) {
	f := func(status, release, want string) {
		t.Helper()
		if got := string(appendServerTiming(nil, status, release)); got != want {
			t.Errorf("appendServerTiming(%q, %q) = %q, want %q", status, release, got, want)
		}
	}
	f("hit", "v42", `edgevitals;desc="hit", edgevitals-release;desc="v42"`)
	f("miss", "", `edgevitals;desc="miss"`)
}

// TestServerTimingOnPagesOnly: with field data on, HTML pages carry the
// Server-Timing member the script reads, on a miss and on a hit; an image
// does not, since no script reads it there.
func TestServerTimingOnPagesOnly(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		if strings.HasSuffix(r.URL.Path, ".png") {
			w.Header().Set("Content-Type", "image/png")
			w.Write([]byte("\x89PNG"))
			return
		}
		w.Header().Set("Content-Type", "TEXT/HTML; charset=utf-8")
		w.Write([]byte("<html><head></head><body>page</body></html>"))
	}, withRUM(t))
	for i, want := range []string{`edgevitals;desc="miss"`, `edgevitals;desc="hit"`} {
		r := h.get("/post/")
		if got := r.Header.Get("Server-Timing"); got != want {
			t.Errorf("page, request %d: Server-Timing = %q, want %q", i+1, got, want)
		}
		if !strings.Contains(r.Body, rumScriptPath) {
			t.Errorf("page, request %d: body %q lacks the script", i+1, r.Body)
		}
	}
	for i := range 2 {
		if got := h.get("/logo.png").Header.Values("Server-Timing"); len(got) != 0 {
			t.Errorf("image, request %d: Server-Timing = %q, want none", i+1, got)
		}
	}
}

// TestServerTimingKeepsTheOrigins: a CMS that sends its own Server-Timing
// (WordPress' Performance Lab plugin does) keeps it; the field member is
// added beside it, on a miss and on a hit.
func TestServerTimingKeepsTheOrigins(t *testing.T) {
	h := newHarness(t, page("<html><head></head><body>page</body></html>",
		"Cache-Control: max-age=600", "Content-Type: text/html", "Server-Timing: wp;dur=12.5"), withRUM(t))
	for i, status := range []string{"miss", "hit"} {
		got := h.get("/post/").Header.Values("Server-Timing")
		joined := strings.Join(got, ", ")
		if !strings.Contains(joined, "wp;dur=12.5") || !strings.Contains(joined, `edgevitals;desc="`+status+`"`) {
			t.Errorf("request %d: Server-Timing = %q, want the origin's and the %s member", i+1, got, status)
		}
	}
}
