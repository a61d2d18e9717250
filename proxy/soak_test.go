package proxy

import (
	"fmt"
	"net/http"
	"os"
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
//   - the cache stays within its byte budget.
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
	var failing atomic.Bool
	h := newHarness(t, func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
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
	}, func(o *Options) { o.Sites[0].Defaults.MaxObjectBytes = 1 << 20 })

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var requests, leaks, cached5xx, staleIfError atomic.Int64
	var everCached sync.Map // path -> true once a public 200 was seen
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
				r := h.get(path, hdr...)
				requests.Add(1)
				if strings.Contains(r.Header.Get("Cache-Status"), "stale-if-error") {
					staleIfError.Add(1)
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
	deadline := time.Now().Add(duration)
	tick := time.NewTicker(50 * time.Millisecond)
	for n := 0; time.Now().Before(deadline); n++ {
		<-tick.C
		switch n % 20 {
		case 5:
			failing.Store(true) // a one-second outage
		case 15:
			failing.Store(false)
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
	t.Logf("%d requests in %s: %d leaks, %d 5xx for cached pages, %d served stale during outages",
		requests.Load(), duration, leaks.Load(), cached5xx.Load(), staleIfError.Load())
	if staleIfError.Load() == 0 {
		t.Error("no page was served stale during the outages: the soak did not test them")
	}
	if cached5xx.Load() != 0 {
		t.Errorf("%d 5xx answers for pages that were cached", cached5xx.Load())
	}
	if requests.Load() < 1000 {
		t.Errorf("only %d requests: the soak did not exercise the proxy", requests.Load())
	}
}
