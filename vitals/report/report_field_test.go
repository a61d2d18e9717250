package report

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/vitals/field"
	"github.com/edgevitals/edgevitals/vitals/store"
)

// fieldRelease is how real visitors' pages load during one release, per
// device: p50 of LCP in ms (spread as real visits are, about x1.6 per
// standard deviation), and the share of sessions that order.
type fieldRelease struct {
	lcp       map[string]float64 // device -> median ms
	orderRate float64
}

// fillField writes two hours of field aggregates of a release: per hour,
// page group (home, article) and device (mobile, desktop, tablet), 60 page
// views and 50 landing sessions.
func fillField(t *testing.T, st *store.Store, r *rand.Rand, site, release string, from time.Time, fr fieldRelease) {
	t.Helper()
	var aggs []store.FieldAggregate
	for h := range 2 {
		for _, group := range []string{"home", "article"} {
			for _, dev := range field.Devices {
				a := store.FieldAggregate{Site: site, Hour: from.Add(time.Duration(h) * time.Hour), Release: release, Group: group, Device: dev,
					PageViews: 60, Sessions: 50}
				med := fr.lcp[dev]
				if med == 0 {
					med = 2000
				}
				for range 60 {
					a.LCP.Add(med * math.Exp(0.5*r.NormFloat64()))
					a.INP.Add(120 * math.Exp(0.6*r.NormFloat64()))
					a.CLS.Add(0.03 * r.Float64())
					a.TTFB.Add(300 * math.Exp(0.4*r.NormFloat64()))
				}
				var orders int64
				for range 50 {
					if r.Float64() < fr.orderRate {
						orders++
					}
				}
				a.Conversions = map[string]int64{"order": orders}
				aggs = append(aggs, a)
			}
		}
	}
	if err := st.AddFieldAggregates(aggs); err != nil {
		t.Fatal(err)
	}
}

type fieldLineKey struct{ metric, group, device, goal string }

func fieldVerdicts(rep Report) map[fieldLineKey]Line {
	m := map[fieldLineKey]Line{}
	for _, l := range rep.Lines {
		if strings.HasPrefix(l.Metric, "field_") || l.Metric == "conversion_rate" {
			m[fieldLineKey{l.Metric, l.Group, l.Profile, l.Goal}] = l
		}
	}
	return m
}

