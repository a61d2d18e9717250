package field

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/edgevitals/edgevitals/vitals/store"
)

// fakeClock is a clock that tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 2, 9, 10, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var testGoals = []Goal{
	{Site: "blog", Name: "signup"},
	{Site: "blog", Name: "order", Path: "/checkout/order-received/*"},
	{Site: "shop", Name: "order", Path: "/thanks"},
}

// newTestCollector returns a collector of the sites blog and shop with
// testGoals, a private metrics set and a fake clock, changed by edit.
func newTestCollector(t testing.TB, edit func(*CollectorOptions)) *testCollector {
	t.Helper()
	clock := newFakeClock()
	o := CollectorOptions{
		Sites:      []string{"blog", "shop"},
		Goals:      testGoals,
		SampleRate: 0.5,
		Metrics:    metrics.NewSet(),
		Clock:      clock.Now,
	}
	if edit != nil {
		edit(&o)
	}
	c, err := NewCollector(o)
	if err != nil {
		t.Fatal(err)
	}
	return &testCollector{Collector: c, clock: clock, set: o.Metrics}
}

type testCollector struct {
	*Collector
	clock *fakeClock
	set   *metrics.Set
}

// counts is what a collector has counted for the site blog.
type counts struct {
	beacons, sessions, rejected, pending, observed int64
}

func (c *testCollector) snapshot() counts {
	var n counts
	st := c.sites["blog"]
	n.beacons = int64(st.beacons.Get())
	n.sessions = int64(st.sessions.Get())
	for _, r := range st.rejected {
		n.rejected += int64(r.Get())
	}
	c.mu.Lock()
	for _, a := range c.pending {
		n.pending += a.PageViews + a.Sessions + a.LCP.Count() + a.CLS.Count()
	}
	c.mu.Unlock()
	for name, v := range c.exposition() {
		if strings.HasSuffix(strings.SplitN(name, "{", 2)[0], "_count") {
			n.observed += int64(v)
		}
	}
	return n
}

// exposition returns the collector's metrics by series.
func (c *testCollector) exposition() map[string]float64 {
	var buf bytes.Buffer
	c.set.WritePrometheus(&buf)
	out := map[string]float64{}
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			panic(fmt.Sprintf("bad exposition line %q", line))
		}
		out[line[:i]] = v
	}
	return out
}

// send posts a beacon of sid for path, hit of v42 on mobile, with the given
// measurements or conversion (empty: typical measurements), from a client
// of its own, and wants status want.
func (c *testCollector) send(t *testing.T, site, sid, path, extra string, want int) {
	t.Helper()
	if extra == "" {
		extra = `,"lcp":1200,"cls":0.02,"inp":90,"ttfb":100,"fcp":800`
	}
	body := `{"v":1,"sid":"` + sid + `","path":"` + path + `","dev":"mobile","cache":"hit","rel":"v42"` + extra + `}`
	if got := c.Beacon(site, "client-"+sid, false, []byte(body)); got != want {
		t.Errorf("Beacon(%s, %s) = %d, want %d", site, body, got, want)
	}
}

func sid(n int) string { return fmt.Sprintf("session%09dxyz", n) }

