// Command edgebench measures edgevitals side by side with Varnish, nginx and a bare
// fasthttp server (the limit of the hardware) in front of the same origin, on the same
// machine and in interleaved rounds, and prints the comparison as a markdown table.
//
//	go run ./bench/cmd/edgebench -scenario hot
//
// See bench/README.md for the scenarios, the flags and what each column means.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/edgevitals/edgevitals/config"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the harness's flags.
type options struct {
	scenario   string
	servers    []string
	duration   time.Duration
	rounds     int
	warmup     time.Duration
	conns      int
	threads    int
	size       int
	urls       int
	delay      time.Duration // < 0: the scenario's
	maxAge     time.Duration
	cacheBytes config.Size
	serverCPU  int
	loadCPU    int
	quiet      float64
	retries    int
	stormN     int
	purgeEvery time.Duration
	root       string
	edgeBin    string
	baseBin    string
	keep       bool
	timeout    time.Duration
	wrkTimeout time.Duration
	bareListen string
	bareSize   int
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("edgebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.scenario, "scenario", "hot", "`NAME`: "+strings.Join(scenarioNames(), ", "))
	servers := fs.String("servers", "", "comma-separated `LIST` of "+strings.Join(knownServers(), ", ")+" (default all but edgevitals-rum; storm leaves out bare)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of one measured round (whole seconds)")
	fs.IntVar(&o.rounds, "rounds", 3, "measured rounds per server, interleaved A B C D, D C B A, ...")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured wrk run per server after filling its cache (0 = none)")
	fs.IntVar(&o.conns, "connections", 64, "wrk connections")
	fs.IntVar(&o.threads, "threads", 1, "wrk threads (all on the load core)")
	fs.IntVar(&o.size, "size", 0, "page size in `BYTES` (0 = the scenario's: 30000, 1000 for small)")
	fs.IntVar(&o.urls, "urls", 1000, "size of the URL set")
	fs.DurationVar(&o.delay, "origin-delay", -1, "origin delay per request (-1 = the scenario's: 50ms mixed, 500ms storm, else 0)")
	fs.DurationVar(&o.maxAge, "max-age", time.Hour, "Cache-Control max-age the origin sends")
	fs.TextVar(&o.cacheBytes, "cache-bytes", config.Size(512<<20), "cache size of every cache, e.g. 512MiB")
	fs.IntVar(&o.serverCPU, "server-cpu", 0, "the core the servers are pinned to")
	fs.IntVar(&o.loadCPU, "load-cpu", 1, "the core wrk is pinned to")
	fs.Float64Var(&o.quiet, "quiet", 0.15, "a round counts only when other processes used at most this many `CORES` of the two (negative = count all)")
	fs.IntVar(&o.retries, "retries", 2, "times a noisy round is repeated before it is excluded")
	fs.IntVar(&o.stormN, "storm-clients", 1000, "concurrent requests of the miss storm")
	fs.DurationVar(&o.purgeEvery, "purge-every", time.Second, "purge-all period in the purgeall scenario")
	fs.StringVar(&o.root, "root", "", "module root holding bench/ (default: found from the working directory)")
	fs.StringVar(&o.edgeBin, "edgevitals", "", "use this edgevitals `BINARY` instead of building ./cmd/edgevitals")
	fs.StringVar(&o.baseBin, "base", "", "the edgevitals `BINARY` that server edgevitals-base runs (an earlier commit's build)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (configs, server logs) and print its path")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "stop everything after this long")
	fs.DurationVar(&o.wrkTimeout, "wrk-timeout", 5*time.Second, "wrk's per-request timeout")
	fs.StringVar(&o.bareListen, "bare-listen", "", "internal: serve the bare server on `ADDR` and nothing else")
	fs.IntVar(&o.bareSize, "bare-size", 30000, "internal: the bare server's body size")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.bareListen != "" {
		if err := serveBare(o.bareListen, o.bareSize, o.maxAge); err != nil {
			fmt.Fprintf(stderr, "edgebench: %v\n", err)
			return 1
		}
		return 0
	}
	sc, ok := scenarios[o.scenario]
	if !ok {
		fmt.Fprintf(stderr, "edgebench: -scenario %q: want one of %s\n", o.scenario, strings.Join(scenarioNames(), ", "))
		return 2
	}
	if *servers == "" {
		o.servers = slices.Clone(serverNames)
		if sc.storm {
			o.servers = slices.DeleteFunc(o.servers, func(s string) bool { return s == "bare" })
		}
	} else {
		for _, s := range strings.Split(*servers, ",") {
			s = strings.TrimSpace(s)
			if !slices.Contains(knownServers(), s) {
				fmt.Fprintf(stderr, "edgebench: -servers: unknown server %q (want %s)\n", s, strings.Join(knownServers(), ", "))
				return 2
			}
			if !slices.Contains(o.servers, s) {
				o.servers = append(o.servers, s)
			}
		}
	}
	if err := o.validate(); err != nil {
		fmt.Fprintf(stderr, "edgebench: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := bench(ctx, o, sc, stdout, stderr); err != nil {
		switch {
		case errors.Is(err, context.Canceled):
			fmt.Fprintln(stderr, "edgebench: interrupted; stopped every server it started")
		case errors.Is(err, context.DeadlineExceeded):
			fmt.Fprintf(stderr, "edgebench: stopped after -timeout %s; stopped every server it started\n", o.timeout)
		default:
			fmt.Fprintf(stderr, "edgebench: %v\n", err)
		}
		return 1
	}
	return 0
}

func (o *options) validate() error {
	var errs []error
	if o.duration < time.Second {
		errs = append(errs, fmt.Errorf("-duration: at least 1s, got %s", o.duration))
	}
	if o.rounds < 1 {
		errs = append(errs, fmt.Errorf("-rounds: at least 1, got %d", o.rounds))
	}
	if o.conns < 1 || o.threads < 1 || o.threads > o.conns {
		errs = append(errs, fmt.Errorf("-connections %d, -threads %d: want 1 <= threads <= connections", o.conns, o.threads))
	}
	if o.urls < 1 {
		errs = append(errs, fmt.Errorf("-urls: at least 1, got %d", o.urls))
	}
	if o.size < 0 || o.size > 8<<20 {
		errs = append(errs, fmt.Errorf("-size: 0 to 8MiB, got %d", o.size))
	}
	if o.cacheBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("-cache-bytes: at least 1MiB, got %d", o.cacheBytes))
	}
	if o.retries < 0 {
		errs = append(errs, fmt.Errorf("-retries: 0 or more, got %d", o.retries))
	}
	if o.stormN < 1 || o.stormN > 10000 {
		errs = append(errs, fmt.Errorf("-storm-clients: 1 to 10000, got %d", o.stormN))
	}
	if slices.Contains(o.servers, "edgevitals-base") && o.baseBin == "" {
		errs = append(errs, errors.New("-servers edgevitals-base needs -base BINARY (an earlier commit's edgevitals build)"))
	}
	if o.purgeEvery < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("-purge-every: at least 10ms, got %s", o.purgeEvery))
	}
	n := runtime.NumCPU()
	if o.serverCPU == o.loadCPU || o.serverCPU < 0 || o.loadCPU < 0 || o.serverCPU >= n || o.loadCPU >= n {
		errs = append(errs, fmt.Errorf("-server-cpu %d, -load-cpu %d: want two different cores of the %d this process may use", o.serverCPU, o.loadCPU, n))
	}
	return errors.Join(errs...)
}

