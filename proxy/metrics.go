package proxy

import (
	"fmt"
	"io"
	"math"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/edgevitals/edgevitals/cache"
)

// Outcome is how the cache answered one request; it is the `cache` label of
// edgevitals_requests_total and edgevitals_response_duration_seconds.
type Outcome uint8

const (
	OutcomeHit    Outcome = iota // served from a fresh stored response
	OutcomeStale                 // served a stale stored response (stale-while-revalidate, stale-if-error, soft purge)
	OutcomeMiss                  // cacheable request forwarded to the origin
	OutcomeBypass                // request rules sent it past the cache (cookie, path, method, authorization)
	OutcomePass                  // key remembered as uncacheable (hit-for-miss): straight to the origin
	OutcomeError                 // no response from the origin and nothing stored to serve
	NumOutcomes                  // the number of outcomes, the length of Counters.Requests
)

var outcomeNames = [NumOutcomes]string{"hit", "stale", "miss", "bypass", "pass", "error"}

func (o Outcome) String() string { return outcomeNames[o] }

// durationBuckets are classic `le` buckets in seconds, from a memory hit to a
// slow origin, so histogram_quantile() works in Prometheus and Grafana.
var durationBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
}

// siteMetrics holds every series of one site, created once at start so the
// request path only increments (no GetOrCreate per request).
type siteMetrics struct {
	requests    [NumOutcomes]*metrics.Counter
	duration    [NumOutcomes]*metrics.PrometheusHistogram
	uncacheable [cache.NumReasons]*metrics.Counter
	originDur   *metrics.PrometheusHistogram
	ratio       *rollingRatio
	set         *metrics.Set
	site        string
	origin      originCodes
	// For Snapshot: origin latency in Options.OriginBuckets buckets (the
	// last is +Inf) and origin failures (5xx or no answer).
	bounds        []float64
	originBuckets []atomic.Uint64
	originTotal   atomic.Uint64
	originErrors  atomic.Uint64
}

// originCodes counts origin responses by status code. Codes are bounded
// (100-599, plus "error" for no response), so a small fixed table serves.
type originCodes struct {
	codes [6][100]atomic.Pointer[metrics.Counter] // [class][code%100]
	err   *metrics.Counter
}

func newSiteMetrics(set *metrics.Set, site string, clock func() time.Time, bounds []float64) *siteMetrics {
	m := &siteMetrics{set: set, site: site, ratio: newRollingRatio(5*time.Minute, clock),
		bounds: bounds, originBuckets: make([]atomic.Uint64, len(bounds)+1)}
	for o := Outcome(0); o < NumOutcomes; o++ {
		m.requests[o] = set.NewCounter(fmt.Sprintf(`edgevitals_requests_total{site=%q,cache=%q}`, site, o))
		m.duration[o] = set.NewPrometheusHistogramExt(fmt.Sprintf(`edgevitals_response_duration_seconds{site=%q,cache=%q}`, site, o), durationBuckets)
	}
	for r := cache.Reason(1); r < cache.NumReasons; r++ {
		m.uncacheable[r] = set.NewCounter(fmt.Sprintf(`edgevitals_uncacheable_total{site=%q,reason=%q}`, site, r))
	}
	m.originDur = set.NewPrometheusHistogramExt(fmt.Sprintf(`edgevitals_origin_duration_seconds{site=%q}`, site), durationBuckets)
	m.origin.err = set.NewCounter(fmt.Sprintf(`edgevitals_origin_requests_total{site=%q,code="error"}`, site))
	ratio := m.ratio
	set.NewGauge(fmt.Sprintf(`edgevitals_cache_hit_ratio{site=%q}`, site), func() float64 { return ratio.value() })
	return m
}

// observe records one finished request. It does not allocate.
func (m *siteMetrics) observe(o Outcome, start time.Time) {
	m.requests[o].Inc()
	m.duration[o].Update(time.Since(start).Seconds())
	switch o {
	case OutcomeHit, OutcomeStale:
		m.ratio.add(true)
	case OutcomeMiss, OutcomePass:
		m.ratio.add(false)
	}
}

func (m *siteMetrics) uncacheableInc(r cache.Reason) {
	if r > 0 && r < cache.NumReasons {
		m.uncacheable[r].Inc()
	}
}

// originDone records one origin exchange; code 0 means no response.
func (m *siteMetrics) originDone(code int, start time.Time) {
	d := time.Since(start).Seconds()
	m.originDur.Update(d)
	i := 0
	for i < len(m.bounds) && d > m.bounds[i] {
		i++
	}
	m.originBuckets[i].Add(1)
	m.originTotal.Add(1)
	if code < 100 || code >= 500 {
		m.originErrors.Add(1)
	}
	if code < 100 || code > 599 {
		m.origin.err.Inc()
		return
	}
	slot := &m.origin.codes[code/100][code%100]
	c := slot.Load()
	if c == nil {
		// First time this code is seen for the site: create its series once.
		c = m.set.GetOrCreateCounter(fmt.Sprintf(`edgevitals_origin_requests_total{site=%q,code="%d"}`, m.site, code))
		slot.Store(c)
	}
	c.Inc()
}

