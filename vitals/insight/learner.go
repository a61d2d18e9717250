package insight

import (
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Learner. A zero field takes the default given beside it.
type Options struct {
	MaxSites int           // sites tracked; 16
	Bucket   time.Duration // width of a time bucket; 1m
	Buckets  int           // buckets kept (history = Bucket × Buckets); 60
	Window   time.Duration // what Insights, Top and AlertText describe; 15m

	Params  int // top-k query parameters per site; 64
	Cookies int // top-k bypass cookies per site; 32
	Varys   int // top-k Vary fields per site; 16
	Groups  int // top-k URL groups per site; 128

	// MinValues and MinComparisons are the evidence a parameter needs before it is
	// suggested for stripping: distinct values seen (4) and same-page comparisons (8).
	MinValues      int
	MinComparisons int
	// MinPoints hides causes that cost fewer hit-ratio points; 0.5.
	MinPoints float64

	// StripQuery is the effective cache.strip_query (config defaults applied): the suggested
	// line replaces the list, so it repeats it. nil means an empty list.
	StripQuery []string
	// IgnoreCookies is the effective site.ignore_cookies per site name, repeated in the
	// suggested line for the same reason.
	IgnoreCookies map[string][]string
}

// Sizes of the per-site fingerprint samples (entries; see site.observeEvidence).
const (
	evidenceSlots = 2048
	baseSlots     = 1024
)

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.MaxSites, 16)
	def(&o.Buckets, 60)
	def(&o.Params, 64)
	def(&o.Cookies, 32)
	def(&o.Varys, 16)
	def(&o.Groups, 128)
	def(&o.MinValues, 4)
	def(&o.MinComparisons, 8)
	if o.Bucket == 0 {
		o.Bucket = time.Minute
	}
	if o.Window == 0 {
		o.Window = 15 * time.Minute
	}
	if o.MinPoints == 0 {
		o.MinPoints = 0.5
	}
	return o
}

func (o Options) validate() error {
	var errs []error
	positive := func(name string, v int, limit int) {
		if v < 1 || v > limit {
			errs = append(errs, fmt.Errorf("insight.%s: must be in 1..%d, got %d", name, limit, v))
		}
	}
	positive("MaxSites", o.MaxSites, 4096)
	positive("Buckets", o.Buckets, 1440)
	positive("Params", o.Params, 4096)
	positive("Cookies", o.Cookies, 4096)
	positive("Varys", o.Varys, 4096)
	positive("Groups", o.Groups, 4096)
	positive("MinValues", o.MinValues, 1<<20)
	positive("MinComparisons", o.MinComparisons, 1<<20)
	if o.Bucket < time.Second {
		errs = append(errs, fmt.Errorf("insight.Bucket: must be at least 1s, got %s", o.Bucket))
	}
	if o.Window < o.Bucket || o.Window > o.Bucket*time.Duration(o.Buckets) {
		errs = append(errs, fmt.Errorf("insight.Window: must be between Bucket and Bucket × Buckets (%s), got %s",
			o.Bucket*time.Duration(o.Buckets), o.Window))
	}
	if o.MinPoints < 0 || o.MinPoints > 100 {
		errs = append(errs, fmt.Errorf("insight.MinPoints: must be in 0..100, got %g", o.MinPoints))
	}
	return errors.Join(errs...)
}

// Learner learns what fragments the cache of each site. It is safe for concurrent use.
type Learner struct {
	opt  Options
	seed maphash.Seed

	mu    sync.RWMutex
	sites map[string]*site

	observed, dropped atomic.Uint64
}

// New returns a Learner, or an error naming every bad option.
func New(o Options) (*Learner, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.StripQuery = slices.Clone(o.StripQuery)
	return &Learner{opt: o, seed: maphash.MakeSeed(), sites: make(map[string]*site)}, nil
}

// Stats counts observations: learned, and dropped (zero Outcome or Time, a site beyond
// MaxSites, a time older than the kept history).
type Stats struct {
	Observed, Dropped uint64
}

// Stats returns the counts so far.
func (l *Learner) Stats() Stats {
	return Stats{Observed: l.observed.Load(), Dropped: l.dropped.Load()}
}

// Observe learns from one request. See the package comment for its costs and contract.
func (l *Learner) Observe(o *Observation) {
	if o.Outcome == 0 || o.Outcome >= numOutcomes || o.Time.IsZero() {
		l.dropped.Add(1)
		return
	}
	s := l.site(o.Site, true)
	if s == nil {
		l.dropped.Add(1)
		return
	}
	abs := floorDiv(o.Time.UnixNano(), int64(l.opt.Bucket))
	s.mu.Lock()
	slot, ok := s.advance(abs)
	if ok {
		s.observe(o, slot, abs)
	}
	s.mu.Unlock()
	if ok {
		l.observed.Add(1)
	} else {
		l.dropped.Add(1)
	}
}

func (l *Learner) site(name string, create bool) *site {
	l.mu.RLock()
	s := l.sites[name]
	l.mu.RUnlock()
	if s != nil || !create {
		return s
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if s = l.sites[name]; s == nil && len(l.sites) < l.opt.MaxSites {
		s = newSite(name, &l.opt, l.seed)
		l.sites[name] = s
	}
	return s
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
