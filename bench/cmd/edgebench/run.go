package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// runner drives the rounds of one scenario.
type runner struct {
	o      options
	sc     scenario
	origin *origin
	dir    string
	log    io.Writer
}

// roundResult is one measured round of one server.
type roundResult struct {
	server    string
	round     int
	attempt   int
	wrk       wrkResult
	serverCPU time.Duration
	wall      time.Duration
	others    float64 // cores used by processes other than ours during the round
	noisy     bool
	originReq int64
	purgesOK  int
	purgesErr int
	purgeErr  string // the last purge error, if any
}

// loads runs the wrk scenarios: warm every server, then rounds A B C D, D C B A,
// A B C D ... Reversing every other round keeps a drift of the machine during a
// round from favouring whichever server goes first.
func (r *runner) loads(ctx context.Context, servers []*server) (report, error) {
	script, err := writeWrkScript(r.dir, r.o.urls, r.sc.missEvery)
	if err != nil {
		return report{}, err
	}
	rep := report{scenario: r.sc, servers: servers}
	for _, s := range servers {
		w, err := r.warm(ctx, s, script)
		if err != nil {
			return report{}, err
		}
		rep.warnings = append(rep.warnings, w...)
	}
	for round := 1; round <= r.o.rounds; round++ {
		for _, s := range roundOrder(servers, round) {
			for attempt := 1; ; attempt++ {
				res, err := r.measure(ctx, s, script, round, attempt)
				if err != nil {
					return report{}, err
				}
				fmt.Fprintf(r.log, "edgebench: round %d %-10s %9.0f req/s  p99 %-9s cpu %5.1f µs/req  others %.2f cores%s\n",
					round, s.name, res.wrk.rps(), fmtDur(res.wrk.P99), cpuPerReq(res), res.others, noisyMark(res.noisy))
				rep.rounds = append(rep.rounds, res)
				if !res.noisy || attempt > r.o.retries {
					break
				}
			}
		}
	}
	return rep, nil
}

// roundOrder is the order servers are measured in a round: as given in odd
// rounds, reversed in even ones.
func roundOrder(servers []*server, round int) []*server {
	if round%2 == 1 {
		return servers
	}
	out := slices.Clone(servers)
	slices.Reverse(out)
	return out
}

func noisyMark(b bool) string {
	if b {
		return "  NOISY"
	}
	return ""
}

// warm fills a cache with every URL of the set, checks that a refetch is a hit, then runs
// wrk unmeasured for -warmup. It returns warnings for the report.
func (r *runner) warm(ctx context.Context, s *server, script string) ([]string, error) {
	var warnings []string
	if s.cache {
		c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
		defer c.CloseIdleConnections()
		if err := fetchAll(ctx, c, s, r.o.urls, 32); err != nil {
			return nil, fmt.Errorf("warm %s: %w", s.name, err)
		}
		hits, n := 0, min(r.o.urls, 20)
		for k := 1; k <= n; k++ {
			h, err := fetch(ctx, c, s.url(pagePrefix+strconv.Itoa(k)))
			if err != nil {
				return nil, fmt.Errorf("warm %s: %w", s.name, err)
			}
			if s.isHit(h) {
				hits++
			}
		}
		if hits < n {
			warnings = append(warnings, fmt.Sprintf("%s: after warming, %d of %d pages refetched were hits", s.name, hits, n))
		}
	}
	if r.o.warmup > 0 {
		if _, err := runWrk(ctx, r.load(s, script, r.o.warmup, "warm")); err != nil {
			return nil, err
		}
	}
	return warnings, nil
}

func (r *runner) load(s *server, script string, d time.Duration, nonce string) load {
	return load{script: script, conns: r.o.conns, threads: r.o.threads, cpu: r.o.loadCPU,
		duration: d, nonce: nonce, baseURL: s.url("/"), wrkTimeout: r.o.wrkTimeout}
}

// measure runs one round against s and accounts for the CPU of the two cores: the
// server's and wrk's own time is subtracted, and what remains (less the harness's own,
// which may run on either core) is other processes' load.
func (r *runner) measure(ctx context.Context, s *server, script string, round, attempt int) (roundResult, error) {
	res := roundResult{server: s.name, round: round, attempt: attempt}
	host0, err := readCPUTimes()
	if err != nil {
		return res, err
	}
	srv0, self0, orig0, t0 := treeCPU(s.proc.pid()), selfCPU(), r.origin.total.Load(), time.Now()

	var wg sync.WaitGroup
	pctx, stopPurge := context.WithCancel(ctx)
	if r.sc.purge && s.purge != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.purgeLoop(pctx, s, &res)
		}()
	}
	nonce := fmt.Sprintf("%s-%d-%d-%d", s.name, round, attempt, t0.UnixNano())
	w, err := runWrk(ctx, r.load(s, script, r.o.duration, nonce))
	stopPurge()
	wg.Wait()
	if err != nil {
		return res, err
	}
	if s.proc.exited() {
		return res, fmt.Errorf("%s exited during round %d (%v):\n%s", s.name, round, s.proc.err, s.proc.logTail())
	}
	res.wall = time.Since(t0)
	res.serverCPU = treeCPU(s.proc.pid()) - srv0
	res.originReq = r.origin.total.Load() - orig0
	res.wrk = w
	host1, err := readCPUTimes()
	if err != nil {
		return res, err
	}
	busy := (host1[r.o.serverCPU] - host0[r.o.serverCPU]) + (host1[r.o.loadCPU] - host0[r.o.loadCPU])
	others := busy - res.serverCPU - w.CPU - (selfCPU() - self0)
	res.others = max(0, others.Seconds()/res.wall.Seconds())
	res.noisy = r.o.quiet >= 0 && res.others > r.o.quiet
	return res, nil
}

