// Package report says what a release changed against the release before
// it: lab, field and edge lines, each with a verdict from a statistical
// test and a "because" for a regression, and their formatting. It reads a
// Source (the store) and, for the edge and field lines, an EdgeSource
// (Prometheus, for a fleet) when one is given.
package report

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edgevitals/edgevitals/vitals/store"
)

// Verdict is what a release did to one metric, or to the site as a whole.
type Verdict string

// Verdicts. A metric is regressed or improved only when it moved beyond its
// threshold and the test says the move is not chance.
const (
	Regressed     Verdict = "regressed"
	Improved      Verdict = "improved"
	Same          Verdict = "same"
	NotEnoughData Verdict = "not enough data"
)

// Line is one metric of a report, with the numbers behind its verdict.
type Line struct {
	// Metric is "hit_ratio", "origin_p95_seconds", "lab_lcp_seconds",
	// "lab_cls", "lab_inp_seconds", "lab_tbt_seconds", "lab_fcp_seconds",
	// "lab_ttfb_seconds", or with field data "field_lcp_seconds",
	// "field_inp_seconds", "field_cls", "field_ttfb_seconds" and
	// "conversion_rate".
	Metric string `json:"metric"`
	Page   string `json:"page,omitempty"` // lab lines: the page's path
	// Profile is the lab profile (mobile, desktop) of lab lines, and the
	// visitors' device class (mobile, desktop) of field lines.
	Profile string `json:"profile,omitempty"`
	Group   string `json:"group,omitempty"` // field lines of one page group; "" for every page
	Goal    string `json:"goal,omitempty"`  // conversion_rate lines: the goal
	// Before and After are the p75 for CWV (seconds, or the CLS score),
	// the ratio for hit ratio and conversion rate, the p95 in seconds for
	// origin latency. A side without data is 0, with NBefore or NAfter 0.
	Before  float64  `json:"before"`
	After   float64  `json:"after"`
	NBefore int      `json:"n_before"` // samples, requests, page views or sessions
	NAfter  int      `json:"n_after"`
	Delta   float64  `json:"delta"`   // After - Before
	PValue  *float64 `json:"p_value"` // the test's p-value, nil when no test ran
	Verdict Verdict  `json:"verdict"`
	// Why is one sentence a marketer can read, e.g. "LCP on / (mobile) got
	// 420 ms slower (p75 2.1 s -> 2.5 s, p = 0.003)".
	Why string `json:"why"`
	// Source is where the figures come from: "" for this node's store,
	// SourcePrometheus for every node's, read from Prometheus.
	Source string `json:"source,omitempty"`
}

// Report is what release Release of Site did, compared with Previous.
type Report struct {
	Site     string        `json:"site"`
	Release  store.Release `json:"release"`
	Previous store.Release `json:"previous"`
	// Window is the release's window: [Release.At, the next release) or,
	// while it is the site's latest, [Release.At, now). Previous's window
	// is [Previous.At, Release.At).
	Window struct {
		From time.Time `json:"from"`
		To   time.Time `json:"to"`
	} `json:"window"`
	Open  bool   `json:"open"` // no later release yet: the figures still change
	Lines []Line `json:"lines"`
	// NewUncacheable are the reasons responses could not be cached that
	// the release's window shows and the previous one did not (or at a
	// tenth of the rate), most frequent first.
	NewUncacheable []string `json:"new_uncacheable"`
	// Verdict is the worst of the lines: regressed if any regressed, else
	// improved if any improved, else same if any is same, else not
	// enough data.
	Verdict Verdict `json:"verdict"`
	// Complete is true when every line has a verdict other than not
	// enough data, or the release's window is over: waiting longer will
	// not change the verdicts (a pipeline guardrail can stop waiting).
	Complete bool `json:"complete"`
}

