package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/config"
	"github.com/edgevitals/edgevitals/vitals/store"
)

// The proxy's Cache-Status for a document fetched from the origin and
// stored, and for one served from the cache.
const storedMiss = "edgevitals; fwd=uri-miss; fwd-status=200; stored"

var freshHit = regexp.MustCompile(`^edgevitals; hit; ttl=\d+$`)

// cacheableOrigin is a real loopback origin of cacheable HTML pages that
// counts the GETs of each path.
type cacheableOrigin struct {
	*httptest.Server
	mu   sync.Mutex
	gets map[string]int
}

func newCacheableOrigin(t *testing.T) *cacheableOrigin {
	t.Helper()
	o := &cacheableOrigin{gets: map[string]int{}}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // favicon.ico and the like
			return
		}
		o.mu.Lock()
		o.gets[r.URL.Path]++
		o.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "max-age=3600")
		fmt.Fprintf(w, `<!doctype html><html><head><title>%s</title></head><body><h1>%[1]s</h1><p>An article as a CMS renders it.</p></body></html>`, r.URL.Path)
	}))
	t.Cleanup(o.Close)
	return o
}

// count is how many GETs of path reached the origin.
func (o *cacheableOrigin) count(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.gets[path]
}

// cacheStatusOf GETs url through the proxy and returns its Cache-Status.
func cacheStatusOf(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d, want 200", url, resp.StatusCode)
	}
	return resp.Header.Get("Cache-Status")
}

// TestServeWithoutChromium is issue 5's promise for a machine without
// Chromium: serve, configured with a page to sample and a vitals.chromium
// that does not exist, keeps proxying and caching, logs one line that names
// vitals.chromium and how to install Chromium, and /readyz is ready with the
// sampler off. (measure's exit 1 with that line is held by
// TestMeasureUsageAndMissingChromium and TestMeasureNoChromiumIsOneLine.)
func TestServeWithoutChromium(t *testing.T) {
	const missing = "/nonexistent/edgevitals-e2e/chromium"
	origin := newCacheableOrigin(t)
	var logs lockedBuffer
	// chromiumLines are the log lines that speak of Chromium at all.
	chromiumLines := func() []string {
		var out []string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(strings.ToLower(l), "chromium") {
				out = append(out, l)
			}
		}
		return out
	}
	started := false
	// Registered before the app's own cleanup, so it runs once the app has
	// stopped: shutdown does not repeat the line either.
	t.Cleanup(func() {
		if !started {
			return
		}
		if !strings.Contains(logs.String(), "edgevitals stopped") {
			t.Errorf("the app did not log its stop; log:\n%s", logs.String())
		}
		if n := len(chromiumLines()); n != 1 {
			t.Errorf("after shutdown %d log lines speak of Chromium, want 1; log:\n%s", n, logs.String())
		}
	})
	a := startTestAppLog(t, origin.URL, func(c *config.Config) {
		c.Vitals.Chromium = missing
		p := config.DefaultPage()
		p.Site, p.URL, p.Cold = "blog", "http://www.example.com/", true
		c.Vitals.Pages = []config.Page{p}
	}, slog.New(slog.NewTextHandler(&logs, nil)))
	started = true
	if a.sampler != nil {
		t.Fatal("a sampler was built without Chromium")
	}
	proxyURL := "http://" + a.proxyLn.Addr().String()

	// The proxy proxies and caches: a miss that is stored, then a hit.
	if cs := cacheStatusOf(t, proxyURL+"/hello-world/"); cs != storedMiss {
		t.Errorf("first GET Cache-Status = %q, want %q", cs, storedMiss)
	}
	if cs := cacheStatusOf(t, proxyURL+"/hello-world/"); !freshHit.MatchString(cs) {
		t.Errorf("second GET Cache-Status = %q, want %s", cs, freshHit)
	}
	if n := origin.count("/hello-world/"); n != 1 {
		t.Errorf("origin saw %d GETs of /hello-world/, want 1", n)
	}

	// Ready, the origin up, the sampler off: the sampler never makes the
	// proxy unready.
	resp, err := http.Get("http://" + a.adminLn.Addr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	const wantReady = "proxy: ready\nok: origins up\noff: lab sampler off\n"
	if resp.StatusCode != http.StatusOK || string(body) != wantReady {
		t.Errorf("/readyz = %d %q, want 200 %q", resp.StatusCode, body, wantReady)
	}

	// One clear line: what is off, the key to set, the path that is wrong
	// and the command that installs Chromium.
	lines := chromiumLines()
	if len(lines) != 1 {
		t.Fatalf("%d log lines speak of Chromium, want 1; log:\n%s", len(lines), logs.String())
	}
	for _, want := range []string{"level=ERROR", "lab sampler off", "vitals.chromium", missing, "apt-get install -y chromium"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("log line %q does not say %q", lines[0], want)
		}
	}
}

