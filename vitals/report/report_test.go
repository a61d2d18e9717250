package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/vitals/store"
)

var update = flag.Bool("update", false, "rewrite the golden files of report tables")

// reportStart is when the test site's first release shipped.
var reportStart = time.Date(2026, 11, 4, 8, 0, 0, 0, time.UTC)

// labRelease describes how pages load during one release.
type labRelease struct {
	lcp, tbt, inp time.Duration
}

// trafficRelease is one minute of edge traffic during one release.
type trafficRelease struct {
	hit, miss, pass uint64
	uncacheable     map[string]uint64
}

// fillRelease writes two hours of a release: a lab sample of / (mobile)
// and of /about (desktop, nothing to click, so no INP) every 6 minutes, and
// a traffic minute every minute. Lab times vary by about 10% per load.
func fillRelease(t *testing.T, st *store.Store, r *rand.Rand, site string, from time.Time, lab labRelease, tr trafficRelease) {
	t.Helper()
	jitter := func(d time.Duration) *time.Duration {
		v := time.Duration(float64(d) * math.Exp(0.1*r.NormFloat64()))
		return &v
	}
	for i := range 20 {
		at := from.Add(time.Duration(i)*6*time.Minute + time.Second)
		cls := 0.02 + 0.005*r.Float64()
		s := store.Sample{URL: "http://blog/", Profile: "mobile", At: at, LCP: jitter(lab.lcp), FCP: jitter(1200 * time.Millisecond),
			TTFB: jitter(80 * time.Millisecond), TBT: jitter(lab.tbt), INP: jitter(lab.inp), CLS: &cls}
		if err := st.AddSample(site, "/", s); err != nil {
			t.Fatal(err)
		}
		s = store.Sample{URL: "http://blog/about", Profile: "desktop", At: at, LCP: jitter(900 * time.Millisecond), FCP: jitter(700 * time.Millisecond),
			TTFB: jitter(60 * time.Millisecond), TBT: jitter(20 * time.Millisecond), CLS: &cls}
		if err := st.AddSample(site, "/about", s); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 120 {
		origin := tr.miss + tr.pass
		p := store.TrafficPoint{Site: site, At: from.Add(time.Duration(i+1) * time.Minute), Hit: tr.hit, Miss: tr.miss, Pass: tr.pass, Bypass: 2,
			Origin: origin, OriginBuckets: buckets(map[int]uint64{5: origin * 8 / 10, 7: origin - origin*8/10}), Uncacheable: tr.uncacheable}
		if i == 119 {
			p.At = from.Add(2*time.Hour - time.Second) // the last minute ends just before the next release
		}
		if err := st.AddTraffic(p); err != nil {
			t.Fatal(err)
		}
	}
}

// reportStore holds site blog with three releases of two hours each: v1, a
// harmless v2, and v3, which adds a 300 ms blocking script and a
// Set-Cookie on most pages.
func reportStore(t *testing.T) *store.Store {
	t.Helper()
	st := openTestStore(t, filepath.Join(t.TempDir(), "s.db"))
	r := rand.New(rand.NewPCG(6, 6))
	good := labRelease{lcp: 2100 * time.Millisecond, tbt: 120 * time.Millisecond, inp: 150 * time.Millisecond}
	bad := labRelease{lcp: 2100 * time.Millisecond, tbt: 420 * time.Millisecond, inp: 450 * time.Millisecond}
	cached := trafficRelease{hit: 90, miss: 10, uncacheable: map[string]uint64{"private": 1}}
	cookies := trafficRelease{hit: 60, miss: 10, pass: 30, uncacheable: map[string]uint64{"private": 1, "set_cookie": 30}}
	for i, rel := range []struct {
		id  string
		lab labRelease
		tr  trafficRelease
	}{{"v1", good, cached}, {"v2", good, cached}, {"v3", bad, cookies}} {
		at := reportStart.Add(time.Duration(i) * 2 * time.Hour)
		if err := st.AddRelease(store.Release{Site: "blog", ID: rel.id, At: at, Source: store.SourceAPI, Note: "deploy " + rel.id}); err != nil {
			t.Fatal(err)
		}
		fillRelease(t, st, r, "blog", at, rel.lab, rel.tr)
	}
	return st
}

type lineKey struct{ metric, page, profile string }

func verdicts(rep Report) map[lineKey]Verdict {
	m := map[lineKey]Verdict{}
	for _, l := range rep.Lines {
		m[lineKey{l.Metric, l.Page, l.Profile}] = l.Verdict
	}
	return m
}

func TestBuildReport(t *testing.T) {
	st := reportStore(t)
	now := reportStart.Add(6 * time.Hour)
	o := ReportOptions{Now: now}

	// Every line of blog's lab series and edge traffic, with the verdict
	// each report must give; INP of /about is never measured, so no line.
	allSame := map[lineKey]Verdict{{"hit_ratio", "", ""}: Same, {"origin_p95_seconds", "", ""}: Same}
	for _, m := range labMetrics {
		allSame[lineKey{m.Metric, "/", "mobile"}] = Same
		if m.Metric != "lab_inp_seconds" {
			allSame[lineKey{m.Metric, "/about", "desktop"}] = Same
		}
	}
	regressed := map[lineKey]Verdict{}
	for k, v := range allSame {
		regressed[k] = v
	}
	regressed[lineKey{"hit_ratio", "", ""}] = Regressed
	regressed[lineKey{"lab_tbt_seconds", "/", "mobile"}] = Regressed
	regressed[lineKey{"lab_inp_seconds", "/", "mobile"}] = Regressed

	tests := []struct {
		name           string
		release        string
		wantPrevious   string
		wantVerdict    Verdict
		wantLines      map[lineKey]Verdict
		wantUncachable []string
		wantOpen       bool
		wantWindowTo   time.Time
	}{
		{"a harmless release is same", "v2", "v1", Same, allSame, nil, false, reportStart.Add(4 * time.Hour)},
		{"a blocking script and Set-Cookie regress", "v3", "v2", Regressed, regressed, []string{"set_cookie"}, true, now},
		{"no id means the latest", "", "v2", Regressed, regressed, []string{"set_cookie"}, true, now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := Build(st, "blog", tt.release, o)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Previous.ID != tt.wantPrevious || rep.Verdict != tt.wantVerdict || !rep.Complete || rep.Open != tt.wantOpen {
				t.Errorf("BuildReport(%q) = previous %q, verdict %q, complete %v, open %v; want %q, %q, true, %v",
					tt.release, rep.Previous.ID, rep.Verdict, rep.Complete, rep.Open, tt.wantPrevious, tt.wantVerdict, tt.wantOpen)
			}
			if !rep.Window.From.Equal(rep.Release.At) || !rep.Window.To.Equal(tt.wantWindowTo) {
				t.Errorf("window = %v to %v, want %v to %v", rep.Window.From, rep.Window.To, rep.Release.At, tt.wantWindowTo)
			}
			got := verdicts(rep)
			for k, want := range tt.wantLines {
				if got[k] != want {
					t.Errorf("line %v = %q, want %q", k, got[k], want)
				}
			}
			if len(got) != len(tt.wantLines) || len(rep.Lines) != len(got) {
				t.Errorf("%d lines %v, want %d", len(rep.Lines), got, len(tt.wantLines))
			}
			if !slices.Equal(rep.NewUncacheable, tt.wantUncachable) {
				t.Errorf("NewUncacheable = %q, want %q", rep.NewUncacheable, tt.wantUncachable)
			}
			for _, l := range rep.Lines {
				if l.Why == "" || (l.Verdict != NotEnoughData && l.Metric != "origin_p95_seconds" && l.PValue == nil) {
					t.Errorf("line %s %s %s: why %q, p %v; want a sentence and a p-value", l.Metric, l.Page, l.Profile, l.Why, l.PValue)
				}
			}
		})
	}

	// The numbers behind the regressions, and their sentences.
	rep, err := Build(st, "blog", "v3", o)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range rep.Lines {
		switch l.Metric {
		case "hit_ratio":
			if l.NBefore != 120*100 || l.NAfter != 120*100 || !near(l.Before, 0.9, 1e-9) || !near(l.After, 0.6, 1e-9) || !near(l.Delta, -0.3, 1e-9) {
				t.Errorf("hit ratio line = %+v, want 90%% -> 60%% of 12000 requests each", l)
			}
			if want := "The cache hit ratio fell 30.0 points (90.0% -> 60.0% of 12,000 cacheable requests, p < 0.001); responses newly not cached because of set_cookie"; l.Why != want {
				t.Errorf("hit ratio why = %q, want %q", l.Why, want)
			}
		case "lab_tbt_seconds":
			if l.Page == "/" && (!strings.HasPrefix(l.Why, "TBT on / (mobile) got ") || !strings.Contains(l.Why, " ms slower (p75 ")) {
				t.Errorf("TBT why = %q, want a sentence of how much slower", l.Why)
			}
		}
	}
}

