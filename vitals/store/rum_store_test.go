package store

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestFieldHistogramQuantiles(t *testing.T) {
	var empty FieldHistogram
	if v, ok := empty.Quantile(0.75); ok {
		t.Errorf("empty Quantile(0.75) = %v, true; want false", v)
	}
	tests := []struct {
		name   string
		values []float64
		q      float64
		want   float64
	}{
		{"one value", []float64{1234}, 0.75, 1234},
		{"p75 of 1..100", seq(1, 100), 0.75, 75},
		{"p50 of 1..100", seq(1, 100), 0.5, 50},
		{"max", seq(1, 100), 1, 100},
		{"CLS", []float64{0, 0, 0, 0.05, 0.12, 0.3}, 0.75, 0.12},
		{"CLS zeros", []float64{0, 0, 0, 0.2}, 0.75, 0},
		{"upper bound", []float64{60000}, 0.75, 60000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h FieldHistogram
			for _, v := range tc.values {
				h.Add(v)
			}
			got, ok := h.Quantile(tc.q)
			if !ok || math.Abs(got-tc.want) > tc.want*0.02 {
				t.Errorf("Quantile(%v) = %v, %v; want %v within 2%%", tc.q, got, ok, tc.want)
			}
			if h.Count() != int64(len(tc.values)) {
				t.Errorf("Count() = %d, want %d", h.Count(), len(tc.values))
			}
		})
	}
	for _, q := range []float64{0, -1, 1.5, math.NaN()} {
		var h FieldHistogram
		h.Add(1)
		if _, ok := h.Quantile(q); ok {
			t.Errorf("Quantile(%v) ok, want false", q)
		}
	}
}

func seq(from, to int) []float64 {
	var out []float64
	for i := from; i <= to; i++ {
		out = append(out, float64(i))
	}
	return out
}

func TestFieldHistogramMergeAndEach(t *testing.T) {
	var a, b FieldHistogram
	a.Add(100)
	a.Add(2000)
	b.Add(100)
	b.Add(50)
	a.Merge(b)
	var vals []float64
	var ns []int64
	a.Each(func(v float64, n int64) {
		vals = append(vals, math.Round(v))
		ns = append(ns, n)
	})
	if !slices.IsSorted(vals) || len(vals) != 3 || fmt.Sprint(ns) != "[1 2 1]" {
		t.Errorf("Each after Merge = %v %v, want 3 increasing values with counts [1 2 1]", vals, ns)
	}
	if b.Count() != 2 {
		t.Errorf("Merge changed its argument: Count() = %d", b.Count())
	}
}

func fieldAgg(site string, hour time.Time, rel, group string, views, sessions int64, lcps ...float64) FieldAggregate {
	a := FieldAggregate{Site: site, Hour: hour, Release: rel, Group: group, Device: "mobile", Cache: "hit", PageViews: views, Sessions: sessions}
	for _, v := range lcps {
		a.LCP.Add(v)
	}
	return a
}

func TestFieldAggregatesRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "edgevitals.db")
	st := openTestStore(t, path)
	h0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	first := fieldAgg("blog", h0.Add(25*time.Minute), "v42", "home", 2, 1, 1000, 1400)
	first.Conversions = map[string]int64{"order": 1}
	first.CLS.Add(0.1)
	err := st.AddFieldAggregates([]FieldAggregate{
		first,
		fieldAgg("blog", h0, "v42", "article", 1, 1, 2000),
		fieldAgg("blog", h0.Add(time.Hour), "v43", "home", 1, 0, 3000),
		fieldAgg("blog", h0.Add(2*time.Hour), "v43", "home", 1, 0),
		fieldAgg("blog2", h0, "v42", "home", 7, 7),
	})
	if err != nil {
		t.Fatal(err)
	}
	// A second flush of the same key adds up.
	more := fieldAgg("blog", h0.Add(59*time.Minute), "v42", "home", 1, 1, 5000)
	more.Conversions = map[string]int64{"order": 2, "signup": 1}
	if err := st.AddFieldAggregates([]FieldAggregate{more}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st = openTestStore(t, path) // survives a reopen

	key := func(a FieldAggregate) string {
		return fmt.Sprintf("%s %s %s %s pv=%d s=%d c=%v lcp=%d cls=%d", a.Hour.Format("15:04"), a.Release, a.Group, a.Cache,
			a.PageViews, a.Sessions, a.Conversions, a.LCP.Count(), a.CLS.Count())
	}
	tests := []struct {
		name     string
		from, to time.Time
		want     []string
	}{
		{"one hour", h0, h0.Add(time.Hour), []string{
			"09:00 v42 article hit pv=1 s=1 c=map[] lcp=1 cls=0",
			"09:00 v42 home hit pv=3 s=2 c=map[order:3 signup:1] lcp=3 cls=1",
		}},
		{"hours overlapping the range", h0.Add(30 * time.Minute), h0.Add(61 * time.Minute), []string{
			"09:00 v42 article hit pv=1 s=1 c=map[] lcp=1 cls=0",
			"09:00 v42 home hit pv=3 s=2 c=map[order:3 signup:1] lcp=3 cls=1",
			"10:00 v43 home hit pv=1 s=0 c=map[] lcp=1 cls=0",
		}},
		{"to is exclusive", h0.Add(time.Hour), h0.Add(2 * time.Hour), []string{"10:00 v43 home hit pv=1 s=0 c=map[] lcp=1 cls=0"}},
		{"before anything", h0.Add(-5 * time.Hour), h0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			aggs, err := st.FieldAggregates("blog", tc.from, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range aggs {
				if a.Site != "blog" || a.Device != "mobile" {
					t.Errorf("aggregate of %q, %q from a scan of blog", a.Site, a.Device)
				}
				got = append(got, key(a))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("FieldAggregates(%v, %v):\n got %q\nwant %q", tc.from.Format("15:04"), tc.to.Format("15:04"), got, tc.want)
			}
		})
	}
	aggs, _ := st.FieldAggregates("blog", h0, h0.Add(time.Hour))
	if p, ok := aggs[1].LCP.Quantile(0.5); !ok || math.Abs(p-1400) > 28 {
		t.Errorf("stored median LCP of [1000 1400 5000] = %v, want 1400 within 2%%", p)
	}

	n, err := st.Prune(h0.Add(90 * time.Minute)) // the 10:00 hour has not ended
	if err != nil || n != 3 {
		t.Errorf("Prune = %d, %v; want 3 (both sites' 09:00 hour)", n, err)
	}
	if left, _ := st.FieldAggregates("blog", h0, h0.Add(3*time.Hour)); len(left) != 2 {
		t.Errorf("after prune %d aggregates left, want 2", len(left))
	}
}

func TestFieldAggregatesRejects(t *testing.T) {
	st := openTestStore(t, filepath.Join(t.TempDir(), "edgevitals.db"))
	h0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for _, a := range []FieldAggregate{
		fieldAgg("bl\x00og", h0, "v1", "home", 1, 1),
		fieldAgg("blog", time.Time{}, "v1", "home", 1, 1),
		fieldAgg("blog", h0, "v\x001", "home", 1, 1),
	} {
		if err := st.AddFieldAggregates([]FieldAggregate{fieldAgg("blog", h0, "ok", "home", 1, 1), a}); err == nil {
			t.Errorf("AddFieldAggregates(%+v) = nil, want an error", a)
		}
	}
	if aggs, _ := st.FieldAggregates("blog", h0, h0.Add(time.Hour)); len(aggs) != 0 {
		t.Errorf("a rejected batch stored %d aggregates, want none (all or nothing)", len(aggs))
	}
	// A record from a newer edgevitals is an error, not a misread.
	err := st.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketField)
		if err != nil {
			return err
		}
		return b.Put(fieldKey(fieldAgg("blog", h0, "v9", "home", 0, 0)), []byte(`{"v":2}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.FieldAggregates("blog", h0, h0.Add(time.Hour)); err == nil {
		t.Error("FieldAggregates read a version 2 record without error")
	}
	if err := st.AddFieldAggregates([]FieldAggregate{fieldAgg("blog", h0, "v9", "home", 1, 1)}); err == nil || errors.Unwrap(err) == nil {
		t.Errorf("AddFieldAggregates over a version 2 record = %v, want an error", err)
	}
}
