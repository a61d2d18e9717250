// Package lab measures Core Web Vitals in headless Chromium: the browser
// and its emulation profiles, the probe that loads a page and reads the
// measurement script's figures, the sampler that measures configured pages
// on a schedule (and in a burst after a release) into the store, and the
// summary of one-off measurements. The measurement script (Script) is
// shared with the field beacon.
package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/edgevitals/edgevitals/vitals/store"
)

// Schedule defaults.
const (
	DefaultInterval = 10 * time.Minute
	// BurstSamples is how many extra samples Burst asks for per page and
	// profile, so a release has enough samples for its report soon.
	BurstSamples = 5
	burstSpacing = time.Minute
	// firstSpread bounds the random delay of each page's first sample, so
	// a restart does not load every page at once.
	firstSpread = 30 * time.Second
	// failingAfter consecutive failures make Status report not ok.
	failingAfter = 3
)

// Page is a page the sampler measures on a schedule.
type Page struct {
	Site     string
	URL      string        // absolute, as a visitor loads it through the edge
	Profiles []string      // profile names; empty means mobile and desktop
	Interval time.Duration // between samples of one profile; 0 means DefaultInterval
	Cold     bool          // purge the URL at the edge first, so the sample measures a miss
	Selector string        // what the synthetic interaction clicks; empty picks a button or in-page link
}

// SamplerOptions configure a Sampler. Only Pages is required.
type SamplerOptions struct {
	Chromium    string // path or name of Chromium; empty searches PATH
	Pages       []Page
	Concurrency int           // samples at once; 0 means 1 (a sample holds ~450 MB and one CPU-second)
	Timeout     time.Duration // per sample; 0 means DefaultTimeout
	Metrics     *metrics.Set  // where edgevitals_lab_* and edgevitals_sampler_* go; nil means a private set
	Store       *store.Store  // where samples are kept; nil keeps none
	Logger      *slog.Logger
	Purge       func(ctx context.Context, url string) error // for cold pages; required when a page is cold
	Clock       func() time.Time
}

// job is one page measured with one profile.
type job struct {
	page    Page
	path    string // the page label: the URL's path
	profile Profile

	// guarded by Sampler.mu
	next  time.Time
	busy  bool
	burst int
	last  *store.Sample
}

// Sampler measures the configured pages in headless Chromium on a jittered
// schedule, keeps the samples in the Store and exports the last one of each
// page and profile as the edgevitals_lab_* gauges.
type Sampler struct {
	o       SamplerOptions
	browser *Browser
	jobs    []*job
	burst   chan string
	wake    chan struct{}

	duration map[string]*metrics.PrometheusHistogram
	failures map[string]*metrics.Counter

	mu         sync.Mutex
	rng        *rand.Rand
	running    bool
	failStreak int
	lastErr    error
	succeeded  time.Time

	// Tests set these before Run.
	firstSpread time.Duration
	onSample    func(j *job, s store.Sample, err error)
}

// NewSampler checks the options and registers the sampler's metrics. Its
// error names every problem; errors.Is(err, ErrNoChromium) when Chromium is
// missing, in which case the caller keeps serving and reports the sampler off.
func NewSampler(o SamplerOptions) (*Sampler, error) {
	var errs []error
	if o.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("vitals concurrency: must be >= 0, got %d", o.Concurrency))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("vitals timeout: must be >= 0, got %v", o.Timeout))
	}
	o.Concurrency = max(o.Concurrency, 1)
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	s := &Sampler{
		o:           o,
		burst:       make(chan string, 16),
		wake:        make(chan struct{}, 1),
		duration:    map[string]*metrics.PrometheusHistogram{},
		failures:    map[string]*metrics.Counter{},
		rng:         rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x5eed)),
		firstSpread: firstSpread,
	}
	seen := map[string]bool{}
	for i, p := range o.Pages {
		where := fmt.Sprintf("vitals.page[%d]", i)
		if p.Site == "" {
			errs = append(errs, fmt.Errorf("%s.site: must be set", where))
		}
		u, err := url.Parse(p.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s.url: must be an absolute http(s) URL, got %q", where, p.URL))
			continue
		}
		if p.Interval < 0 {
			errs = append(errs, fmt.Errorf("%s.interval: must be >= 0, got %v", where, p.Interval))
		}
		if p.Interval == 0 {
			p.Interval = DefaultInterval
		}
		if p.Cold && o.Purge == nil {
			errs = append(errs, fmt.Errorf("%s.cold: needs the edge's purge, which is not available here", where))
		}
		names := p.Profiles
		if len(names) == 0 {
			names = ProfileNames
		}
		path := u.EscapedPath()
		if path == "" {
			path = "/"
		}
		for _, n := range names {
			prof, err := ProfileByName(n)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.profiles: %w", where, err))
				continue
			}
			key := p.Site + "\x00" + path + "\x00" + prof.Name
			if seen[key] {
				errs = append(errs, fmt.Errorf("%s: site %q, page %q and profile %q are already sampled", where, p.Site, path, prof.Name))
				continue
			}
			seen[key] = true
			s.jobs = append(s.jobs, &job{page: p, path: path, profile: prof})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	b, err := NewBrowser(o.Chromium, o.Timeout)
	if err != nil {
		return nil, err
	}
	b.LabVisits()
	s.browser = b
	s.registerMetrics()
	return s, nil
}

