package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// FieldAggregate is what real visitors reported for one site, hour, release,
// page group, device class and cache status: the input of field CWV and
// conversion rates in release reports. It holds counts only: no session id,
// path, IP address or user agent.
type FieldAggregate struct {
	Site    string
	Hour    time.Time // start of the UTC hour the beacons arrived in
	Release string    // the release that served the page ("" when the page did not say; OtherRelease beyond the bound)
	Group   string    // page group
	Device  string    // one of Devices
	Cache   string    // one of CacheStates

	PageViews int64 // page-view beacons
	// Sessions counts sessions that landed here: their first beacon had
	// this hour, release, group, device and cache status. Conversions
	// counts, per goal, those of them that reached the goal (once each,
	// whenever they reached it), so Conversions[g] / Sessions is the
	// conversion rate of landings of this kind.
	Sessions    int64
	Conversions map[string]int64

	// Distributions of the page views' measurements: milliseconds, CLS
	// unitless. A page view that did not measure a metric is not in it.
	LCP, FCP, TTFB, INP, CLS FieldHistogram
}

// Merge adds the counts of o to a. It does not look at the keys.
func (a *FieldAggregate) Merge(o FieldAggregate) {
	a.PageViews += o.PageViews
	a.Sessions += o.Sessions
	for g, n := range o.Conversions {
		if a.Conversions == nil {
			a.Conversions = map[string]int64{}
		}
		a.Conversions[g] += n
	}
	a.LCP.Merge(o.LCP)
	a.FCP.Merge(o.FCP)
	a.TTFB.Merge(o.TTFB)
	a.INP.Merge(o.INP)
	a.CLS.Merge(o.CLS)
}

// FieldHistogram is a distribution of non-negative values in logarithmic
// buckets 4% wide: any quantile it gives is within 2% of the exact one
// (values up to 0.001 share the first bucket, read as 0). Its zero value is
// empty and ready to use; it is not safe for concurrent use.
type FieldHistogram struct {
	counts map[int]int64 // bucket index -> count
}

const (
	histGamma = 1.04
	histFloor = 0.001 // the upper bound of bucket 0
	maxBucket = 1000  // far beyond any accepted value (60,000 ms is bucket 457)
)

var logGamma = math.Log(histGamma)

func bucketOf(v float64) int {
	if !(v > histFloor) { // also NaN
		return 0
	}
	i := int(math.Ceil(math.Log(v/histFloor) / logGamma))
	return min(max(i, 1), maxBucket)
}

// bucketValue is the value that stands for bucket i: the geometric middle
// of its bounds.
func bucketValue(i int) float64 {
	if i <= 0 {
		return 0
	}
	return histFloor * math.Pow(histGamma, float64(i)-0.5)
}

// Add counts the value v.
func (h *FieldHistogram) Add(v float64) {
	h.addN(bucketOf(v), 1)
}

func (h *FieldHistogram) addN(i int, n int64) {
	if n <= 0 {
		return
	}
	if h.counts == nil {
		h.counts = map[int]int64{}
	}
	h.counts[i] += n
}

// Merge adds the counts of o to h.
func (h *FieldHistogram) Merge(o FieldHistogram) {
	for i, n := range o.counts {
		h.addN(i, n)
	}
}

// Count returns how many values were added.
func (h FieldHistogram) Count() int64 {
	var n int64
	for _, c := range h.counts {
		n += c
	}
	return n
}

// Quantile returns the q-quantile (0 < q <= 1; 0.75 for the p75 of Core
// Web Vitals) by the nearest-rank method, and false when h is empty.
func (h FieldHistogram) Quantile(q float64) (float64, bool) {
	total := h.Count()
	if total == 0 || !(q > 0) || q > 1 {
		return 0, false
	}
	rank := int64(math.Ceil(q * float64(total)))
	var seen int64
	for _, i := range slices.Sorted(maps.Keys(h.counts)) {
		seen += h.counts[i]
		if seen >= rank {
			return bucketValue(i), true
		}
	}
	return 0, false // not reached
}

// Each calls f with each bucket's value and count, in increasing value:
// the input of a rank test such as Mann-Whitney U (values of one bucket
// are ties).
func (h FieldHistogram) Each(f func(v float64, n int64)) {
	for _, i := range slices.Sorted(maps.Keys(h.counts)) {
		f(bucketValue(i), h.counts[i])
	}
}

// fieldRecord is the stored value of a FieldAggregate.
type fieldRecord struct {
	V           int              `json:"v"`
	Site        string           `json:"site"`
	Hour        int64            `json:"hour"` // unix seconds
	Release     string           `json:"release"`
	Group       string           `json:"group"`
	Device      string           `json:"device"`
	Cache       string           `json:"cache"`
	PageViews   int64            `json:"page_views"`
	Sessions    int64            `json:"sessions"`
	Conversions map[string]int64 `json:"conversions,omitempty"`
	LCP         map[int]int64    `json:"lcp,omitempty"`
	FCP         map[int]int64    `json:"fcp,omitempty"`
	TTFB        map[int]int64    `json:"ttfb,omitempty"`
	INP         map[int]int64    `json:"inp,omitempty"`
	CLS         map[int]int64    `json:"cls,omitempty"`
}

