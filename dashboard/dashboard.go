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
	"slices"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

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
	page, status := r.dashHeader(site, releaseID, hoursArg, now)
	if page.Problem != "" {
		return page, status
	}
	site = page.Site

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

// dashHeader is the top of the page: the range in hours, the site (the
// first when none is asked for) and the links to the other sites and
// ranges. A page with Problem set is the answer, with its status.
func (r *Dashboard) dashHeader(site, releaseID, hoursArg string, now time.Time) (dashPage, int) {
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