func (s *Sampler) registerMetrics() {
	set := s.o.Metrics
	buckets := []float64{0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60}
	for _, j := range s.jobs {
		site := j.page.Site
		if _, ok := s.duration[site]; ok {
			continue
		}
		l := `{site="` + escapeLabel(site) + `"}`
		s.duration[site] = set.NewPrometheusHistogramExt("edgevitals_sampler_duration_seconds"+l, buckets)
		s.failures[site] = set.NewCounter("edgevitals_sampler_failures_total" + l)
	}
	set.NewGauge("edgevitals_sampler_last_success_timestamp_seconds", func() float64 {
		s.mu.Lock()
		t := s.succeeded
		s.mu.Unlock()
		if t.IsZero() {
			return 0
		}
		return float64(t.UnixNano()) / 1e9
	})
	set.RegisterMetricsWriter(s.writeLab)
}

// labGauges are the lab metrics in exposition (name) order: the gauge of
// each is named edgevitals_ + metric.
var labGauges = slices.SortedFunc(slices.Values(store.LabMetrics()), func(a, b store.LabMetric) int { return strings.Compare(a.Metric, b.Metric) })

// writeLab writes the last sample of each page and profile. A metric the
// last sample could not measure is left out rather than written as 0.
func (s *Sampler) writeLab(w io.Writer) {
	s.mu.Lock()
	type row struct {
		labels string
		s      store.Sample
	}
	rows := make([]row, 0, len(s.jobs))
	for _, j := range s.jobs {
		if j.last != nil {
			rows = append(rows, row{fmt.Sprintf(`{site="%s",page="%s",profile="%s"}`, escapeLabel(j.page.Site), escapeLabel(j.path), j.profile.Name), *j.last})
		}
	}
	s.mu.Unlock()
	for _, g := range labGauges {
		name := "edgevitals_" + g.Metric
		wrote := false
		for _, r := range rows {
			v, ok := g.Get(r.s)
			if !ok {
				continue
			}
			if !wrote {
				metrics.WriteMetadataIfNeeded(w, name, "gauge")
				wrote = true
			}
			fmt.Fprintf(w, "%s%s %g\n", name, r.labels, v)
		}
	}
}

// labelEscaper escapes a Prometheus label value; it is safe for concurrent
// use, so every scrape shares it.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(v string) string { return labelEscaper.Replace(v) }

// Burst asks for BurstSamples extra samples of every page of site, starting
// within seconds, so the report of a release that just started has samples.
// It does not block; it has no effect on an unknown site.
func (s *Sampler) Burst(site string) {
	select {
	case s.burst <- site:
	default: // a burst is already pending
	}
}

// Status reports whether the sampler works, for /readyz and logs. A nil
// Sampler (no Chromium) is off.
func (s *Sampler) Status() (ok bool, detail string) {
	if s == nil {
		return false, "lab sampler off"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !s.running:
		return false, "lab sampler not running"
	case s.failStreak >= failingAfter:
		return false, fmt.Sprintf("lab sampler failing: %d samples in a row, last: %v", s.failStreak, s.lastErr)
	case s.succeeded.IsZero():
		return true, "lab sampler running, no sample yet"
	}
	return true, fmt.Sprintf("lab sampler ok, last sample at %s", s.succeeded.UTC().Format(time.RFC3339))
}

// jitter returns d changed by up to ±frac of itself.
func (s *Sampler) jitter(d time.Duration, frac float64) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return d + time.Duration((s.rng.Float64()*2-1)*frac*float64(d))
}

func (s *Sampler) randBelow(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Duration(s.rng.Int64N(int64(d)))
}