// TestBuildReportField: a release that makes mobile pages slower and
// halves orders is caught on mobile, overall and in each page group, and
// on the conversion rate; a harmless one is same everywhere.
func TestBuildReportField(t *testing.T) {
	st := openTestStore(t, filepath.Join(t.TempDir(), "s.db"))
	r := rand.New(rand.NewPCG(7, 7))
	good := fieldRelease{lcp: map[string]float64{"mobile": 2500, "desktop": 1400}, orderRate: 0.08}
	bad := fieldRelease{lcp: map[string]float64{"mobile": 3400, "desktop": 1400}, orderRate: 0.03}
	for i, rel := range []struct {
		id string
		fr fieldRelease
	}{{"v1", good}, {"v2", good}, {"v3", bad}} {
		at := reportStart.Add(time.Duration(i) * 2 * time.Hour)
		if err := st.AddRelease(store.Release{Site: "shop", ID: rel.id, At: at}); err != nil {
			t.Fatal(err)
		}
		fillField(t, st, r, "shop", rel.id, at, rel.fr)
	}
	// Pages of v1 still served from cache during v3, and pages that did
	// not say their release in an hour that straddles nothing: only the
	// latter count, in v3's window. Both are slow enough on desktop to
	// turn its verdict, should they count where they must not.
	slow := store.FieldAggregate{Site: "shop", Hour: reportStart.Add(5 * time.Hour), Group: "home", Device: "desktop", PageViews: 1000}
	for range 1000 {
		slow.LCP.Add(9000)
	}
	stale := slow
	stale.Release = "v1"
	if err := st.AddFieldAggregates([]store.FieldAggregate{stale}); err != nil {
		t.Fatal(err)
	}
	o := ReportOptions{Now: reportStart.Add(6 * time.Hour)}

	metrics := []string{"field_lcp_seconds", "field_inp_seconds", "field_cls", "field_ttfb_seconds"}
	want := map[fieldLineKey]Verdict{{"conversion_rate", "", "", "order"}: Same}
	for _, m := range metrics {
		for _, dev := range reportDevices {
			want[fieldLineKey{m, "", dev, ""}] = Same
			for _, g := range []string{"home", "article"} {
				want[fieldLineKey{m, g, dev, ""}] = Same
			}
		}
	}
	regressed := map[fieldLineKey]Verdict{}
	for k, v := range want {
		regressed[k] = v
	}
	for _, g := range []string{"", "home", "article"} {
		regressed[fieldLineKey{"field_lcp_seconds", g, "mobile", ""}] = Regressed
	}
	regressed[fieldLineKey{"conversion_rate", "", "", "order"}] = Regressed

	for _, tt := range []struct {
		release string
		want    map[fieldLineKey]Verdict
		verdict Verdict
	}{{"v2", want, Same}, {"v3", regressed, Regressed}} {
		t.Run(tt.release, func(t *testing.T) {
			rep, err := Build(st, "shop", tt.release, o)
			if err != nil {
				t.Fatal(err)
			}
			got := fieldVerdicts(rep)
			for k, v := range tt.want {
				if got[k].Verdict != v {
					t.Errorf("line %v = %q (%s), want %q", k, got[k].Verdict, got[k].Why, v)
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("%d field lines, want %d: %v", len(got), len(tt.want), got)
			}
			// Field lines only: hit ratio and origin have no traffic here.
			if rep.Verdict != tt.verdict {
				t.Errorf("report verdict = %q, want %q", rep.Verdict, tt.verdict)
			}
			for k, l := range got {
				if l.PValue == nil || l.Why == "" || l.Source != "" {
					t.Errorf("line %v: p %v, why %q, source %q; want a test, a sentence, the store", k, l.PValue, l.Why, l.Source)
				}
			}
		})
	}

	// The numbers behind v3's lines: every page view and session of both
	// windows of the device (tablets in neither), none of v1's.
	rep, err := Build(st, "shop", "v3", o)
	if err != nil {
		t.Fatal(err)
	}
	got := fieldVerdicts(rep)
	lcp := got[fieldLineKey{"field_lcp_seconds", "", "desktop", ""}]
	if lcp.NBefore != 2*2*60 || lcp.NAfter != 2*2*60 {
		t.Errorf("desktop LCP counts = %d/%d, want 240/240: v1's pages or tablets counted", lcp.NBefore, lcp.NAfter)
	}
	conv := got[fieldLineKey{"conversion_rate", "", "", "order"}]
	if conv.NBefore != 2*2*3*50 || conv.NAfter != 600 || !(conv.Before > 0.06 && conv.Before < 0.10) || !(conv.After > 0.02 && conv.After < 0.04) {
		t.Errorf("conversion line = %+v, want about 8%% -> 3%% of 600 sessions each", conv)
	}
	if !strings.HasPrefix(conv.Why, "The order conversion rate fell ") || !strings.Contains(conv.Why, " of 600 sessions, p ") {
		t.Errorf("conversion why = %q", conv.Why)
	}
	mob := got[fieldLineKey{"field_lcp_seconds", "", "mobile", ""}]
	if !strings.HasPrefix(mob.Why, "LCP for real visitors on mobile got ") || !(mob.Before > 2.5 && mob.Before < 4.5 && mob.After > mob.Before*1.2) {
		t.Errorf("mobile LCP line = %+v, want p75 in seconds, 30%% slower", mob)
	}

	// Unlabelled pages of an hour wholly inside v3's window count there.
	if err := st.AddFieldAggregates([]store.FieldAggregate{slow}); err != nil {
		t.Fatal(err)
	}
	rep, err = Build(st, "shop", "v3", o)
	if err != nil {
		t.Fatal(err)
	}
	if l := fieldVerdicts(rep)[fieldLineKey{"field_lcp_seconds", "", "desktop", ""}]; l.NAfter != 240+1000 || l.Verdict != Regressed {
		t.Errorf("with unlabelled slow pages: desktop LCP = %d after, %q; want 1240, regressed", l.NAfter, l.Verdict)
	}
}

func TestReportWindowsSide(t *testing.T) {
	t0 := reportStart
	w := reportWindows{prevID: "v1", id: "v2", prevFrom: t0, from: t0.Add(90 * time.Minute), to: t0.Add(4 * time.Hour)}
	open := w
	open.open = true
	tests := []struct {
		name    string
		w       reportWindows
		release string
		hour    time.Time
		want    int
	}{
		{"labelled before", w, "v1", t0.Add(time.Hour), 0},
		{"labelled after, in the hour that holds the release", w, "v2", t0.Add(time.Hour), 1},
		{"labelled after, beyond the window's end", w, "v2", t0.Add(4 * time.Hour), 1},
		{"another release", w, "v0", t0, -1},
		{"other releases", w, field.OtherRelease, t0, -1},
		{"unlabelled, wholly before", w, "", t0, 0},
		{"unlabelled, straddling the release", w, "", t0.Add(time.Hour), -1},
		{"unlabelled, wholly after", w, "", t0.Add(2 * time.Hour), 1},
		{"unlabelled, last hour of the window", w, "", t0.Add(3 * time.Hour), 1},
		{"unlabelled, after the window", w, "", t0.Add(4 * time.Hour), -1},
		{"unlabelled, the current hour of an open window", open, "", t0.Add(4 * time.Hour), 1},
		{"unlabelled, before the previous release", w, "", t0.Add(-time.Hour), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := store.FieldAggregate{Release: tt.release, Hour: tt.hour}
			if got := tt.w.side(a); got != tt.want {
				t.Errorf("side(release %q, hour %v) = %d, want %d", tt.release, tt.hour.Format("15:04"), got, tt.want)
			}
		})
	}
}