// Thresholds are how far a metric must move to count as a change (and, for
// tested metrics, the test must agree). Defaults per shared/DESIGN.md.
type Thresholds struct {
	TimeRel float64       // LCP, FCP, TTFB: worse by more than TimeRel (relative)...
	TimeAbs time.Duration // ...and by more than TimeAbs
	CLSAbs  float64       // CLS score
	INPAbs  time.Duration
	TBTAbs  time.Duration
	// HitRatioAbs is a fall of the hit ratio, as a fraction (0.05 is 5
	// points), with a two-proportion z-test.
	HitRatioAbs float64
	// OriginRel and OriginAbs bound the origin's p95 latency, computed
	// from histograms, so no test runs: worse by more than both.
	OriginRel float64
	OriginAbs time.Duration
	// ConversionRel is a fall of a conversion rate relative to its rate
	// before (0.1 is a tenth), with a two-proportion z-test.
	ConversionRel float64
}

// DefaultThresholds are LCP, FCP and TTFB +10% and +100 ms, CLS +0.05, INP
// and TBT +50 ms, hit ratio -5 points, origin p95 +25% and +50 ms,
// conversion rate -10% of itself. Field CWV share the lab's thresholds.
func DefaultThresholds() Thresholds {
	return Thresholds{
		TimeRel: 0.10, TimeAbs: 100 * time.Millisecond,
		CLSAbs: 0.05,
		INPAbs: 50 * time.Millisecond, TBTAbs: 50 * time.Millisecond,
		HitRatioAbs: 0.05,
		OriginRel:   0.25, OriginAbs: 50 * time.Millisecond,
		ConversionRel: 0.10,
	}
}

// ReportOptions tune Build. The zero value means the defaults.
type ReportOptions struct {
	// MinSamples is the fewest lab samples per window and page/profile,
	// and the fewest field page views per window and device (or page
	// group); 0 means DefaultMinSamples.
	MinSamples int
	Alpha      float64 // significance level of the tests; 0 means 0.05
	// Thresholds; the zero value means DefaultThresholds().
	Thresholds Thresholds
	Now        time.Time // the end of the latest release's window; zero means time.Now()
	// MinRequests is the fewest cacheable requests per window for a hit
	// ratio verdict; 0 means DefaultMinRequests.
	MinRequests int
	// MinOriginRequests is the fewest origin requests per window for an
	// origin p95 verdict; 0 means DefaultMinOriginRequests. A field p75
	// read from Prometheus has no test either and needs as many page views.
	MinOriginRequests int
	// MinSessions is the fewest sessions per window for a conversion
	// rate verdict; 0 means DefaultMinSessions.
	MinSessions int
	// Edge, when set, is where hit ratio, origin p95, field CWV and
	// conversions come from (a PromSource, so a report covers every node
	// that Prometheus scrapes); releases and lab CWV still come from the
	// Source. Nil reads them from the Source too.
	Edge EdgeSource
}

// Report defaults.
const (
	// DefaultMinSamples is reached within the hour after a release: the
	// sampler's burst plus its regular schedule.
	DefaultMinSamples        = 10
	DefaultAlpha             = 0.05
	DefaultMinRequests       = 100
	DefaultMinOriginRequests = 20 // a p95 needs at least 20 observations to mean anything
	// DefaultMinSessions: a conversion rate of a few percent over fewer
	// sessions is a handful of conversions.
	DefaultMinSessions = 100
)