func TestBuildReportNotEnoughData(t *testing.T) {
	st := openTestStore(t, filepath.Join(t.TempDir(), "s.db"))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	t0 := reportStart
	must(st.AddRelease(store.Release{Site: "shop", ID: "v1", At: t0}))
	must(st.AddRelease(store.Release{Site: "shop", ID: "v2", At: t0.Add(time.Hour)}))
	for i := range 3 { // three samples and a few requests each: too few to judge
		for _, at := range []time.Time{t0, t0.Add(time.Hour)} {
			must(st.AddSample("shop", "/", store.Sample{Profile: "mobile", At: at.Add(time.Duration(i) * time.Minute), LCP: dur(time.Second)}))
			must(st.AddTraffic(store.TrafficPoint{Site: "shop", At: at.Add(time.Duration(i+1) * time.Minute), Hit: 5, Miss: 5}))
		}
	}
	o := ReportOptions{Now: t0.Add(90 * time.Minute)}
	rep, err := Build(st, "shop", "v2", o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict != NotEnoughData || rep.Complete || !rep.Open {
		t.Errorf("report on 3 samples = verdict %q, complete %v, open %v; want not enough data, false, true", rep.Verdict, rep.Complete, rep.Open)
	}
	want := map[lineKey]Verdict{{"hit_ratio", "", ""}: NotEnoughData, {"origin_p95_seconds", "", ""}: NotEnoughData, {"lab_lcp_seconds", "/", "mobile"}: NotEnoughData}
	if got := verdicts(rep); len(got) != len(want) || got[lineKey{"lab_lcp_seconds", "/", "mobile"}] != NotEnoughData {
		t.Errorf("lines = %v, want %v", got, want)
	}
	for _, l := range rep.Lines {
		if l.Metric == "lab_lcp_seconds" {
			if want := "LCP on / (mobile): not enough data yet (3 samples before, 3 after; 10 each needed)"; l.Why != want {
				t.Errorf("why = %q, want %q", l.Why, want)
			}
			if l.PValue != nil || l.Before != 1 || l.After != 1 {
				t.Errorf("LCP line = %+v, want p75 1 s on both sides and no test", l)
			}
		}
	}

	// With fewer samples required, there is a verdict.
	rep, err = Build(st, "shop", "v2", ReportOptions{Now: o.Now, MinSamples: 3, MinRequests: 10})
	if err != nil {
		t.Fatal(err)
	}
	if got := verdicts(rep); got[lineKey{"lab_lcp_seconds", "/", "mobile"}] != Same || got[lineKey{"hit_ratio", "", ""}] != Same {
		t.Errorf("with MinSamples 3: %v, want LCP and hit ratio same", got)
	}

	// Once the next release ships, waiting cannot help: complete.
	must(st.AddRelease(store.Release{Site: "shop", ID: "v3", At: t0.Add(2 * time.Hour)}))
	rep, err = Build(st, "shop", "v2", o)
	if err != nil || rep.Verdict != NotEnoughData || !rep.Complete || rep.Open {
		t.Errorf("after the next release = verdict %q, complete %v, open %v, %v; want not enough data, true, false", rep.Verdict, rep.Complete, rep.Open, err)
	}
}

func TestBuildReportErrors(t *testing.T) {
	st := openTestStore(t, filepath.Join(t.TempDir(), "s.db"))
	if err := st.AddRelease(store.Release{Site: "blog", ID: "v1", At: reportStart}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, site, id string
		o              ReportOptions
		want           error // nil: any error
	}{
		{"unknown release", "blog", "v9", ReportOptions{}, store.ErrNoRelease},
		{"unknown site", "shop", "", ReportOptions{}, store.ErrNoRelease},
		{"first release", "blog", "v1", ReportOptions{}, store.ErrNoPredecessor},
		{"no site", "", "v1", ReportOptions{}, nil},
		{"alpha of 1", "blog", "v1", ReportOptions{Alpha: 1}, nil},
		{"negative threshold", "blog", "v1", ReportOptions{Thresholds: Thresholds{CLSAbs: -1}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(st, tt.site, tt.id, tt.o)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("BuildReport(%q, %q) = %v, want %v", tt.site, tt.id, err, tt.want)
			}
		})
	}
}

