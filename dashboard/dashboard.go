// Package dashboard is the admin listener's HTML page, GET /: one
// server-rendered page, with no JavaScript and no external asset, that shows
// a site's hit ratio over time with its releases, and what the releases did
// (their reports). It reads the store only, so it works on a node that just
// started and on one without network. It knows nothing of the admin
// listener: Handler is registered there by whoever wires the two.
package dashboard

import (
	"bytes"
	_ "embed" // the dashboard's template
	"fmt"
	"html/template"
	"log/slog"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgevitals/edgevitals/cache"
	"github.com/edgevitals/edgevitals/vitals/report"
	"github.com/edgevitals/edgevitals/vitals/store"
)

//go:embed dashboard.html
var dashboardHTML string

// dashboardTmpl escapes everything it writes: release ids, notes and page
// paths come from CI pipelines and origin headers.
var dashboardTmpl = template.Must(template.New("dashboard").Parse(dashboardHTML))

// Bounds of one page view.
const (
	dashDefaultHours = 24
	dashMaxHours     = 7 * 24
	dashMaxPoints    = 300 // buckets of the chart
	dashMaxReleases  = 30  // releases listed, each with a report to build
)

// dashBucketWidths are the widths a chart bucket may take: the smallest that
// keeps the chart within dashMaxPoints is used.
var dashBucketWidths = []time.Duration{
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute,
	20 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
}

// dashRanges are the time ranges offered above the chart.
var dashRanges = []struct {
	hours int
	label string
}{{1, "1 h"}, {6, "6 h"}, {24, "24 h"}, {72, "3 d"}, {168, "7 d"}}

// Options configure the dashboard.
type Options struct {
	Store *store.Store // required
	// Sites returns the names of the sites now, the first shown by
	// default; it is called on the request's goroutine. Required.
	Sites  func() []string
	Report report.ReportOptions
	Clock  func() time.Time // nil = time.Now
	Logger *slog.Logger
}

// Dashboard renders the page.
type Dashboard struct{ o Options }

// New builds the dashboard.
func New(o Options) *Dashboard {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Dashboard{o: o}
}

// Handler serves the page, for GET / of the admin listener (which asks
// for the token off loopback).
func (r *Dashboard) Handler(ctx *fasthttp.RequestCtx) {
	args := ctx.QueryArgs()
	page, status := r.dashboard(string(args.Peek("site")), string(args.Peek("release")), string(args.Peek("hours")))
	var b bytes.Buffer
	if err := dashboardTmpl.Execute(&b, page); err != nil {
		r.o.Logger.Error("render dashboard", "err", err)
		ctx.Error("dashboard error", fasthttp.StatusInternalServerError)
		return
	}
	h := &ctx.Response.Header
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// No script at all: whatever slipped past the escaping could not run.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.SetBody(b.Bytes())
}

// dashPage is what the template renders.
type dashPage struct {
	Problem  string     // the page shows only this, with the navigation
	Sites    []dashLink // the site selector, when there are several
	Ranges   []dashLink
	Site     string
	Hours    int
	Updated  string
	Empty    bool // nothing recorded for the site yet
	Summary  []dashStat
	Chart    *dashChart // nil when the range holds no traffic
	Releases []dashRelease
	Older    int // releases not listed
	Detail   *dashDetail
}

type dashLink struct {
	Label, Href string
	Current     bool
}

type dashStat struct{ Label, Value, Note string }

// dashRelease is one row of the release list.
type dashRelease struct {
	ID, Href, At, Source, Note string
	Verdict, Class, State      string
	Regressed                  []string // what regressed, in a few words each
	Selected                   bool
	at                         time.Time
}

// dashDetail is the report of one release (the newest unless ?release=).
type dashDetail struct {
	ID, Note, Previous string
	Latest, First      bool
	Verdict, Class     string
	State, Window      string
	Lines              []dashLine
	Reasons            []dashReason
}

type dashLine struct {
	Metric, Where               string
	Before, After, Change, P, N string
	Verdict, Class, Why         string
	Regressed                   bool
}

type dashReason struct{ Name, Meaning string }

