// Package field collects real visitors' Core Web Vitals and conversions:
// the beacon script the proxy injects (built on the lab's measurement
// script), the checks of each beacon, the per-minute aggregates written to
// the store, and the edgevitals_field_* families.
package field

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/edgevitals/edgevitals/internal/label"
	"github.com/edgevitals/edgevitals/vitals/store"
)

// Defaults of CollectorOptions.
const (
	DefaultRatePerMinute = 60
	DefaultMaxSessions   = 100_000
	DefaultSessionIdle   = 30 * time.Minute
	DefaultFlushInterval = time.Minute
)

// MaxReleases bounds the distinct release ids a site keeps in the field
// aggregates at once; beacons of others count as OtherRelease. Release ids
// come from visitors' browsers, so they are bounded like any outside input.
const MaxReleases = 50

// OtherRelease stands for release ids beyond MaxReleases, or that
// CollectorOptions.KnownRelease refused.
const OtherRelease = "other"

// releaseIdle is how long a release id must go without beacons before a new
// id may take its place among a site's MaxReleases.
const releaseIdle = time.Hour

// maxPending bounds the aggregates waiting for the next flush.
const maxPending = 50_000

// CollectorOptions configure a Collector. Sites is required.
type CollectorOptions struct {
	Sites         []string // known site names (label values)
	Goals         []Goal
	Groups        []Group // page groups, first match wins; empty means DefaultGroups
	SampleRate    float64 // share of tabs that report, 0..1, baked into the script
	Metrics       *metrics.Set
	Store         *store.Store // where Run writes the aggregates; nil keeps none
	RatePerMinute int          // beacons per client per minute; 0 means DefaultRatePerMinute
	Clock         func() time.Time
	Logger        *slog.Logger

	MaxSessions   int           // sessions remembered at once; 0 means DefaultMaxSessions
	SessionIdle   time.Duration // a session ends after this long without a beacon; 0 means DefaultSessionIdle
	FlushInterval time.Duration // how often Run writes to the Store; 0 means DefaultFlushInterval
	// KnownRelease, when set, says whether id is a release of site that
	// the edge knows; beacons of other ids count as OtherRelease, so a
	// forged id cannot take one of the MaxReleases places.
	KnownRelease func(site, id string) bool
}

// Collector receives the field beacons of real visitors: it validates them,
// counts sessions and conversions, exports the edgevitals_field_*
// histograms and keeps aggregates for release reports. It stores nothing
// that identifies a visitor: session ids live in memory for SessionIdle,
// client keys only as a hash in the rate limiter. It is safe for
// concurrent use.
type Collector struct {
	o       CollectorOptions
	script  []byte
	groups  grouper
	sites   map[string]*siteState
	limiter *limiter
	dropped *metrics.Counter // aggregates lost to maxPending

	mu       sync.Mutex
	sessions map[string]*list.Element // site + "\x00" + sid -> *session
	byAge    *list.List               // of *session, most recently seen first
	pending  map[aggKey]*store.FieldAggregate

	flushMu sync.Mutex
}

type siteState struct {
	name        string
	goals       siteGoals
	beacons     *metrics.Counter
	sessions    *metrics.Counter
	conversions []*metrics.Counter // by goal index
	rejected    [numReasons]*metrics.Counter
	// field histograms by device and cache status, made on first use so
	// that combinations nobody reports stay out of the exposition.
	field    [numDevices][numCacheStates]atomic.Pointer[fieldSeries]
	releases map[string]time.Time // guarded by Collector.mu: id -> last beacon
}

type fieldSeries struct {
	lcp, inp, ttfb, cls *metrics.PrometheusHistogram
}

// Buckets of the field histograms, around the Core Web Vitals thresholds.
var (
	lcpBuckets  = []float64{0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 7.5, 10, 20, 60}
	inpBuckets  = []float64{0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 60}
	ttfbBuckets = []float64{0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1, 1.4, 1.8, 2.5, 5, 60}
	clsBuckets  = []float64{0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 10}
)

// aggKey says which FieldAggregate a count goes to.
type aggKey struct {
	site, release, group string
	dev, cache           uint8
	hour                 int64 // unix seconds of the UTC hour
}

