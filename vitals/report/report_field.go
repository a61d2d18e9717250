package report

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/edgevitals/edgevitals/vitals/store"
)

// Field Core Web Vitals and conversion rates in release reports: what real
// visitors' beacons say about a release against the one before it.

// reportDevices are the device classes a report has field lines for.
// Tablets are too few on most sites to judge, so their beacons count in
// neither line.
var reportDevices = []string{"mobile", "desktop"}

// fieldMetric is one field CWV as a report line.
type fieldMetric struct {
	metric string  // Line.Metric
	name   string  // in sentences
	unit   unit    // of the line
	scale  float64 // from FieldAggregate's unit to the line's: ms to s
	hist   func(*store.FieldAggregate) *store.FieldHistogram
	limits func(Thresholds) (rel, abs float64)
}

// fieldMetrics are in the order of a report, the Core Web Vitals first. The
// Prometheus histogram of each is named edgevitals_ + metric.
var fieldMetrics = []fieldMetric{
	{"field_lcp_seconds", "LCP", unitSeconds, 1e-3, func(a *store.FieldAggregate) *store.FieldHistogram { return &a.LCP }, timeLimits},
	{"field_inp_seconds", "INP", unitSeconds, 1e-3, func(a *store.FieldAggregate) *store.FieldHistogram { return &a.INP },
		func(t Thresholds) (float64, float64) { return 0, t.INPAbs.Seconds() }},
	{"field_cls", "CLS", unitScore, 1, func(a *store.FieldAggregate) *store.FieldHistogram { return &a.CLS },
		func(t Thresholds) (float64, float64) { return 0, t.CLSAbs }},
	{"field_ttfb_seconds", "TTFB", unitSeconds, 1e-3, func(a *store.FieldAggregate) *store.FieldHistogram { return &a.TTFB }, timeLimits},
}

// comparison is the comparison of m for the visitors on device, of one
// page group ("" for every page).
func (m fieldMetric) comparison(device, group string, t Thresholds) comparison {
	subject := fmt.Sprintf("%s for real visitors on %s", m.name, device)
	if group != "" {
		subject += " (" + group + " pages)"
	}
	rel, abs := m.limits(t)
	return comparison{metric: m.metric, subject: subject, unit: m.unit, quantile: "p75", rel: rel, abs: abs}
}

// reportWindows are a report's two windows: the previous release's
// [prevFrom, from) and the release's [from, to), open while it is the
// site's latest.
type reportWindows struct {
	prevID, id         string
	prevFrom, from, to time.Time
	open               bool
}

// side says which window a field aggregate counts in: 0 before, 1 after,
// -1 neither. A page that said which release served it counts in that
// release's window, whatever the hour: exact, even across the hour that
// holds the release. A page that did not say counts by its hour, when the
// whole hour lies in one window; an hour that straddles a release cannot
// be split and counts in neither, and so do pages of other releases.
func (w reportWindows) side(a store.FieldAggregate) int {
	switch a.Release {
	case w.id:
		return 1
	case w.prevID:
		return 0
	case "":
	default:
		return -1
	}
	start, end := a.Hour, a.Hour.Add(time.Hour)
	switch {
	case !start.Before(w.prevFrom) && !end.After(w.from):
		return 0
	case !start.Before(w.from) && (w.open || !end.After(w.to)):
		return 1
	}
	return -1
}

// fieldSide is one window's field data, merged for report lines.
type fieldSide struct {
	device      map[string]*store.FieldAggregate    // by device, every page group
	group       map[[2]string]*store.FieldAggregate // by page group and device
	sessions    int64
	conversions map[string]int64 // by goal
}

func newFieldSide() *fieldSide {
	return &fieldSide{device: map[string]*store.FieldAggregate{}, group: map[[2]string]*store.FieldAggregate{}, conversions: map[string]int64{}}
}

func (s *fieldSide) add(a store.FieldAggregate) {
	merge := func(m *store.FieldAggregate, ok bool) *store.FieldAggregate {
		if !ok {
			m = &store.FieldAggregate{}
		}
		m.Merge(a)
		return m
	}
	if slices.Contains(reportDevices, a.Device) {
		d, ok := s.device[a.Device]
		s.device[a.Device] = merge(d, ok)
		k := [2]string{a.Group, a.Device}
		g, ok := s.group[k]
		s.group[k] = merge(g, ok)
	}
	// Sessions and conversions of every device: a conversion rate is the
	// site's, not a device's.
	s.sessions += a.Sessions
	for g, n := range a.Conversions {
		s.conversions[g] += n
	}
}

// histogram returns the histogram of m in the aggregate of k, or an empty
// one.
func histogramOf[K comparable](m fieldMetric, aggs map[K]*store.FieldAggregate, k K) store.FieldHistogram {
	if a, ok := aggs[k]; ok {
		return *m.hist(a)
	}
	return store.FieldHistogram{}
}

// fieldLines are the field CWV lines of a report (per device, then per
// page group and device) and its conversion rate lines, from the field
// aggregates the store holds for both windows.
func fieldLines(src Source, site string, w reportWindows, o ReportOptions) ([]Line, error) {
	aggs, err := src.FieldAggregates(site, w.prevFrom, w.to)
	if err != nil {
		return nil, err
	}
	sides := [2]*fieldSide{newFieldSide(), newFieldSide()}
	for _, a := range aggs {
		if i := w.side(a); i >= 0 {
			sides[i].add(a)
		}
	}
	return fieldLinesOf(sides, o), nil
}

