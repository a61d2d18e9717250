package dashboard

import (
	"context"
	"errors"
	"fmt"
	"html"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/valyala/fasthttp"

	"github.com/edgevitals/edgevitals/admin"
	"github.com/edgevitals/edgevitals/cache"
	"github.com/edgevitals/edgevitals/proxy"
	"github.com/edgevitals/edgevitals/vitals/lab"
	"github.com/edgevitals/edgevitals/vitals/report"
	"github.com/edgevitals/edgevitals/vitals/store"
)

// dashFixture is a proxy with sites, its release registry over a real store
// in a temp dir, and the admin API the dashboard is registered on. The
// proxy does not listen: the dashboard reads the store only.
type dashFixture struct {
	dash  *Dashboard
	store *store.Store
	admin *admin.Admin
	now   time.Time
}

func newDashFixture(tb testing.TB, ao admin.AdminOptions, sites ...string) *dashFixture {
	tb.Helper()
	return newDashFixtureWith(tb, ao, report.ReportOptions{}, sites...)
}

func newDashFixtureWith(tb testing.TB, ao admin.AdminOptions, report report.ReportOptions, sites ...string) *dashFixture {
	tb.Helper()
	if len(sites) == 0 {
		sites = []string{"blog"}
	}
	cs, err := cache.New(cache.Options{MaxBytes: 1 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cs.Close)
	keyer, err := cache.NewKeyer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	o := proxy.Options{Store: cs, Keyer: keyer, Flight: cache.NewFlight(cache.FlightOptions{}), Metrics: metrics.NewSet()}
	for i, name := range sites {
		o.Sites = append(o.Sites, proxy.Site{
			Name: name, Hosts: []string{fmt.Sprintf("%s.example.com", name)},
			Origins: []string{fmt.Sprintf("http://127.0.0.1:%d", 9+i)}, // never dialled
			Preset:  "none",
			Origin:  proxy.OriginOptions{Timeout: time.Second, ConnectTimeout: time.Second, MaxConns: 1},
		})
	}
	p, err := proxy.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	st, err := store.OpenStore(filepath.Join(tb.TempDir(), "edgevitals.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := st.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	f := &dashFixture{store: st, now: time.Date(2026, 3, 10, 15, 37, 0, 0, time.UTC)}
	f.dash = New(Options{Store: st, Sites: p.Sites, Report: report, Clock: func() time.Time { return f.now }})
	if ao.Metrics == nil {
		ao.Metrics = metrics.NewSet()
	}
	f.admin = admin.NewAdmin(p, ao)
	f.admin.Handle("GET", "/", f.dash.Handler, false) // as cmd registers it

	return f
}

// get asks the admin handler for target, in memory.
func (f *dashFixture) get(tb testing.TB, target string, header ...string) (int, string) {
	tb.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(fasthttp.MethodGet)
	ctx.Request.SetRequestURI(target)
	for _, h := range header {
		k, v, _ := strings.Cut(h, ": ")
		ctx.Request.Header.Set(k, v)
	}
	f.admin.Handler(&ctx)
	return ctx.Response.StatusCode(), string(ctx.Response.Body())
}

func (f *dashFixture) addRelease(tb testing.TB, id, note string, at time.Time) {
	tb.Helper()
	if err := f.store.AddRelease(store.Release{Site: "blog", ID: id, Note: note, At: at, Source: store.SourceAPI}); err != nil {
		tb.Fatal(err)
	}
}

// fillHistory records a day of a site's life, one traffic point every two
// minutes with lab samples of / every 40 minutes, over four releases:
//
//	v1.0 at -20h: the first; hit ratio 92%, LCP about 1.2 s
//	v1.1 at -12h: sets a cookie on articles: hit ratio 60%, LCP 1.9 s (regressed)
//	v1.2 at -5h:  the fix: hit ratio back to 93%, LCP 1.2 s (improved)
//	v1.3 at -3m:  just shipped, at a quiet hour: not enough data
func (f *dashFixture) fillHistory(tb testing.TB) {
	tb.Helper()
	rels := []struct {
		id, note string
		at       time.Time
	}{
		{"v1.0", "baseline theme", f.now.Add(-20 * time.Hour)},
		{"v1.1", "new article template with a newsletter pop-up", f.now.Add(-12 * time.Hour)},
		{"v1.2", "drop the pop-up's session cookie", f.now.Add(-5 * time.Hour)},
		{"v1.3", "footer links", f.now.Add(-3 * time.Minute)},
	}
	for _, r := range rels {
		f.addRelease(tb, r.id, r.note, r.at)
	}
	const step = 2 * time.Minute
	for at := f.now.Add(-23 * time.Hour); !at.After(f.now); at = at.Add(step) {
		// Daily rhythm: busy afternoons, quiet nights (the last minutes are quiet).
		hour := float64(at.Hour()) + float64(at.Minute())/60
		rate := 50 + 45*math.Sin((hour-9)/24*2*math.Pi)
		if f.now.Sub(at) < 10*time.Minute {
			rate = 6
		}
		total := uint64(rate * step.Minutes())
		ratio := 0.92
		var cookies uint64
		if !at.Before(rels[1].at) && at.Before(rels[2].at) {
			ratio = 0.60
			cookies = total * 35 / 100
		} else if !at.Before(rels[2].at) {
			ratio = 0.93
		}
		hit := uint64(float64(total) * ratio)
		p := store.TrafficPoint{
			Site: "blog", At: at,
			Hit: hit * 9 / 10, Stale: hit - hit*9/10, Miss: total - hit, Bypass: total / 50,
			Origin: total - hit, OriginBuckets: make([]uint64, len(store.OriginBounds())+1),
		}
		p.OriginBuckets[6] = p.Origin // 100-150 ms
		if cookies > 0 {
			p.Uncacheable = map[string]uint64{"set_cookie": cookies}
		}
		if err := f.store.AddTraffic(p); err != nil {
			tb.Fatal(err)
		}
	}
	i := 0
	for at := f.now.Add(-23 * time.Hour); at.Before(f.now.Add(-10 * time.Minute)); at = at.Add(40 * time.Minute) {
		lcp := 1200*time.Millisecond + time.Duration(i%7)*20*time.Millisecond
		if !at.Before(rels[1].at) && at.Before(rels[2].at) {
			lcp += 700 * time.Millisecond
		}
		cls := 0.02
		for _, profile := range []string{"mobile", "desktop"} {
			s := store.Sample{URL: "https://www.example.com/", Profile: profile, At: at, LCP: &lcp, CLS: &cls}
			if err := f.store.AddSample("blog", "/", s); err != nil {
				tb.Fatal(err)
			}
		}
		i++
	}
}

func TestDashboardShowsReleasesAndVerdicts(t *testing.T) {
	f := newDashFixture(t, admin.AdminOptions{Loopback: true})
	f.fillHistory(t)
	status, body := f.get(t, "/")
	if status != fasthttp.StatusOK {
		t.Fatalf("GET / = %d, want 200:\n%s", status, body)
	}
	rep, err := report.Build(f.store, "blog", "v1.1", report.ReportOptions{Now: f.now})
	if err != nil {
		t.Fatal(err)
	}
	var regressedWhy []string
	for _, l := range rep.Lines {
		if l.Verdict == report.Regressed {
			regressedWhy = append(regressedWhy, l.Why)
		}
	}
	if len(regressedWhy) < 2 {
		t.Fatalf("fixture: v1.1 regressed %d lines, want hit ratio and LCP: %+v", len(regressedWhy), rep.Lines)
	}

	want := []string{
		"<svg", `class="ratio" d="M`, `class="rate" d="M`,
		"v1.0", "first release",
		"new article template with a newsletter pop-up",
		`badge v-regressed">regressed`, `badge v-improved">improved`, `badge v-nodata">not enough data`,
		"Latest release <code>v1.3</code> against <code>v1.2</code>",
		"Cache hit ratio", "LCP (lab)", "/ (mobile)", "regressed: Cache hit ratio, LCP (lab) on / (desktop)",
	}
	for _, s := range want {
		if !strings.Contains(body, s) {
			t.Errorf("GET / lacks %q", s)
		}
	}
	// The list is newest first.
	list := body[strings.Index(body, `id="releases-title"`):]
	last := -1
	for _, id := range []string{"v1.3", "v1.2", "v1.1", "v1.0"} {
		i := strings.Index(list, ">"+id+"</a>")
		if i < 0 || i < last {
			t.Errorf("release %q at %d of the list, after %d: want newest first", id, i, last)
		}
		last = i
	}
	// Release markers, coloured by verdict, for the releases in the 24 h shown.
	for _, m := range []string{`marker v-first`, `marker v-regressed`, `marker v-improved`, `marker v-nodata`} {
		if !strings.Contains(body, m) {
			t.Errorf("chart lacks %q", m)
		}
	}

	// The regressed release, picked from the list: its why sentences and
	// the reason that appeared.
	status, body = f.get(t, "/?site=blog&release=v1.1")
	if status != fasthttp.StatusOK {
		t.Fatalf("GET /?release=v1.1 = %d, want 200", status)
	}
	for _, why := range regressedWhy {
		if !strings.Contains(body, html.EscapeString(why)) {
			t.Errorf("release v1.1 lacks the why sentence %q", why)
		}
	}
	for _, s := range []string{`class="reasons"`, "<code>set_cookie</code>", "the origin sets a cookie", "Release <code>v1.1</code> against <code>v1.0</code>"} {
		if !strings.Contains(body, s) {
			t.Errorf("release v1.1 lacks %q", s)
		}
	}

	status, body = f.get(t, "/?release=v1.0")
	if status != fasthttp.StatusOK || !strings.Contains(body, "first recorded release") {
		t.Errorf("GET /?release=v1.0 = %d, want 200 and the first release explained", status)
	}
}

func TestDashboardEscapesReleases(t *testing.T) {
	f := newDashFixture(t, admin.AdminOptions{Loopback: true})
	// The store takes what the registry would refuse (ids are checked by
	// Record, not by the store): the page must not trust it either.
	hostileID := `<script>alert("id")</script>`
	hostileNote := `<img src=x onerror=alert(1)> & "quotes" </textarea></title>`
	f.addRelease(t, "v1", "", f.now.Add(-2*time.Hour))
	f.addRelease(t, hostileID, hostileNote, f.now.Add(-time.Hour))
	if err := f.store.AddTraffic(store.TrafficPoint{Site: "blog", At: f.now.Add(-time.Minute), Hit: 5, Miss: 1}); err != nil {
		t.Fatal(err)
	}
	status, body := f.get(t, "/")
	if status != fasthttp.StatusOK {
		t.Fatalf("GET / = %d, want 200", status)
	}
	for _, bad := range []string{"<script", "<img", "</textarea></title>"} {
		if strings.Contains(body, bad) {
			t.Errorf("GET / holds unescaped %q", bad)
		}
	}
	for _, s := range []string{"&lt;script&gt;alert(&#34;id&#34;)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt; &amp;"} {
		if !strings.Contains(body, s) {
			t.Errorf("GET / lacks the escaped %q", s)
		}
	}
	// Links to the release carry its id as a query value.
	if !strings.Contains(body, `href="?release=%3Cscript%3Ealert%28%22id%22%29%3C%2Fscript%3E&amp;site=blog"`) {
		t.Errorf("GET / lacks the escaped link to the hostile release")
	}
}

func TestDashboardEmptyStore(t *testing.T) {
	f := newDashFixture(t, admin.AdminOptions{Loopback: true})
	status, body := f.get(t, "/")
	if status != fasthttp.StatusOK {
		t.Fatalf("GET / = %d, want 200", status)
	}
	for _, s := range []string{"No traffic recorded yet", "Releases appear when CI records them", "release header changes"} {
		if !strings.Contains(body, s) {
			t.Errorf("empty dashboard lacks %q", s)
		}
	}
	if strings.Contains(body, "<svg") {
		t.Errorf("empty dashboard draws a chart")
	}
}

func TestDashboardReportError(t *testing.T) {
	// Options no report accepts: every report fails, the page still shows.
	f := newDashFixtureWith(t, admin.AdminOptions{Loopback: true}, report.ReportOptions{Alpha: 2})
	f.addRelease(t, "r1", "", f.now.Add(-2*time.Hour))
	f.addRelease(t, "r2", "", f.now.Add(-time.Hour))
	status, body := f.get(t, "/")
	if status != fasthttp.StatusOK {
		t.Fatalf("GET / = %d, want 200", status)
	}
	for _, s := range []string{`badge v-error">no report`, `badge v-first">first release`, "could not be built"} {
		if !strings.Contains(body, s) {
			t.Errorf("GET / lacks %q", s)
		}
	}
}

func TestDashboardTrafficWithoutReleases(t *testing.T) {
	f := newDashFixture(t, admin.AdminOptions{Loopback: true})
	for i := range 5 {
		p := store.TrafficPoint{Site: "blog", At: f.now.Add(-time.Duration(i) * time.Minute), Hit: 90, Miss: 10}
		if err := f.store.AddTraffic(p); err != nil {
			t.Fatal(err)
		}
	}
	_, body := f.get(t, "/")
	for _, s := range []string{"<svg", "90.0%", "No release recorded yet"} {
		if !strings.Contains(body, s) {
			t.Errorf("dashboard lacks %q", s)
		}
	}
	// Older than the range: no chart, and a word about it.
	_, body = f.get(t, "/?hours=1&site=blog")
	if !strings.Contains(body, "<svg") {
		t.Errorf("hours=1 lost the last minutes' chart")
	}
	f.now = f.now.Add(3 * time.Hour)
	_, body = f.get(t, "/?hours=1")
	if strings.Contains(body, "<svg") || !strings.Contains(body, "No traffic recorded in the last 1 h") {
		t.Errorf("an hour without traffic: want no chart and a note, got:\n%s", body)
	}
}

func TestDashboardQuery(t *testing.T) {
	f := newDashFixture(t, admin.AdminOptions{Loopback: true}, "blog", "shop")
	f.addRelease(t, "r1", "", f.now.Add(-time.Hour))
	for _, tc := range []struct {
		target string
		status int
		want   string
	}{
		{"/", 200, `aria-current="page">blog</a>`},
		{"/?site=shop", 200, `aria-current="page">shop</a>`},
		{"/?site=shop&hours=168", 200, `aria-current="true">7 d</a>`},
		{"/?hours=1", 200, "last 1 h"},
		{"/?hours=abc", 400, "hours: want a whole number from 1 to 168, got &#34;abc&#34;"},
		{"/?hours=0", 400, "hours: want"},
		{"/?hours=169", 400, "hours: want"},
		{"/?hours=-5", 400, "hours: want"},
		{"/?site=nope", 404, "unknown site &#34;nope&#34;"},
		{"/?site=blog&release=r2", 404, "release &#34;r2&#34; of site &#34;blog&#34; is not recorded"},
		{"/?site=shop&release=r1", 404, "is not recorded"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			status, body := f.get(t, tc.target)
			if status != tc.status {
				t.Errorf("GET %s = %d, want %d", tc.target, status, tc.status)
			}
			if !strings.Contains(body, tc.want) {
				t.Errorf("GET %s lacks %q:\n%s", tc.target, tc.want, body)
			}
		})
	}
}

func TestDashboardAuth(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opt    admin.AdminOptions
		header []string
		status int
	}{
		{"loopback is open", admin.AdminOptions{Loopback: true, Token: "s3cret"}, nil, 200},
		{"off loopback needs the token", admin.AdminOptions{Token: "s3cret"}, nil, 401},
		{"off loopback with the token", admin.AdminOptions{Token: "s3cret"}, []string{"Authorization: Bearer s3cret"}, 200},
		{"off loopback with a wrong token", admin.AdminOptions{Token: "s3cret"}, []string{"Authorization: Bearer guess"}, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newDashFixture(t, tc.opt)
			if status, _ := f.get(t, "/", tc.header...); status != tc.status {
				t.Errorf("GET / = %d, want %d", status, tc.status)
			}
		})
	}
}