// dashboard builds the page for a site, a release and a range given as the
// query has them. The status is 200, or 400/404/500 with page.Problem set.
func (r *Dashboard) dashboard(site, releaseID, hoursArg string) (dashPage, int) {
	now := r.o.Clock()
	page := dashPage{Hours: dashDefaultHours, Updated: dashStamp(now)}
	if hoursArg != "" {
		h, err := strconv.Atoi(hoursArg)
		if err != nil || h < 1 || h > dashMaxHours {
			page.Problem = fmt.Sprintf("hours: want a whole number from 1 to %d, got %q", dashMaxHours, hoursArg)
			return page, fasthttp.StatusBadRequest
		}
		page.Hours = h
	}
	sites := r.o.Sites()
	if len(sites) == 0 {
		page.Problem = "no site is configured"
		return page, fasthttp.StatusNotFound
	}
	if site == "" {
		site = sites[0]
	}
	if !slices.Contains(sites, site) {
		page.Problem = fmt.Sprintf("unknown site %q", site)
		return page, fasthttp.StatusNotFound
	}
	page.Site = site
	if len(sites) > 1 {
		for _, name := range sites {
			page.Sites = append(page.Sites, dashLink{Label: name, Href: dashHref(name, "", page.Hours), Current: name == site})
		}
	}
	for _, rg := range dashRanges {
		page.Ranges = append(page.Ranges, dashLink{Label: rg.label, Href: dashHref(site, releaseID, rg.hours), Current: rg.hours == page.Hours})
	}

	fail := func(what string, err error) (dashPage, int) {
		r.o.Logger.Error("dashboard: "+what, "site", site, "err", err)
		page.Problem = "the store could not be read (" + what + "); the log has the details"
		return page, fasthttp.StatusInternalServerError
	}
	all, err := r.o.Store.Releases(site)
	if err != nil {
		return fail("releases", err)
	}
	from := now.Add(-time.Duration(page.Hours) * time.Hour)
	points, err := r.o.Store.Traffic(site, from, now.Add(time.Nanosecond))
	if err != nil {
		return fail("traffic", err)
	}

	opt := r.o.Report
	opt.Now = now
	sel := len(all) - 1
	if releaseID != "" {
		sel = -1
		for i, rel := range all {
			if rel.ID == releaseID {
				sel = i
			}
		}
		if sel < 0 {
			page.Problem = fmt.Sprintf("release %q of site %q is not recorded", releaseID, site)
			return page, fasthttp.StatusNotFound
		}
	}
	oldest := max(0, len(all)-dashMaxReleases)
	page.Older = oldest
	for i := len(all) - 1; i >= oldest; i-- {
		row, rep := r.dashRelease(all, i, opt)
		row.Selected = i == sel
		row.Href = dashHref(site, all[i].ID, page.Hours)
		page.Releases = append(page.Releases, row)
		if i == sel {
			page.Detail = dashDetailOf(all[i], rep, row, i == len(all)-1)
		}
	}
	if sel >= 0 && sel < oldest { // an old release asked for by id
		row, rep := r.dashRelease(all, sel, opt)
		page.Detail = dashDetailOf(all[sel], rep, row, false)
	}

	if len(all) == 0 && len(points) == 0 {
		// Nothing in the range: say "nothing yet" only when nothing is
		// older either. The scan is of a store with no minute in the range,
		// so it is rare and short.
		older, err := r.o.Store.Traffic(site, time.Time{}, from)
		if err != nil {
			return fail("traffic", err)
		}
		page.Empty = len(older) == 0
	}
	page.Summary = dashSummary(points, page.Releases)
	page.Chart = dashChartOf(points, page.Releases, from, now)
	return page, fasthttp.StatusOK
}