func TestNewCollectorRejects(t *testing.T) {
	tests := []struct {
		name string
		edit func(*CollectorOptions)
		want string
	}{
		{"no site", func(o *CollectorOptions) { o.Sites = nil; o.Goals = nil }, "no site"},
		{"site twice", func(o *CollectorOptions) { o.Sites = []string{"blog", "shop", "blog"} }, `site "blog" listed twice`},
		{"quote in site", func(o *CollectorOptions) { o.Sites = append(o.Sites, `a"b`) }, `site name "a\"b"`},
		{"sample rate above 1", func(o *CollectorOptions) { o.SampleRate = 1.5 }, "rum.sample_rate: must be in [0, 1], got 1.5"},
		{"sample rate NaN", func(o *CollectorOptions) { o.SampleRate = -0.1 }, "rum.sample_rate"},
		{"negative rate", func(o *CollectorOptions) { o.RatePerMinute = -1 }, "rate per minute: must be >= 0, got -1"},
		{"goal of unknown site", func(o *CollectorOptions) { o.Goals = []Goal{{Site: "wiki", Name: "x"}} }, `conversion[0].site: "wiki" is not a known site`},
		{"bad goal name", func(o *CollectorOptions) { o.Goals = []Goal{{Site: "blog", Name: "Order!"}} }, `conversion[0].name: must match`},
		{"goal twice", func(o *CollectorOptions) { o.Goals = []Goal{{Site: "blog", Name: "a"}, {Site: "blog", Name: "a"}} }, `conversion[1].name: site "blog" already has a goal "a"`},
		{"relative goal path", func(o *CollectorOptions) { o.Goals = []Goal{{Site: "blog", Name: "a", Path: "thanks"}} }, `conversion[0].path: must start with /`},
		{"group without paths", func(o *CollectorOptions) { o.Groups = []Group{{Name: "home"}} }, `rum group[0].paths: must not be empty`},
		{"group twice", func(o *CollectorOptions) {
			o.Groups = []Group{{Name: "home", Paths: []string{"/"}}, {Name: "home", Paths: []string{"/x"}}}
		}, `rum group[1].name: "home" is already a group`},
		{"group path with space", func(o *CollectorOptions) { o.Groups = []Group{{Name: "a", Paths: []string{"/a b"}}} }, `holds a space`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := CollectorOptions{Sites: []string{"blog", "shop"}, Goals: testGoals}
			tc.edit(&o)
			_, err := NewCollector(o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewCollector error = %v, want one with %q", err, tc.want)
			}
		})
	}
	tooMany := CollectorOptions{Sites: []string{"blog"}}
	for i := range maxGoals + 1 {
		tooMany.Goals = append(tooMany.Goals, Goal{Site: "blog", Name: fmt.Sprintf("g%d", i)})
	}
	if _, err := NewCollector(tooMany); err == nil || !strings.Contains(err.Error(), "more than 64 goals") {
		t.Errorf("NewCollector with %d goals: error = %v", len(tooMany.Goals), err)
	}
}

func TestBeaconStatusesAndRejections(t *testing.T) {
	c := newTestCollector(t, nil)
	good := beaconJSON(t, nil)
	tests := []struct {
		name   string
		site   string
		gpc    bool
		body   string
		want   int
		reason string // counted rejection, "" for none
	}{
		{"counted", "blog", false, good, 204, ""},
		{"GPC is dropped quietly", "blog", true, good, 204, ""},
		{"unknown site", "wiki", false, good, 400, ""},
		{"too large", "blog", false, strings.Repeat(" ", MaxBeaconBytes) + good, 413, "too_large"},
		{"malformed", "blog", false, `{"v":1,`, 400, "malformed"},
		{"version", "blog", false, beaconJSON(t, map[string]string{"v": "3"}), 400, "version"},
		{"out of range", "blog", false, beaconJSON(t, map[string]string{"lcp": "99999"}), 400, "out_of_range"},
		{"invalid", "blog", false, beaconJSON(t, map[string]string{"dev": `"tv"`}), 400, "invalid"},
		{"unknown goal", "blog", false, `{"v":1,"sid":"` + goodSID + `","path":"/","dev":"mobile","conv":"refund"}`, 400, "unknown_goal"},
		{"goal of another site", "shop", false, `{"v":1,"sid":"` + goodSID + `","path":"/","dev":"mobile","conv":"signup"}`, 400, "unknown_goal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, exp := c.snapshot(), c.exposition()
			if got := c.Beacon(tc.site, "10.0.0.1", tc.gpc, []byte(tc.body)); got != tc.want {
				t.Fatalf("Beacon(%q, %.80s) = %d, want %d", tc.site, tc.body, got, tc.want)
			}
			after := c.snapshot()
			counted := tc.want == 204 && !tc.gpc
			if (after.beacons > before.beacons) != counted || (after.observed > before.observed) != counted {
				t.Errorf("counted %+v -> %+v, want counted %v", before, after, counted)
			}
			for _, site := range []string{"blog", "shop"} {
				for r := range numReasons {
					name := `edgevitals_beacons_rejected_total{site="` + site + `",reason="` + r.String() + `"}`
					want := exp[name]
					if site == tc.site && r.String() == tc.reason {
						want++
					}
					if got := c.exposition()[name]; got != want {
						t.Errorf("%s = %v, want %v", name, got, want)
					}
				}
			}
		})
	}
}