func (r *runner) purgeLoop(ctx context.Context, s *server, res *roundResult) {
	c := &http.Client{Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	t := time.NewTicker(r.o.purgeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.purge(ctx, c); err != nil {
			if ctx.Err() != nil {
				return // the round ended mid-purge
			}
			res.purgesErr++
			res.purgeErr = err.Error()
			continue
		}
		res.purgesOK++
	}
}

func fetch(ctx context.Context, c *http.Client, url string) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return resp.Header, nil
}

// fetchAll requests /p/1 ... /p/n with the given concurrency.
func fetchAll(ctx context.Context, c *http.Client, s *server, n, workers int) error {
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				if _, err := fetch(ctx, c, s.url(pagePrefix+strconv.Itoa(k))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for k := 1; k <= n; k++ {
		select {
		case next <- k:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	close(errs)
	if err == nil {
		err = <-errs // nil when the channel is empty and closed
	}
	return err
}

// stormResult is one miss storm against one server.
type stormResult struct {
	server    string
	round     int
	originReq int
	ok, bad   int             // 2xx, other outcomes
	shared    int             // answered from the cache or from another request's fetch
	waits     []time.Duration // of the 2xx answers, from the moment every request was sent
	firstErr  string
}

// storms runs one miss storm per server per round, interleaved, each on a URL no cache
// has seen. Storms are counts and waits, not throughput, so no quiet check applies.
func (r *runner) storms(ctx context.Context, servers []*server) (report, error) {
	rep := report{scenario: r.sc, servers: servers}
	for round := 1; round <= r.o.rounds; round++ {
		for _, s := range servers {
			path := fmt.Sprintf("/storm/%s/%d-%d", s.name, round, time.Now().UnixNano())
			res, err := storm(ctx, s, path, r.o.stormN)
			if err != nil {
				return report{}, err
			}
			res.round = round
			res.originReq = r.origin.count(path)
			slices.Sort(res.waits)
			fmt.Fprintf(r.log, "edgebench: storm %d %-10s origin requests %d, 2xx %d, other %d, wait p50 %s max %s\n",
				round, s.name, res.originReq, res.ok, res.bad, fmtDur(quantile(res.waits, 0.5)), fmtDur(quantile(res.waits, 1)))
			rep.storms = append(rep.storms, res)
		}
	}
	return rep, nil
}

// storm opens n connections first, so that the storm measures coalescing and not the
// accept queue, then sends one GET of path on each at once and waits for every answer.
func storm(ctx context.Context, s *server, path string, n int) (stormResult, error) {
	res := stormResult{server: s.name}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	d := net.Dialer{Timeout: 5 * time.Second}
	addr := fmt.Sprintf("127.0.0.1:%d", s.port)
	for range n {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return res, fmt.Errorf("storm %s: dial: %w", s.name, err)
		}
		conns = append(conns, c)
	}
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: edgebench\r\n\r\n")
	type answer struct {
		status int
		hit    bool
		wait   time.Duration
		err    error
	}
	answers := make(chan answer, n)
	start := make(chan struct{})
	var t0 time.Time
	deadline := time.Now().Add(60 * time.Second)
	for _, c := range conns {
		go func() {
			<-start
			if err := c.SetDeadline(deadline); err != nil {
				answers <- answer{err: err}
				return
			}
			if _, err := c.Write(req); err != nil {
				answers <- answer{err: err}
				return
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				answers <- answer{err: err}
				return
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			answers <- answer{status: resp.StatusCode, hit: s.isHit(resp.Header) || (s.collapsed != nil && s.collapsed(resp.Header)), wait: time.Since(t0), err: err}
		}()
	}
	t0 = time.Now()
	close(start)
	for range n {
		var a answer
		select {
		case a = <-answers:
		case <-ctx.Done():
			return res, ctx.Err()
		}
		switch {
		case a.err != nil:
			res.bad++
			if res.firstErr == "" {
				res.firstErr = a.err.Error()
			}
		case a.status/100 == 2:
			res.ok++
			res.waits = append(res.waits, a.wait)
			if a.hit {
				res.shared++
			}
		default:
			res.bad++
			if res.firstErr == "" {
				res.firstErr = fmt.Sprintf("status %d", a.status)
			}
		}
	}
	return res, nil
}

// quantile returns the q-quantile of sorted d (nearest rank); 0 when empty.
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(q*float64(len(d))+0.5) - 1
	return d[min(max(i, 0), len(d)-1)]
}