// dashRelease builds the list row of release i, with its report against
// the release before it: nil for the first release, and when the report
// could not be built (the row says so, the log says why, and the rest of
// the page still shows).
func (r *Dashboard) dashRelease(all []store.Release, i int, opt report.ReportOptions) (dashRelease, *report.Report) {
	rel := all[i]
	row := dashRelease{ID: rel.ID, At: dashStamp(rel.At), Source: rel.Source, Note: rel.Note, at: rel.At}
	if i == 0 {
		row.Verdict, row.Class, row.State = "first release", "v-first", "nothing before it to compare with"
		return row, nil
	}
	rep, err := report.Build(r.o.Store, rel.Site, rel.ID, opt)
	if err != nil {
		r.o.Logger.Error("dashboard: build report", "site", rel.Site, "release", rel.ID, "err", err)
		row.Verdict, row.Class, row.State = "no report", "v-error", "the report could not be built; the log has the details"
		return row, nil
	}
	row.Verdict, row.Class = string(rep.Verdict), dashClass(rep.Verdict)
	row.State = dashState(rep)
	for _, l := range rep.Lines {
		if l.Verdict == report.Regressed {
			what := dashMetric(l.Metric)
			if where := dashWhere(l); where != "" {
				what += " on " + where
			}
			row.Regressed = append(row.Regressed, what)
		}
	}
	return row, &rep
}

func dashDetailOf(rel store.Release, rep *report.Report, row dashRelease, latest bool) *dashDetail {
	d := &dashDetail{ID: rel.ID, Note: rel.Note, Latest: latest, Verdict: row.Verdict, Class: row.Class, State: row.State}
	if rep == nil {
		d.First = row.Class == "v-first"
		return d
	}
	d.Previous = rep.Previous.ID
	to := dashStamp(rep.Window.To)
	if rep.Open {
		to = "now"
	}
	d.Window = dashStamp(rep.Window.From) + " to " + to
	for _, l := range rep.Lines {
		d.Lines = append(d.Lines, dashLineOf(l))
	}
	for _, name := range rep.NewUncacheable {
		d.Reasons = append(d.Reasons, dashReason{Name: name, Meaning: reasonMeaning(name)})
	}
	return d
}

func dashLineOf(l report.Line) dashLine {
	out := dashLine{
		Metric: dashMetric(l.Metric), Where: dashWhere(l),
		Before: "–", After: "–", Change: "–", P: "–",
		N:       dashThousands(l.NBefore) + " → " + dashThousands(l.NAfter),
		Verdict: string(l.Verdict), Class: dashClass(l.Verdict), Why: l.Why,
		Regressed: l.Verdict == report.Regressed,
	}
	if l.NBefore > 0 {
		out.Before = report.FormatValue(l.Metric, l.Before)
	}
	if l.NAfter > 0 {
		out.After = report.FormatValue(l.Metric, l.After)
	}
	if l.NBefore > 0 && l.NAfter > 0 {
		out.Change = dashChange(l.Metric, l.After-l.Before)
	}
	if l.PValue != nil {
		out.P = report.FormatP(*l.PValue)
	}
	return out
}

// dashSummary is the row of figures above the chart, over the range shown.
func dashSummary(points []store.TrafficPoint, releases []dashRelease) []dashStat {
	var sum dashCounts
	for _, p := range points {
		sum.add(p)
	}
	var out []dashStat
	ratio := dashStat{Label: "Hit ratio", Value: "–", Note: "no cacheable request"}
	if sum.cacheable > 0 {
		ratio.Value = report.FormatValue("hit_ratio", float64(sum.hit)/float64(sum.cacheable))
		ratio.Note = "of " + dashThousands(sum.cacheable) + " cacheable requests"
	}
	out = append(out, ratio)
	rate := dashStat{Label: "Requests", Value: dashThousands(sum.total), Note: "no minute recorded"}
	if len(points) > 0 {
		rate.Note = dashRate(float64(sum.total)/float64(len(points))) + " a minute on average"
	}
	out = append(out, rate)
	origin := dashStat{Label: "Origin requests", Value: dashThousands(sum.origin), Note: "none failed"}
	if sum.originErr > 0 {
		origin.Note = dashThousands(sum.originErr) + " failed (5xx or no answer)"
	}
	out = append(out, origin)
	latest := dashStat{Label: "Latest release", Value: "none yet", Note: "recorded by CI or the release header"}
	if len(releases) > 0 {
		latest.Value, latest.Note = releases[0].ID, releases[0].Verdict
	}
	return append(out, latest)
}