// session is a visit of one tab, by its random id.
type session struct {
	key   string
	land  aggKey // where the session and its conversions are counted
	goals uint64 // goals reached, by index
	last  time.Time
}

// check returns every problem of o at once, and the page groups and the
// goals of each site it configures.
func (o CollectorOptions) check() (grouper, map[string]siteGoals, error) {
	var errs []error
	if len(o.Sites) == 0 {
		errs = append(errs, errors.New("rum: no site"))
	}
	known := map[string]bool{}
	for _, s := range o.Sites {
		if !label.Match(s) {
			errs = append(errs, fmt.Errorf("rum: site name %q: must match %s (it is a metric label)", s, label.Pattern))
		}
		if known[s] {
			errs = append(errs, fmt.Errorf("rum: site %q listed twice", s))
		}
		known[s] = true
	}
	if !(o.SampleRate >= 0 && o.SampleRate <= 1) {
		errs = append(errs, fmt.Errorf("rum.sample_rate: must be in [0, 1], got %v", o.SampleRate))
	}
	for _, c := range []struct {
		key string
		bad bool
		v   any
	}{
		{"rate per minute", o.RatePerMinute < 0, o.RatePerMinute},
		{"max sessions", o.MaxSessions < 0, o.MaxSessions},
		{"session idle", o.SessionIdle < 0, o.SessionIdle},
		{"flush interval", o.FlushInterval < 0, o.FlushInterval},
	} {
		if c.bad {
			errs = append(errs, fmt.Errorf("rum: %s: must be >= 0, got %v", c.key, c.v))
		}
	}
	groups, err := newGrouper(o.Groups)
	if err != nil {
		errs = append(errs, err)
	}
	goals, err := goalsBySite(o.Goals, known)
	if err != nil {
		errs = append(errs, err)
	}
	return groups, goals, errors.Join(errs...)
}