func TestBeaconRateLimit(t *testing.T) {
	c := newTestCollector(t, func(o *CollectorOptions) { o.RatePerMinute = 60 })
	body := []byte(beaconJSON(t, nil))
	a, b := "192.0.2.1", "192.0.2.2"
	for i := 3; c.limiter.slot(a) == c.limiter.slot(b); i++ {
		b = fmt.Sprintf("192.0.2.%d", i) // another slot, so another budget
	}
	send := func(client string, n, want int) {
		t.Helper()
		for i := range n {
			if got := c.Beacon("blog", client, false, body); got != want {
				t.Fatalf("beacon %d of %s at %v = %d, want %d", i+1, client, c.clock.Now().Format(time.TimeOnly), got, want)
			}
		}
	}
	send(a, 60, 204)
	send(a, 1, 429)
	send(b, 1, 204) // a's budget is a's
	c.clock.Advance(time.Second)
	send(a, 1, 204) // one beacon a second comes back
	send(a, 1, 429)
	c.clock.Advance(10 * time.Minute)
	send(a, 60, 204) // a minute's budget at most, however long the pause
	send(a, 1, 429)
	if got := c.exposition()[`edgevitals_beacons_rejected_total{site="blog",reason="rate_limited"}`]; got != 3 {
		t.Errorf("rate_limited rejections = %v, want 3", got)
	}
}

func TestSessionsAndConversions(t *testing.T) {
	c := newTestCollector(t, func(o *CollectorOptions) { o.MaxSessions = 5 })
	conv := func(name string) string { return `,"conv":"` + name + `"` }
	steps := []struct {
		do                        func()
		blogSessions, shopSession float64
		signup, blogOrder, shopOr float64
	}{
		{func() { c.send(t, "blog", sid(1), "/", "", 204) }, 1, 0, 0, 0, 0},
		{func() { c.send(t, "blog", sid(1), "/about/", "", 204) }, 1, 0, 0, 0, 0},
		{func() { c.send(t, "shop", sid(1), "/", "", 204) }, 1, 1, 0, 0, 0}, // one tab id, another site
		{func() { c.send(t, "blog", sid(1), "/", conv("signup"), 204) }, 1, 1, 1, 0, 0},
		{func() { c.send(t, "blog", sid(1), "/", conv("signup"), 204) }, 1, 1, 1, 0, 0}, // once per session
		{func() { c.send(t, "blog", sid(1), "/checkout/order-received/42/", "", 204) }, 1, 1, 1, 1, 0},
		{func() { c.send(t, "blog", sid(1), "/checkout/order-received/42/", "", 204) }, 1, 1, 1, 1, 0}, // reload
		{func() { c.send(t, "blog", sid(2), "/checkout/order-received/43/", "", 204) }, 2, 1, 1, 2, 0},
		{func() { c.send(t, "shop", sid(2), "/thanks", "", 204) }, 2, 2, 1, 2, 1},
		{func() { c.send(t, "shop", sid(3), "/thanks/more", "", 204) }, 2, 3, 1, 2, 1}, // exact path only
		{func() { c.clock.Advance(29 * time.Minute); c.send(t, "blog", sid(1), "/", "", 204) }, 2, 3, 1, 2, 1},
		{func() { c.clock.Advance(31 * time.Minute); c.send(t, "blog", sid(1), "/", conv("signup"), 204) }, 3, 3, 2, 2, 1}, // idle: a new session
		// Five sessions are remembered at most: the sixth pushes out the
		// least recently seen, which then counts again.
		{func() {
			for i := 4; i <= 8; i++ {
				c.send(t, "blog", sid(i), "/", "", 204)
			}
		}, 8, 3, 2, 2, 1},
		{func() { c.send(t, "blog", sid(1), "/", conv("signup"), 204) }, 9, 3, 3, 2, 1},
	}
	for i, s := range steps {
		s.do()
		e := c.exposition()
		for _, m := range []struct {
			name string
			want float64
		}{
			{`edgevitals_sessions_total{site="blog"}`, s.blogSessions},
			{`edgevitals_sessions_total{site="shop"}`, s.shopSession},
			{`edgevitals_conversions_total{site="blog",goal="signup"}`, s.signup},
			{`edgevitals_conversions_total{site="blog",goal="order"}`, s.blogOrder},
			{`edgevitals_conversions_total{site="shop",goal="order"}`, s.shopOr},
		} {
			if got := e[m.name]; got != m.want {
				t.Errorf("step %d: %s = %v, want %v", i, m.name, got, m.want)
			}
		}
	}
	if got := c.byAge.Len(); got != 5 {
		t.Errorf("%d sessions remembered, want 5", got)
	}
}