// dashCounts are the requests of recorded minutes, summed: hits (stale ones
// too) and cacheable requests for the hit ratio, every request for the
// rate, and the origin's requests and failures.
type dashCounts struct {
	hit, cacheable, total, origin, originErr uint64
	minutes                                  int
}

func (c *dashCounts) add(p store.TrafficPoint) {
	c.hit += p.Hit + p.Stale
	c.cacheable += p.Cacheable()
	c.total += p.Cacheable() + p.Bypass + p.Error
	c.origin += p.Origin
	c.originErr += p.OriginErrors
	c.minutes++
}

// dashChart is the hit ratio chart, in SVG user units.
type dashChart struct {
	Width, Height            float64
	Left, Right, Top, Bottom float64 // the plot area
	LeftLabel, RightLabel    float64 // x of the axis labels
	XLabelY, UnitY           float64 // y of the time labels and of the units
	RatioPath, RatePath      string
	Grid                     []dashTick // Pos is y; Label the hit ratio, Right the requests/min
	XTicks                   []dashTick // Pos is x
	Markers                  []dashMarker
	Bucket                   string // "5-minute"
	Desc                     string // for screen readers
}

type dashTick struct {
	Pos          float64
	Label, Right string
}

type dashMarker struct {
	X, LabelX, LabelY float64
	Anchor            string // text-anchor of the label
	ID, Title, Class  string
}

// Chart geometry.
const (
	chartWidth   = 960.0
	chartHeight  = 330.0
	chartLeft    = 52.0
	chartRight   = chartWidth - 62
	chartTop     = 54.0 // room for three rows of release labels
	chartBottom  = chartHeight - 28
	chartRowStep = 14.0
)

