package proxy

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestHeadUpdatesStoredResponse: a HEAD that went to the origin (here a
// pass: the URL was remembered as uncacheable when it was sent) and got a
// 200 updates the GET response stored meanwhile when its validators and
// Content-Length describe the stored body (RFC 9111 §4.3.5), and marks the
// stored response stale when they do not.
func TestHeadUpdatesStoredResponse(t *testing.T) {
	f := func(name, headETag, headLength string, updated bool) {
		t.Run(name, func(t *testing.T) {
			var cacheable atomic.Bool
			headArrived := make(chan struct{})
			releaseHead := make(chan struct{})
			h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodHead {
					w.Header().Set("ETag", headETag)
					w.Header().Set("Cache-Control", "max-age=7200")
					w.Header().Set("X-Gen", "2")
					if headLength != "" {
						w.Header().Set("Content-Length", headLength)
					}
					headArrived <- struct{}{}
					<-releaseHead
					return
				}
				if !cacheable.Load() {
					w.Header().Set("Cache-Control", "private")
					fmt.Fprint(w, "private")
					return
				}
				w.Header().Set("ETag", `"v1"`)
				w.Header().Set("Cache-Control", "max-age=60")
				w.Header().Set("X-Gen", "1")
				fmt.Fprint(w, "body v1")
			})
			h.get("/h/") // private: the URL is hit-for-miss for a minute
			headDone := make(chan response, 1)
			go func() { headDone <- h.do(http.MethodHead, "/h/") }()
			<-headArrived
			// While the HEAD is at the origin, the URL turns cacheable and
			// a GET stores it.
			h.clock.Advance(2 * time.Minute)
			cacheable.Store(true)
			wantCacheStatus(t, h.get("/h/"), "fwd=uri-miss", "stored")
			close(releaseHead)
			r := <-headDone
			wantCacheStatus(t, r, "detail=hit-for-miss")
			if r.Header.Get("X-Gen") != "2" {
				t.Errorf("HEAD answer X-Gen = %q, want the origin's 2", r.Header.Get("X-Gen"))
			}

			if updated {
				// Past the stored max-age (60 s), inside the HEAD's (7200 s).
				h.clock.Advance(90 * time.Second)
			}
			before := h.originCount()
			r = h.get("/h/")
			if r.Body != "body v1" {
				t.Errorf("body = %q, want the stored body", r.Body)
			}
			if updated {
				wantCacheStatus(t, r, "; hit")
				if got := r.Header.Get("X-Gen"); got != "2" {
					t.Errorf("X-Gen = %q, want 2 from the HEAD", got)
				}
				if got := r.Header.Get("ETag"); got != `"v1"` {
					t.Errorf("ETag = %q, want the stored \"v1\"", got)
				}
				if n := h.originCount(); n != before {
					t.Errorf("origin saw %d more requests, want none", n-before)
				}
				return
			}
			// Not the stored body: the stored copy, fresh by its own
			// max-age, is stale from now on.
			cs := r.Header.Get("Cache-Status")
			if r.Header.Get("X-Gen") != "1" || !strings.Contains(cs, "fwd=stale") {
				t.Errorf("after a mismatched HEAD: X-Gen %q, Cache-Status %q; want the stored copy treated as stale", r.Header.Get("X-Gen"), cs)
			}
		})
	}
	f("same ETag and length", `"v1"`, "7", true)
	f("same ETag, no length", `"v1"`, "", true)
	f("another ETag", `"v2"`, "7", false)
	f("another length", `"v1"`, "8", false)
}
