package proxy

import (
	"time"

	"github.com/edgevitals/edgevitals/cache"
)

// Counters are a site's cumulative counts since the proxy started (a site
// kept across a reload keeps its counts). Recorders take the difference of
// two snapshots.
type Counters struct {
	Requests     [NumOutcomes]uint64 // client requests, by Outcome
	Origin       uint64              // requests sent to the origin
	OriginErrors uint64              // of those, 5xx or no answer
	// OriginBuckets counts origin requests by latency: one count per bound
	// of Options.OriginBuckets, then one above the last.
	OriginBuckets []uint64
	Uncacheable   [cache.NumReasons]uint64 // responses not stored, by cache.Reason

	// The hit ratio's sliding window: hits (fresh or stale) and cacheable
	// requests (hits, misses, passes) over the last RecentWindow.
	RecentHits, RecentCacheable int64
	RecentWindow                time.Duration
}

// Sites lists the names of the current sites, in the config's order.
func (s *Server) Sites() []string {
	sites := s.sitesNow()
	names := make([]string, len(sites))
	for i, st := range sites {
		names[i] = st.Name
	}
	return names
}

// HasSite reports whether a site of that name is configured now.
func (s *Server) HasSite(name string) bool { return s.siteNamed(name) != nil }

// Snapshot returns the counters of the site called name; false when there
// is no such site. It is safe for concurrent use with requests.
func (s *Server) Snapshot(name string) (Counters, bool) {
	st := s.siteNamed(name)
	if st == nil {
		return Counters{}, false
	}
	return st.metrics.counts(), true
}