func (o ReportOptions) withDefaults() (ReportOptions, error) {
	if o.MinSamples == 0 {
		o.MinSamples = DefaultMinSamples
	}
	if o.Alpha == 0 {
		o.Alpha = DefaultAlpha
	}
	if o.Thresholds == (Thresholds{}) {
		o.Thresholds = DefaultThresholds()
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.MinRequests == 0 {
		o.MinRequests = DefaultMinRequests
	}
	if o.MinOriginRequests == 0 {
		o.MinOriginRequests = DefaultMinOriginRequests
	}
	if o.MinSessions == 0 {
		o.MinSessions = DefaultMinSessions
	}
	var errs []error
	if o.MinSamples < 0 || o.MinRequests < 0 || o.MinOriginRequests < 0 || o.MinSessions < 0 {
		errs = append(errs, fmt.Errorf("minimums must be >= 0, got samples %d, requests %d, origin requests %d, sessions %d",
			o.MinSamples, o.MinRequests, o.MinOriginRequests, o.MinSessions))
	}
	if !(o.Alpha > 0 && o.Alpha < 1) {
		errs = append(errs, fmt.Errorf("alpha must be in (0, 1), got %v", o.Alpha))
	}
	t := o.Thresholds
	for _, v := range []float64{t.TimeRel, float64(t.TimeAbs), t.CLSAbs, float64(t.INPAbs), float64(t.TBTAbs), t.HitRatioAbs, t.OriginRel, float64(t.OriginAbs), t.ConversionRel} {
		if !(v >= 0) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("thresholds must be finite and >= 0, got %+v", t))
			break
		}
	}
	return o, errors.Join(errs...)
}

// Source is what a report reads: releases and lab samples, and, unless
// ReportOptions.Edge says otherwise, traffic minutes and field
// aggregates. The store implements it.
type Source interface {
	ReleaseHistory(site string) (store.History, error)
	LabSeries(site string) ([]store.Series, error)
	Samples(site, page, profile string, from, to time.Time) ([]store.Sample, error)
	Traffic(site string, from, to time.Time) ([]store.TrafficPoint, error)
	FieldAggregates(site string, from, to time.Time) ([]store.FieldAggregate, error)
}

// EdgeSource gives the edge lines (hit ratio, origin p95) and the field
// lines (field CWV, conversions) of a report's two windows, and the
// reasons not to cache that are new in the release. A PromSource is one;
// without one, Build reads them from its Source.
type EdgeSource interface {
	lines(site string, w reportWindows, o ReportOptions) (edge, field []Line, reasons []string, err error)
}