// fieldLinesOf are the field lines of a report's two windows' field data.
func fieldLinesOf(sides [2]*fieldSide, o ReportOptions) []Line {
	var lines []Line
	for _, dev := range reportDevices {
		for _, m := range fieldMetrics {
			hb, ha := histogramOf(m, sides[0].device, dev), histogramOf(m, sides[1].device, dev)
			if hb.Count() == 0 && ha.Count() == 0 {
				continue // nobody measured it (a page with nothing to click has no INP)
			}
			l := m.comparison(dev, "", o.Thresholds).histograms(hb, ha, m.scale, o)
			l.Profile = dev
			lines = append(lines, l)
		}
	}
	// Page groups only where both windows have enough beacons to judge, so
	// a report does not fill up with groups too small to say anything; and
	// only when there are several, else they repeat the lines above. A
	// metric tested in k groups is tested at Alpha/k (Bonferroni): the
	// drill-down must not multiply false alarms, which would turn the
	// report's verdict.
	groups := map[string]bool{}
	for _, s := range sides {
		for k := range s.group {
			groups[k[0]] = true
		}
	}
	type groupLine struct {
		g      string
		hb, ha store.FieldHistogram
	}
	if len(groups) > 1 {
		var byGroup []Line
		for _, dev := range reportDevices {
			for _, m := range fieldMetrics {
				var tested []groupLine
				for _, g := range slices.Sorted(maps.Keys(groups)) {
					k := [2]string{g, dev}
					hb, ha := histogramOf(m, sides[0].group, k), histogramOf(m, sides[1].group, k)
					if hb.Count() >= int64(o.MinSamples) && ha.Count() >= int64(o.MinSamples) {
						tested = append(tested, groupLine{g, hb, ha})
					}
				}
				og := o
				og.Alpha = o.Alpha / float64(max(len(tested), 1))
				for _, t := range tested {
					l := m.comparison(dev, t.g, o.Thresholds).histograms(t.hb, t.ha, m.scale, og)
					l.Group, l.Profile = t.g, dev
					byGroup = append(byGroup, l)
				}
			}
		}
		// In the order of a report: by group, then device and metric.
		slices.SortStableFunc(byGroup, func(a, b Line) int { return strings.Compare(a.Group, b.Group) })
		lines = append(lines, byGroup...)
	}
	goals := map[string]bool{}
	for _, s := range sides {
		for g := range s.conversions {
			goals[g] = true
		}
	}
	for _, g := range slices.Sorted(maps.Keys(goals)) {
		lines = append(lines, conversionLine(g, nonNegative(sides[0].conversions[g]), nonNegative(sides[0].sessions),
			nonNegative(sides[1].conversions[g]), nonNegative(sides[1].sessions), o))
	}
	return lines
}

func nonNegative(n int64) uint64 { return uint64(max(n, 0)) }

// histograms compares the p75 of two field histograms (of values in the
// aggregate's unit; scale converts them to the line's) with a Mann-Whitney
// U test over their buckets.
func (c comparison) histograms(before, after store.FieldHistogram, scale float64, o ReportOptions) Line {
	nb, na := before.Count(), after.Count()
	l := Line{Metric: c.metric, NBefore: clampInt(nonNegative(nb)), NAfter: clampInt(nonNegative(na))}
	qb, okb := before.Quantile(0.75)
	qa, oka := after.Quantile(0.75)
	l.Before, l.After = qb*scale, qa*scale
	if !c.enough(&l, okb && oka, o.MinSamples, "page views") {
		return l
	}
	_, p := mannWhitneyHist(before, after)
	return c.decide(l, &p, o.Alpha, "")
}

// conversionLine compares the conversion rate of goal, conversions over
// sessions, with a two-proportion z-test. It regressed when it fell by
// more than Thresholds.ConversionRel of its rate before and the test says
// that is not chance.
func conversionLine(goal string, convBefore, sessBefore, convAfter, sessAfter uint64, o ReportOptions) Line {
	c := comparison{metric: "conversion_rate", subject: "The " + goal + " conversion rate", unit: unitRatio,
		rel: o.Thresholds.ConversionRel, higherIsBetter: true}
	// A session converts to a goal once. Counters read over a window (in
	// Prometheus) can show conversions of sessions that began before it.
	convBefore, convAfter = min(convBefore, sessBefore), min(convAfter, sessAfter)
	return c.proportions(Line{Metric: c.metric, Goal: goal}, convBefore, sessBefore, convAfter, sessAfter, o.MinSessions, "sessions", o)
}

// mannWhitneyHist is mannWhitney over two field histograms: the values of
// one bucket are ties, the tie correction applies. It costs the number of
// buckets, not of page views, so a busy site's report stays cheap.
func mannWhitneyHist(x, y store.FieldHistogram) (u, p float64) {
	var cells []rankCell
	x.Each(func(v float64, n int64) { cells = append(cells, rankCell{v: v, nx: float64(n)}) })
	y.Each(func(v float64, n int64) { cells = append(cells, rankCell{v: v, ny: float64(n)}) })
	return rankSum(cells)
}