func TestJudge(t *testing.T) {
	d := DefaultThresholds()
	ms := func(v float64) float64 { return v / 1000 }
	tests := []struct {
		name          string
		c             comparison
		before, after float64
		significant   bool
		want          Verdict
	}{
		{"LCP +20%, +400 ms", comparison{rel: d.TimeRel, abs: d.TimeAbs.Seconds()}, 2, 2.4, true, Regressed},
		{"LCP +20% but only +60 ms", comparison{rel: d.TimeRel, abs: d.TimeAbs.Seconds()}, ms(300), ms(360), true, Same},
		{"LCP +150 ms but only +5%", comparison{rel: d.TimeRel, abs: d.TimeAbs.Seconds()}, 3, 3.15, true, Same},
		{"LCP -400 ms", comparison{rel: d.TimeRel, abs: d.TimeAbs.Seconds()}, 2.4, 2, true, Improved},
		{"LCP +400 ms, not significant", comparison{rel: d.TimeRel, abs: d.TimeAbs.Seconds()}, 2, 2.4, false, Same},
		{"TBT from 0 to 60 ms", comparison{abs: d.TBTAbs.Seconds()}, 0, ms(60), true, Regressed},
		{"CLS +0.04", comparison{abs: d.CLSAbs}, 0.02, 0.06, true, Same},
		{"CLS +0.06", comparison{abs: d.CLSAbs}, 0.02, 0.08, true, Regressed},
		{"hit ratio -6 points", comparison{abs: d.HitRatioAbs, higherIsBetter: true}, 0.9, 0.84, true, Regressed},
		{"hit ratio +6 points", comparison{abs: d.HitRatioAbs, higherIsBetter: true}, 0.84, 0.9, true, Improved},
		{"hit ratio -4 points", comparison{abs: d.HitRatioAbs, higherIsBetter: true}, 0.9, 0.86, true, Same},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.judge(tt.before, tt.after, tt.significant); got != tt.want {
				t.Errorf("judge(%v -> %v, significant %v) = %q, want %q", tt.before, tt.after, tt.significant, got, tt.want)
			}
		})
	}
}