// NewCollector checks the options, registers the collector's metrics and
// builds its script. Its error names every problem.
func NewCollector(o CollectorOptions) (*Collector, error) {
	groups, goals, err := o.check()
	if err != nil {
		return nil, err
	}
	if o.RatePerMinute == 0 {
		o.RatePerMinute = DefaultRatePerMinute
	}
	if o.MaxSessions == 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.SessionIdle == 0 {
		o.SessionIdle = DefaultSessionIdle
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	script, err := buildScript(o.SampleRate)
	if err != nil {
		return nil, err
	}
	c := &Collector{
		o:        o,
		script:   script,
		groups:   groups,
		sites:    map[string]*siteState{},
		limiter:  newLimiter(o.RatePerMinute),
		dropped:  o.Metrics.NewCounter("edgevitals_field_aggregates_dropped_total"),
		sessions: map[string]*list.Element{},
		byAge:    list.New(),
		pending:  map[aggKey]*store.FieldAggregate{},
	}
	for _, name := range o.Sites {
		st := &siteState{name: name, goals: goals[name], releases: map[string]time.Time{}}
		l := `{site="` + name + `"}`
		st.beacons = o.Metrics.NewCounter("edgevitals_beacons_total" + l)
		st.sessions = o.Metrics.NewCounter("edgevitals_sessions_total" + l)
		for _, g := range st.goals {
			st.conversions = append(st.conversions, o.Metrics.NewCounter(`edgevitals_conversions_total{site="`+name+`",goal="`+g.Name+`"}`))
		}
		for r := range numReasons {
			st.rejected[r] = o.Metrics.NewCounter(`edgevitals_beacons_rejected_total{site="` + name + `",reason="` + r.String() + `"}`)
		}
		c.sites[name] = st
	}
	return c, nil
}

// Beacon validates and counts one beacon. site is the proxy's site for the
// request's Host; client an opaque key for rate limiting (the client IP,
// which is hashed and never stored); gpc is true when the request carried
// Sec-GPC: 1, and then nothing is counted. It returns the HTTP status to
// answer: 204 counted (or dropped for GPC), 400 malformed, out of range or
// for an unknown site, 413 too large (> MaxBeaconBytes), 429 rate-limited.
// Rejections are counted in edgevitals_beacons_rejected_total. body is not
// kept after Beacon returns.
//
// A beacon is one JSON object:
//
//	{"v":1, "sid":"<16-32 of [A-Za-z0-9_-]>", "path":"/x", "dev":"mobile|desktop|tablet",
//	 "cache":"hit|stale|miss|pass|bypass|unknown", "rel":"v42",
//	 "lcp":1234, "fcp":900, "ttfb":120, "inp":80, "cls":0.01, "conv":"order"}
//
// v, sid, path and dev are required; a missing or null measurement was not
// measured; times are milliseconds in [0, 60000], CLS in [0, 10]. A beacon
// with conv reports the conversion named by edgevitals.convert and carries
// no measurement; any other beacon is a page view.
func (c *Collector) Beacon(site, client string, gpc bool, body []byte) int {
	if gpc {
		return 204
	}
	st := c.sites[site]
	if st == nil {
		return 400 // the proxy routed a site the collector was not told of
	}
	if len(body) > MaxBeaconBytes {
		st.rejected[reasonTooLarge].Inc()
		return 413
	}
	now := c.o.Clock()
	if !c.limiter.allow(client, now) {
		st.rejected[reasonRateLimited].Inc()
		return 429
	}
	b, err := parseBeacon(body)
	if err != nil {
		st.rejected[reasonOf(err)].Inc()
		return 400
	}
	var reached uint64
	if b.conv != "" {
		i := st.goals.index(b.conv)
		if i < 0 {
			st.rejected[reasonUnknownGoal].Inc()
			return 400
		}
		reached = 1 << i
	} else {
		reached = st.goals.reached(b.path)
	}
	rel := b.rel
	if rel != "" && c.o.KnownRelease != nil && !c.o.KnownRelease(site, rel) {
		rel = OtherRelease
	}
	group := c.groups.group(b.path)

	c.mu.Lock()
	k := aggKey{site: site, release: c.releaseLabel(st, rel, now), group: group, dev: b.dev, cache: b.cache,
		hour: now.UTC().Truncate(time.Hour).Unix()}
	s, isNew := c.session(site, b.sid, k, now)
	fresh := reached &^ s.goals
	s.goals |= reached
	if c.o.Store != nil {
		if isNew {
			if a := c.aggregate(s.land); a != nil {
				a.Sessions++
			}
		}
		if fresh != 0 {
			if a := c.aggregate(s.land); a != nil {
				for g := fresh; g != 0; g &= g - 1 {
					if a.Conversions == nil {
						a.Conversions = map[string]int64{}
					}
					a.Conversions[st.goals[bits.TrailingZeros64(g)].Name]++
				}
			}
		}
		if b.conv == "" {
			if a := c.aggregate(k); a != nil {
				a.PageViews++
				for _, m := range []struct {
					r reading
					h *store.FieldHistogram
				}{{b.lcp, &a.LCP}, {b.fcp, &a.FCP}, {b.ttfb, &a.TTFB}, {b.inp, &a.INP}, {b.cls, &a.CLS}} {
					if m.r.ok {
						m.h.Add(m.r.v)
					}
				}
			}
		}
	}
	c.mu.Unlock()

	st.beacons.Inc()
	if isNew {
		st.sessions.Inc()
	}
	for g := fresh; g != 0; g &= g - 1 {
		st.conversions[bits.TrailingZeros64(g)].Inc()
	}
	if b.conv == "" {
		fs := c.series(st, b.dev, b.cache)
		for _, m := range []struct {
			r     reading
			h     *metrics.PrometheusHistogram
			scale float64
		}{{b.lcp, fs.lcp, 1e-3}, {b.inp, fs.inp, 1e-3}, {b.ttfb, fs.ttfb, 1e-3}, {b.cls, fs.cls, 1}} {
			if m.r.ok {
				m.h.Update(m.r.v * m.scale)
			}
		}
	}
	return 204
}

// series returns the field histograms of a device and cache status of st,
// registering them on first use.
func (c *Collector) series(st *siteState, dev, cache uint8) *fieldSeries {
	p := &st.field[dev][cache]
	if fs := p.Load(); fs != nil {
		return fs
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if fs := p.Load(); fs != nil {
		return fs
	}
	l := `{site="` + st.name + `",device="` + Devices[dev] + `",cache="` + CacheStates[cache] + `"}`
	set := c.o.Metrics
	fs := &fieldSeries{
		lcp:  set.NewPrometheusHistogramExt("edgevitals_field_lcp_seconds"+l, lcpBuckets),
		inp:  set.NewPrometheusHistogramExt("edgevitals_field_inp_seconds"+l, inpBuckets),
		ttfb: set.NewPrometheusHistogramExt("edgevitals_field_ttfb_seconds"+l, ttfbBuckets),
		cls:  set.NewPrometheusHistogramExt("edgevitals_field_cls"+l, clsBuckets),
	}
	p.Store(fs)
	return fs
}

// session returns the session of sid on site, starting it (landing at k)
// when it is new or has ended. Callers hold c.mu.
func (c *Collector) session(site, sid string, k aggKey, now time.Time) (*session, bool) {
	// End the sessions idle for too long, oldest first.
	for e := c.byAge.Back(); e != nil; e = c.byAge.Back() {
		s := e.Value.(*session)
		if now.Sub(s.last) < c.o.SessionIdle {
			break
		}
		c.byAge.Remove(e)
		delete(c.sessions, s.key)
	}
	key := site + "\x00" + sid
	if e, ok := c.sessions[key]; ok {
		s := e.Value.(*session)
		s.last = now
		c.byAge.MoveToFront(e)
		return s, false
	}
	if c.byAge.Len() >= c.o.MaxSessions {
		// Full: forget the least recently seen session. Should it come
		// back it counts again, which is the price of bounded memory.
		e := c.byAge.Back()
		c.byAge.Remove(e)
		delete(c.sessions, e.Value.(*session).key)
	}
	s := &session{key: key, land: k, last: now}
	c.sessions[key] = c.byAge.PushFront(s)
	return s, true
}

// releaseLabel bounds the release ids of st to MaxReleases. Callers hold
// c.mu.
func (c *Collector) releaseLabel(st *siteState, id string, now time.Time) string {
	if id == "" || id == OtherRelease {
		return id
	}
	if _, ok := st.releases[id]; ok {
		st.releases[id] = now
		return id
	}
	if len(st.releases) >= MaxReleases {
		oldest, at := "", now
		for r, t := range st.releases {
			if t.Before(at) {
				oldest, at = r, t
			}
		}
		if now.Sub(at) < releaseIdle {
			return OtherRelease
		}
		delete(st.releases, oldest)
	}
	st.releases[id] = now
	return id
}

// aggregate returns the pending aggregate of k, or nil when too many wait
// for the next flush. Callers hold c.mu.
func (c *Collector) aggregate(k aggKey) *store.FieldAggregate {
	if a, ok := c.pending[k]; ok {
		return a
	}
	if len(c.pending) >= maxPending {
		c.dropped.Inc()
		return nil
	}
	a := &store.FieldAggregate{Site: k.site, Hour: time.Unix(k.hour, 0).UTC(), Release: k.release, Group: k.group,
		Device: Devices[k.dev], Cache: CacheStates[k.cache]}
	c.pending[k] = a
	return a
}

// Flush writes the pending aggregates to the Store. On failure they stay
// pending for the next flush.
func (c *Collector) Flush() error {
	if c.o.Store == nil {
		return nil
	}
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	c.mu.Lock()
	p := c.pending
	c.pending = make(map[aggKey]*store.FieldAggregate, len(p))
	c.mu.Unlock()
	if len(p) == 0 {
		return nil
	}
	aggs := make([]store.FieldAggregate, 0, len(p))
	for _, a := range p {
		aggs = append(aggs, *a)
	}
	err := c.o.Store.AddFieldAggregates(aggs)
	if err != nil {
		c.mu.Lock()
		for k, a := range p {
			if b := c.aggregate(k); b != nil {
				b.Merge(*a)
			}
		}
		c.mu.Unlock()
		return fmt.Errorf("flush field data: %w", err)
	}
	return nil
}

// Run writes the aggregates to the Store every FlushInterval, and once more
// when ctx ends. Without a Store it only waits for ctx. It returns nil when
// ctx ends and the last flush succeeded.
func (c *Collector) Run(ctx context.Context) error {
	if c.o.Store == nil {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(c.o.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return c.Flush()
		case <-t.C:
			if err := c.Flush(); err != nil {
				c.o.Logger.Warn("field data not saved; retrying", "err", err)
			}
		}
	}
}