// counts reads the site's cumulative counters.
func (m *siteMetrics) counts() Counters {
	var c Counters
	for o := Outcome(0); o < NumOutcomes; o++ {
		c.Requests[o] = m.requests[o].Get()
	}
	for r := cache.Reason(1); r < cache.NumReasons; r++ {
		c.Uncacheable[r] = m.uncacheable[r].Get()
	}
	c.Origin = m.originTotal.Load()
	c.OriginErrors = m.originErrors.Load()
	c.OriginBuckets = make([]uint64, len(m.originBuckets))
	for i := range m.originBuckets {
		c.OriginBuckets[i] = m.originBuckets[i].Load()
	}
	c.RecentHits, c.RecentCacheable = m.ratio.counts()
	c.RecentWindow = m.ratio.window
	return c
}

// rollingRatio is the share of cache hits among cacheable requests over a
// sliding window, kept in fixed slots so updates are lock-free and
// allocation-free. It backs edgevitals_cache_hit_ratio and the built-in alert.
type rollingRatio struct {
	slots  []ratioSlot
	width  int64 // slot width in seconds
	clock  func() time.Time
	window time.Duration
}

type ratioSlot struct {
	epoch atomic.Int64 // which slot-period this slot currently counts
	hits  atomic.Int64
	total atomic.Int64
}

const ratioSlotSeconds = 10

func newRollingRatio(window time.Duration, clock func() time.Time) *rollingRatio {
	if clock == nil {
		clock = time.Now
	}
	n := int(window/time.Second) / ratioSlotSeconds
	if n < 1 {
		n = 1
	}
	return &rollingRatio{slots: make([]ratioSlot, n), width: ratioSlotSeconds, clock: clock, window: window}
}

func (r *rollingRatio) add(hit bool) {
	epoch := r.clock().Unix() / r.width
	s := &r.slots[epoch%int64(len(r.slots))]
	if old := s.epoch.Load(); old != epoch {
		// The slot holds an older period: start it afresh. A racing add may
		// land in the old count; the ratio tolerates that tiny error.
		if s.epoch.CompareAndSwap(old, epoch) {
			s.hits.Store(0)
			s.total.Store(0)
		}
	}
	s.total.Add(1)
	if hit {
		s.hits.Add(1)
	}
}

// counts returns hits and cacheable requests inside the window.
func (r *rollingRatio) counts() (hits, total int64) {
	now := r.clock().Unix() / r.width
	for i := range r.slots {
		s := &r.slots[i]
		if e := s.epoch.Load(); e > now-int64(len(r.slots)) && e <= now {
			hits += s.hits.Load()
			total += s.total.Load()
		}
	}
	return hits, total
}

// value is the ratio, or NaN when there was no cacheable request in the
// window: no traffic is not a ratio of 0, and must not trip an alert.
func (r *rollingRatio) value() float64 {
	h, t := r.counts()
	if t == 0 {
		return math.NaN()
	}
	return float64(h) / float64(t)
}

// purgeUnsafeMethod is the purge kind of an invalidation by a successful
// unsafe method (RFC 9111 §4.4): a visitor's POST, not an operator's purge.
const purgeUnsafeMethod = "unsafe_method"

// purgeKinds are the `kind` label values of edgevitals_purges_total.
var purgeKinds = []string{"url", "key", "regex", "prefix", "all", purgeUnsafeMethod}

// serverMetrics are the series that are not per site.
type serverMetrics struct {
	purges       map[string][2]*metrics.Counter // kind -> [hard, soft]
	purgedObject *metrics.Counter
}

func (s *Server) registerMetrics(set *metrics.Set) {
	m := &serverMetrics{purges: map[string][2]*metrics.Counter{}}
	for _, k := range purgeKinds {
		m.purges[k] = [2]*metrics.Counter{
			set.NewCounter(fmt.Sprintf(`edgevitals_purges_total{kind=%q,mode="hard"}`, k)),
			set.NewCounter(fmt.Sprintf(`edgevitals_purges_total{kind=%q,mode="soft"}`, k)),
		}
	}
	m.purgedObject = set.NewCounter("edgevitals_purged_objects_total")
	store, flight := s.store, s.flight
	set.NewGauge("edgevitals_cache_bytes", func() float64 { return float64(store.Bytes()) })
	set.NewGauge("edgevitals_cache_objects", func() float64 { return float64(store.Objects()) })
	// The store and the flight keep their own counts; write them as counters
	// at scrape time rather than mirroring every increment.
	set.RegisterMetricsWriter(func(w io.Writer) {
		metrics.WriteCounterUint64(w, "edgevitals_cache_evictions_total", store.Evictions())
		metrics.WriteCounterUint64(w, "edgevitals_coalesced_total", flight.Coalesced())
	})
	s.metrics = m
}

// countPurge records one purge request and the objects it removed.
func (s *Server) countPurge(kind string, soft bool, n int) {
	c, ok := s.metrics.purges[kind]
	if !ok {
		return
	}
	if soft {
		c[1].Inc()
	} else {
		c[0].Inc()
	}
	s.metrics.purgedObject.Add(n)
}
