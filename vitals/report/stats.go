package report

import (
	"cmp"
	"math"
	"slices"
	"sort"
)

// The statistics behind release verdicts. They use the standard library
// only, so an engineer can check each number by hand: quantiles of samples,
// quantiles of classic `le` histograms as Prometheus computes them, the
// Mann-Whitney U test for lab samples and the two-proportion z-test for
// ratios of counts (hit ratio, conversion rate).

// quantile is the q-quantile (0 <= q <= 1) of v by linear interpolation
// between order statistics (Hyndman-Fan type 7, the default of R, NumPy and
// spreadsheets). It is false when v is empty. v is not modified.
func quantile(v []float64, q float64) (float64, bool) {
	if len(v) == 0 || math.IsNaN(q) || q < 0 || q > 1 {
		return 0, false
	}
	s := slices.Clone(v)
	slices.Sort(s)
	h := q * float64(len(s)-1)
	lo := int(math.Floor(h))
	if lo >= len(s)-1 {
		return s[len(s)-1], true
	}
	return s[lo] + (h-float64(lo))*(s[lo+1]-s[lo]), true
}

// histogramQuantile is the q-quantile of a histogram with upper bounds
// bounds (ascending, seconds) and per-bucket counts (not cumulative) of
// len(bounds)+1 buckets, the last one +Inf. It interpolates linearly within
// a bucket and answers the highest finite bound for ranks in the +Inf
// bucket, exactly as Prometheus' histogram_quantile does, so a local report
// and a Grafana panel agree. It is false when the histogram is empty or
// malformed.
func histogramQuantile(q float64, bounds []float64, counts []uint64) (float64, bool) {
	if len(bounds) == 0 || len(counts) != len(bounds)+1 || math.IsNaN(q) || q < 0 || q > 1 {
		return 0, false
	}
	cum := make([]float64, len(counts))
	var total float64
	for i, c := range counts {
		total += float64(c)
		cum[i] = total
	}
	if total == 0 {
		return 0, false
	}
	rank := q * total
	b := sort.SearchFloat64s(cum, rank) // first bucket whose cumulative count reaches rank
	if b >= len(bounds) {
		return bounds[len(bounds)-1], true
	}
	if b == 0 && bounds[0] <= 0 {
		return bounds[0], true
	}
	start, end, count := 0.0, bounds[b], cum[b]
	if b > 0 {
		start = bounds[b-1]
		count -= cum[b-1]
		rank -= cum[b-1]
	}
	if count == 0 {
		return end, true
	}
	return start + (end-start)*(rank/count), true
}

// mannWhitney tests whether x and y come from the same distribution, against
// the alternative that one tends to be larger (two-sided). u is the U
// statistic of x (the number of pairs where x beats y, ties counting half);
// p uses the normal approximation with the tie correction and a continuity
// correction of 1/2, as SciPy's mannwhitneyu(method="asymptotic") does. With
// an empty sample, or when every value is equal, p is 1: there is no
// evidence of a difference.
func mannWhitney(x, y []float64) (u, p float64) {
	cells := make([]rankCell, 0, len(x)+len(y))
	for _, v := range x {
		cells = append(cells, rankCell{v: v, nx: 1})
	}
	for _, v := range y {
		cells = append(cells, rankCell{v: v, ny: 1})
	}
	return rankSum(cells)
}

// rankCell counts the observations of x (nx) and of y (ny) that have the
// value v.
type rankCell struct{ v, nx, ny float64 }

// rankSum is the Mann-Whitney U test of mannWhitney over observations
// counted in cells: those of one value are ties, whichever cells hold
// them. It sorts cells.
func rankSum(cells []rankCell) (u, p float64) {
	var n1, n2 float64
	for _, c := range cells {
		n1 += c.nx
		n2 += c.ny
	}
	if n1 == 0 || n2 == 0 {
		return 0, 1
	}
	slices.SortFunc(cells, func(a, b rankCell) int { return cmp.Compare(a.v, b.v) })
	var seen, rankX, ties float64 // ranks given; sum of x's ranks; sum of t^3 - t over tie groups
	for i := 0; i < len(cells); {
		nx, ny := cells[i].nx, cells[i].ny
		j := i + 1
		for j < len(cells) && cells[j].v == cells[i].v {
			nx += cells[j].nx
			ny += cells[j].ny
			j++
		}
		t := nx + ny
		rankX += nx * (seen + (t+1)/2) // mean of ranks seen+1 .. seen+t
		if t > 1 {
			ties += t*t*t - t
		}
		seen += t
		i = j
	}
	n := n1 + n2
	u = rankX - n1*(n1+1)/2
	mu := n1 * n2 / 2
	variance := n1 * n2 / 12 * ((n + 1) - ties/(n*(n-1)))
	if !(variance > 0) {
		return u, 1
	}
	d := math.Abs(u-mu) - 0.5
	if d <= 0 {
		return u, 1
	}
	return u, twoSided(d / math.Sqrt(variance))
}

// twoProportionZ tests whether x1 of n1 and x2 of n2 share one proportion
// (pooled two-proportion z-test, two-sided). z is positive when the second
// proportion is the higher. With an empty group, or when the pooled
// proportion is 0 or 1, z is 0 and p is 1.
func twoProportionZ(x1, n1, x2, n2 uint64) (z, p float64) {
	if n1 == 0 || n2 == 0 || x1 > n1 || x2 > n2 {
		return 0, 1
	}
	f1, f2 := float64(n1), float64(n2)
	p1, p2 := float64(x1)/f1, float64(x2)/f2
	pooled := float64(x1+x2) / (f1 + f2)
	se := math.Sqrt(pooled * (1 - pooled) * (1/f1 + 1/f2))
	if se == 0 || math.IsNaN(se) {
		return 0, 1
	}
	z = (p2 - p1) / se
	return z, twoSided(z)
}

// twoSided is P(|Z| >= |z|) for a standard normal Z.
func twoSided(z float64) float64 {
	return math.Erfc(math.Abs(z) / math.Sqrt2)
}
