package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/edgevitals/edgevitals/config"
	"github.com/edgevitals/edgevitals/vitals/lab"
	"github.com/edgevitals/edgevitals/vitals/store"
)

// needChromium returns the Chromium to use, skipping loudly outside CI when
// there is none (and failing under CI=true).
func needChromium(t *testing.T) string {
	t.Helper()
	path, err := lab.FindChromium("")
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("Chromium is required in CI: %v", err)
	}
	t.Skipf("!!! SKIPPED: no Chromium, %s is NOT tested (it drives a real browser): %v", t.Name(), err)
	return ""
}

// TestFieldDataWithChromium loads pages through the proxy in real Chromium
// with field data on: beacons arrive, their LCP and CLS agree with the lab
// measurement of the same page load, their cache status is the response's,
// a visit to a goal page counts one conversion, and a browser with Global
// Privacy Control on sends nothing.
func TestFieldDataWithChromium(t *testing.T) {
	chromium := needChromium(t)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/hero.png":
			// The LCP element arrives late, by design.
			time.Sleep(400 * time.Millisecond) // the origin's render time, not a test wait
			w.Header().Set("Content-Type", "image/png")
			w.Header().Set("Cache-Control", "max-age=3600")
			w.Write(tinyPNG)
			return
		case strings.HasPrefix(r.URL.Path, "/gpc/"):
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Cache-Control", "max-age=3600")
			fmt.Fprint(w, `<html><head><script>Object.defineProperty(navigator,"globalPrivacyControl",{value:true})</script></head><body><p>private reader</p></body></html>`)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "max-age=3600")
		fmt.Fprintf(w, `<html><head><title>%s</title></head><body>
<div id="banner"></div><p>Article text that renders first.</p>
<img src="/hero.png" width="600" height="300" style="display:block">
<script>setTimeout(function(){var b=document.getElementById("banner");b.style.height="150px";},200)</script>
</body></html>`, r.URL.Path)
	}))
	defer origin.Close()
	a := startTestAppWith(t, origin.URL, func(c *config.Config) {
		c.RUM.Enabled = true
		c.RUM.SampleRate = 1
		c.Conversions = []config.Conversion{{Site: "blog", Name: "order", Path: "/thanks/*"}}
	})
	proxyURL := "http://" + a.proxyLn.Addr().String()
	admin := "http://" + a.adminLn.Addr().String()
	b, err := lab.NewBrowser(chromium, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	measure := func(path string) store.Sample {
		t.Helper()
		s, err := b.Measure(ctx, proxyURL+path, lab.Desktop, "")
		if err != nil {
			t.Fatalf("measure %s: %v", path, err)
		}
		return s
	}
	first := measure("/article/")
	if !strings.Contains(first.CacheStatus, "fwd=uri-miss") {
		t.Fatalf("first load Cache-Status = %q, want a miss", first.CacheStatus)
	}
	count := `edgevitals_field_lcp_seconds_count{site="blog",device="desktop",cache="miss"}`
	waitMetric(t, admin, count, 1)
	fieldLCP, _ := scrape(t, admin, `edgevitals_field_lcp_seconds_sum{site="blog",device="desktop",cache="miss"}`)
	fieldCLS, _ := scrape(t, admin, `edgevitals_field_cls_sum{site="blog",device="desktop",cache="miss"}`)
	if first.LCP == nil || first.CLS == nil {
		t.Fatalf("lab sample without LCP or CLS: %+v", first)
	}
	labLCP := first.LCP.Seconds()
	if d := math.Abs(fieldLCP - labLCP); d > math.Max(0.05, 0.1*labLCP) {
		t.Errorf("field LCP %.3fs vs lab %.3fs: differ by more than 10%% or 50 ms", fieldLCP, labLCP)
	}
	if *first.CLS <= 0 || fieldCLS <= 0 {
		// The banner grows 200 ms after load by design: zero on both sides
		// would prove nothing.
		t.Errorf("CLS lab %.4f, field %.4f: want the banner's shift on both", *first.CLS, fieldCLS)
	}
	if d := math.Abs(fieldCLS - *first.CLS); d > 0.01 {
		t.Errorf("field CLS %.4f vs lab %.4f: differ by more than 0.01", fieldCLS, *first.CLS)
	}

	// The second view is a hit, and the beacon says so.
	if s := measure("/article/"); !strings.Contains(s.CacheStatus, "; hit") {
		t.Fatalf("second load Cache-Status = %q, want a hit", s.CacheStatus)
	}
	waitMetric(t, admin, `edgevitals_field_lcp_seconds_count{site="blog",device="desktop",cache="hit"}`, 1)

	// A visit to the goal page counts one conversion (checked again at the
	// end, once later views have sent their beacons: exactly one).
	const conversions = `edgevitals_conversions_total{site="blog",goal="order"}`
	measure("/thanks/1001/")
	waitMetric(t, admin, conversions, 1)

	// Pages with a strict Content-Security-Policy have a test of their own,
	// which watches for violations: TestFieldBeaconStrictCSPWithChromium.

	// Global Privacy Control: the script stays silent.
	sessions, _ := scrape(t, admin, `edgevitals_sessions_total{site="blog"}`)
	measure("/gpc/")
	measure("/after-gpc/")
	waitMetric(t, admin, `edgevitals_sessions_total{site="blog"}`, sessions+1)
	if got, _ := scrape(t, admin, `edgevitals_sessions_total{site="blog"}`); got != sessions+1 {
		t.Errorf("sessions went from %v to %v over a GPC view and a normal one, want +1", sessions, got)
	}
	// ... and a beacon that carries Sec-GPC: 1 is not counted.
	req, _ := http.NewRequest(http.MethodPost, proxyURL+"/__edgevitals/rum",
		strings.NewReader(`{"v":1,"sid":"gpcgpcgpcgpcgpcgpc","path":"/","lcp":100,"dev":"desktop","cache":"hit"}`))
	req.Header.Set("Sec-GPC", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, _ := scrape(t, admin, `edgevitals_sessions_total{site="blog"}`); got != sessions+1 {
		t.Errorf("a Sec-GPC beacon was counted: sessions %v", got)
	}
	if got, _ := scrape(t, admin, conversions); got != 1 {
		t.Errorf("%s = %v after one visit to the goal page, want 1", conversions, got)
	}
}

// TestFieldBeaconStrictCSPWithChromium loads, in a visitor's Chromium, a
// page whose Content-Security-Policy lets only scripts with its nonce run,
// through the proxy with rum.csp_nonce on: on the view that stores the page
// (a miss) and on a hit, the field script runs and its beacon arrives, and
// the page records no CSP violation but its two deliberate ones. Those prove
// the recording sees what a refused field script or beacon would cause: a
// script without the nonce, blocked as the page loads, and a beacon to an
// origin the policy does not allow, sent when the page is hidden, just after
// the field script sends its own.
func TestFieldBeaconStrictCSPWithChromium(t *testing.T) {
	chromium := needChromium(t)
	const nonce = "c3RyaWN0LXBhZ2Utbm9uY2U"
	var controlServed atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/strict/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "public, max-age=60")
			w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'nonce-"+nonce+"'")
			fmt.Fprint(w, strings.ReplaceAll(strictPage, "NONCE", nonce))
		case "/strict/control.js":
			controlServed.Add(1) // the policy must block it before it is asked for
			w.Header().Set("Content-Type", "text/javascript")
			fmt.Fprint(w, "window.controlRan = true")
		default:
			http.NotFound(w, r)
		}
	}))
	defer origin.Close()
	a := startTestAppWith(t, origin.URL, func(c *config.Config) {
		c.RUM.Enabled = true
		c.RUM.SampleRate = 1
		c.RUM.CSPNonce = true
	})
	proxyURL := "http://" + a.proxyLn.Addr().String()
	admin := "http://" + a.adminLn.Addr().String()
	visitor := newVisitor(t, chromium)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	wantViolations := []string{
		"script-src-elem " + proxyURL + "/strict/control.js",
		"connect-src " + strictControlBeacon,
	}
	for _, want := range []string{"miss", "hit"} {
		w := visitor.open(ctx, t, proxyURL+"/strict/", lab.Desktop)
		if got := viewStatus(w.cacheStatus); got != want {
			t.Fatalf("Cache-Status %q, want a %s", w.cacheStatus, want)
		}
		series := `edgevitals_field_lcp_seconds_count{site="blog",device="desktop",cache="` + want + `"}`
		beacons, _ := scrape(t, admin, `edgevitals_beacons_total{site="blog"}`)
		views, _ := scrape(t, admin, series)

		// The field script runs, or a violation says why it does not.
		w.poll(t, "the field script to run or be refused", `typeof window.edgevitals === 'object' ||
			violations.some(function (v) { return (v.blockedURI + ' ' + v.sourceFile).indexOf('/__edgevitals/') >= 0; })`)
		w.hide(t)
		// Events of violations come in the order they happened: once the
		// control beacon's is in, any of the field beacon's would be too.
		w.poll(t, "the control beacon's violation", `violations.some(function (v) { return v.violatedDirective === 'connect-src'; })`)
		raw, err := chromedp.Run(w.ctx, chromedp.Evaluate[string](`JSON.stringify(violations)`))
		if err != nil {
			t.Fatalf("read the violations: %v", err)
		}
		var vs []struct{ BlockedURI, ViolatedDirective, SourceFile string }
		if err := json.Unmarshal([]byte(raw), &vs); err != nil {
			t.Fatalf("violations %s: %v", raw, err)
		}
		var got []string
		for _, v := range vs {
			got = append(got, v.ViolatedDirective+" "+v.BlockedURI)
			if strings.Contains(v.BlockedURI, "/__edgevitals/") || strings.Contains(v.SourceFile, "/__edgevitals/") {
				t.Errorf("%s view: the field script or its beacon caused a CSP violation: %+v", want, v)
			}
		}
		if !slices.Equal(got, wantViolations) {
			t.Errorf("%s view: CSP violations %q, want exactly the controls %q", want, got, wantViolations)
		}
		ran, err := chromedp.Run(w.ctx, chromedp.Evaluate[bool](`window.controlRan === true`))
		if err != nil || ran {
			t.Errorf("%s view: the control script ran (%v, %v): the policy is not enforced", want, ran, err)
		}
		t.Logf("%s view: Cache-Status %q, violations %s", want, w.cacheStatus, raw)

		// The field beacon arrived, counted under the view's cache status.
		waitMetric(t, admin, series, views+1)
		if got, _ := scrape(t, admin, `edgevitals_beacons_total{site="blog"}`); got != beacons+1 {
			t.Errorf("%s view: beacons_total went from %v to %v, want +1", want, beacons, got)
		}
		w.close()
	}
	if n := controlServed.Load(); n != 0 {
		t.Errorf("the origin served the control script %d times: the policy did not block it", n)
	}
}

