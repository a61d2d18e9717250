package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSoak runs mixed anonymous and logged-in traffic against a WordPress-like
// origin while origin faults and purges are injected, over loopback, for a
// bounded time (EDGEVITALS_SOAK, default 15s; CI may set minutes). It holds
// the promises that matter on a live site:
//   - no visitor ever gets another visitor's private page;
//   - a page that was cached is never answered with a 5xx while the origin fails;
//   - the cache stays within its byte budget, the process's heap within its
//     bound.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak skipped in -short mode")
	}
	duration := 15 * time.Second
	if v := os.Getenv("EDGEVITALS_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("EDGEVITALS_SOAK=%q: %v", v, err)
		}
		duration = d
	}
	// Each outage is one kind of origin fault, in turn: a 503 (maintenance
	// mode), a connection reset in the middle of the body, bytes that are not
	// HTTP, and an origin that never answers (cut by the origin timeout).
	var failing atomic.Int32 // faultNone, or the fault of the current outage
	outages := []fault{fault503, faultReset, faultGarbage, faultHang}
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		switch fault(failing.Load()) {
		case fault503:
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		case faultHang:
			<-r.Context().Done() // the proxy gives up after its origin timeout
			return
		case faultReset, faultGarbage:
			c, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			if fault(failing.Load()) == faultReset {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nCache-Control: max-age=30\r\n\r\npublic, cut sh")
				c.(*net.TCPConn).SetLinger(0) // close with a TCP reset
			} else {
				io.WriteString(c, "\x00\x01 not HTTP at all\r\n\r\n")
			}
			c.Close()
			return
		}
		for _, c := range r.Cookies() {
			if strings.HasPrefix(c.Name, "wordpress_logged_in_") {
				w.Header().Set("Cache-Control", "no-cache, must-revalidate, max-age=0, private")
				fmt.Fprintf(w, "private page of %s", c.Value)
				return
			}
		}
		w.Header().Set("Cache-Control", "max-age=30")
		w.Header().Set("Surrogate-Key", "all "+strings.Trim(r.URL.Path, "/"))
		fmt.Fprintf(w, "public %s", r.URL.Path)
	}, func(o *Options) {
		o.Sites[0].Defaults.MaxObjectBytes = 1 << 20
		o.Sites[0].Origin.Timeout = 300 * time.Millisecond
	})

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var requests, leaks, cached5xx, staleIfError, broken atomic.Int64
	var staleDuring [faultResetBig + 1]atomic.Int64 // stale answers, by the fault of the moment
	var everCached sync.Map                         // path -> true once a public 200 was seen
	const pages = 200

	for c := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := ""
			if c%3 == 0 {
				user = fmt.Sprintf("user%d", c)
			}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				path := fmt.Sprintf("/p/%d/", (i*7+c)%pages)
				var hdr []string
				if user != "" {
					hdr = append(hdr, "Cookie: wordpress_logged_in_abc="+user)
				}
				r, err := h.tryGet(path, hdr...)
				requests.Add(1)
				if err != nil {
					// A body cut short: the proxy passes on an origin's reset
					// of a page it streams rather than store (a private page,
					// a miss), so the client knows it is incomplete. Never
					// for a page that was cached: that has a stale copy.
					if _, ok := everCached.Load(path); ok && user == "" {
						cached5xx.Add(1)
						t.Errorf("GET %s, a cached page: %v", path, err)
					}
					broken.Add(1)
					continue
				}
				if strings.Contains(r.Header.Get("Cache-Status"), "stale-if-error") {
					staleIfError.Add(1)
					staleDuring[failing.Load()].Add(1)
				}
				if strings.HasPrefix(r.Body, "private page of ") && r.Body != "private page of "+user {
					leaks.Add(1)
					t.Errorf("visitor %q got %q", user, r.Body)
				}
				if user == "" {
					if r.Status == 200 {
						everCached.Store(path, true)
					} else if _, ok := everCached.Load(path); ok && r.Status >= 500 {
						cached5xx.Add(1)
					}
				}
			}
		}()
	}
	// The injector: origin outages, soft purges, key purges and time passing.
	// The live heap the soak adds (measured after a collection, from before
	// it started, so other tests' leftovers do not count) is held to the
	// bound issue 8 sets for a full cache: 1.25 x the cache budget + 64 MiB.
	const heapBound = 64<<20*5/4 + 64<<20
	liveHeap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	baseHeap := liveHeap()
	var peakHeap uint64
	deadline := time.Now().Add(duration)
	tick := time.NewTicker(50 * time.Millisecond)
	for n := 0; time.Now().Before(deadline); n++ {
		<-tick.C
		switch n % 20 {
		case 5:
			failing.Store(int32(outages[n/20%len(outages)])) // a one-second outage
		case 15:
			failing.Store(int32(faultNone))
			if live := liveHeap(); live > baseHeap {
				peakHeap = max(peakHeap, live-baseHeap)
			}
			if peakHeap > heapBound {
				t.Errorf("the soak holds %d MiB of live heap, over the %d MiB bound", peakHeap>>20, heapBound>>20)
			}
		case 10:
			h.store.PurgeAll("blog", true)
		case 18:
			h.store.PurgeKeys("blog", []string{fmt.Sprintf("p/%d", n%pages)}, true)
		}
		h.clock.Advance(4 * time.Second) // pages (30 s) expire within each outage and revalidate
		if b := h.store.Bytes(); b > 64<<20 {
			t.Errorf("cache holds %d bytes, over its 64 MiB budget", b)
		}
	}
	tick.Stop()
	close(stop)
	wg.Wait()
	t.Logf("%d requests in %s: %d leaks, %d 5xx for cached pages, %d served stale during outages, %d cut short, live heap added at most %d MiB",
		requests.Load(), duration, leaks.Load(), cached5xx.Load(), staleIfError.Load(), broken.Load(), peakHeap>>20)
	if staleIfError.Load() == 0 {
		t.Error("no page was served stale during the outages: the soak did not test them")
	}
	if duration >= 8*time.Second { // two outages of each kind at least
		for _, f := range outages {
			if staleDuring[f].Load() == 0 {
				t.Errorf("no page was served stale during the %v outages", f)
			}
		}
	}
	if cached5xx.Load() != 0 {
		t.Errorf("%d 5xx answers for pages that were cached", cached5xx.Load())
	}
	if requests.Load() < 1000 {
		t.Errorf("only %d requests: the soak did not exercise the proxy", requests.Load())
	}
}
