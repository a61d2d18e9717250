package cache

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// fillTagged stores n small entries of one site, each tagged with the given keys
// plus keysEach-1 keys of its own.
func fillTagged(tb testing.TB, s *Store, n, keysEach int, shared string) {
	tb.Helper()
	now := time.Now()
	for i := range n {
		keys := []string{shared}
		for k := 1; k < keysEach; k++ {
			keys = append(keys, fmt.Sprintf("post-%d-%d", i, k))
		}
		e := &Entry{
			Key:    fmt.Sprintf("https://www.example.com/articles/%d/", i),
			Site:   "blog",
			Status: 200,
			Body:   []byte("x"),
			Keys:   keys,
			Policy: Policy{Store: true, Freshness: time.Hour, Hold: time.Hour},

			RequestTime: now, ResponseTime: now,
		}
		if !s.Set(e) {
			tb.Fatalf("entry %d refused", i)
		}
	}
}

// BenchmarkPurgeKey10k purges one surrogate key that tags 10,000 objects
// (a WordPress "home" or a term shared by every article).
func BenchmarkPurgeKey10k(b *testing.B) {
	s, err := New(Options{MaxBytes: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		fillTagged(b, s, 10_000, 1, "home")
		b.StartTimer()
		if n := s.PurgeKeys("blog", []string{"home"}, false); n != 10_000 {
			b.Fatalf("purged %d, want 10000", n)
		}
	}
}

// BenchmarkSoftPurgeKey10k is the same with soft purge (mark stale, keep).
func BenchmarkSoftPurgeKey10k(b *testing.B) {
	s, err := New(Options{MaxBytes: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	fillTagged(b, s, 10_000, 1, "home")
	b.ReportAllocs()
	for b.Loop() {
		if n := s.PurgeKeys("blog", []string{"home"}, true); n != 10_000 {
			b.Fatalf("purged %d, want 10000", n)
		}
	}
}

// BenchmarkIndexMemory reports the heap that 100,000 stored objects with 5 surrogate keys
// each (one shared by all, four their own) cost beyond their 1-byte bodies: the key index, the
// entries (key, tags) and ristretto's per-item bookkeeping, in B/object.
func BenchmarkIndexMemory(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		s, err := New(Options{MaxBytes: 1 << 30})
		if err != nil {
			b.Fatal(err)
		}
		// Measured from the empty store: ristretto's counters are sized
		// from MaxBytes up front and are not the index's cost.
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		fillTagged(b, s, n, 5, "home")
		runtime.GC()
		runtime.ReadMemStats(&after)
		if got := s.Objects(); got != n {
			b.Fatalf("objects = %d", got)
		}
		grown := float64(after.HeapAlloc - before.HeapAlloc)
		b.ReportMetric(grown/n-1, "B/object")
		b.ReportMetric(float64(s.Bytes())/n, "costB/object")
		b.ReportMetric(grown/(1<<20), "heapMiB")
		s.Close()
	}
}

// BenchmarkKeyIndexOnly is the surrogate-key index by itself: the same
// 100,000 objects with 5 keys each are built first, and only what indexing
// them adds to the heap is counted (maps of primary keys and of keys to
// objects; the strings are the entries' own). BenchmarkIndexMemory counts
// entries, index and the store's bookkeeping together.
func BenchmarkKeyIndexOnly(b *testing.B) {
	const n = 100_000
	for b.Loop() {
		vs := make([]*variants, n)
		for i := range vs {
			keys := []string{"home"}
			for k := 1; k < 5; k++ {
				keys = append(keys, fmt.Sprintf("post-%d-%d", i, k))
			}
			key := fmt.Sprintf("https://www.example.com/articles/%d/", i)
			vs[i] = &variants{key: key, site: "blog", entries: []*Entry{{Key: key, Site: "blog", Keys: keys}}}
		}
		x := newIndex()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for _, v := range vs {
			x.put(v, nil)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if got := x.objects.Load(); got != n {
			b.Fatalf("objects = %d", got)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heapB/object")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heapMiB")
		runtime.KeepAlive(vs)
	}
}