func TestDashboardChartBuckets(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		hours  int
		bucket string
	}{
		{1, "1-minute"}, {6, "2-minute"}, {24, "5-minute"}, {72, "15-minute"}, {168, "1-hour"},
	} {
		t.Run(fmt.Sprint(tc.hours), func(t *testing.T) {
			from := now.Add(-time.Duration(tc.hours) * time.Hour)
			var pts []store.TrafficPoint
			for at := from.Add(time.Minute); !at.After(now); at = at.Add(time.Minute) {
				pts = append(pts, store.TrafficPoint{Site: "blog", At: at, Hit: 3, Miss: 1})
			}
			c := dashChartOf(pts, nil, from, now)
			if c == nil {
				t.Fatal("no chart")
			}
			if c.Bucket != tc.bucket {
				t.Errorf("bucket = %q, want %q", c.Bucket, tc.bucket)
			}
			if n := strings.Count(c.RatioPath, "L") + strings.Count(c.RatioPath, "M"); n > dashMaxPoints {
				t.Errorf("hit ratio line of %d points, want at most %d", n, dashMaxPoints)
			}
			if n := strings.Count(c.RatioPath, "M"); n != 1 {
				t.Errorf("hit ratio line in %d pieces, want 1: %s", n, c.RatioPath)
			}
			// 75% everywhere: every point at the same height.
			y := fmt.Sprintf(" %.1f", c.Bottom-(c.Bottom-c.Top)*0.75)
			if strings.Count(c.RatioPath, y) != strings.Count(c.RatioPath, "L")+1 {
				t.Errorf("hit ratio line not flat at y%s: %.80s", y, c.RatioPath)
			}
		})
	}
}

