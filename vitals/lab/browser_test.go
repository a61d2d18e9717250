package lab

import (
	"cmp"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/edgevitals/edgevitals/vitals/store"
	"github.com/edgevitals/edgevitals/vitals/vitalstest"
)

// chromiumForTest returns the Chromium to test with. Without one, the test
// skips loudly on a developer machine and fails in CI (CI set), where a
// skipped accuracy test would pass a broken sampler.
func chromiumForTest(t *testing.T) string {
	t.Helper()
	p, err := FindChromium(os.Getenv("EDGEVITALS_CHROMIUM"))
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs Chromium for the lab accuracy tests: %v", err)
		}
		t.Skipf("SKIPPED: NO CHROMIUM, the lab sampler is NOT tested: %v", err)
	}
	return p
}

func newTestBrowser(t *testing.T) *Browser {
	t.Helper()
	b, err := NewBrowser(chromiumForTest(t), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// Ground-truth pages (vitals/vitalstest): each has one designed value.
const (
	lcpImageDelay = vitalstest.LCPImageDelay
	ttfbDelay     = vitalstest.TTFBDelay
	longTask      = vitalstest.LongTask // TBT = longTask - 50 ms
	clickBlock    = vitalstest.ClickBlock
	headHTML      = vitalstest.HeadHTML
)

// groundTruthStatus is the Cache-Status the ground-truth pages carry here,
// where no edge stands in front: the sampler must record it as sent.
const groundTruthStatus = "edgevitals; fwd=uri-miss; stored"

func groundTruthServer(t *testing.T) *httptest.Server {
	t.Helper()
	pages := vitalstest.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Status", groundTruthStatus)
		pages.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// within reports whether got is within tol of want.
func within(got, want, tol time.Duration) bool {
	d := got - want
	return d >= -tol && d <= tol
}

// tolerance is the larger of a fraction of want and an absolute floor.
func tolerance(want time.Duration, frac float64, floor time.Duration) time.Duration {
	return max(time.Duration(float64(want)*frac), floor)
}

// inpTolerance is the tolerance for INP (15% or 30 ms) plus the
// 8 ms to which Event Timing rounds every duration (a privacy measure of the
// standard): a reading of 232 ms stands for a true 228..236 ms.
var inpTolerance = tolerance(clickBlock, 0.15, 30*time.Millisecond) + 8*time.Millisecond

// mobileINPTolerance is inpTolerance and one more Event Timing step, for the
// 4x-slowed mobile profile (see TestMeasureGroundTruth).
var mobileINPTolerance = inpTolerance + 8*time.Millisecond

// shiftScore is the layout-shift score of the /cls page in p's viewport.
func shiftScore(p Profile) float64 { return vitalstest.ShiftScore(int(p.Width), int(p.Height)) }

func TestMeasureGroundTruth(t *testing.T) {
	b := newTestBrowser(t)
	srv := groundTruthServer(t)
	ctx := t.Context()

	type check func(t *testing.T, s store.Sample)
	durCheck := func(name string, get func(store.Sample) *time.Duration, want, tol time.Duration) check {
		return func(t *testing.T, s store.Sample) {
			t.Helper()
			got := get(s)
			if got == nil {
				t.Fatalf("%s not measured, want %v ± %v", name, want, tol)
			}
			if !within(*got, want, tol) {
				t.Errorf("%s = %v, want %v ± %v", name, *got, want, tol)
			}
		}
	}
	lcp := func(s store.Sample) *time.Duration { return s.LCP }
	ttfb := func(s store.Sample) *time.Duration { return s.TTFB }
	tbt := func(s store.Sample) *time.Duration { return s.TBT }
	inp := func(s store.Sample) *time.Duration { return s.INP }
	clsCheck := func(want float64) check {
		return func(t *testing.T, s store.Sample) {
			t.Helper()
			if s.CLS == nil {
				t.Fatalf("CLS not measured, want %.4f", want)
			}
			if d := *s.CLS - want; d < -0.01 || d > 0.01 {
				t.Errorf("CLS = %.4f, want %.4f ± 0.01", *s.CLS, want)
			}
		}
	}
	nilINP := func(t *testing.T, s store.Sample) {
		t.Helper()
		if s.INP != nil {
			t.Errorf("INP = %v on a page with nothing to click, want not measured", *s.INP)
		}
	}
	cacheStatus := func(t *testing.T, s store.Sample) {
		t.Helper()
		if want := groundTruthStatus; s.CacheStatus != want {
			t.Errorf("CacheStatus = %q, want %q", s.CacheStatus, want)
		}
		// The document, the image and, when Chromium asks for it in time, /favicon.ico.
		if s.Requests < 2 || s.Requests > 3 || s.TransferBytes < 1000 {
			t.Errorf("Requests, TransferBytes = %d, %d, want 2 or 3 and at least the image's bytes", s.Requests, s.TransferBytes)
		}
	}

	tests := []struct {
		name    string
		path    string
		profile Profile
		checks  []check
		runs    int // loads whose median by INP is checked; 0 = one
	}{
		// INP is held to the handler's designed time on both profiles. On
		// mobile the CPU is 4x slower: the busy loop still blocks its wall
		// time, while dispatching the tap's touch, pointer and mouse events
		// and painting the result are slowed (measured +24..32 ms here with
		// nothing else running, +8 ms on desktop; +56..80 ms with both cores
		// busy, which is why test.sh runs one package at a time).
		{"lcp image delayed", "/lcp", Desktop, []check{durCheck("LCP", lcp, lcpImageDelay, tolerance(lcpImageDelay, 0.10, 50*time.Millisecond)), cacheStatus}, 0},
		{"lcp image delayed on mobile", "/lcp", Mobile, []check{durCheck("LCP", lcp, lcpImageDelay, tolerance(lcpImageDelay, 0.10, 50*time.Millisecond))}, 0},
		{"ttfb server delay", "/ttfb", Desktop, []check{durCheck("TTFB", ttfb, ttfbDelay, 30*time.Millisecond)}, 0},
		{"tbt one long task", "/tbt", Desktop, []check{durCheck("TBT", tbt, longTask-50*time.Millisecond, tolerance(longTask-50*time.Millisecond, 0.15, 30*time.Millisecond))}, 0},
		{"cls desktop", "/cls", Desktop, []check{clsCheck(shiftScore(Desktop))}, 0},
		{"cls mobile without input", "/cls", Mobile, []check{clsCheck(shiftScore(Mobile))}, 0},
		// INP is judged on the median of three loads, as `measure -runs`
		// reports it. On the 4x-slowed mobile profile the readings of the
		// 200 ms block were 224..240 ms on the development VM with nothing
		// else running (Lighthouse's own mobile INP of the same page read
		// 231..245 ms in the same runs), so mobile is held to one more
		// 8 ms Event Timing step than desktop: 246 ms at most.
		{"inp click blocks", "/inp", Desktop, []check{durCheck("INP", inp, clickBlock, inpTolerance)}, 3},
		{"inp tap blocks on mobile", "/inp", Mobile, []check{durCheck("INP", inp, clickBlock, mobileINPTolerance)}, 3},
		{"nothing to click", "/static", Desktop, []check{nilINP}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var runs []store.Sample
			for range max(tt.runs, 1) {
				s, err := b.Measure(ctx, srv.URL+tt.path, tt.profile, "")
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%s %s: %s", tt.path, tt.profile.Name, sampleLine(s))
				runs = append(runs, s)
			}
			s := medianByINP(runs)
			for _, c := range tt.checks {
				c(t, s)
			}
		})
	}
}

// medianByINP is the sample with the median INP (an unmeasured INP
// counts as the smallest), or the only sample.
func medianByINP(runs []store.Sample) store.Sample {
	sorted := slices.Clone(runs)
	slices.SortStableFunc(sorted, func(a, b store.Sample) int {
		av, bv := time.Duration(-1), time.Duration(-1)
		if a.INP != nil {
			av = *a.INP
		}
		if b.INP != nil {
			bv = *b.INP
		}
		return cmp.Compare(av, bv)
	})
	return sorted[len(sorted)/2]
}

func sampleLine(s store.Sample) string {
	b, _ := s.MarshalJSON() // a Sample always encodes
	return string(b)
}