func recordOf(a FieldAggregate) fieldRecord {
	return fieldRecord{V: recordVersion, Site: a.Site, Hour: a.Hour.Unix(), Release: a.Release, Group: a.Group, Device: a.Device, Cache: a.Cache,
		PageViews: a.PageViews, Sessions: a.Sessions, Conversions: a.Conversions,
		LCP: a.LCP.counts, FCP: a.FCP.counts, TTFB: a.TTFB.counts, INP: a.INP.counts, CLS: a.CLS.counts}
}

func decodeField(v []byte) (FieldAggregate, error) {
	var r fieldRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return FieldAggregate{}, err
	}
	if r.V != recordVersion {
		return FieldAggregate{}, fmt.Errorf("field record version %d, want %d", r.V, recordVersion)
	}
	a := FieldAggregate{Site: r.Site, Hour: time.Unix(r.Hour, 0).UTC(), Release: r.Release, Group: r.Group, Device: r.Device, Cache: r.Cache,
		PageViews: r.PageViews, Sessions: r.Sessions, Conversions: r.Conversions}
	for _, h := range []struct {
		in  map[int]int64
		out *FieldHistogram
	}{{r.LCP, &a.LCP}, {r.FCP, &a.FCP}, {r.TTFB, &a.TTFB}, {r.INP, &a.INP}, {r.CLS, &a.CLS}} {
		for i, n := range h.in {
			if i < 0 || i > maxBucket || n < 0 {
				return FieldAggregate{}, fmt.Errorf("field record: bucket %d count %d out of range", i, n)
			}
			h.out.addN(i, n)
		}
	}
	return a, nil
}

func hourKey(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(max(t.Unix(), 0)))
}

// fieldKey orders aggregates by site, then hour: the aggregates of a site
// over a time range are one cursor scan.
func fieldKey(a FieldAggregate) []byte {
	k := append(sitePrefix(a.Site), hourKey(a.Hour)...)
	for _, s := range []string{a.Release, a.Group, a.Device, a.Cache} {
		k = append(k, s...)
		k = append(k, 0)
	}
	return k
}

// AddFieldAggregates adds the counts of aggs to the stored ones with the
// same site, hour, release, group, device and cache status, in one
// transaction: all or none. Hours are truncated to the UTC hour.
func (st *Store) AddFieldAggregates(aggs []FieldAggregate) error {
	var errs []error
	for _, a := range aggs {
		errs = append(errs, checkName("site", a.Site), checkName("release", a.Release), checkName("group", a.Group),
			checkName("device", a.Device), checkName("cache", a.Cache))
		if a.Hour.IsZero() {
			errs = append(errs, errors.New("no hour"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("add field aggregates: %w", err)
	}
	err := st.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketField)
		for _, a := range aggs {
			a.Hour = a.Hour.UTC().Truncate(time.Hour)
			k := fieldKey(a)
			if old := b.Get(k); old != nil {
				prev, err := decodeField(old)
				if err != nil {
					return fmt.Errorf("key %q: %w", k, err)
				}
				prev.Merge(a)
				a = prev
			}
			v, err := json.Marshal(recordOf(a))
			if err != nil {
				return err
			}
			if err := b.Put(k, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add field aggregates: %w", err)
	}
	return nil
}

// FieldAggregates returns the aggregates of site for every hour that
// overlaps [from, to), by hour, then release, group, device and cache
// status. Each one is a separate copy.
func (st *Store) FieldAggregates(site string, from, to time.Time) ([]FieldAggregate, error) {
	end := to.Truncate(time.Hour)
	if end.Before(to) {
		end = end.Add(time.Hour) // the hour that holds to overlaps [from, to)
	}
	out, err := scan(st, bucketField, sitePrefix(site), hourKey(from.UTC().Truncate(time.Hour)), hourKey(end), decodeField)
	if err != nil {
		return nil, fmt.Errorf("read field aggregates: %w", err)
	}
	return out, nil
}

// fieldEndedBy reports whether the hour of the field aggregate keyed k
// ended by before (the retention bound of Prune).
func fieldEndedBy(k []byte, before time.Time) bool {
	i := bytes.IndexByte(k, 0)
	if i < 0 || len(k) < i+9 {
		return false // not a key this version writes
	}
	hour := time.Unix(int64(binary.BigEndian.Uint64(k[i+1:i+9])), 0)
	return !hour.Add(time.Hour).After(before)
}
