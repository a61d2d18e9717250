package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/edgevitals/edgevitals/vitals/store"
)

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