// Build reports release releaseID of site (its latest when releaseID is
// "") against the release before it, from the lab samples, traffic minutes
// and field aggregates src holds for both windows (or, with o.Edge, from
// there for all but releases and the lab). It returns ErrNoRelease when
// the release is not recorded, ErrNoPredecessor when it is the site's
// first, and ErrPredecessorGone when it is the oldest src holds but
// retention deleted the site's earlier ones.
func Build(src Source, site, releaseID string, o ReportOptions) (Report, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Report{}, fmt.Errorf("build report: %w", err)
	}
	if site == "" {
		return Report{}, errors.New("build report: no site")
	}
	h, err := src.ReleaseHistory(site)
	if err != nil {
		return Report{}, fmt.Errorf("build report: %w", err)
	}
	recs := h.Releases
	i := len(recs) - 1
	if releaseID != "" {
		i = slices.IndexFunc(recs, func(r store.Release) bool { return r.ID == releaseID })
	}
	switch {
	case i < 0:
		return Report{}, fmt.Errorf("build report of release %q of site %q: %w", releaseID, site, store.ErrNoRelease)
	case i == 0 && h.Pruned != nil:
		return Report{}, fmt.Errorf("build report of release %q of site %q: release %q before it (window ended %s) was deleted by retention: %w",
			recs[0].ID, site, h.Pruned.ID, h.Pruned.End.UTC().Format(time.RFC3339), store.ErrPredecessorGone)
	case i == 0:
		return Report{}, fmt.Errorf("build report of release %q of site %q: %w", recs[0].ID, site, store.ErrNoPredecessor)
	}
	rep := Report{Site: site, Release: recs[i], Previous: recs[i-1], Open: i == len(recs)-1}
	from, to := rep.Release.At, o.Now
	if !rep.Open {
		to = recs[i+1].At
	}
	if to.Before(from) {
		to = from // a release stamped in the future has an empty window so far
	}
	rep.Window.From, rep.Window.To = from, to
	prevFrom := rep.Previous.At

	// Edge traffic: hit ratio, origin latency, reasons not to cache; and
	// field data, whose lines come after the lab's.
	edgeSrc := o.Edge
	if edgeSrc == nil {
		edgeSrc = storeEdge{src}
	}
	w := reportWindows{prevID: rep.Previous.ID, id: rep.Release.ID, prevFrom: prevFrom, from: from, to: to, open: rep.Open}
	edge, field, reasons, err := edgeSrc.lines(site, w, o)
	if err != nil {
		return Report{}, fmt.Errorf("build report: %w", err)
	}
	rep.NewUncacheable = reasons
	rep.Lines = append(rep.Lines, edge...)
	if rep.NewUncacheable == nil {
		rep.NewUncacheable = []string{} // a list in JSON, never null
	}

	// Lab CWV per page and profile.
	series, err := src.LabSeries(site)
	if err != nil {
		return Report{}, fmt.Errorf("build report: %w", err)
	}
	for _, s := range series {
		sb, err := src.Samples(site, s.Page, s.Profile, prevFrom, from)
		if err != nil {
			return Report{}, fmt.Errorf("build report: %w", err)
		}
		sa, err := src.Samples(site, s.Page, s.Profile, from, to)
		if err != nil {
			return Report{}, fmt.Errorf("build report: %w", err)
		}
		for _, m := range labMetrics {
			vb, va := m.values(sb), m.values(sa)
			if len(vb) == 0 && len(va) == 0 {
				continue // never measured here (a page with nothing to click has no INP)
			}
			rel, abs := m.limits(o.Thresholds)
			c := comparison{metric: m.Metric, subject: fmt.Sprintf("%s on %s (%s)", m.Name, s.Page, s.Profile), unit: m.unit, quantile: "p75", rel: rel, abs: abs}
			l := c.samples(vb, va, o)
			l.Page, l.Profile = s.Page, s.Profile
			rep.Lines = append(rep.Lines, l)
		}
	}
	rep.Lines = append(rep.Lines, field...)
	rep.Verdict, rep.Complete = overall(rep.Lines, rep.Open)
	return rep, nil
}

// overall is the worst verdict of the lines, and whether they are final.
func overall(lines []Line, open bool) (Verdict, bool) {
	has := map[Verdict]bool{}
	for _, l := range lines {
		has[l.Verdict] = true
	}
	complete := !open || (len(lines) > 0 && !has[NotEnoughData])
	for _, v := range []Verdict{Regressed, Improved, Same} {
		if has[v] {
			return v, complete
		}
	}
	return NotEnoughData, complete
}

// storeEdge reads a report's edge and field lines from traffic minutes
// and field aggregates of a Source.
type storeEdge struct{ src Source }

func (s storeEdge) lines(site string, w reportWindows, o ReportOptions) (edge, field []Line, reasons []string, err error) {
	before, err := trafficSum(s.src, site, w.prevFrom, w.from)
	if err != nil {
		return nil, nil, nil, err
	}
	after, err := trafficSum(s.src, site, w.from, w.to)
	if err != nil {
		return nil, nil, nil, err
	}
	reasons = newReasons(before, after)
	edge = []Line{hitRatioLine(before, after, reasons, o), originLine(originP95(before), originP95(after), o)}
	if field, err = fieldLines(s.src, site, w, o); err != nil {
		return nil, nil, nil, err
	}
	return edge, field, reasons, nil
}

// trafficSum adds up the traffic minutes of site that ended in [from, to).
func trafficSum(src Source, site string, from, to time.Time) (store.TrafficPoint, error) {
	sum := store.TrafficPoint{Site: site, At: to}
	if !from.Before(to) {
		return sum, nil
	}
	pts, err := src.Traffic(site, from, to)
	if err != nil {
		return sum, err
	}
	for _, p := range pts {
		sum.Add(p)
	}
	return sum, nil
}