// TestSamplerColdPageThroughProxy is issue 5's "a sample through the proxy
// records the document's cache status; a cold sample records a miss", with
// real Chromium, the real serve wiring and a real origin. Two pages, alike
// but for their path and cold: the cold one is fetched and cached by a
// plain client before every round of samples, and every one of its samples
// is still a stored miss (the sampler purged it); the warm one misses on
// its first load only and then hits, although the cold page is purged
// between its samples, so the cold purge takes its own URL and nothing
// else. (Two paths prove more than one: on a shared URL the warm page's
// hits would come from the cold page's refills, and a purge of everything
// would pass.) The samples are read from the store, where reports read them.
func TestSamplerColdPageThroughProxy(t *testing.T) {
	chromium := needChromium(t)
	origin := newCacheableOrigin(t)
	// The pages' URLs name the proxy, so its address is chosen first.
	proxyAddr := freeLoopbackAddr(t)
	base := "http://" + proxyAddr
	var logs lockedBuffer
	a := startTestAppLog(t, origin.URL, func(c *config.Config) {
		c.Server.Listen = proxyAddr
		c.Vitals.Chromium = chromium
		page := func(path string, cold bool) config.Page {
			p := config.DefaultPage()
			p.Site, p.URL, p.Cold = "blog", base+path, cold
			p.Profiles = []string{"desktop"}
			// Samples come from Burst, not from the schedule: an hour
			// keeps scheduled ones out of the way.
			p.Interval = config.Duration(time.Hour)
			return p
		}
		c.Vitals.Pages = []config.Page{page("/cold/", true), page("/warm/", false)}
	}, slog.New(slog.NewTextHandler(&logs, nil)))
	if a.sampler == nil {
		t.Fatalf("no sampler with Chromium at %s; log:\n%s", chromium, logs.String())
	}

	samples := func(path string) []store.Sample {
		t.Helper()
		s, err := a.vstore.Samples("blog", path, "desktop", time.Time{}, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// round asks the sampler for one sample of each page, as a release
	// does, and waits until both are stored. A sample takes seconds; the
	// deadline allows for a loaded machine and for a job that was still
	// finishing its last sample when Burst came, which then waits for its
	// burst spacing (a minute).
	round := func(n int) {
		t.Helper()
		a.sampler.Burst("blog")
		deadline := time.Now().Add(3 * time.Minute)
		for len(samples("/cold/")) < n || len(samples("/warm/")) < n {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d cold and %d warm samples stored, want %d of each; log:\n%s",
					n, len(samples("/cold/")), len(samples("/warm/")), n, logs.String())
			}
			time.Sleep(100 * time.Millisecond) // the sampler stores on its own; nothing to wait on
		}
	}

	// The cold page is in the cache before the first cold sample.
	if cs := cacheStatusOf(t, base+"/cold/"); cs != storedMiss {
		t.Fatalf("first GET of /cold/ Cache-Status = %q, want %q", cs, storedMiss)
	}
	// Three rounds: whatever order the two jobs take within a round, the
	// second round's cold sample falls between the first and the third
	// warm sample, so a purge that took more than its URL would show.
	const rounds = 3
	for n := 1; n <= rounds; n++ {
		// Cached now: by the GET above, then by the last cold sample's miss.
		if cs := cacheStatusOf(t, base+"/cold/"); !freshHit.MatchString(cs) {
			t.Fatalf("before round %d, /cold/ Cache-Status = %q, want a hit (%s)", n, cs, freshHit)
		}
		round(n)
	}

	cold, warm := samples("/cold/"), samples("/warm/")
	for i, s := range cold {
		if s.CacheStatus != storedMiss {
			t.Errorf("cold sample %d of %d: CacheStatus = %q, want %q", i+1, len(cold), s.CacheStatus, storedMiss)
		}
		if s.URL != base+"/cold/" || s.Profile != "desktop" {
			t.Errorf("cold sample %d is of %s (%s), want %s (desktop)", i+1, s.URL, s.Profile, base+"/cold/")
		}
	}
	for i, s := range warm {
		if i == 0 {
			if s.CacheStatus != storedMiss {
				t.Errorf("first warm sample: CacheStatus = %q, want %q (nothing loaded /warm/ before)", s.CacheStatus, storedMiss)
			}
			continue
		}
		if !freshHit.MatchString(s.CacheStatus) {
			t.Errorf("warm sample %d of %d: CacheStatus = %q, want a hit (%s)", i+1, len(warm), s.CacheStatus, freshHit)
		}
	}
	// What the samples recorded is what the origin saw: each cold sample
	// fetched the page again, the warm page was fetched once.
	if got, want := origin.count("/cold/"), 1+len(cold); got != want {
		t.Errorf("origin saw %d GETs of /cold/, want %d: the first plain GET and one per cold sample (%d)", got, want, len(cold))
	}
	if got := origin.count("/warm/"); got != 1 {
		t.Errorf("origin saw %d GETs of /warm/, want 1", got)
	}
}