// TestMannWhitneyHist: over histograms, the test gives what mannWhitney
// gives on the bucket values one by one.
func TestMannWhitneyHist(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	draw := func(n int, med, spread float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = med * math.Exp(spread*r.NormFloat64())
		}
		return v
	}
	tests := []struct {
		name string
		x, y []float64
	}{
		{"same distribution", draw(200, 2000, 0.5), draw(150, 2000, 0.5)},
		{"shifted", draw(200, 2000, 0.5), draw(150, 2600, 0.5)},
		{"heavy ties", []float64{0, 0, 0, 0.05, 0.05, 0.1}, []float64{0, 0.05, 0.1, 0.1, 0.2}},
		{"all equal", []float64{100, 100, 100}, []float64{100, 100}},
		{"one empty", []float64{1, 2, 3}, nil},
		{"disjoint", []float64{1, 2, 3, 4, 5}, []float64{50, 60, 70, 80, 90}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hx, hy store.FieldHistogram
			for _, v := range tt.x {
				hx.Add(v)
			}
			for _, v := range tt.y {
				hy.Add(v)
			}
			expand := func(h store.FieldHistogram) []float64 {
				var out []float64
				h.Each(func(v float64, n int64) {
					for range n {
						out = append(out, v)
					}
				})
				return out
			}
			wantU, wantP := mannWhitney(expand(hx), expand(hy))
			gotU, gotP := mannWhitneyHist(hx, hy)
			if !near(gotU, wantU, 1e-6) || !near(gotP, wantP, 1e-9) {
				t.Errorf("mannWhitneyHist = U %v, p %v; want U %v, p %v", gotU, gotP, wantU, wantP)
			}
		})
	}
}