func TestDashboardChartGaps(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	from := now.Add(-time.Hour)
	at := func(min int) time.Time { return from.Add(time.Duration(min) * time.Minute) }
	pts := []store.TrafficPoint{
		{Site: "blog", At: at(5), Hit: 1},
		{Site: "blog", At: at(6), Hit: 1},
		{Site: "blog", At: at(20), Bypass: 4}, // traffic, but none cacheable: a gap in the ratio only
		{Site: "blog", At: at(40), Miss: 2},   // alone: drawn as a dot
	}
	c := dashChartOf(pts, []dashRelease{{ID: "r", at: at(30), Class: "v-same"}, {ID: "old", at: from.Add(-time.Hour)}}, from, now)
	if n := strings.Count(c.RatioPath, "M"); n != 2 {
		t.Errorf("hit ratio in %d pieces, want 2 (a line and a dot): %s", n, c.RatioPath)
	}
	if n := strings.Count(c.RatePath, "Z"); n != 3 {
		t.Errorf("request rate in %d areas, want 3: %s", n, c.RatePath)
	}
	if len(c.Markers) != 1 || c.Markers[0].ID != "r" {
		t.Errorf("markers = %+v, want only the release in range", c.Markers)
	}
	if got := dashChartOf(nil, nil, from, now); got != nil {
		t.Errorf("chart of no traffic = %+v, want nil", got)
	}
}

