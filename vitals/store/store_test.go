package store

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func dur(d time.Duration) *time.Duration { return &d }
func flt(v float64) *float64             { return &v }

func openTestStore(t *testing.T, path string) *Store {
	t.Helper()
	st, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestStoreSamplesRoundTripAndRange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "edgevitals.db")
	st := openTestStore(t, path)
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	full := Sample{URL: "http://blog/", Profile: "mobile", At: t0, LCP: dur(1200 * time.Millisecond), FCP: dur(800 * time.Millisecond),
		TTFB: dur(90 * time.Millisecond), TBT: dur(0), CLS: flt(0), TransferBytes: 12345, Requests: 7, CacheStatus: "edgevitals; hit", Took: 4 * time.Second}
	add := func(site, page string, s Sample) {
		t.Helper()
		if err := st.AddSample(site, page, s); err != nil {
			t.Fatal(err)
		}
	}
	add("blog", "/", full)
	sameTime := full
	sameTime.LCP = nil // unmeasured stays unmeasured
	add("blog", "/", sameTime)
	later := full
	later.At = t0.Add(time.Hour)
	add("blog", "/", later)
	desktop := full
	desktop.Profile = "desktop"
	add("blog", "/", desktop)
	add("blog", "/about", full)
	add("blog2", "/", full)

	tests := []struct {
		name                string
		site, page, profile string
		from, to            time.Time
		want                []Sample
	}{
		{"one page and profile", "blog", "/", "mobile", t0, t0.Add(2 * time.Hour), []Sample{full, sameTime, later}},
		{"to is exclusive", "blog", "/", "mobile", t0, t0.Add(time.Hour), []Sample{full, sameTime}},
		{"from is inclusive", "blog", "/", "mobile", t0.Add(time.Hour), t0.Add(2 * time.Hour), []Sample{later}},
		{"other profile", "blog", "/", "desktop", t0, t0.Add(time.Hour), []Sample{desktop}},
		{"site name is not a prefix match", "blo", "/", "mobile", t0, t0.Add(2 * time.Hour), nil},
		{"empty range", "blog", "/", "mobile", t0.Add(time.Hour), t0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := st.Samples(tt.site, tt.page, tt.profile, tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if !samplesEqual(got, tt.want) {
				t.Errorf("Samples(%q, %q, %q) = %v, want %v", tt.site, tt.page, tt.profile, got, tt.want)
			}
		})
	}

	// The samples survive a restart.
	st.Close()
	st2 := openTestStore(t, path)
	got, err := st2.Samples("blog", "/", "mobile", t0, t0.Add(2*time.Hour))
	if err != nil || len(got) != 3 {
		t.Fatalf("after reopen: %d samples, %v; want 3", len(got), err)
	}

	n, err := st2.Prune(t0.Add(30 * time.Minute))
	if err != nil || n != 5 {
		t.Fatalf("Prune = %d, %v; want 5 samples older than the bound", n, err)
	}
	got, err = st2.Samples("blog", "/", "mobile", time.Time{}, t0.Add(2*time.Hour))
	if err != nil || !samplesEqual(got, []Sample{later}) {
		t.Errorf("after prune: %v, %v; want only the later sample", got, err)
	}
}

func samplesEqual(a, b []Sample) bool {
	return slices.EqualFunc(a, b, func(x, y Sample) bool {
		xj, _ := x.MarshalJSON() // Samples always encode
		yj, _ := y.MarshalJSON()
		return string(xj) == string(yj)
	})
}

func TestStoreRejects(t *testing.T) {
	st := openTestStore(t, filepath.Join(t.TempDir(), "s.db"))
	at := time.Unix(1e9, 0)
	tests := []struct {
		name       string
		site, page string
		s          Sample
	}{
		{"nul in site", "a\x00b", "/", Sample{At: at}},
		{"nul in profile", "a", "/", Sample{At: at, Profile: "m\x00"}},
		{"no time", "a", "/", Sample{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := st.AddSample(tt.site, tt.page, tt.s); err == nil {
				t.Errorf("AddSample(%q, %q) = nil, want an error", tt.site, tt.page)
			}
		})
	}
}

func TestStoreNewerVersionAndLockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	st := openTestStore(t, path)
	if _, err := OpenStore(path); err == nil {
		t.Fatal("second OpenStore of a held file = nil error, want one")
	}
	st.Close()

	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyVersion, []byte{0, 0, 0, 0, 0, 0, 0, 9})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStore(path); !errors.Is(err, ErrStoreVersion) {
		t.Errorf("OpenStore of a version 9 file = %v, want ErrStoreVersion", err)
	}
}
