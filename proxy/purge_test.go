package proxy

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
)

// wordpressLike serves articles tagged as WordPress cache plugins tag them.
func wordpressLike(gen *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		switch {
		case r.URL.Path == "/":
			w.Header().Set("Surrogate-Key", "home post-43 post-44")
		case strings.HasPrefix(r.URL.Path, "/hello-world/"):
			w.Header().Set("Surrogate-Key", "post-43 term-7")
		case strings.HasPrefix(r.URL.Path, "/other/"):
			w.Header().Set("Cache-Tag", "post-44,term-8")
		}
		fmt.Fprintf(w, "%s gen %d", r.URL.Path, gen.Load())
	}
}

func warm(t *testing.T, h *harness, paths ...string) {
	t.Helper()
	for _, p := range paths {
		h.get(p)
		wantCacheStatus(t, h.get(p), "; hit")
	}
}

func TestPurgeBySurrogateKey(t *testing.T) {
	var gen atomic.Int64
	h := newHarness(t, wordpressLike(&gen))
	warm(t, h, "/", "/hello-world/", "/other/")
	gen.Add(1)
	r := h.do("PURGE", "/", "Surrogate-Key: post-43")
	if r.Status != 200 || !strings.Contains(r.Body, `"purged":2`) {
		t.Fatalf("PURGE = %d %s, want 2 purged", r.Status, r.Body)
	}
	wantCacheStatus(t, h.get("/"), "fwd=uri-miss")
	wantCacheStatus(t, h.get("/hello-world/"), "fwd=uri-miss")
	wantCacheStatus(t, h.get("/other/"), "; hit")
}

func TestBanByCacheTags(t *testing.T) {
	var gen atomic.Int64
	h := newHarness(t, wordpressLike(&gen))
	warm(t, h, "/", "/hello-world/", "/other/")
	r := h.do("BAN", "/", "Cache-Tags: term-8 nothing")
	if r.Status != 200 || !strings.Contains(r.Body, `"purged":1`) {
		t.Fatalf("BAN = %d %s", r.Status, r.Body)
	}
	wantCacheStatus(t, h.get("/other/"), "fwd=uri-miss")
	wantCacheStatus(t, h.get("/"), "; hit")
}

func TestPurgeURLEveryVariant(t *testing.T) {
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Vary", "Accept-Language")
		fmt.Fprint(w, r.Header.Get("Accept-Language"))
	})
	for _, l := range []string{"en", "fr"} {
		h.get("/p/?a=1", "Accept-Language: "+l)
	}
	h.get("/q/")
	r := h.do("PURGE", "/p/?a=1&utm_source=x")
	if !strings.Contains(r.Body, `"purged":2`) {
		t.Fatalf("PURGE url = %s, want both variants", r.Body)
	}
	wantCacheStatus(t, h.get("/p/?a=1", "Accept-Language: en"), "fwd=uri-miss")
	wantCacheStatus(t, h.get("/q/"), "; hit")
}

func TestPurgeRegex(t *testing.T) {
	var gen atomic.Int64
	h := newHarness(t, wordpressLike(&gen))
	warm(t, h, "/", "/hello-world/", "/other/")
	r := h.do("PURGE", "/hello-.*", "X-Purge-Method: regex")
	if !strings.Contains(r.Body, `"purged":1`) {
		t.Fatalf("regex PURGE = %s", r.Body)
	}
	wantCacheStatus(t, h.get("/hello-world/"), "fwd=uri-miss")
	wantCacheStatus(t, h.get("/other/"), "; hit")
	r = h.do("PURGE", "/.*", "X-Purge-Method: regex")
	if !strings.Contains(r.Body, `"purged":3`) {
		t.Fatalf("purge-all = %s", r.Body)
	}
	wantCacheStatus(t, h.get("/other/"), "fwd=uri-miss")
}

func TestSoftPurgeServesStaleOnceAndRefreshesOnce(t *testing.T) {
	var gen atomic.Int64
	refreshed := make(chan struct{}, 10)
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Surrogate-Key", "all")
		fmt.Fprintf(w, "gen %d", gen.Load())
		refreshed <- struct{}{}
	})
	h.get("/a/")
	<-refreshed
	gen.Add(1)
	// A purge of all is soft unless it says otherwise.
	if n, err := h.proxy.Purge(PurgeRequest{Site: "blog", All: true}); err != nil || n != 1 {
		t.Fatalf("soft purge-all = %d, %v; want 1 purged", n, err)
	}
	r := h.get("/a/")
	if r.Body != "gen 0" {
		t.Fatalf("after soft purge body = %q, want the stale copy at once", r.Body)
	}
	wantCacheStatus(t, r, "fwd=stale")
	<-refreshed
	waitFor(t, "refreshed copy", func() bool { return h.get("/a/").Body == "gen 1" })
	if n := h.originCount(); n != 2 {
		t.Errorf("origin saw %d, want 2 (exactly one refresh)", n)
	}
}

func TestPurgeNotAllowed(t *testing.T) {
	var gen atomic.Int64
	h := newHarness(t, wordpressLike(&gen), func(o *Options) {
		o.PurgeAllow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	warm(t, h, "/")
	if r := h.do("PURGE", "/"); r.Status != http.StatusForbidden {
		t.Errorf("PURGE from a stranger = %d, want 403", r.Status)
	}
	wantCacheStatus(t, h.get("/"), "; hit")
}

func TestSoftPurgedCopyDroppedWhenOriginTurnsUncacheable(t *testing.T) {
	var bad atomic.Bool
	refreshed := make(chan struct{}, 10)
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		if bad.Load() {
			w.Header().Set("Set-Cookie", "ab=1")
		}
		fmt.Fprint(w, "page")
		refreshed <- struct{}{}
	})
	h.get("/a/")
	<-refreshed
	bad.Store(true)
	h.store.PurgeAll("blog", true)
	wantCacheStatus(t, h.get("/a/"), "fwd=stale") // the stale copy, once
	<-refreshed                                   // its refresh answered with Set-Cookie
	h.proxy.bg.Wait()
	r := h.get("/a/")
	wantCacheStatus(t, r, "detail=hit-for-miss")
	if len(r.Header.Values("Set-Cookie")) != 1 {
		t.Errorf("Set-Cookie = %q, want the origin's own", r.Header.Values("Set-Cookie"))
	}
}