// Run samples until ctx ends, then waits for the samples in progress to
// stop and closes Chromium. It returns nil after a cancel.
func (s *Sampler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("lab sampler already running")
	}
	s.running = true
	s.mu.Unlock()
	defer func() {
		s.browser.Close()
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()

	now := s.o.Clock()
	for _, j := range s.jobs {
		d := s.randBelow(min(j.page.Interval, s.firstSpread))
		s.mu.Lock()
		j.next = now.Add(d)
		s.mu.Unlock()
	}

	work := make(chan *job)
	var wg sync.WaitGroup
	for range s.o.Concurrency {
		wg.Go(func() {
			for j := range work {
				s.sample(ctx, j)
			}
		})
	}
	defer wg.Wait()
	defer close(work)

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		j, wait := s.due()
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case site := <-s.burst:
			s.startBurst(site)
		case <-s.wake:
		case <-timer.C:
			if j == nil {
				continue
			}
			select {
			case work <- j:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// due returns the next job to run and how long until it is due; it marks a
// job that is due now as busy.
func (s *Sampler) due() (*job, time.Duration) {
	now := s.o.Clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	var next *job
	for _, j := range s.jobs {
		if !j.busy && (next == nil || j.next.Before(next.next)) {
			next = j
		}
	}
	if next == nil {
		return nil, time.Hour
	}
	wait := next.next.Sub(now)
	if wait <= 0 {
		next.busy = true
		return next, 0
	}
	return nil, wait
}

func (s *Sampler) startBurst(site string) {
	now := s.o.Clock()
	var jobs []*job
	s.mu.Lock()
	for _, j := range s.jobs {
		if j.page.Site == site {
			j.burst = BurstSamples
			jobs = append(jobs, j)
		}
	}
	s.mu.Unlock()
	for _, j := range jobs {
		d := s.randBelow(min(5*time.Second, s.firstSpread))
		s.mu.Lock()
		if !j.busy {
			j.next = now.Add(d)
		}
		s.mu.Unlock()
	}
	if len(jobs) == 0 {
		s.o.Logger.Warn("lab sampler burst for a site without pages", "site", site)
	}
}

// sample measures one job, records the result and schedules its next run.
func (s *Sampler) sample(ctx context.Context, j *job) {
	site := j.page.Site
	start := time.Now()
	smp, err := s.measure(ctx, j)
	took := time.Since(start)
	if ctx.Err() != nil && err != nil {
		// Shutdown, not a failure of the page.
		s.reschedule(j)
		return
	}
	s.duration[site].Update(took.Seconds())
	if err == nil && s.o.Store != nil {
		if serr := s.o.Store.AddSample(site, j.path, smp); serr != nil {
			s.o.Logger.Error("lab sampler cannot store a sample", "site", site, "page", j.path, "err", serr)
		}
	}
	s.mu.Lock()
	if err != nil {
		s.failStreak++
		s.lastErr = err
	} else {
		s.failStreak = 0
		s.succeeded = s.o.Clock()
		j.last = &smp
	}
	s.mu.Unlock()
	if err != nil {
		s.failures[site].Inc()
		s.o.Logger.Warn("lab sample failed", "site", site, "page", j.path, "profile", j.profile.Name, "err", err)
	} else {
		s.o.Logger.Debug("lab sample", "site", site, "page", j.path, "profile", j.profile.Name, "took", took)
	}
	s.reschedule(j)
	if s.onSample != nil {
		s.onSample(j, smp, err)
	}
}

func (s *Sampler) measure(ctx context.Context, j *job) (store.Sample, error) {
	at := s.o.Clock()
	if j.page.Cold {
		if err := s.o.Purge(ctx, j.page.URL); err != nil {
			return store.Sample{}, fmt.Errorf("purge %s before a cold sample: %w", j.page.URL, err)
		}
	}
	smp, err := s.browser.Measure(ctx, j.page.URL, j.profile, j.page.Selector)
	if err != nil {
		return store.Sample{}, err
	}
	smp.At = at
	return smp, nil
}

func (s *Sampler) reschedule(j *job) {
	interval := j.page.Interval
	s.mu.Lock()
	bursting := j.burst > 0
	if bursting {
		j.burst--
	}
	s.mu.Unlock()
	if bursting {
		interval = min(interval, burstSpacing)
	}
	next := s.o.Clock().Add(s.jitter(interval, 0.1))
	s.mu.Lock()
	j.next, j.busy = next, false
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
