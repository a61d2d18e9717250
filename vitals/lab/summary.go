package lab

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/edgevitals/edgevitals/vitals/store"
)

// Band is how a value rates against the Core Web Vitals thresholds.
type Band string

// The bands of web.dev (Lighthouse's for TBT).
const (
	Good             Band = "good"
	NeedsImprovement Band = "needs improvement"
	Poor             Band = "poor"
)

// thresholds are the upper bounds of Good and of NeedsImprovement, in
// milliseconds (CLS unitless).
var thresholds = map[string][2]float64{
	"lcp":  {2500, 4000},
	"fcp":  {1800, 3000},
	"ttfb": {800, 1800},
	"tbt":  {200, 600},
	"inp":  {200, 500},
	"cls":  {0.1, 0.25},
}

// BandOf rates v (milliseconds, or the score for "cls") of the metric
// ("lcp", "fcp", "ttfb", "tbt", "inp" or "cls"). An unknown metric is "".
func BandOf(metric string, v float64) Band {
	t, ok := thresholds[metric]
	switch {
	case !ok:
		return ""
	case v <= t[0]:
		return Good
	case v <= t[1]:
		return NeedsImprovement
	}
	return Poor
}

// Summary is the median of several samples of one URL and profile. A metric
// no run measured is nil.
type Summary struct {
	URL, Profile             string
	Runs                     int
	LCP, FCP, TTFB, TBT, INP *time.Duration
	CLS                      *float64
	TransferBytes, Requests  int64
	CacheStatus              string // the most frequent one
}

// Summarize takes the median of each metric over the samples that measured
// it. The samples are of one URL and profile.
func Summarize(samples []store.Sample) Summary {
	var sum Summary
	sum.Runs = len(samples)
	if len(samples) == 0 {
		return sum
	}
	sum.URL, sum.Profile = samples[0].URL, samples[0].Profile
	durs := func(get func(store.Sample) *time.Duration) *time.Duration {
		var v []float64
		for _, s := range samples {
			if d := get(s); d != nil {
				v = append(v, float64(*d))
			}
		}
		m, ok := median(v)
		if !ok {
			return nil
		}
		d := time.Duration(m)
		return &d
	}
	sum.LCP = durs(func(s store.Sample) *time.Duration { return s.LCP })
	sum.FCP = durs(func(s store.Sample) *time.Duration { return s.FCP })
	sum.TTFB = durs(func(s store.Sample) *time.Duration { return s.TTFB })
	sum.TBT = durs(func(s store.Sample) *time.Duration { return s.TBT })
	sum.INP = durs(func(s store.Sample) *time.Duration { return s.INP })
	var cls, bytes, reqs []float64
	counts := map[string]int{}
	for _, s := range samples {
		if s.CLS != nil {
			cls = append(cls, *s.CLS)
		}
		bytes = append(bytes, float64(s.TransferBytes))
		reqs = append(reqs, float64(s.Requests))
		counts[s.CacheStatus]++
		if counts[s.CacheStatus] >= counts[sum.CacheStatus] {
			sum.CacheStatus = s.CacheStatus // most frequent; the later one on a tie
		}
	}
	if m, ok := median(cls); ok {
		sum.CLS = &m
	}
	b, _ := median(bytes) // never empty here
	r, _ := median(reqs)
	sum.TransferBytes, sum.Requests = int64(b), int64(r)
	return sum
}

func median(v []float64) (float64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2], true
	}
	return (v[n/2-1] + v[n/2]) / 2, true
}

// MarshalJSON writes the object of `edgevitals measure -json`.
func (s Summary) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		URL     string `json:"url"`
		Profile string `json:"profile"`
		Runs    int    `json:"runs"`
		store.LabJSON
	}{s.URL, s.Profile, s.Runs, store.LabJSON{LCP: store.MsOf(s.LCP), FCP: store.MsOf(s.FCP), TTFB: store.MsOf(s.TTFB), TBT: store.MsOf(s.TBT), INP: store.MsOf(s.INP),
		CLS: s.CLS, TransferBytes: s.TransferBytes, Requests: s.Requests, CacheStatus: s.CacheStatus}})
}

// WriteTable writes the summaries as a table, each value with its band.
func WriteTable(w io.Writer, sums []Summary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "URL\tPROFILE\tRUNS\tLCP\tFCP\tTTFB\tTBT\tINP\tCLS\tBYTES\tREQUESTS\tCACHE")
	for _, s := range sums {
		cache := s.CacheStatus
		if cache == "" {
			cache = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", s.URL, s.Profile, s.Runs,
			durCell("lcp", s.LCP), durCell("fcp", s.FCP), durCell("ttfb", s.TTFB), durCell("tbt", s.TBT), durCell("inp", s.INP),
			clsCell(s.CLS), s.TransferBytes, s.Requests, cache)
	}
	return tw.Flush()
}

func durCell(metric string, d *time.Duration) string {
	if d == nil {
		return "n/a"
	}
	ms := float64(*d) / float64(time.Millisecond)
	return strconv.FormatFloat(ms, 'f', 0, 64) + " ms " + string(BandOf(metric, ms))
}

func clsCell(v *float64) string {
	if v == nil {
		return "n/a"
	}
	return strconv.FormatFloat(*v, 'f', 3, 64) + " " + string(BandOf("cls", *v))
}