func hitRatioLine(before, after store.TrafficPoint, reasons []string, o ReportOptions) Line {
	c := comparison{metric: "hit_ratio", subject: "The cache hit ratio", unit: unitRatio, abs: o.Thresholds.HitRatioAbs, higherIsBetter: true}
	nb, na := before.Cacheable(), after.Cacheable()
	hb, ha := before.Hit+before.Stale, after.Hit+after.Stale
	l := c.proportions(Line{Metric: c.metric}, hb, nb, ha, na, o.MinRequests, "cacheable requests", o)
	if l.Verdict == Regressed && len(reasons) > 0 {
		l.Why += "; responses newly not cached because of " + strings.Join(reasons, ", ")
	}
	return l
}

// proportions judges a share, x of n requests or sessions, before and after
// with a two-proportion z-test; l carries the line's labels. Under min of
// either side it is not enough data. what names n in sentences.
func (c comparison) proportions(l Line, xb, nb, xa, na uint64, min int, what string, o ReportOptions) Line {
	l.NBefore, l.NAfter = clampInt(nb), clampInt(na)
	if nb > 0 {
		l.Before = float64(xb) / float64(nb)
	}
	if na > 0 {
		l.After = float64(xa) / float64(na)
	}
	if !c.enough(&l, nb > 0 && na > 0, min, what) {
		return l
	}
	_, p := twoProportionZ(xb, nb, xa, na)
	return c.decide(l, &p, o.Alpha, fmt.Sprintf(" of %s %s", Thousands(na), what))
}

// originLine compares the origin's p95 latency of two windows, from this
// node's store or from Prometheus.
func originLine(before, after histQuantile, o ReportOptions) Line {
	c := comparison{metric: "origin_p95_seconds", subject: "The origin's response time", unit: unitSeconds, quantile: "p95",
		rel: o.Thresholds.OriginRel, abs: o.Thresholds.OriginAbs.Seconds()}
	return c.quantiles(before, after, o.MinOriginRequests, "origin requests")
}

// originP95 is the p95 of the origin latency buckets of p.
func originP95(p store.TrafficPoint) histQuantile {
	var n uint64
	for _, c := range p.OriginBuckets {
		n += c
	}
	v, ok := histogramQuantile(0.95, store.OriginBounds(), p.OriginBuckets)
	return histQuantile{v: v, ok: ok, n: n}
}

// histQuantile is a quantile read from a histogram: its value, whether the
// histogram had one, and how many observations it stands on.
type histQuantile struct {
	v  float64
	ok bool
	n  uint64
}

// quantiles compares two quantiles read from histograms: no test can run
// on them, so the thresholds alone decide, once both sides have need
// observations (of what).
func (c comparison) quantiles(before, after histQuantile, need int, what string) Line {
	l := Line{Metric: c.metric, NBefore: clampInt(before.n), NAfter: clampInt(after.n)}
	if before.ok {
		l.Before = before.v
	}
	if after.ok {
		l.After = after.v
	}
	if !c.enough(&l, before.ok && after.ok, need, what) {
		return l
	}
	return c.decide(l, nil, 0, "")
}