// dashChartOf buckets the minutes of [from, to) to at most dashMaxPoints
// and draws the hit ratio as a line (broken where no cacheable request was
// counted), requests per minute as an area behind it, and a marker for each
// release in the range.
func dashChartOf(points []store.TrafficPoint, releases []dashRelease, from, to time.Time) *dashChart {
	if len(points) == 0 || !from.Before(to) {
		return nil
	}
	span := to.Sub(from)
	width := dashBucketWidths[len(dashBucketWidths)-1]
	for _, w := range dashBucketWidths {
		if span/w <= dashMaxPoints {
			width = w
			break
		}
	}
	n := int((span + width - 1) / width)
	buckets := make([]dashCounts, n)
	for _, p := range points {
		buckets[min(max(int(p.At.Sub(from)/width), 0), n-1)].add(p)
	}
	maxRate := 0.0
	for _, b := range buckets {
		if b.minutes > 0 {
			maxRate = max(maxRate, float64(b.total)/float64(b.minutes))
		}
	}
	rateTop := dashNiceTop(maxRate)

	c := &dashChart{
		Width: chartWidth, Height: chartHeight,
		Left: chartLeft, Right: chartRight, Top: chartTop, Bottom: chartBottom,
		LeftLabel: chartLeft - 8, RightLabel: chartRight + 8, XLabelY: chartBottom + 19, UnitY: chartTop - 24,
		Bucket: dashDuration(width),
	}
	xOf := func(t time.Time) float64 {
		return chartLeft + (chartRight-chartLeft)*float64(t.Sub(from))/float64(span)
	}
	bw := (chartRight - chartLeft) * float64(width) / float64(span) // one bucket, in units
	center := func(i int) float64 { return math.Min(chartLeft+bw*(float64(i)+0.5), chartRight) }
	yRatio := func(v float64) float64 { return chartBottom - (chartBottom-chartTop)*v }
	yRate := func(v float64) float64 { return chartBottom - (chartBottom-chartTop)*v/rateTop }

	var ratio, rate strings.Builder
	for i := 0; i < n; {
		// The hit ratio: one line per run of buckets with cacheable requests.
		j := i
		for j < n && buckets[j].cacheable > 0 {
			j++
		}
		if j == i+1 {
			x, y := center(i), yRatio(float64(buckets[i].hit)/float64(buckets[i].cacheable))
			fmt.Fprintf(&ratio, "M%.1f %.1fL%.1f %.1f", x-1.5, y, x+1.5, y) // a dot, with round caps
		}
		for k := i; j > i+1 && k < j; k++ {
			cmd := 'L'
			if k == i {
				cmd = 'M'
			}
			fmt.Fprintf(&ratio, "%c%.1f %.1f", cmd, center(k), yRatio(float64(buckets[k].hit)/float64(buckets[k].cacheable)))
		}
		i = max(j, i+1)
	}
	for i := 0; i < n; {
		// Requests per minute: one area per run of buckets with recorded minutes.
		if buckets[i].minutes == 0 {
			i++
			continue
		}
		j := i
		for j < n && buckets[j].minutes > 0 {
			j++
		}
		x0, x1 := math.Max(center(i)-bw/2, chartLeft), math.Min(center(j-1)+bw/2, chartRight)
		fmt.Fprintf(&rate, "M%.1f %.1f", x0, chartBottom)
		for k := i; k < j; k++ {
			y := yRate(float64(buckets[k].total) / float64(buckets[k].minutes))
			if k == i {
				fmt.Fprintf(&rate, "L%.1f %.1f", x0, y)
			}
			fmt.Fprintf(&rate, "L%.1f %.1f", center(k), y)
			if k == j-1 {
				fmt.Fprintf(&rate, "L%.1f %.1f", x1, y)
			}
		}
		fmt.Fprintf(&rate, "L%.1f %.1fZ", x1, chartBottom)
		i = j
	}
	c.RatioPath, c.RatePath = ratio.String(), rate.String()

	for q := 0; q <= 4; q++ {
		v := float64(q) / 4
		c.Grid = append(c.Grid, dashTick{Pos: yRatio(v), Label: strconv.Itoa(q*25) + "%", Right: dashRate(rateTop * v)})
	}
	c.XTicks = dashTimeTicks(from, to, xOf)

	// Release markers, newest last so they draw on top; labels go in the
	// first row above the plot where they do not overlap the one before.
	var rowEnd [3]float64
	for i := range rowEnd {
		rowEnd[i] = math.Inf(-1)
	}
	for i := len(releases) - 1; i >= 0; i-- {
		rel := releases[i]
		if rel.at.Before(from) || rel.at.After(to) {
			continue
		}
		m := dashMarker{X: xOf(rel.at), ID: rel.ID, Class: rel.Class, Anchor: "start",
			Title: fmt.Sprintf("release %s at %s: %s", rel.ID, rel.At, rel.Verdict)}
		label := 7 * float64(len([]rune(rel.ID)))
		// Labels stay over the plot, clear of the axis units in the margins.
		m.LabelX = m.X + 3
		if m.LabelX+label > chartRight && m.X-3-label >= chartLeft {
			m.Anchor, m.LabelX = "end", m.X-3
		}
		left, right := m.LabelX, m.LabelX+label
		if m.Anchor == "end" {
			left, right = m.LabelX-label, m.LabelX
		}
		row := len(rowEnd) - 1 // when every row is taken, the top one overlaps
		for k := range rowEnd {
			if rowEnd[k] < left-6 {
				row = k
				break
			}
		}
		rowEnd[row] = max(rowEnd[row], right)
		m.LabelY = chartTop - 8 - chartRowStep*float64(row) // row 0 is just above the plot
		c.Markers = append(c.Markers, m)
	}
	c.Desc = fmt.Sprintf("Hit ratio and requests per minute in %s buckets from %s to %s, with %d release markers", c.Bucket, dashStamp(from), dashStamp(to), len(c.Markers))
	return c
}

// dashTimeTicks are the x axis labels: round times (UTC), at most about eight.
func dashTimeTicks(from, to time.Time, xOf func(time.Time) float64) []dashTick {
	steps := []time.Duration{10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
		3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour}
	span := to.Sub(from)
	step := steps[len(steps)-1]
	for _, s := range steps {
		if span/s <= 8 {
			step = s
			break
		}
	}
	layout := "15:04"
	switch {
	case step >= 24*time.Hour:
		layout = "Mon Jan 2"
	case span > 24*time.Hour:
		layout = "Mon 15:04"
	}
	var out []dashTick
	for t := from.UTC().Truncate(step); !t.After(to); t = t.Add(step) {
		if t.Before(from) {
			continue
		}
		x := xOf(t)
		if x < chartLeft+20 || x > chartRight-20 {
			continue // would collide with the axis labels
		}
		out = append(out, dashTick{Pos: x, Label: t.UTC().Format(layout)})
	}
	return out
}

