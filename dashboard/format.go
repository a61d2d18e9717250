package dashboard

import (
	_ "embed" // the dashboard's template
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/edgevitals/edgevitals/cache"
	"github.com/edgevitals/edgevitals/vitals/report"
)

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
