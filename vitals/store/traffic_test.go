package store

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func buckets(at map[int]uint64) []uint64 {
	b := make([]uint64, len(originBounds)+1)
	for i, n := range at {
		b[i] = n
	}
	return b
}

func TestStoreTrafficRoundTripAndRange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	st := openTestStore(t, path)
	t0 := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	p1 := TrafficPoint{Site: "blog", At: t0, Hit: 90, Stale: 2, Miss: 5, Pass: 3, Bypass: 1, Error: 1, Origin: 9, OriginErrors: 1,
		OriginBuckets: buckets(map[int]uint64{3: 4, 5: 5}), Uncacheable: map[string]uint64{"set_cookie": 3}}
	p2 := TrafficPoint{Site: "blog", At: t0.Add(time.Minute), Hit: 10}
	p3 := TrafficPoint{Site: "blog", At: t0.Add(2 * time.Minute), Miss: 1, Origin: 1, OriginBuckets: buckets(map[int]uint64{16: 1})}
	other := TrafficPoint{Site: "blog2", At: t0, Hit: 1}
	for _, p := range []TrafficPoint{p3, p1, p2, other} {
		if err := st.AddTraffic(p); err != nil {
			t.Fatalf("AddTraffic(%+v) = %v", p, err)
		}
	}

	tests := []struct {
		name     string
		site     string
		from, to time.Time
		want     []TrafficPoint
	}{
		{"all, oldest first", "blog", t0, t0.Add(time.Hour), []TrafficPoint{p1, p2, p3}},
		{"to is exclusive", "blog", t0, t0.Add(2 * time.Minute), []TrafficPoint{p1, p2}},
		{"from is inclusive", "blog", t0.Add(time.Minute), t0.Add(time.Hour), []TrafficPoint{p2, p3}},
		{"site name is not a prefix match", "blo", t0, t0.Add(time.Hour), nil},
		{"other site", "blog2", t0, t0.Add(time.Hour), []TrafficPoint{other}},
		{"empty range", "blog", t0.Add(time.Hour), t0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := st.Traffic(tt.site, tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if !trafficEqual(got, tt.want) {
				t.Errorf("Traffic(%q) = %+v, want %+v", tt.site, got, tt.want)
			}
		})
	}

	// A second point of the same minute adds to the first.
	more := TrafficPoint{Site: "blog", At: t0, Hit: 10, Origin: 1, OriginBuckets: buckets(map[int]uint64{3: 1}),
		Uncacheable: map[string]uint64{"set_cookie": 1, "private": 2}}
	if err := st.AddTraffic(more); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st = openTestStore(t, path) // and it all survives a restart
	got, err := st.Traffic("blog", t0, t0.Add(time.Minute))
	want := p1
	want.Hit, want.Origin = 100, 10
	want.OriginBuckets = buckets(map[int]uint64{3: 5, 5: 5})
	want.Uncacheable = map[string]uint64{"set_cookie": 4, "private": 2}
	if err != nil || !trafficEqual(got, []TrafficPoint{want}) {
		t.Errorf("after a second point of the minute and a reopen: %+v, %v; want %+v", got, err, want)
	}
	if p1.Hit != 90 || p1.Uncacheable["set_cookie"] != 3 {
		t.Errorf("AddTraffic changed the caller's point: %+v", p1)
	}
}

func trafficEqual(a, b []TrafficPoint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if !x.At.Equal(y.At) {
			return false
		}
		x.At, y.At = time.Time{}, time.Time{}
		if len(x.Uncacheable) == 0 && len(y.Uncacheable) == 0 {
			x.Uncacheable, y.Uncacheable = nil, nil
		}
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

func TestStoreTrafficRejects(t *testing.T) {
	st := openTestStore(t, filepath.Join(t.TempDir(), "s.db"))
	at := time.Unix(1.8e9, 0)
	many := map[string]uint64{}
	for i := range MaxReasons + 1 {
		many[strings.Repeat("r", i+1)] = 1
	}
	tests := []struct {
		name string
		p    TrafficPoint
	}{
		{"no site", TrafficPoint{At: at}},
		{"no time", TrafficPoint{Site: "blog"}},
		{"nul in site", TrafficPoint{Site: "b\x00", At: at}},
		{"bucket count", TrafficPoint{Site: "blog", At: at, OriginBuckets: []uint64{1, 2, 3}}},
		{"empty reason", TrafficPoint{Site: "blog", At: at, Uncacheable: map[string]uint64{"": 1}}},
		{"too many reasons", TrafficPoint{Site: "blog", At: at, Uncacheable: many}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := st.AddTraffic(tt.p); err == nil {
				t.Errorf("AddTraffic(%s) = nil, want an error", tt.name)
			}
		})
	}
}

func TestStorePrune(t *testing.T) {
	st := openTestStore(t, filepath.Join(t.TempDir(), "s.db"))
	t0 := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 { // minutes ending at t0, +1h, +2h, +3h
		must(st.AddTraffic(TrafficPoint{Site: "blog", At: t0.Add(time.Duration(i) * time.Hour), Hit: 1}))
	}
	must(st.AddSample("blog", "/", Sample{Profile: "mobile", At: t0}))
	must(st.AddSample("blog", "/", Sample{Profile: "mobile", At: t0.Add(3 * time.Hour)}))
	for _, r := range []Release{
		{Site: "blog", ID: "older", At: t0.Add(-2 * time.Hour)}, // its window ended at t0
		{Site: "blog", ID: "old", At: t0},                       // its window ends at +3h: kept
		{Site: "blog", ID: "new", At: t0.Add(3 * time.Hour)},
		{Site: "shop", ID: "only", At: t0}, // old, but what the shop runs now
	} {
		must(st.AddRelease(r))
	}

	n, err := st.Prune(t0.Add(90 * time.Minute))
	if err != nil || n != 4 {
		t.Fatalf("Prune = %d, %v; want 4 (2 traffic minutes, 1 sample, 1 release)", n, err)
	}
	pts, err := st.Traffic("blog", time.Time{}, t0.Add(24*time.Hour))
	must(err)
	if len(pts) != 2 || !pts[0].At.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("traffic after prune: %+v, want the minutes at +2h and +3h", pts)
	}
	rels, err := st.Releases("")
	must(err)
	if got := ids(rels); !reflect.DeepEqual(got, []string{"blog/old", "shop/only", "blog/new"}) {
		t.Errorf("releases after prune: %v, want [blog/old shop/only blog/new]", got)
	}
}