// scenario is one load the harness can run.
type scenario struct {
	name      string
	size      int
	missEvery int           // every Nth request misses; 0 = none
	delay     time.Duration // origin delay
	purge     bool
	storm     bool
	about     string
}

var scenarios = map[string]scenario{
	"hot":      {name: "hot", size: 30000, about: "hits on 30 KB pages over the URL set, warmed first"},
	"small":    {name: "small", size: 1000, about: "hits on 1 KB pages over the URL set, warmed first"},
	"mixed":    {name: "mixed", size: 30000, missEvery: 10, delay: 50 * time.Millisecond, about: "90% hits, 10% misses (a unique query parameter per request) on a 50 ms origin"},
	"storm":    {name: "storm", size: 30000, delay: 500 * time.Millisecond, storm: true, about: "concurrent requests for one cold URL on a 500 ms origin; origin requests counted"},
	"purgeall": {name: "purgeall", size: 30000, purge: true, about: "hot hits while the whole cache is purged every second"},
}

func scenarioNames() []string {
	return []string{"hot", "small", "mixed", "storm", "purgeall"}
}

// bench runs one scenario from start to table. Everything it starts is stopped on return.
func bench(ctx context.Context, o options, sc scenario, stdout, stderr io.Writer) error {
	if o.size == 0 {
		o.size = sc.size
	}
	if o.delay < 0 {
		o.delay = sc.delay
	}
	for _, tool := range []string{"taskset", "wrk"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s: %w (install it: apt-get install -y wrk varnish nginx)", tool, err)
		}
	}
	root := o.root
	if root == "" {
		var err error
		if root, err = moduleRoot(); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "edgebench-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	if o.keep {
		fmt.Fprintf(stderr, "edgebench: configs and server logs in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	e := env{dir: dir, root: root, cpu: o.serverCPU, cacheBytes: int64(o.cacheBytes), bareSize: o.size, maxAge: o.maxAge, edgeBin: o.edgeBin, baseBin: o.baseBin}
	if (slices.Contains(o.servers, "edgevitals") || slices.Contains(o.servers, "edgevitals-rum")) && e.edgeBin == "" {
		e.edgeBin = filepath.Join(dir, "bin", "edgevitals")
		fmt.Fprintf(stderr, "edgebench: building edgevitals\n")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", e.edgeBin, "./cmd/edgevitals")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/edgevitals: %w\n%s", err, out)
		}
	}
	e.origin, err = newOrigin(o.size, o.maxAge)
	if err != nil {
		return err
	}
	defer e.origin.close()
	e.origin.setDelay(o.delay)

	var started []*server
	defer func() {
		for i := len(started) - 1; i >= 0; i-- {
			started[i].proc.stop(5 * time.Second)
		}
	}()
	for _, name := range o.servers {
		fmt.Fprintf(stderr, "edgebench: starting %s\n", name)
		s, err := startServer(ctx, name, e)
		if err != nil {
			return err
		}
		started = append(started, s)
	}
	r := &runner{o: o, sc: sc, origin: e.origin, dir: dir, log: stderr}
	var rep report
	if sc.storm {
		rep, err = r.storms(ctx, started)
	} else {
		rep, err = r.loads(ctx, started)
	}
	if err != nil {
		return err
	}
	for _, s := range started {
		rep.hwm = append(rep.hwm, treeHWM(s.proc.pid()))
	}
	rep.header = describe(o, sc, started)
	rep.write(stdout)
	return nil
}

// moduleRoot walks up from the working directory to the edgevitals go.mod.
func moduleRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/edgevitals/edgevitals\n") {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("not inside the edgevitals module: run from it or set -root")
		}
		d = parent
	}
}