func TestConversionLine(t *testing.T) {
	o, err := ReportOptions{Now: reportStart}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name               string
		cb, sb, ca, sa     uint64
		want               Verdict
		wantTest, wantSame bool
	}{
		{"5% to 3% of 5,000 sessions", 250, 5000, 150, 5000, Regressed, true, false},
		{"3% to 5%", 150, 5000, 250, 5000, Improved, true, false},
		// Significant, but a fall of 6% of the rate is within the threshold.
		{"5% to 4.7% of 400,000 sessions", 20000, 400000, 18800, 400000, Same, true, true},
		{"a fall of 40% on 300 sessions may be chance", 15, 300, 9, 300, Same, true, true},
		{"too few sessions after", 250, 5000, 1, 50, NotEnoughData, false, false},
		{"no sessions before", 0, 0, 10, 500, NotEnoughData, false, false},
		// Conversions of sessions begun before the window: never over 100%.
		{"more conversions than sessions", 300, 200, 100, 200, Regressed, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := conversionLine("order", tt.cb, tt.sb, tt.ca, tt.sa, o)
			if l.Verdict != tt.want || (l.PValue != nil) != tt.wantTest || l.Goal != "order" || l.Metric != "conversion_rate" {
				t.Errorf("conversionLine(%d/%d -> %d/%d) = %q, p %v, goal %q; want %q, a test %v", tt.cb, tt.sb, tt.ca, tt.sa, l.Verdict, l.PValue, l.Goal, tt.want, tt.wantTest)
			}
			if l.Before > 1 || l.After > 1 {
				t.Errorf("rates %v -> %v, want at most 1", l.Before, l.After)
			}
			if tt.wantSame && tt.want == Same && !strings.Contains(l.Why, "held steady") && !strings.Contains(l.Why, "may be chance") {
				t.Errorf("why = %q, want it to say it held or may be chance", l.Why)
			}
		})
	}
	l := conversionLine("order", 250, 5000, 150, 5000, o)
	if want := "The order conversion rate fell 2.0 points (5.0% -> 3.0% of 5,000 sessions, p < 0.001)"; l.Why != want {
		t.Errorf("why = %q, want %q", l.Why, want)
	}
}

// TestFieldVerdictRates is the check of the statistics, on field
// histograms: identical distributions are called regressed in at most 5%
// of trials, and a 20% slower LCP is caught in at least 95%.
func TestFieldVerdictRates(t *testing.T) {
	o, err := ReportOptions{Now: reportStart}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	m := fieldMetrics[0] // LCP
	c := m.comparison("mobile", "", o.Thresholds)
	hist := func(n int, med float64) store.FieldHistogram {
		var h store.FieldHistogram
		for range n {
			h.Add(med * math.Exp(0.5*r.NormFloat64()))
		}
		return h
	}
	const trials = 500
	tests := []struct {
		name    string
		n       int
		shift   float64
		atMost  float64 // share of trials called regressed
		atLeast float64
	}{
		{"identical, few page views", 12, 1, 0.05, 0},
		{"identical, many page views", 400, 1, 0.05, 0},
		{"20% slower", 400, 1.2, 1, 0.95},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			regressed := 0
			for range trials {
				if c.histograms(hist(tt.n, 2500), hist(tt.n, 2500*tt.shift), m.scale, o).Verdict == Regressed {
					regressed++
				}
			}
			share := float64(regressed) / trials
			if share > tt.atMost || share < tt.atLeast {
				t.Errorf("regressed in %.1f%% of %d trials, want between %.0f%% and %.0f%%", 100*share, trials, 100*tt.atLeast, 100*tt.atMost)
			}
		})
	}
}

// TestFieldGroupFalseAlarms: five page groups that did not change at all
// raise a false regression of one metric on one device in at most 5% of
// reports, not in five times as many: each group is tested at Alpha/5.
func TestFieldGroupFalseAlarms(t *testing.T) {
	o, err := ReportOptions{Now: reportStart}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 5))
	groups := []string{"a", "b", "c", "d", "e"}
	const trials = 400
	alarms := 0
	for range trials {
		sides := [2]*fieldSide{newFieldSide(), newFieldSide()}
		for _, s := range sides {
			for _, g := range groups {
				a := store.FieldAggregate{Group: g, Device: "mobile"}
				for range 30 {
					a.LCP.Add(2500 * math.Exp(0.6*r.NormFloat64()))
				}
				s.add(a)
			}
		}
		lines := fieldLinesOf(sides, o)
		if len(lines) != 1+len(groups) {
			t.Fatalf("%d lines, want one for mobile and one per group", len(lines))
		}
		for _, l := range lines {
			if l.Group != "" && l.Verdict == Regressed {
				alarms++
				break
			}
		}
	}
	if share := float64(alarms) / trials; share > 0.05 {
		t.Errorf("a group regressed in %.1f%% of %d reports of unchanged pages, want at most 5%%", 100*share, trials)
	}
}
