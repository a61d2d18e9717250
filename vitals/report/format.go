package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// unit is how a metric's values read.
type unit int

const (
	unitSeconds unit = iota // times: "420 ms", "2.1 s"
	unitScore               // CLS: "0.050"
	unitRatio               // shares: "91.0%", changes in points
)

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
