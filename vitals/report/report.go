// Package report says what a release changed against the release before
// it: lab, field and edge lines, each with a verdict from a statistical
// test and a "because" for a regression, and their formatting. It reads a
// Source (the store) and, for the edge and field lines, an EdgeSource
// (Prometheus, for a fleet) when one is given.
package report

import (
	"errors"
	"fmt"
	"math"
	"slices"
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
// tested metrics, the test must agree). DefaultThresholds are the defaults.
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
	lab, err := labLines(src, site, w, o)
	if err != nil {
		return Report{}, fmt.Errorf("build report: %w", err)
	}
	rep.Lines = append(rep.Lines, lab...)
	rep.Lines = append(rep.Lines, field...)
	rep.Verdict, rep.Complete = overall(rep.Lines, rep.Open)
	return rep, nil
}

// labLines are the lab lines of a report: per page and profile the store
// holds samples of, one per metric measured in either window.
func labLines(src Source, site string, w reportWindows, o ReportOptions) ([]Line, error) {
	series, err := src.LabSeries(site)
	if err != nil {
		return nil, err
	}
	var lines []Line
	for _, s := range series {
		sb, err := src.Samples(site, s.Page, s.Profile, w.prevFrom, w.from)
		if err != nil {
			return nil, err
		}
		sa, err := src.Samples(site, s.Page, s.Profile, w.from, w.to)
		if err != nil {
			return nil, err
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
			lines = append(lines, l)
		}
	}
	return lines, nil
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