func TestFieldMetricsExposition(t *testing.T) {
	c := newTestCollector(t, nil)
	post := func(body string) {
		t.Helper()
		if got := c.Beacon("blog", "198.51.100.7", false, []byte(body)); got != 204 {
			t.Fatalf("Beacon(%s) = %d", body, got)
		}
	}
	post(`{"v":1,"sid":"` + goodSID + `","path":"/","dev":"mobile","cache":"hit","lcp":1200,"inp":180,"ttfb":90,"cls":0.02,"fcp":700}`)
	post(`{"v":1,"sid":"` + goodSID + `","path":"/x/","dev":"mobile","cache":"hit","lcp":3100,"cls":0.3}`)
	post(`{"v":1,"sid":"` + goodSID + `","path":"/","dev":"desktop","cache":"miss","ttfb":950}`)
	post(`{"v":1,"sid":"` + goodSID + `","path":"/","dev":"tablet","conv":"signup"}`) // a conversion is not a page view

	f := func(series string, want float64) {
		t.Helper()
		got, ok := c.exposition()[series]
		if !ok {
			t.Errorf("%s missing", series)
		} else if got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	const mh = `site="blog",device="mobile",cache="hit"`
	f(`edgevitals_field_lcp_seconds_bucket{`+mh+`,le="1"}`, 0)
	f(`edgevitals_field_lcp_seconds_bucket{`+mh+`,le="1.5"}`, 1)
	f(`edgevitals_field_lcp_seconds_bucket{`+mh+`,le="4"}`, 2)
	f(`edgevitals_field_lcp_seconds_bucket{`+mh+`,le="+Inf"}`, 2)
	f(`edgevitals_field_lcp_seconds_sum{`+mh+`}`, 4.3)
	f(`edgevitals_field_lcp_seconds_count{`+mh+`}`, 2)
	f(`edgevitals_field_inp_seconds_bucket{`+mh+`,le="0.2"}`, 1)
	f(`edgevitals_field_inp_seconds_count{`+mh+`}`, 1) // the second page view had no INP
	f(`edgevitals_field_cls_bucket{`+mh+`,le="0.025"}`, 1)
	f(`edgevitals_field_cls_bucket{`+mh+`,le="0.5"}`, 2)
	f(`edgevitals_field_ttfb_seconds_bucket{site="blog",device="desktop",cache="miss",le="0.8"}`, 0)
	f(`edgevitals_field_ttfb_seconds_bucket{site="blog",device="desktop",cache="miss",le="1"}`, 1)
	f(`edgevitals_field_lcp_seconds_count{site="blog",device="desktop",cache="miss"}`, 0)
	f(`edgevitals_sessions_total{site="blog"}`, 1)
	f(`edgevitals_conversions_total{site="blog",goal="signup"}`, 1)
	f(`edgevitals_beacons_total{site="blog"}`, 4)
	f(`edgevitals_sessions_total{site="shop"}`, 0)
	for series := range c.exposition() {
		if strings.Contains(series, `device="tablet"`) || strings.Contains(series, `site="shop",device`) {
			t.Errorf("%s: a combination nobody reported is exported", series)
		}
		if strings.Contains(series, "release") || strings.Contains(series, "path") {
			t.Errorf("%s: unbounded label", series)
		}
	}
}

func TestReleaseLabelIsBounded(t *testing.T) {
	known := map[string]bool{}
	store := openTestStore(t, filepath.Join(t.TempDir(), "edgevitals.db"))
	c := newTestCollector(t, func(o *CollectorOptions) {
		o.Store = store
		o.KnownRelease = func(site, id string) bool { return site == "shop" || !strings.HasPrefix(id, "forged") || known[id] }
	})
	st := c.sites["blog"]
	label := func(id string) string {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.releaseLabel(st, id, c.clock.Now())
	}
	for i := range MaxReleases {
		if got, want := label(fmt.Sprintf("r%d", i)), fmt.Sprintf("r%d", i); got != want {
			t.Fatalf("release %d = %q, want %q", i, got, want)
		}
	}
	f := func(id, want string) {
		t.Helper()
		if got := label(id); got != want {
			t.Errorf("release %q at %v = %q, want %q", id, c.clock.Now().Format(time.TimeOnly), got, want)
		}
	}
	f("r7", "r7") // known ones stay
	f("new", OtherRelease)
	f("", "")
	c.clock.Advance(releaseIdle)
	f("r3", "r3")   // seen again: keeps its place
	f("new", "new") // another idle one made room
	f("new2", "new2")
	f("r3", "r3")

	// KnownRelease refuses forged ids before they take a place.
	body := `{"v":1,"sid":"` + sid(2) + `","path":"/","dev":"mobile","rel":"forged-1"}`
	if got := c.Beacon("blog", "x", false, []byte(body)); got != 204 {
		t.Fatalf("Beacon = %d", got)
	}
	c.mu.Lock()
	_, kept := st.releases["forged-1"]
	var rels []string
	for k := range c.pending {
		rels = append(rels, k.release)
	}
	c.mu.Unlock()
	if kept {
		t.Errorf("a release KnownRelease refused took a place")
	}
	if fmt.Sprint(rels) != "[other]" {
		t.Errorf("pending aggregates of releases %q, want [other]", rels)
	}
}

func TestFlushAndRunKeepAggregates(t *testing.T) {
	st := openTestStore(t, filepath.Join(t.TempDir(), "edgevitals.db"))
	c := newTestCollector(t, func(o *CollectorOptions) { o.Store = st })
	t0 := c.clock.Now() // 9:10
	// A session lands on a cached article of v42, reads on, and converts
	// on an uncached checkout page of v43 in the next hour.
	c.send(t, "blog", sid(1), "/2026/11/post/", "", 204)
	c.send(t, "blog", sid(2), "/", `,"lcp":3000`, 204)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	c.clock.Advance(25 * time.Minute)
	c.send(t, "blog", sid(1), "/about/", `,"lcp":1000`, 204)
	c.clock.Advance(25 * time.Minute) // 10:00
	body := `{"v":1,"sid":"` + sid(1) + `","path":"/checkout/order-received/9/","dev":"mobile","cache":"miss","rel":"v43","ttfb":400}`
	if got := c.Beacon("blog", "y", false, []byte(body)); got != 204 {
		t.Fatalf("Beacon = %d", got)
	}
	c.send(t, "blog", sid(1), "/", `,"conv":"signup"`, 204)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	cancel() // Run flushes once more on the way out
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}

	aggs, err := st.FieldAggregates("blog", t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		hour                       int
		release, group, dev, cache string
		views, sessions, lcps      int64
		conv                       string
	}
	var got []row
	for _, a := range aggs {
		got = append(got, row{int(a.Hour.Sub(t0.Truncate(time.Hour)) / time.Hour), a.Release, a.Group, a.Device, a.Cache,
			a.PageViews, a.Sessions, a.LCP.Count(), fmt.Sprint(a.Conversions)})
	}
	want := []row{
		{0, "v42", "article", "mobile", "hit", 2, 1, 2, "map[order:1 signup:1]"}, // both conversions go to the landing
		{0, "v42", "home", "mobile", "hit", 1, 1, 1, "map[]"},
		{1, "v43", "checkout", "mobile", "miss", 1, 0, 0, "map[]"}, // the signup beacon is no page view
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("aggregates:\n got %v\nwant %v", got, want)
	}
	if len(aggs) == 3 {
		if p, _ := aggs[0].LCP.Quantile(0.75); p < 1200*0.98 || p > 1200*1.02 {
			t.Errorf("p75 LCP of [1000 1200] = %v, want 1200 within 2%%", p)
		}
		if p, _ := aggs[2].TTFB.Quantile(0.75); p < 400*0.98 || p > 400*1.02 {
			t.Errorf("p75 TTFB of [400] = %v, want 400 within 2%%", p)
		}
	}
	if s := c.snapshot(); s.pending != 0 {
		t.Errorf("after Run, %d counts still pending", s.pending)
	}
}