// dashNiceTop is the top of the requests/min axis: four equal steps of a
// round size that reach v, so the axis labels read well.
func dashNiceTop(v float64) float64 {
	if !(v > 0) {
		return 4
	}
	step := v / 4
	pow := math.Pow(10, math.Floor(math.Log10(step)))
	for _, m := range []float64{1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if m*pow >= step {
			return 4 * m * pow
		}
	}
	return 40 * pow
}

// dashChange is the report's signed change, with a typographic minus.
func dashChange(metric string, d float64) string {
	return strings.Replace(report.FormatChange(metric, d), "-", "−", 1)
}

func dashTrim(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// dashRate writes requests per minute: "0.5", "42", "1.2k".
func dashRate(v float64) string {
	switch {
	case v >= 10000:
		return dashTrim(strconv.FormatFloat(v/1000, 'f', 0, 64)) + "k"
	case v >= 1000:
		return dashTrim(strconv.FormatFloat(v/1000, 'f', 1, 64)) + "k"
	case v >= 10:
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	}
	return dashTrim(strconv.FormatFloat(v, 'f', 1, 64))
}

func dashThousands[T int | uint64](n T) string {
	return report.Thousands(uint64(max(n, 0)))
}

// dashMetric names a report metric for people: "LCP (lab)", "Cache hit ratio".
func dashMetric(metric string) string {
	switch metric {
	case "hit_ratio":
		return "Cache hit ratio"
	case "origin_p95_seconds":
		return "Origin p95 latency"
	case "conversion_rate":
		return "Conversion rate"
	}
	for _, kind := range []string{"lab", "field"} {
		if rest, ok := strings.CutPrefix(metric, kind+"_"); ok {
			return strings.ToUpper(strings.TrimSuffix(rest, "_seconds")) + " (" + kind + ")"
		}
	}
	return metric
}

// dashWhere is what part of the site a line covers: "/ (mobile)" for a lab
// page and profile, "article pages (desktop)" for field data of a page
// group and device, "goal order" for a conversion rate; "" for the site.
func dashWhere(l report.Line) string {
	where := l.Where()
	switch {
	case where != "" && l.Profile != "":
		return where + " (" + l.Profile + ")"
	case where != "":
		return where
	}
	return l.Profile
}

func dashClass(v report.Verdict) string {
	switch v {
	case report.Regressed:
		return "v-regressed"
	case report.Improved:
		return "v-improved"
	case report.Same:
		return "v-same"
	}
	return "v-nodata"
}

// dashState says whether a report's verdict can still change.
func dashState(rep report.Report) string {
	switch {
	case !rep.Open:
		return "final"
	case rep.Complete:
		return "every metric has a verdict; figures update until the next release"
	}
	return "still collecting: some metrics need more data"
}

// reasonMeaning explains an uncacheable reason (the reason label of
// edgevitals_uncacheable_total, as the store keeps it); "" for a name the
// cache does not know.
func reasonMeaning(name string) string {
	r, _ := cache.ReasonNamed(name) // an unknown name has no meaning to show
	return r.Meaning()
}

func dashHref(site, release string, hours int) string {
	v := url.Values{}
	v.Set("site", site)
	if release != "" {
		v.Set("release", release)
	}
	if hours != dashDefaultHours {
		v.Set("hours", strconv.Itoa(hours))
	}
	return "?" + v.Encode()
}

func dashStamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// dashDuration writes a bucket width: "5-minute", "1-hour".
func dashDuration(d time.Duration) string {
	if d >= time.Hour && d%time.Hour == 0 {
		return strconv.Itoa(int(d/time.Hour)) + "-hour"
	}
	return strconv.Itoa(int(d/time.Minute)) + "-minute"
}