// strictControlBeacon is where strictPage sends a beacon its policy refuses.
const strictControlBeacon = "https://elsewhere.invalid/control"

// strictPage is a page for a policy of default-src 'self' and script-src
// 'nonce-NONCE' (NONCE replaced by the nonce). Its first script records
// every CSP violation in window.violations; the proxy adds the field script
// after it, before </head>. Two controls violate the policy on purpose: a
// script without the nonce, and, when the page is hidden, a beacon to
// another origin. The field script's own beacon leaves first: it listens on
// the window in the capture phase, the control on the document.
const strictPage = `<!doctype html><html><head><title>strict</title>
<script nonce="NONCE">
window.violations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  violations.push({blockedURI: e.blockedURI, violatedDirective: e.violatedDirective, sourceFile: e.sourceFile});
});
document.addEventListener('visibilitychange', function () {
  if (document.visibilityState === 'hidden') {
    try { navigator.sendBeacon('` + strictControlBeacon + `', '{}'); } catch (e) {}
  }
});
</script>
</head><body><p>A page with a strict policy.</p>
<script src="/strict/control.js"></script>
</body></html>`

// metricsBody is the admin listener's /metrics.
func metricsBody(t *testing.T, admin string) []byte {
	t.Helper()
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// scrape reads one series' value from /metrics.
func scrape(t *testing.T, admin, series string) (float64, bool) {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(metricsBody(t, admin))
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	return v, err == nil
}

// scrapeLines returns the lines of /metrics that start with prefix.
func scrapeLines(t *testing.T, admin, prefix string) string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(string(metricsBody(t, admin)), "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// waitMetric waits up to 20 s for a series of /metrics to reach at least
// want (beacons arrive on their own, nothing to wait on) and returns it;
// past that it fails, showing the metric's series.
func waitMetric(t *testing.T, admin, series string, want float64) float64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if v, ok := scrape(t, admin, series); ok && v >= want {
			return v
		}
		if time.Now().After(deadline) {
			name, _, _ := strings.Cut(series, "{")
			t.Fatalf("%s did not reach %v within 20 s (no beacon?); the series now:\n%s", series, want, scrapeLines(t, admin, name))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tinyPNG is a 1x1 PNG; the page sizes it, so it can be the LCP element.
var tinyPNG = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef\x00\x00\x00\x00IEND\xaeB`\x82")

// TestLabVisitsAreNotVisitors: the sampler's page loads carry a marker the
// field script honours, so lab samples never count as real visitors.
func TestLabVisitsAreNotVisitors(t *testing.T) {
	chromium := needChromium(t)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, `<html><head></head><body><p>page</p></body></html>`)
	}))
	defer origin.Close()
	a := startTestAppWith(t, origin.URL, func(c *config.Config) { c.RUM.Enabled, c.RUM.SampleRate = true, 1 })
	proxyURL := "http://" + a.proxyLn.Addr().String()
	admin := "http://" + a.adminLn.Addr().String()
	labB, err := lab.NewBrowser(chromium, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer labB.Close()
	labB.LabVisits()
	visitor, err := lab.NewBrowser(chromium, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer visitor.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := labB.Measure(ctx, proxyURL+"/a/", lab.Desktop, ""); err != nil {
		t.Fatal(err)
	}
	// A real visit after the lab one: once its beacon is in, the lab's
	// would have been too.
	if _, err := visitor.Measure(ctx, proxyURL+"/b/", lab.Desktop, ""); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, admin, `edgevitals_sessions_total{site="blog"}`, 1)
	if v, _ := scrape(t, admin, `edgevitals_sessions_total{site="blog"}`); v != 1 {
		t.Errorf("sessions = %v after one lab and one real visit, want 1", v)
	}
}
