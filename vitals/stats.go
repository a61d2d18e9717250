package vitals

import (
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
	n1, n2 := len(x), len(y)
	if n1 == 0 || n2 == 0 {
		return 0, 1
	}
	type obs struct {
		v     float64
		fromX bool
	}
	all := make([]obs, 0, n1+n2)
	for _, v := range x {
		all = append(all, obs{v, true})
	}
	for _, v := range y {
		all = append(all, obs{v, false})
	}
	slices.SortFunc(all, func(a, b obs) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	var rankX, ties float64 // sum of x's ranks; sum of t^3 - t over tie groups
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		rank := float64(i+j+1) / 2 // mean of ranks i+1 .. j
		for k := i; k < j; k++ {
			if all[k].fromX {
				rankX += rank
			}
		}
		if t := float64(j - i); t > 1 {
			ties += t*t*t - t
		}
		i = j
	}
	f1, f2, n := float64(n1), float64(n2), float64(n1+n2)
	u = rankX - f1*(f1+1)/2
	mu := f1 * f2 / 2
	variance := f1 * f2 / 12 * ((n + 1) - ties/(n*(n-1)))
	if variance <= 0 {
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
