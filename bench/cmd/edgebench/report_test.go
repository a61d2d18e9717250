package main

import (
	"strings"
	"testing"
	"time"
)

func round(server string, rps int64, p99ms int, cpu time.Duration, noisy bool) roundResult {
	return roundResult{
		server: server, round: 1, attempt: 1, noisy: noisy, others: map[bool]float64{true: 0.9, false: 0.01}[noisy],
		wall: time.Second, serverCPU: cpu,
		wrk: wrkResult{Requests: rps, Duration: time.Second, P50: time.Millisecond, P99: time.Duration(p99ms) * time.Millisecond},
	}
}

func TestSummariesCountQuietRounds(t *testing.T) {
	rep := report{
		scenario: scenarios["hot"],
		servers:  []*server{{name: "edgevitals"}, {name: "varnish"}, {name: "bare"}},
		hwm:      []int64{64 << 20, 128 << 20, 8 << 20},
		rounds: []roundResult{
			round("edgevitals", 60000, 2, 900*time.Millisecond, false),
			round("edgevitals", 10000, 50, 900*time.Millisecond, true), // noisy: left out
			round("edgevitals", 62000, 3, 900*time.Millisecond, false),
			round("varnish", 30000, 4, 900*time.Millisecond, true), // only noisy rounds
			round("bare", 75000, 1, 900*time.Millisecond, false),
		},
	}
	sums := rep.summaries()
	want := []struct {
		name           string
		rps            float64
		counted, total int
		onlyNoisy      bool
		cpuUs          float64
	}{
		{"edgevitals", 61000, 2, 3, false, 900e3 / 61000},
		{"varnish", 30000, 0, 1, true, 30},
		{"bare", 75000, 1, 1, false, 12},
	}
	for i, w := range want {
		s := sums[i]
		if s.name != w.name || s.rps != w.rps || s.counted != w.counted || s.total != w.total || s.onlyNoisy != w.onlyNoisy {
			t.Errorf("summary %d = %+v, want %+v", i, s, w)
		}
		if d := s.cpuUs - w.cpuUs; d > 0.2 || d < -0.2 {
			t.Errorf("%s cpu µs/req = %.2f, want about %.2f", s.name, s.cpuUs, w.cpuUs)
		}
	}
	var b strings.Builder
	rep.write(&b)
	out := b.String()
	for _, line := range []string{
		"| edgevitals | 61000 | 1.00 ms | 2.50 ms | 14.8 | 64.0 MiB | 2.03x | 0.81x | 2/3 | 0 |",
		"| varnish | 30000 | 1.00 ms | 4.00 ms | 30.0 | 128.0 MiB | 1.00x | 0.40x | 0/1 (all noisy: figures from noisy rounds) | 0 |",
		"edgevitals round 1 attempt 1 (others used 0.90 cores)",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("report lacks %q:\n%s", line, out)
		}
	}
}

func TestFormatting(t *testing.T) {
	f := func(got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	f(fmtDur(0), "—")
	f(fmtDur(850*time.Microsecond), "850 µs")
	f(fmtDur(1500*time.Microsecond), "1.50 ms")
	f(fmtDur(1100*time.Millisecond), "1.10 s")
	f(fmtBytes(0), "—")
	f(fmtBytes(3<<19), "1.5 MiB")
	f(ratio(50, nil), "—")
	f(ratio(50, &summary{rps: 100}), "0.50x")
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median odd = %v, want 2", got)
	}
	if got := median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("median even = %v, want 2.5", got)
	}
}

// TestPairedRounds: each server after the first is compared with it round by
// round; a noisy round drops its pair, and too few pairs print nothing.
func TestPairedRounds(t *testing.T) {
	rep := report{
		scenario: scenarios["hot"],
		servers:  []*server{{name: "edgevitals"}, {name: "edgevitals-rum"}, {name: "varnish"}},
	}
	// The machine drifts from 50k to 68k, and edgevitals-rum stays at 0.98x
	// of edgevitals in every round but the noisy one.
	for i := 1; i <= 10; i++ {
		base := int64(50000 + 2000*(i-1))
		for _, r := range []roundResult{
			round("edgevitals", base, 2, time.Second, false),
			round("edgevitals-rum", base*98/100, 2, time.Second, i == 4),
		} {
			r.round = i
			rep.rounds = append(rep.rounds, r)
		}
		if i <= 3 {
			v := round("varnish", base/2, 2, time.Second, false)
			v.round = i
			rep.rounds = append(rep.rounds, v)
		}
	}
	pairs := rep.pairedRatios()
	if got := len(pairs["edgevitals-rum"]); got != 9 {
		t.Errorf("edgevitals-rum has %d pairs, want 9 (10 rounds, one noisy)", got)
	}
	if got := len(pairs["varnish"]); got != 3 {
		t.Errorf("varnish has %d pairs, want 3", got)
	}
	var b strings.Builder
	rep.write(&b)
	out := b.String()
	if !strings.Contains(out, "- edgevitals-rum: 0.980x (95% CI 0.980x to 0.980x, 9 pairs)") {
		t.Errorf("report lacks the paired line for edgevitals-rum:\n%s", out)
	}
	if strings.Contains(out, "- varnish:") {
		t.Errorf("report compares varnish on 3 pairs, fewer than %d:\n%s", minPairs, out)
	}
	// A ratio of medians would mix rounds from different moments; the
	// paired median does not.
	med, lo, hi := medianCI([]float64{0.9, 1.0, 1.1, 0.95, 1.05})
	if med != 1.0 || lo > med || hi < med || lo < 0.9 || hi > 1.1 {
		t.Errorf("medianCI = %v [%v, %v]", med, lo, hi)
	}
}

func TestRoundOrderAlternates(t *testing.T) {
	a, b, c := &server{name: "a"}, &server{name: "b"}, &server{name: "c"}
	names := func(ss []*server) (out []string) {
		for _, s := range ss {
			out = append(out, s.name)
		}
		return out
	}
	servers := []*server{a, b, c}
	if got := strings.Join(names(roundOrder(servers, 1)), " "); got != "a b c" {
		t.Errorf("round 1 order = %s", got)
	}
	if got := strings.Join(names(roundOrder(servers, 2)), " "); got != "c b a" {
		t.Errorf("round 2 order = %s", got)
	}
	if got := strings.Join(names(servers), " "); got != "a b c" {
		t.Errorf("roundOrder changed its input: %s", got)
	}
}
