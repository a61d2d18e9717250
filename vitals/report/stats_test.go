package report

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestQuantile(t *testing.T) {
	tests := []struct {
		name string
		v    []float64
		q    float64
		want float64
		ok   bool
	}{
		{"empty", nil, 0.75, 0, false},
		{"one", []float64{3}, 0.75, 3, true},
		// h = 0.75 * 3 = 2.25: 3 + 0.25 * (4 - 3)
		{"p75 of four, unsorted", []float64{4, 1, 3, 2}, 0.75, 3.25, true},
		// h = 0.75 * 4 = 3: exactly the fourth value
		{"p75 of five", []float64{10, 20, 30, 40, 50}, 0.75, 40, true},
		{"median of even", []float64{1, 2, 3, 4}, 0.5, 2.5, true},
		{"max", []float64{1, 9, 5}, 1, 9, true},
		{"min", []float64{1, 9, 5}, 0, 1, true},
		{"q out of range", []float64{1}, 1.5, 0, false},
		{"q NaN", []float64{1}, math.NaN(), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]float64(nil), tt.v...)
			got, ok := quantile(tt.v, tt.q)
			if ok != tt.ok || !near(got, tt.want, 1e-12) {
				t.Errorf("quantile(%v, %v) = %v, %v; want %v, %v", tt.v, tt.q, got, ok, tt.want, tt.ok)
			}
			for i := range in {
				if in[i] != tt.v[i] {
					t.Fatalf("quantile modified its input: %v, was %v", tt.v, in)
				}
			}
		})
	}
}

