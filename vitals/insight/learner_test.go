package insight

import (
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewOptions(t *testing.T) {
	f := func(o Options, want string) {
		t.Helper()
		_, err := New(o)
		switch {
		case want == "" && err != nil:
			t.Errorf("New(%+v) = %v, want no error", o, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("New(%+v) = %v, want an error containing %q", o, err, want)
		}
	}
	f(Options{}, "")
	f(Options{MaxSites: -1}, "insight.MaxSites: must be in 1..4096, got -1")
	f(Options{Bucket: time.Millisecond}, "insight.Bucket: must be at least 1s, got 1ms")
	f(Options{Buckets: 10}, "insight.Window: must be between Bucket and Bucket × Buckets (10m0s), got 15m0s")
	f(Options{MinPoints: -2, Groups: -1}, "insight.Groups: must be in 1..4096, got -1\ninsight.MinPoints: must be in 0..100, got -2")
}

// TestObserveDrops: observations the learner cannot place are counted, not learned.
func TestObserveDrops(t *testing.T) {
	l, err := New(Options{MaxSites: 1, Buckets: 15})
	if err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Hour)
	for _, o := range []Observation{
		{Site: "a", Outcome: Hit, Time: now},                         // learned
		{Site: "a", Outcome: Hit},                                    // no time
		{Site: "a", Time: now},                                       // no outcome
		{Site: "b", Outcome: Hit, Time: now},                         // beyond MaxSites
		{Site: "a", Outcome: Miss, Time: now.Add(-20 * time.Minute)}, // older than the history
	} {
		l.Observe(&o)
	}
	if got, want := l.Stats(), (Stats{Observed: 1, Dropped: 4}); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

// TestObserveAllocs holds Observe at zero allocations once the names it meets are known.
func TestObserveAllocs(t *testing.T) {
	l, obs := benchLearner(t)
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		l.Observe(&obs[i%len(obs)])
		i++
	})
	if allocs != 0 {
		t.Errorf("Observe allocs = %v, want 0", allocs)
	}
}

func benchLearner(tb testing.TB) (*Learner, []Observation) {
	tb.Helper()
	l, err := New(Options{})
	if err != nil {
		tb.Fatal(err)
	}
	obs := make([]Observation, 1024)
	for i := range obs {
		q := []byte("page=" + strconv.Itoa(i%7) + "&srsltid=" + strconv.Itoa(i*7919) + "&utm_source=x")
		params := AppendParams(nil, q)
		params[2].Stripped = true
		obs[i] = Observation{
			Site: "blog", Path: []byte("/product/" + strconv.Itoa(i) + "/"), Params: params,
			Cookies: [][]byte{[]byte("_ga"), []byte("pmpro_visit")}, Outcome: Outcome(1 + i%5),
			Vary:        []Field{{Name: []byte("accept-encoding"), Value: []byte("gzip")}},
			Fingerprint: uint64(i%13 + 1), Time: t0.Add(time.Duration(i) * time.Second),
		}
		if obs[i].Outcome == Bypass {
			obs[i].BypassCookie = []byte("pmpro_visit")
		}
		if obs[i].Outcome == Pass {
			obs[i].Reason = "private"
		}
	}
	for i := range obs { // warm up: every name known, every bucket of the ring visited
		l.Observe(&obs[i])
	}
	return l, obs
}

func BenchmarkObserve(b *testing.B) {
	l, obs := benchLearner(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		l.Observe(&obs[i%len(obs)])
	}
}

func BenchmarkObserveParallel(b *testing.B) {
	l, obs := benchLearner(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Observe(&obs[i%len(obs)])
			i++
		}
	})
}

