package dashboard

import (
	_ "embed" // the dashboard's template
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/edgevitals/edgevitals/vitals/store"
)

// dashBucketWidths are the widths a chart bucket may take: the smallest that
// keeps the chart within dashMaxPoints is used.
var dashBucketWidths = []time.Duration{
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute,
	20 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
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

	c.RatioPath = dashRatioPath(buckets, center, yRatio)
	c.RatePath = dashRatePath(buckets, bw, center, yRate)

	for q := 0; q <= 4; q++ {
		v := float64(q) / 4
		c.Grid = append(c.Grid, dashTick{Pos: yRatio(v), Label: strconv.Itoa(q*25) + "%", Right: dashRate(rateTop * v)})
	}
	c.XTicks = dashTimeTicks(from, to, xOf)

	c.Markers = dashMarkersOf(releases, from, to, xOf)
	c.Desc = fmt.Sprintf("Hit ratio and requests per minute in %s buckets from %s to %s, with %d release markers", c.Bucket, dashStamp(from), dashStamp(to), len(c.Markers))
	return c
}

// dashRatioPath is the hit ratio line: one run per run of buckets with
// cacheable requests, a dot for a lone bucket.
func dashRatioPath(buckets []dashCounts, center func(int) float64, yRatio func(float64) float64) string {
	var ratio strings.Builder
	n := len(buckets)
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
	return ratio.String()
}

// dashRatePath is the requests-per-minute area: one per run of buckets
// with recorded minutes.
func dashRatePath(buckets []dashCounts, bw float64, center func(int) float64, yRate func(float64) float64) string {
	var rate strings.Builder
	n := len(buckets)
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
	return rate.String()
}

// dashMarkersOf are the release markers of the chart, newest last so they
// draw on top; labels go in the first row above the plot where they do not
// overlap the one before.
func dashMarkersOf(releases []dashRelease, from, to time.Time, xOf func(time.Time) float64) []dashMarker {
	var markers []dashMarker
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
		markers = append(markers, m)
	}
	return markers
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