// newReasons are the uncacheable reasons of after that before did not
// show, or showed at a tenth of the rate (per request) or less. Without
// traffic before, nothing can be called new.
func newReasons(before, after store.TrafficPoint) []string {
	total := func(p store.TrafficPoint) float64 { return float64(p.Cacheable() + p.Bypass + p.Error) }
	tb, ta := total(before), total(after)
	if tb == 0 || ta == 0 {
		return nil
	}
	var out []string
	for r, ca := range after.Uncacheable {
		cb := before.Uncacheable[r]
		if ca > 0 && (cb == 0 || float64(ca)/ta >= 10*float64(cb)/tb) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		if c := cmp.Compare(after.Uncacheable[b], after.Uncacheable[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return out
}

// labMetric is one lab CWV as a report line: the Sample's measure, how
// its values read and the thresholds of a change that matters.
type labMetric struct {
	store.LabMetric
	unit   unit
	limits func(Thresholds) (rel, abs float64)
}

func timeLimits(t Thresholds) (float64, float64) { return t.TimeRel, t.TimeAbs.Seconds() }

// labLimits are the thresholds of each lab metric.
var labLimits = map[string]func(Thresholds) (rel, abs float64){
	"lab_lcp_seconds":  timeLimits,
	"lab_cls":          func(t Thresholds) (float64, float64) { return 0, t.CLSAbs },
	"lab_inp_seconds":  func(t Thresholds) (float64, float64) { return 0, t.INPAbs.Seconds() },
	"lab_tbt_seconds":  func(t Thresholds) (float64, float64) { return 0, t.TBTAbs.Seconds() },
	"lab_fcp_seconds":  timeLimits,
	"lab_ttfb_seconds": timeLimits,
}

// labMetrics are in the order of a report (store.LabMetrics'): the Core
// Web Vitals, then the diagnostics behind them.
var labMetrics = func() []labMetric {
	var out []labMetric
	for _, m := range store.LabMetrics() {
		u := unitSeconds
		if m.Score {
			u = unitScore
		}
		out = append(out, labMetric{LabMetric: m, unit: u, limits: labLimits[m.Metric]})
	}
	return out
}()

func (m labMetric) values(samples []store.Sample) []float64 {
	var v []float64
	for _, s := range samples {
		if x, ok := m.Get(s); ok {
			v = append(v, x)
		}
	}
	return v
}

// unit is how a metric's values read.
type unit int

const (
	unitSeconds unit = iota // times: "420 ms", "2.1 s"
	unitScore               // CLS: "0.050"
	unitRatio               // shares: "91.0%", changes in points
)

// comparison holds what a line needs beyond its numbers: its name in
// sentences and its thresholds. Field CWV and conversion lines reuse it.
type comparison struct {
	metric         string
	subject        string // "LCP on / (mobile)"
	unit           unit
	quantile       string  // "p75", "p95", or "" for ratios
	rel, abs       float64 // a change counts when beyond both (rel of Before)
	higherIsBetter bool
}

// samples compares the p75 of two sets of samples with a Mann-Whitney U
// test.
func (c comparison) samples(before, after []float64, o ReportOptions) Line {
	qb, okb := quantile(before, 0.75)
	qa, oka := quantile(after, 0.75)
	l := Line{Metric: c.metric, Before: qb, After: qa, NBefore: len(before), NAfter: len(after)}
	if !c.enough(&l, okb && oka, o.MinSamples, "samples") {
		return l
	}
	_, p := mannWhitney(before, after)
	return c.decide(l, &p, o.Alpha, "")
}

// enough sets l's Delta when both sides have a value (ok) and reports
// whether each side stands on need observations (of what). When not, l
// is not enough data, with its sentence.
func (c comparison) enough(l *Line, ok bool, need int, what string) bool {
	if ok {
		l.Delta = l.After - l.Before
	}
	if !ok || l.NBefore < need || l.NAfter < need {
		l.Verdict = NotEnoughData
		l.Why = c.notEnough(*l, need, what)
		return false
	}
	return true
}

// decide gives l its verdict and sentence: on the thresholds and, when p
// is not nil, on the test's p-value at alpha. extra goes after the
// numbers in the sentence.
func (c comparison) decide(l Line, p *float64, alpha float64, extra string) Line {
	l.PValue = p
	l.Verdict = c.judge(l.Before, l.After, p == nil || *p < alpha)
	l.Why = c.why(l, extra)
	return l
}

// judge is regressed when after is worse than before by more than both
// thresholds and the test is significant, improved symmetrically, else same.
func (c comparison) judge(before, after float64, significant bool) Verdict {
	worse := after - before
	if c.higherIsBetter {
		worse = -worse
	}
	switch {
	case !significant:
		return Same
	case c.beyond(before, worse):
		return Regressed
	case c.beyond(before, -worse):
		return Improved
	}
	return Same
}

func (c comparison) beyond(before, d float64) bool {
	return d > c.abs && d > c.rel*math.Abs(before)
}

// why is the line's sentence; extra goes after the numbers inside the
// parentheses.
func (c comparison) why(l Line, extra string) string {
	nums := formatValue(c.unit, l.Before) + " -> " + formatValue(c.unit, l.After) + extra
	if c.quantile != "" {
		nums = c.quantile + " " + nums
	}
	if l.PValue != nil {
		nums += ", " + formatP(*l.PValue)
	}
	switch l.Verdict {
	case Regressed, Improved:
		return fmt.Sprintf("%s %s (%s)", c.subject, c.moved(l.Delta), nums)
	}
	worse := l.Delta
	if c.higherIsBetter {
		worse = -worse
	}
	if c.beyond(l.Before, worse) || c.beyond(l.Before, -worse) {
		return fmt.Sprintf("%s %s, but that may be chance (%s)", c.subject, c.moved(l.Delta), nums)
	}
	return fmt.Sprintf("%s held steady (%s)", c.subject, nums)
}

// moved says how a value changed in words: "got 420 ms slower", "rose by
// 0.080", "fell 12.0 points".
func (c comparison) moved(d float64) string {
	switch c.unit {
	case unitSeconds:
		if d >= 0 {
			return "got " + formatSeconds(d) + " slower"
		}
		return "got " + formatSeconds(-d) + " faster"
	case unitRatio:
		pts := strconv.FormatFloat(math.Abs(d)*100, 'f', 1, 64) + " points"
		if d >= 0 {
			return "rose " + pts
		}
		return "fell " + pts
	}
	if d >= 0 {
		return "rose by " + formatValue(c.unit, d)
	}
	return "fell by " + formatValue(c.unit, -d)
}

func (c comparison) notEnough(l Line, need int, what string) string {
	return fmt.Sprintf("%s: not enough data yet (%d %s before, %d after; %d each needed)", c.subject, l.NBefore, what, l.NAfter, max(need, 1))
}

// FormatValue writes a value of metric as reports show it: "420 ms", "0.050",
// "91.0%". The unit comes from the metric's name, as Prometheus names go.
// The dashboard uses it too, so figures read the same everywhere.
func FormatValue(metric string, v float64) string { return formatValue(unitOf(metric), v) }

// FormatChange writes a change of metric: "+420 ms", "-12.0 pt", "+0.080".
func FormatChange(metric string, d float64) string { return formatChange(unitOf(metric), d) }

func formatValue(u unit, v float64) string {
	switch u {
	case unitSeconds:
		return formatSeconds(v)
	case unitRatio:
		return strconv.FormatFloat(v*100, 'f', 1, 64) + "%"
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// formatSeconds reads like a person would say it: "420 ms", "2.1 s".
func formatSeconds(v float64) string {
	ms := v * 1000
	switch {
	case math.Abs(ms) < 10:
		return trimZeros(strconv.FormatFloat(ms, 'f', 1, 64)) + " ms"
	case math.Abs(v) < 1:
		return strconv.FormatFloat(math.Round(ms), 'f', 0, 64) + " ms"
	}
	return trimZeros(strconv.FormatFloat(v, 'f', 2, 64)) + " s"
}

// Where is the part of the site a line covers, as the report and the
// dashboard write it: the page ("/"), "goal order" or "article pages";
// empty for site-wide lines.
func (l Line) Where() string {
	switch {
	case l.Goal != "":
		return "goal " + l.Goal
	case l.Group != "":
		return l.Group + " pages"
	}
	return l.Page
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// FormatP writes a p-value as the report table shows it: "0.0034",
// "< 0.001". The dashboard uses it too, so p-values read the same
// everywhere.
func FormatP(p float64) string {
	if p < 0.001 {
		return "< 0.001"
	}
	return strconv.FormatFloat(p, 'g', 2, 64)
}

// formatP is a p-value in a sentence: "p = 0.0034", "p < 0.001".
func formatP(p float64) string {
	if p < 0.001 {
		return "p " + FormatP(p)
	}
	return "p = " + FormatP(p)
}

// Thousands writes n with thousands separators: 12,345. The dashboard uses
// it too, so figures read the same in the report and on the page.
func Thousands(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func clampInt(n uint64) int {
	if n > math.MaxInt {
		return math.MaxInt
	}
	return int(n)
}

// unitOf guesses a metric's unit from its name, so lines added later
// (field_*, conversion_rate) print right.
func unitOf(metric string) unit {
	switch {
	case strings.HasSuffix(metric, "_seconds"):
		return unitSeconds
	case strings.HasSuffix(metric, "_ratio"), strings.HasSuffix(metric, "_rate"):
		return unitRatio
	}
	return unitScore
}

// WriteTable writes the report for `edgevitals report`: the overall verdict
// first, a table of every line, then the sentences of what regressed.
func (r Report) WriteTable(w io.Writer) error {
	stamp := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }
	var b strings.Builder
	fmt.Fprintf(&b, "Site %s: release %s (%s", r.Site, r.Release.ID, stamp(r.Release.At))
	if r.Release.Source != "" {
		fmt.Fprintf(&b, ", from %s", r.Release.Source)
	}
	fmt.Fprintf(&b, ") against %s (%s)\n", r.Previous.ID, stamp(r.Previous.At))
	if r.Release.Note != "" {
		fmt.Fprintf(&b, "Note: %s\n", r.Release.Note)
	}
	state := "final"
	switch {
	case r.Open && r.Complete:
		state = "every metric has a verdict; the figures update until the next release"
	case r.Open:
		state = "not complete: some metrics need more data"
	}
	fmt.Fprintf(&b, "Verdict: %s (%s)\n", strings.ToUpper(string(r.Verdict)), state)
	to := stamp(r.Window.To)
	if r.Open {
		to += ", still open"
	}
	fmt.Fprintf(&b, "Window: %s to %s\n", stamp(r.Window.From), to)
	if slices.ContainsFunc(r.Lines, func(l Line) bool { return l.Source == SourcePrometheus }) {
		b.WriteString("Edge traffic and field data: every node, from Prometheus\n")
	}
	b.WriteString("\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tPAGE\tPROFILE\tBEFORE\tAFTER\tCHANGE\tP\tN\tVERDICT")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, l := range r.Lines {
		u := unitOf(l.Metric)
		before, after, change, p := "-", "-", "-", "-"
		if l.NBefore > 0 {
			before = formatValue(u, l.Before)
		}
		if l.NAfter > 0 {
			after = formatValue(u, l.After)
		}
		if l.NBefore > 0 && l.NAfter > 0 {
			change = formatChange(u, l.After-l.Before)
		}
		if l.PValue != nil {
			p = FormatP(*l.PValue)
		}
		n := Thousands(uint64(max(l.NBefore, 0))) + "/" + Thousands(uint64(max(l.NAfter, 0)))
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Metric, dash(l.Where()), dash(l.Profile), before, after, change, p, n, l.Verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	b.Reset()
	if len(r.NewUncacheable) > 0 {
		fmt.Fprintf(&b, "\nNew reasons responses were not cached: %s\n", strings.Join(r.NewUncacheable, ", "))
	}
	first := true
	for _, l := range r.Lines {
		if l.Verdict != Regressed {
			continue
		}
		if first {
			b.WriteString("\nWhat regressed:\n")
			first = false
		}
		fmt.Fprintf(&b, "- %s\n", l.Why)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// formatChange is a signed change: "+420 ms", "-12.0 pt", "+0.080".
func formatChange(u unit, d float64) string {
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	if u == unitRatio {
		return sign + strconv.FormatFloat(d*100, 'f', 1, 64) + " pt"
	}
	return sign + formatValue(u, d)
}