// TestConcurrent feeds two sites from several goroutines while reading insights (run with
// -race).
func TestConcurrent(t *testing.T) {
	l, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				o := Observation{
					Site: []string{"a", "b"}[g%2], Path: []byte("/p/" + strconv.Itoa(i%50)),
					Params:  []Param{{Name: []byte("id"), Value: []byte(strconv.Itoa(i))}},
					Outcome: Miss, Fingerprint: 7, Time: t0.Add(time.Duration(i) * 100 * time.Millisecond),
				}
				l.Observe(&o)
			}
		})
		wg.Go(func() {
			for range 50 {
				_ = l.Insights("a", t0.Add(time.Minute)) // read under load; the result is checked below
				_ = l.Top("b", t0.Add(time.Minute), 3)
			}
		})
	}
	wg.Wait()
	if got := l.Stats().Observed; got != 8000 {
		t.Errorf("Observed = %d, want 8000", got)
	}
	if in := l.Insights("a", t0.Add(200*time.Second)); len(in) == 0 || in[0].Name != "id" || in[0].Verdict != Identical {
		t.Errorf("Insights(a) = %+v, want id identical first", in)
	}
}

// TestMemoryBound feeds a million distinct URLs and a hundred parameter names: the retained
// heap stays under the bound of the package comment and the real cause is still found.
func TestMemoryBound(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("a million observations")
	}
	const bound = 2 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := newSim(t, Options{}, 1_000_000)
	for i := range s.total {
		r := s.baseline()
		if i%2 == 0 {
			r.path = "/p" + strconv.Itoa(i%1000) + "/item-x-" + strconv.Itoa(i) // a million distinct URLs
			r.page, r.once = r.path, true                                       // the simulated cache would dwarf the learner
			r.params = append(r.params, "q"+strconv.Itoa(i%100)+"="+strconv.Itoa(i))
		} else if s.rng.IntN(10) < 6 {
			r.params, r.once = append(r.params, "srsltid="+strconv.Itoa(i)), true
		}
		s.serve(r)
	}
	s.cached = nil // the simulated cache is not the learner's
	runtime.GC()
	runtime.ReadMemStats(&after)
	retained := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("retained heap: %d KiB", retained>>10)
	if retained > bound {
		t.Errorf("retained heap = %d KiB, want ≤ %d KiB", retained>>10, bound>>10)
	}
	in := s.l.Insights("blog", s.now())
	var found bool
	for _, x := range in {
		if x.Kind == KindParam && x.Name == "srsltid" {
			found = x.Verdict == Identical && near(x.Share, 0.3, 0.03)
			break
		}
	}
	if !found {
		t.Errorf("Insights = %+v, want srsltid identical on 30%%", in[:min(len(in), 5)])
	}
	runtime.KeepAlive(s.l)
}

// TestImports holds DESIGN.md's rule: vitals/insight imports the standard library only.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	if deps := strings.Fields(string(out)); len(deps) != 1 || !strings.HasSuffix(deps[0], "vitals/insight") {
		t.Errorf("non-standard dependencies: %v, want none", deps)
	}
}

// TestObserveAllocsNewNames: an attacker inventing a parameter name, a cookie and a URL
// section on every request costs no allocation once the tables are full.
func TestObserveAllocsNewNames(t *testing.T) {
	l, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	names := make([][]byte, 20000)
	for i := range names {
		names[i] = []byte("x" + strconv.Itoa(i))
	}
	o := Observation{Site: "blog", Outcome: Miss, Fingerprint: 1, Path: make([]byte, 0, 16),
		Params: []Param{{Value: []byte("1")}}, Cookies: [][]byte{nil}}
	i := 0
	next := func() {
		n := names[i%len(names)]
		o.Path = append(append(o.Path[:0], '/'), n...)
		o.Params[0].Name, o.Cookies[0] = n, n
		o.Outcome, o.BypassCookie = Miss, nil
		if i%2 == 0 {
			o.Outcome, o.BypassCookie = Bypass, n
		}
		o.Time = t0.Add(time.Duration(i) * 10 * time.Millisecond)
		l.Observe(&o)
		i++
	}
	for range 5000 {
		next()
	}
	if allocs := testing.AllocsPerRun(10000, next); allocs != 0 {
		t.Errorf("Observe allocs with new names = %v, want 0", allocs)
	}
}