func TestOriginLine(t *testing.T) {
	o, err := ReportOptions{Now: reportStart}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	// 100 origin requests in (0.2, 0.3] s before; after, in (0.3, 0.5] s.
	before := store.TrafficPoint{OriginBuckets: buckets(map[int]uint64{8: 100})}
	after := store.TrafficPoint{OriginBuckets: buckets(map[int]uint64{9: 100})}
	l := originLine(originP95(before), originP95(after), o)
	// p95: 0.2 + 0.1 * 95/100 = 0.295 s; 0.3 + 0.2 * 0.95 = 0.49 s.
	if l.Verdict != Regressed || !near(l.Before, 0.295, 1e-9) || !near(l.After, 0.49, 1e-9) || l.PValue != nil {
		t.Errorf("originLine = %+v, want regressed from 295 ms to 490 ms, no test", l)
	}
	if want := "The origin's response time got 195 ms slower (p95 295 ms -> 490 ms)"; l.Why != want {
		t.Errorf("why = %q, want %q", l.Why, want)
	}
	l = originLine(originP95(before), originP95(store.TrafficPoint{}), o)
	if l.Verdict != NotEnoughData {
		t.Errorf("originLine without requests after = %q, want not enough data", l.Verdict)
	}
}

func TestNewReasons(t *testing.T) {
	tests := []struct {
		name          string
		before, after store.TrafficPoint
		want          []string
	}{
		{"new reasons, most frequent first",
			store.TrafficPoint{Hit: 100, Uncacheable: map[string]uint64{"private": 5}},
			store.TrafficPoint{Hit: 100, Uncacheable: map[string]uint64{"private": 5, "set_cookie": 30, "vary_star": 40}},
			[]string{"vary_star", "set_cookie"}},
		// 1 in 1000 before, 20 in 200 after: 100 times as often.
		{"ten times as often per request",
			store.TrafficPoint{Miss: 1000, Uncacheable: map[string]uint64{"set_cookie": 1}},
			store.TrafficPoint{Miss: 200, Uncacheable: map[string]uint64{"set_cookie": 20}},
			[]string{"set_cookie"}},
		// 10 in 1000 before, 5 in 100 after: five times as often.
		{"five times as often is not new",
			store.TrafficPoint{Miss: 1000, Uncacheable: map[string]uint64{"set_cookie": 10}},
			store.TrafficPoint{Miss: 100, Uncacheable: map[string]uint64{"set_cookie": 5}},
			nil},
		{"no traffic before: nothing is new", store.TrafficPoint{}, store.TrafficPoint{Hit: 1, Uncacheable: map[string]uint64{"private": 1}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newReasons(tt.before, tt.after); !slices.Equal(got, tt.want) {
				t.Errorf("newReasons = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	f := func(got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	f(formatSeconds(2.1), "2.1 s")
	f(formatSeconds(2.154), "2.15 s")
	f(formatSeconds(0.42), "420 ms")
	f(formatSeconds(0.0004), "0.4 ms")
	f(formatSeconds(0), "0 ms")
	f(formatP(0.0034), "p = 0.0034")
	f(formatP(0.41234), "p = 0.41")
	f(formatP(0.0002), "p < 0.001")
	f(FormatP(0.0034), "0.0034")
	f(FormatP(0.0002), "< 0.001")
	f(Thousands(12000), "12,000")
	f(Thousands(999), "999")
	f(Thousands(1234567), "1,234,567")
	f(formatChange(unitRatio, -0.3), "-30.0 pt")
	f(formatChange(unitScore, 0.08), "+0.080")
	f(formatChange(unitSeconds, 0.3), "+300 ms")
}

func TestReportTableAndJSON(t *testing.T) {
	st := reportStore(t)
	rep, err := Build(st, "blog", "v3", ReportOptions{Now: reportStart.Add(6 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report_regressed.golden")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("WriteTable =\n%s\nwant (%s, -update to rewrite)\n%s", buf.Bytes(), golden, want)
	}

	// The JSON of /api/report and `report -json`: numbers, no NaN, null
	// p-values where no test ran.
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Verdict        string   `json:"verdict"`
		Complete       bool     `json:"complete"`
		NewUncacheable []string `json:"new_uncacheable"`
		Release        struct {
			ID string `json:"id"`
		} `json:"release"`
		Lines []struct {
			Metric string   `json:"metric"`
			PValue *float64 `json:"p_value"`
		} `json:"lines"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Verdict != "regressed" || !back.Complete || back.Release.ID != "v3" || len(back.Lines) != len(rep.Lines) || back.Lines[1].PValue != nil {
		t.Errorf("report JSON = %s", b)
	}
}
