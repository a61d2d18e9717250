package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report is what a scenario measured, ready to print.
type report struct {
	header   []string
	scenario scenario
	servers  []*server
	hwm      []int64 // peak RSS per server, in the order of servers
	rounds   []roundResult
	storms   []stormResult
	warnings []string
}

// summary is one server's row: medians over its counted rounds.
type summary struct {
	name                string
	rps                 float64
	p50, p99            time.Duration
	cpuUs               float64
	hwm                 int64
	counted, total      int
	onlyNoisy           bool // no quiet round: the row uses the noisy ones
	errs                int64
	originPerSec        float64
	purgesOK, purgesErr int
	purgeErr            string
}

func cpuPerReq(r roundResult) float64 {
	if r.wrk.Requests == 0 {
		return 0
	}
	return float64(r.serverCPU.Microseconds()) / float64(r.wrk.Requests)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (rep *report) summaries() []summary {
	var out []summary
	for i, s := range rep.servers {
		sum := summary{name: s.name}
		if i < len(rep.hwm) {
			sum.hwm = rep.hwm[i]
		}
		var all, quiet []roundResult
		for _, r := range rep.rounds {
			if r.server != s.name {
				continue
			}
			all = append(all, r)
			if !r.noisy {
				quiet = append(quiet, r)
			}
			sum.errs += r.wrk.errors()
			sum.purgesOK += r.purgesOK
			sum.purgesErr += r.purgesErr
			if r.purgeErr != "" {
				sum.purgeErr = r.purgeErr
			}
		}
		sum.total = len(all)
		use := quiet
		if len(quiet) == 0 {
			use, sum.onlyNoisy = all, true
		}
		sum.counted = len(quiet)
		var rps, p50, p99, cpu, orig []float64
		for _, r := range use {
			rps = append(rps, r.wrk.rps())
			p50 = append(p50, float64(r.wrk.P50))
			p99 = append(p99, float64(r.wrk.P99))
			cpu = append(cpu, cpuPerReq(r))
			orig = append(orig, float64(r.originReq)/r.wall.Seconds())
		}
		sum.rps, sum.cpuUs, sum.originPerSec = median(rps), median(cpu), median(orig)
		sum.p50, sum.p99 = time.Duration(median(p50)), time.Duration(median(p99))
		out = append(out, sum)
	}
	return out
}

func (rep *report) write(w io.Writer) {
	for _, h := range rep.header {
		fmt.Fprintln(w, h)
	}
	fmt.Fprintln(w)
	if rep.scenario.storm {
		rep.writeStorms(w)
	} else {
		rep.writeLoads(w)
	}
	var notes []string
	for _, s := range rep.servers {
		if s.note != "" && (rep.scenario.purge || !strings.Contains(s.note, "purge")) {
			notes = append(notes, s.note)
		}
	}
	notes = append(notes, rep.warnings...)
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
}

func (rep *report) writeLoads(w io.Writer) {
	sums := rep.summaries()
	find := func(name string) *summary {
		for i := range sums {
			if sums[i].name == name && sums[i].rps > 0 {
				return &sums[i]
			}
		}
		return nil
	}
	varnish, bare := find("varnish"), find("bare")
	cols := []string{"server", "req/s", "p50", "p99", "server CPU µs/req", "peak RSS", "vs Varnish", "vs limit", "rounds counted", "errors"}
	withOrigin := rep.scenario.missEvery > 0 || rep.scenario.purge
	if withOrigin {
		cols = append(cols, "origin req/s")
	}
	if rep.scenario.purge {
		cols = append(cols, "purges ok/failed")
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(cols, " | "))
	fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(cols)))
	for _, s := range sums {
		rounds := fmt.Sprintf("%d/%d", s.counted, s.total)
		if s.onlyNoisy {
			rounds += " (all noisy: figures from noisy rounds)"
		}
		row := []string{s.name, fmt.Sprintf("%.0f", s.rps), fmtDur(s.p50), fmtDur(s.p99),
			fmt.Sprintf("%.1f", s.cpuUs), fmtBytes(s.hwm), ratio(s.rps, varnish), ratio(s.rps, bare),
			rounds, fmt.Sprintf("%d", s.errs)}
		if withOrigin {
			row = append(row, fmt.Sprintf("%.0f", s.originPerSec))
		}
		if rep.scenario.purge {
			p := "n/a (no purge)"
			if srv := rep.server(s.name); srv != nil && srv.purge != nil {
				p = fmt.Sprintf("%d/%d", s.purgesOK, s.purgesErr)
				if s.purgeErr != "" {
					p += " (" + s.purgeErr + ")"
				}
			}
			row = append(row, p)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	var excluded []string
	for _, r := range rep.rounds {
		if r.noisy {
			excluded = append(excluded, fmt.Sprintf("%s round %d attempt %d (others used %.2f cores)", r.server, r.round, r.attempt, r.others))
		}
	}
	fmt.Fprintln(w)
	if len(excluded) == 0 {
		fmt.Fprintln(w, "Excluded rounds: none.")
	} else {
		fmt.Fprintf(w, "Excluded rounds (machine not quiet): %s.\n", strings.Join(excluded, "; "))
	}
	rep.writePaired(w)
}

// minPairs is the fewest paired rounds a paired comparison is printed for:
// with fewer, a confidence interval of the median says little.
const minPairs = 5

// pairedRatios are, for each server after the first, its req/s divided by the
// first server's in the same round, over the rounds where both were quiet. A
// pair shares the machine's state of that moment, so it is steadier than a
// ratio of medians when the machine drifts from round to round.
func (rep *report) pairedRatios() map[string][]float64 {
	if len(rep.servers) < 2 {
		return nil
	}
	type key struct {
		server string
		round  int
	}
	last := map[key]roundResult{} // a round's final attempt
	for _, r := range rep.rounds {
		last[key{r.server, r.round}] = r
	}
	base := rep.servers[0].name
	out := map[string][]float64{}
	for _, s := range rep.servers[1:] {
		for round := 1; ; round++ {
			b, okB := last[key{base, round}]
			x, okX := last[key{s.name, round}]
			if !okB && !okX {
				break
			}
			if !okB || !okX || b.noisy || x.noisy || b.wrk.rps() == 0 {
				continue
			}
			out[s.name] = append(out[s.name], x.wrk.rps()/b.wrk.rps())
		}
	}
	return out
}

// medianCI is the median of v and a 95% percentile-bootstrap confidence
// interval for it, from a fixed seed so a report can be reproduced from its
// rounds.
func medianCI(v []float64) (med, lo, hi float64) {
	const resamples = 10000
	rng := rand.New(rand.NewPCG(1, 2))
	meds := make([]float64, resamples)
	sample := make([]float64, len(v))
	for i := range meds {
		for j := range sample {
			sample[j] = v[rng.IntN(len(v))]
		}
		meds[i] = median(sample)
	}
	slices.Sort(meds)
	return median(v), meds[resamples*25/1000], meds[resamples*975/1000-1]
}

func (rep *report) writePaired(w io.Writer) {
	pairs := rep.pairedRatios()
	var lines []string
	for _, s := range rep.servers[min(1, len(rep.servers)):] {
		v := pairs[s.name]
		if len(v) < minPairs {
			continue
		}
		med, lo, hi := medianCI(v)
		lines = append(lines, fmt.Sprintf("- %s: %.3fx (95%% CI %.3fx to %.3fx, %d pairs)", s.name, med, lo, hi, len(v)))
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "\nPaired rounds: req/s against %s in the same round, median and bootstrap interval:\n\n", rep.servers[0].name)
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

func (rep *report) server(name string) *server {
	for _, s := range rep.servers {
		if s.name == name {
			return s
		}
	}
	return nil
}

func (rep *report) writeStorms(w io.Writer) {
	fmt.Fprintln(w, "| server | origin requests per storm | 2xx | failed | shared (hit or collapsed) | wait p50 | wait p99 | wait max | peak RSS |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for i, s := range rep.servers {
		var counts []string
		var waits []time.Duration
		ok, bad, hits := 0, 0, 0
		firstErr := ""
		for _, st := range rep.storms {
			if st.server != s.name {
				continue
			}
			counts = append(counts, fmt.Sprint(st.originReq))
			waits = append(waits, st.waits...)
			ok, bad, hits = ok+st.ok, bad+st.bad, hits+st.shared
			if firstErr == "" {
				firstErr = st.firstErr
			}
		}
		slices.Sort(waits)
		failed := fmt.Sprint(bad)
		if firstErr != "" {
			failed += " (" + firstErr + ")"
		}
		var hwm int64
		if i < len(rep.hwm) {
			hwm = rep.hwm[i]
		}
		fmt.Fprintf(w, "| %s | %s | %d | %s | %d | %s | %s | %s | %s |\n", s.name, strings.Join(counts, ", "),
			ok, failed, hits, fmtDur(quantile(waits, 0.5)), fmtDur(quantile(waits, 0.99)), fmtDur(quantile(waits, 1)), fmtBytes(hwm))
	}
}

func ratio(v float64, base *summary) string {
	if base == nil || base.rps == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2fx", v/base.rps)
}

func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func fmtBytes(n int64) string {
	if n <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// describe says what ran, where and when, so a table can be reproduced.
func describe(o options, sc scenario, servers []*server) []string {
	var names []string
	for _, s := range servers {
		names = append(names, s.name)
	}
	h := []string{
		fmt.Sprintf("## edgebench: %s", sc.name),
		"",
		fmt.Sprintf("%s. Command: `go run ./bench/cmd/edgebench %s`", sc.about, strings.Join(commandLine(), " ")),
		"",
		fmt.Sprintf("- date: %s; machine: %s, %d cores, %s", time.Now().UTC().Format(time.RFC3339), cpuModel(), runtime.NumCPU(), kernel()),
		fmt.Sprintf("- servers pinned to core %d, wrk to core %d; %d connection(s), %d thread(s); %d round(s) of %s, interleaved; quiet = others below %.2f cores",
			o.serverCPU, o.loadCPU, o.conns, o.threads, o.rounds, o.duration, o.quiet),
		fmt.Sprintf("- pages of %d bytes over %d URLs, origin delay %s, max-age %s, cache %d bytes each",
			o.size, o.urls, o.delay, o.maxAge, int64(o.cacheBytes)),
		fmt.Sprintf("- %s; %s", strings.Join(names, ", "), versions()),
	}
	return h
}

func commandLine() []string {
	var out []string
	for _, a := range os.Args[1:] {
		if strings.ContainsAny(a, " \t'\"") {
			a = "'" + a + "'"
		}
		out = append(out, a)
	}
	return out
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "Linux"
	}
	return "Linux " + strings.TrimSpace(string(b))
}

// versions of the peers and the load generator, as they print them.
func versions() string {
	first := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil && len(out) == 0 {
			return name + " ?"
		}
		return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	return strings.Join([]string{
		runtime.Version(),
		first("varnishd", "-V"),
		first("nginx", "-v"),
		first("wrk", "--version"),
	}, "; ")
}
