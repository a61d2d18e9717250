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