func TestDashboardMarkerLabelsDoNotOverlap(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	from := now.Add(-24 * time.Hour)
	var rels []dashRelease
	for i := range 3 { // three releases within ten minutes, newest first
		rels = append([]dashRelease{{ID: fmt.Sprintf("release-%d", i), at: from.Add(12*time.Hour + time.Duration(i)*5*time.Minute)}}, rels...)
	}
	c := dashChartOf([]store.TrafficPoint{{Site: "blog", At: now.Add(-time.Minute), Hit: 1}}, rels, from, now)
	seen := map[float64]string{}
	for _, m := range c.Markers {
		if other, ok := seen[m.LabelY]; ok {
			t.Errorf("labels of %s and %s share the row at y %.1f", m.ID, other, m.LabelY)
		}
		seen[m.LabelY] = m.ID
		if m.LabelY < 10 {
			t.Errorf("label of %s at y %.1f: above the chart", m.ID, m.LabelY)
		}
	}
}

func TestDashboardFormats(t *testing.T) {
	f := func(got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	f(report.FormatValue("lab_lcp_seconds", 0.0042), "4.2 ms")
	f(report.FormatValue("lab_lcp_seconds", 0.42), "420 ms")
	f(report.FormatValue("lab_lcp_seconds", 2.1), "2.1 s")
	f(report.FormatValue("hit_ratio", 0.9123), "91.2%")
	f(report.FormatValue("lab_cls", 0.05), "0.050")
	f(dashChange("hit_ratio", -0.12), "−12.0 pt")
	f(dashChange("lab_lcp_seconds", 0.4), "+400 ms")
	f(report.FormatP(0.0004), "< 0.001")
	f(report.FormatP(0.031), "0.031")
	f(dashRate(0.26), "0.3")
	f(dashRate(42.4), "42")
	f(dashRate(1260), "1.3k")
	f(dashRate(25000), "25k")
	f(dashThousands(1234567), "1,234,567")
	f(dashMetric("lab_lcp_seconds"), "LCP (lab)")
	f(dashMetric("field_cls"), "CLS (field)")
	f(dashMetric("hit_ratio"), "Cache hit ratio")
	f(dashMetric("something_new"), "something_new")
	f(dashWhere(report.Line{Page: "/", Profile: "mobile"}), "/ (mobile)")
	f(dashWhere(report.Line{Group: "article", Profile: "desktop"}), "article pages (desktop)")
	f(dashWhere(report.Line{Goal: "order"}), "goal order")
	f(dashWhere(report.Line{}), "")
	f(report.FormatValue("conversion_rate", 0.034), "3.4%")
	for _, tc := range []struct{ in, want float64 }{{0, 4}, {3, 3.2}, {7, 8}, {9, 10}, {41, 60}, {1234, 1600}, {0.3, 0.32}, {100, 100}} {
		if got := dashNiceTop(tc.in); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("dashNiceTop(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// FuzzDashboardQuery feeds the dashboard any query: it answers 200, 400 or
// 404 and never writes what it was given unescaped.
func FuzzDashboardQuery(f *testing.F) {
	fx := newDashFixture(f, admin.AdminOptions{Loopback: true})
	fx.addRelease(f, "v1", "", fx.now.Add(-2*time.Hour))
	fx.addRelease(f, "v2", "", fx.now.Add(-time.Hour))
	for _, seed := range []string{"", "site=blog", "hours=168", "hours=0", "hours=99999999999999999999",
		"release=v1", "site=<b>&release=<i>", "hours=%00", "site=%ff%fe", "hours=1&hours=2"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, query string) {
		status, body := fx.get(t, "/?"+query)
		switch status {
		case 200, 400, 404:
		default:
			t.Fatalf("GET /?%s = %d, want 200, 400 or 404", query, status)
		}
		if strings.Contains(body, "<b>") || strings.Contains(body, "<i>") || strings.Count(body, "<script") > 0 {
			t.Fatalf("GET /?%s wrote markup from the query", query)
		}
	})
}

// TestDashboardInChromium loads the page in real headless Chromium, as a
// user would: no console error (a CSP violation counts), the releases and
// verdicts visible, and a screenshot kept for people to look at (in
// $EDGEVITALS_ARTIFACTS when set, else in the test's temp dir).
func TestDashboardInChromium(t *testing.T) {
	chromium, err := lab.FindChromium(os.Getenv("EDGEVITALS_CHROMIUM"))
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs Chromium for the dashboard test: %v", err)
		}
		t.Skipf("SKIPPED: NO CHROMIUM, the dashboard is NOT tested in a browser: %v", err)
	}
	f := newDashFixture(t, admin.AdminOptions{Loopback: true}, "blog", "shop")
	f.fillHistory(t)
	addr := serveAdmin(t, f.admin)

	actx, acancel := chromedp.NewExecAllocator(context.Background(), lab.AllocatorOptions(chromium, 1366, 900)...) // a laptop
	defer acancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, stop := context.WithTimeout(ctx, 60*time.Second)
	defer stop()

	var (
		mu       sync.Mutex
		problems []string
	)
	err = chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError || ev.Entry.Level == cdplog.EntryLevelWarning {
				problems = append(problems, fmt.Sprintf("%s %s: %s (%s)", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		case *cdpruntime.EventConsoleAPICalled:
			if ev.Type == cdpruntime.ConsoleAPICalledTypeError || ev.Type == cdpruntime.ConsoleAPICalledTypeWarning {
				problems = append(problems, fmt.Sprintf("console.%s", ev.Type))
			}
		case *cdpruntime.EventExceptionThrown:
			problems = append(problems, "exception: "+ev.ExceptionDetails.Text)
		}
	})
	if err != nil {
		t.Fatalf("start Chromium: %v", err)
	}

	err = chromedp.Do(ctx,
		chromedp.Navigate("http://"+addr+"/?site=blog"),
		chromedp.WaitVisible(chromedp.CSS("svg.chart")),
	)
	if err != nil {
		t.Fatalf("load the dashboard in Chromium: %v", err)
	}
	title, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("releases-title")))
	if err != nil {
		t.Fatalf("read the releases heading: %v", err)
	}
	releases, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("td.id a")].map(a => a.textContent).join(",")`))
	if err != nil {
		t.Fatalf("read the release list: %v", err)
	}
	verdicts, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("td .badge")].map(b => b.textContent).join(",")`))
	if err != nil {
		t.Fatalf("read the verdicts: %v", err)
	}
	chartWidth, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelector("svg.chart").getBoundingClientRect().width`))
	if err != nil {
		t.Fatalf("measure the chart: %v", err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	keepScreenshot(t, "dashboard.png", png)

	// The regressed release, as a user reaches it from the list.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`td.id a[href*="release=v1.1"]`)),
		chromedp.WaitVisible(chromedp.CSS(".reasons")),
	)
	if err != nil {
		t.Fatalf("open release v1.1 from the list: %v", err)
	}
	why, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("tr.why td")].map(td => td.textContent).join("\n")`))
	if err != nil {
		t.Fatalf("read the why sentences: %v", err)
	}
	if !strings.Contains(why, "The cache hit ratio fell") || !strings.Contains(why, "set_cookie") {
		t.Errorf("why sentences of v1.1 = %q, want the hit ratio's fall and set_cookie", why)
	}
	png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	keepScreenshot(t, "dashboard-regressed.png", png)

	// The same page for a user whose system is in dark mode.
	err = chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		})
		return err
	}))
	if err != nil {
		t.Fatalf("emulate dark mode: %v", err)
	}
	png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	keepScreenshot(t, "dashboard-dark.png", png)

	if title != "Releases" {
		t.Errorf("releases heading = %q, want %q", title, "Releases")
	}
	if releases != "v1.3,v1.2,v1.1,v1.0" {
		t.Errorf("releases listed = %q, want newest first", releases)
	}
	for _, v := range []string{"regressed", "improved", "not enough data", "first release"} {
		if !strings.Contains(verdicts, v) {
			t.Errorf("verdicts shown = %q, lack %q", verdicts, v)
		}
	}
	if chartWidth < 900 {
		t.Errorf("chart is %.0f px wide on a laptop screen, want the page's width", chartWidth)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("browser reported %s", p)
	}
}

// keepScreenshot writes a screenshot for people to look at: into
// $EDGEVITALS_ARTIFACTS when set (CI uploads it), else the test's temp dir.
func keepScreenshot(t *testing.T, name string, png []byte) {
	t.Helper()
	dir := os.Getenv("EDGEVITALS_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// serveAdmin serves the admin API on a loopback port until the test ends.
func serveAdmin(t *testing.T, a *admin.Admin) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: a.Handler, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Errorf("shutdown admin: %v", err)
		}
		if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("serve admin: %v", err)
		}
	})
	return ln.Addr().String()
}