func TestHistogramQuantile(t *testing.T) {
	bounds := []float64{0.1, 0.2, 0.5}
	tests := []struct {
		name   string
		q      float64
		counts []uint64
		want   float64
		ok     bool
	}{
		// cumulative 10, 80, 95, 100; rank 95 is reached in (0.2, 0.5] with
		// 15 of 15: 0.2 + 0.3 * 15/15
		{"rank at a bucket's top", 0.95, []uint64{10, 70, 15, 5}, 0.5, true},
		// cumulative 50, 100; rank 95 in (0.1, 0.2]: 0.1 + 0.1 * 45/50
		{"interpolated", 0.95, []uint64{50, 50, 0, 0}, 0.19, true},
		// rank 50 in the first bucket, which starts at 0: 0.1 * 50/100
		{"first bucket starts at zero", 0.5, []uint64{100, 0, 0, 0}, 0.05, true},
		{"rank in +Inf answers the highest bound", 0.95, []uint64{0, 0, 0, 10}, 0.5, true},
		{"empty", 0.95, []uint64{0, 0, 0, 0}, 0, false},
		{"wrong bucket count", 0.95, []uint64{1, 2}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := histogramQuantile(tt.q, bounds, tt.counts)
			if ok != tt.ok || !near(got, tt.want, 1e-12) {
				t.Errorf("histogramQuantile(%v, %v) = %v, %v; want %v, %v", tt.q, tt.counts, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestMannWhitney(t *testing.T) {
	tests := []struct {
		name  string
		x, y  []float64
		wantU float64
		wantP float64
	}{
		// U = 0, mean 4.5, variance 9/12 * 7 = 5.25:
		// z = (4.5 - 0.5) / sqrt(5.25) = 1.7457, p = 0.080856 (SciPy agrees).
		{"separated", []float64{1, 2, 3}, []float64{4, 5, 6}, 0, 0.0808555983700523},
		{"separated, other side", []float64{4, 5, 6}, []float64{1, 2, 3}, 9, 0.0808555983700523},
		// Ranks 1, 3, 3, 5.5 for x: R = 12.5, U = 2.5. Ties: a group of 3
		// and one of 2, sum of t^3 - t = 30. Variance 16/12 * (9 - 30/56),
		// z = (8 - 2.5 - 0.5) / 3.35942 = 1.48835, p = 0.136658.
		{"ties", []float64{1, 2, 2, 3}, []float64{2, 3, 4, 5}, 2.5, 0.13665824773814753},
		{"all equal", []float64{1, 1}, []float64{1, 1, 1}, 3, 1},
		{"empty", nil, []float64{1}, 0, 1},
		{"identical", []float64{1, 2, 3}, []float64{1, 2, 3}, 4.5, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, p := mannWhitney(tt.x, tt.y)
			if !near(u, tt.wantU, 1e-12) || !near(p, tt.wantP, 1e-9) {
				t.Errorf("mannWhitney(%v, %v) = %v, %v; want %v, %v", tt.x, tt.y, u, p, tt.wantU, tt.wantP)
			}
		})
	}
}

func TestTwoProportionZ(t *testing.T) {
	tests := []struct {
		name           string
		x1, n1, x2, n2 uint64
		wantZ, wantP   float64
	}{
		// pooled 0.85, se = sqrt(0.85 * 0.15 * 0.02) = 0.050498:
		// z = -0.1 / 0.050498 = -1.98030, p = 0.047670.
		{"90% to 80% of 100", 90, 100, 80, 100, -1.9802950859533488, 0.04767038065616144},
		{"80% to 90% of 100", 80, 100, 90, 100, 1.9802950859533488, 0.04767038065616144},
		{"same", 50, 100, 100, 200, 0, 1},
		{"all hits", 10, 10, 20, 20, 0, 1},
		{"empty group", 0, 0, 5, 10, 0, 1},
		{"more hits than requests", 11, 10, 5, 10, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z, p := twoProportionZ(tt.x1, tt.n1, tt.x2, tt.n2)
			if !near(z, tt.wantZ, 1e-9) || !near(p, tt.wantP, 1e-9) {
				t.Errorf("twoProportionZ(%d/%d, %d/%d) = %v, %v; want %v, %v", tt.x1, tt.n1, tt.x2, tt.n2, z, p, tt.wantZ, tt.wantP)
			}
		})
	}
}

// lcpSamples draws n lab LCPs in seconds around median: lab loads of one
// page vary by about 10% from run to run (log-normal, sigma 0.1).
func lcpSamples(r *rand.Rand, n int, median float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = median * math.Exp(0.1*r.NormFloat64())
	}
	return v
}

// TestVerdictErrorRates is the first check of releases: identical
// distributions are called regressed in at most 5% of 1,000 trials, and a
// 20% slower LCP with 20 samples each is caught in at least 95%.
func TestVerdictErrorRates(t *testing.T) {
	o, err := ReportOptions{Now: time.Unix(0, 0)}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	rel, abs := timeLimits(o.Thresholds)
	c := comparison{metric: "lab_lcp_seconds", subject: "LCP", unit: unitSeconds, quantile: "p75", rel: rel, abs: abs}
	const trials = 1000
	tests := []struct {
		name     string
		shift    float64
		verdict  Verdict
		min, max int // how many trials may end with verdict
	}{
		{"identical distributions are rarely regressed", 1, Regressed, 0, trials * 5 / 100},
		{"identical distributions are rarely improved", 1, Improved, 0, trials * 5 / 100},
		{"a 20% slower LCP is caught", 1.2, Regressed, trials * 95 / 100, trials},
		{"a 20% faster LCP is caught", 1 / 1.2, Improved, trials * 95 / 100, trials},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(42, uint64(i)))
			n := 0
			for range trials {
				before := lcpSamples(r, 20, 2.0)
				after := lcpSamples(r, 20, 2.0*tt.shift)
				if c.samples(before, after, o).Verdict == tt.verdict {
					n++
				}
			}
			if n < tt.min || n > tt.max {
				t.Errorf("%s in %d of %d trials, want %d to %d", tt.verdict, n, trials, tt.min, tt.max)
			}
			t.Logf("%s in %d of %d trials", tt.verdict, n, trials)
		})
	}
}