// TestBeaconConcurrent sends beacons from many goroutines while flushes run:
// nothing is lost or counted twice (and go test -race sees the locking).
func TestBeaconConcurrent(t *testing.T) {
	st := openTestStore(t, filepath.Join(t.TempDir(), "edgevitals.db"))
	c := newTestCollector(t, func(o *CollectorOptions) { o.Store = st; o.RatePerMinute = 1 << 20 })
	const workers, each = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				c.send(t, "blog", sid(w*1000+i%10), fmt.Sprintf("/%d/", i), "", 204)
			}
		})
	}
	flushes := make(chan error)
	go func() {
		for range 5 {
			if err := c.Flush(); err != nil {
				flushes <- err
				return
			}
		}
		flushes <- nil
	}()
	wg.Wait()
	if err := <-flushes; err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	aggs, err := st.FieldAggregates("blog", c.clock.Now(), c.clock.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var views, sessions int64
	for _, a := range aggs {
		views += a.PageViews
		sessions += a.Sessions
	}
	if views != workers*each || sessions != workers*10 {
		t.Errorf("stored %d page views and %d sessions, want %d and %d", views, sessions, workers*each, workers*10)
	}
	if got := c.exposition()[`edgevitals_sessions_total{site="blog"}`]; got != workers*10 {
		t.Errorf("edgevitals_sessions_total = %v, want %d", got, workers*10)
	}
}

func BenchmarkBeacon(b *testing.B) {
	st, err := store.OpenStore(filepath.Join(b.TempDir(), "edgevitals.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	c := newTestCollector(b, func(o *CollectorOptions) { o.Store = st; o.RatePerMinute = 1 << 30 })
	body := []byte(`{"v":1,"sid":"abcdefghABCDEFGH0123","path":"/2026/11/post/","lcp":1234,"cls":0.01,"inp":80,"fcp":900,"ttfb":120,"dev":"mobile","cache":"hit","rel":"v42"}`)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if code := c.Beacon("blog", "192.0.2.1", false, body); code != 204 {
				b.Fatalf("Beacon = %d", code)
			}
		}
	})
}
