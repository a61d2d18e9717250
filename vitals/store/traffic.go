package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TrafficPoint is one minute of a site's edge traffic, recorded by the proxy
// as the change of its counters over the minute. Reports sum the points of
// a release's window to get its hit ratio, origin latency and uncacheable
// reasons.
type TrafficPoint struct {
	Site string    `json:"site"`
	At   time.Time `json:"at"` // end of the minute

	// Requests by cache outcome, as edgevitals_requests_total counts them.
	Hit    uint64 `json:"hit"`
	Stale  uint64 `json:"stale"`
	Miss   uint64 `json:"miss"`
	Pass   uint64 `json:"pass"`
	Bypass uint64 `json:"bypass"`
	Error  uint64 `json:"error"`

	Origin       uint64 `json:"origin"`        // origin requests
	OriginErrors uint64 `json:"origin_errors"` // of which 5xx or no answer
	// OriginBuckets counts origin requests per bucket of OriginBounds()
	// (not cumulative); the last bucket is +Inf. Empty means none.
	OriginBuckets []uint64 `json:"origin_buckets,omitempty"`
	// Uncacheable counts responses the cache could not store, by reason
	// (set_cookie, private, ...; the reason label of
	// edgevitals_uncacheable_total).
	Uncacheable map[string]uint64 `json:"uncacheable,omitempty"`
}

// originBounds are the upper bounds, in seconds, of the origin latency
// buckets of a TrafficPoint: fine where CMS pages answer (50 ms to 1 s),
// where a +25% change must show, and coarse beyond. They are part of the
// stored format: stored points count by these bounds, so they never change.
var originBounds = [...]float64{
	0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30,
}

// OriginBounds returns the upper bounds, in seconds, of the origin latency
// buckets of a TrafficPoint (a copy: the stored format's bounds cannot be
// changed through it), for the proxy that counts origin requests by them.
func OriginBounds() []float64 { return slices.Clone(originBounds[:]) }

// Bounds of what a point may hold, so a bug upstream cannot fill the file.
const (
	MaxReasons    = 64
	MaxReasonName = 64
)

// Cacheable is the number of requests that count in the hit ratio: hits
// and stale hits, misses and passes (as edgevitals_cache_hit_ratio; bypass
// and error requests never had a chance to be served from cache).
func (p TrafficPoint) Cacheable() uint64 { return p.Hit + p.Stale + p.Miss + p.Pass }

// add sums q's counts into p.
func (p *TrafficPoint) Add(q TrafficPoint) {
	p.Hit += q.Hit
	p.Stale += q.Stale
	p.Miss += q.Miss
	p.Pass += q.Pass
	p.Bypass += q.Bypass
	p.Error += q.Error
	p.Origin += q.Origin
	p.OriginErrors += q.OriginErrors
	if len(q.OriginBuckets) > 0 {
		if len(p.OriginBuckets) == 0 {
			p.OriginBuckets = make([]uint64, len(q.OriginBuckets))
		}
		for i, c := range q.OriginBuckets {
			p.OriginBuckets[i] += c
		}
	}
	if len(q.Uncacheable) > 0 && p.Uncacheable == nil {
		p.Uncacheable = make(map[string]uint64, len(q.Uncacheable))
	}
	for k, c := range q.Uncacheable {
		p.Uncacheable[k] += c
	}
}

func (p TrafficPoint) check() error {
	var errs []error
	if p.Site == "" {
		errs = append(errs, errors.New("no site"))
	}
	errs = append(errs, checkName("site", p.Site))
	if p.At.IsZero() {
		errs = append(errs, errors.New("no time"))
	}
	if n := len(p.OriginBuckets); n != 0 && n != len(originBounds)+1 {
		errs = append(errs, fmt.Errorf("%d origin buckets, want %d (OriginBounds and +Inf)", n, len(originBounds)+1))
	}
	if len(p.Uncacheable) > MaxReasons {
		errs = append(errs, fmt.Errorf("%d uncacheable reasons, at most %d", len(p.Uncacheable), MaxReasons))
	}
	for r := range p.Uncacheable {
		if r == "" || len(r) > MaxReasonName {
			errs = append(errs, fmt.Errorf("uncacheable reason %q: want 1 to %d bytes", r, MaxReasonName))
		}
	}
	return errors.Join(errs...)
}

// trafficRecord is the stored value of a traffic point.
type trafficRecord struct {
	V     int          `json:"v"`
	Point TrafficPoint `json:"point"`
}

// AddTraffic records a minute of traffic. A second point of the same site
// and time adds to the first: points are counter deltas, so nothing
// counted is lost when the proxy records twice in one instant.
func (st *Store) AddTraffic(p TrafficPoint) error {
	if err := p.check(); err != nil {
		return fmt.Errorf("add traffic of site %q: %w", p.Site, err)
	}
	p.At = p.At.UTC()
	err := st.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTraffic)
		k := append(sitePrefix(p.Site), timeKey(p.At)...) // a site's range of minutes is one cursor scan
		if old := b.Get(k); old != nil {
			q, err := decodeTraffic(old)
			if err != nil {
				return fmt.Errorf("key %q: %w", k, err)
			}
			q.Add(p)
			p = q
		}
		v, err := json.Marshal(trafficRecord{V: recordVersion, Point: p})
		if err != nil {
			return err
		}
		return b.Put(k, v)
	})
	if err != nil {
		return fmt.Errorf("add traffic of site %q: %w", p.Site, err)
	}
	return nil
}

// Traffic returns the points of site whose minute ended in [from, to),
// oldest first.
func (st *Store) Traffic(site string, from, to time.Time) ([]TrafficPoint, error) {
	out, err := scan(st, bucketTraffic, sitePrefix(site), timeKey(from), timeKey(to), decodeTraffic)
	if err != nil {
		return nil, fmt.Errorf("read traffic of site %q: %w", site, err)
	}
	return out, nil
}

func decodeTraffic(v []byte) (TrafficPoint, error) {
	var r trafficRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return TrafficPoint{}, err
	}
	if r.V != recordVersion {
		return TrafficPoint{}, fmt.Errorf("traffic record version %d, want %d", r.V, recordVersion)
	}
	if n := len(r.Point.OriginBuckets); n != 0 && n != len(originBounds)+1 {
		return TrafficPoint{}, fmt.Errorf("traffic record of %d origin buckets, want %d", n, len(originBounds)+1)
	}
	return r.Point, nil
}
