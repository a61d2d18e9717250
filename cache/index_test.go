package cache

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// taggedPage is page i of a Drupal-like site: a 2 KiB body and the 256 cache tags tags gives.
func taggedPage(i int, now time.Time, tags func(i int) []string) *Entry {
	return &Entry{
		Key: fmt.Sprintf("https://drupal.example/node/%d", i), Site: "drupal", Status: 200,
		Body: []byte(strings.Repeat("x", 2048)), Keys: tags(i),
		RequestTime: now, ResponseTime: now,
		Policy: Policy{Store: true, Freshness: time.Hour, Hold: time.Hour},
	}
}

// Shapes of 256 cache tags per page.
var tagShapes = []struct {
	name string
	tags func(i int) []string
}{
	// A quarter site-wide (every page), half from a pool of 1,000 entities pages share, a
	// quarter the page's own.
	{"drupal", func(i int) []string {
		keys := make([]string, 0, 256)
		for k := range 64 {
			keys = append(keys, fmt.Sprintf("config:block.block.region_%d", k))
		}
		for k := range 128 {
			keys = append(keys, fmt.Sprintf("node:%d", (i*131+k*7)%1000))
		}
		for k := range 64 {
			keys = append(keys, fmt.Sprintf("paragraph:%d:%d", i, k))
		}
		return keys
	}},
	// Every tag the page's own: one index slot each.
	{"unique", func(i int) []string {
		keys := make([]string, 0, 256)
		for k := range 256 {
			keys = append(keys, fmt.Sprintf("paragraph:%d:%d", i, k))
		}
		return keys
	}},
	// Every tag shared by exactly two pages: the smallest sets, the dearest per member.
	{"pairs", func(i int) []string {
		keys := make([]string, 0, 256)
		for k := range 256 {
			keys = append(keys, fmt.Sprintf("media:%d:%d", i/2, k))
		}
		return keys
	}},
}

// TestStoreHeapWithinBudget: 3,000 pages with 256 cache tags each in a small budget. The
// store's bytes stay within the budget, and the heap it holds (entries, tags, purge index,
// ristretto's items) stays within a bound of it: the index is in the budget.
func TestStoreHeapWithinBudget(t *testing.T) {
	const maxBytes = 8 << 20
	// Bounds on the heap the store holds. Live: the budget with a quarter of slack for what
	// the costs round (map load factors, size classes), plus ristretto's fixed buffers. In
	// use: half the budget more, for spans that churn leaves part full.
	const liveBound = maxBytes*5/4 + 2<<20
	const inUseBound = maxBytes*3/2 + 4<<20
	for _, shape := range tagShapes {
		t.Run(shape.name, func(t *testing.T) {
			c := newClock()
			s := newStore(t, Options{MaxBytes: maxBytes, Clock: c.Now})
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			stored := 0
			for i := range 3000 {
				if s.Set(taggedPage(i, c.Now(), shape.tags)) {
					stored++
				}
				if b := s.Bytes(); b > maxBytes {
					t.Fatalf("Bytes() = %d after %d pages, budget %d", b, i+1, maxBytes)
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			live := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			inUse := int64(after.HeapInuse) - int64(before.HeapInuse)
			t.Logf("%d pages stored, %d held, Bytes() = %d, live heap grew %d, in use %d",
				stored, s.Objects(), s.Bytes(), live, inUse)
			if stored == 0 || s.Objects() == 0 {
				t.Fatalf("nothing stored")
			}
			if live > liveBound {
				t.Errorf("live heap grew %d bytes for Bytes() = %d, want ≤ %d (1.25 × budget + 2 MiB)", live, s.Bytes(), liveBound)
			}
			if inUse > inUseBound {
				t.Errorf("heap in use grew %d bytes for Bytes() = %d, want ≤ %d (1.5 × budget + 4 MiB)", inUse, s.Bytes(), inUseBound)
			}
			runtime.KeepAlive(s)
		})
	}
}

// wantIndexEmpty fails unless the index holds nothing at all.
func wantIndexEmpty(t *testing.T, s *Store) {
	t.Helper()
	if keys, tags, refs, wide := s.idx.size(); keys+tags+refs+wide != 0 || len(s.idx.sites) != 0 || s.Objects() != 0 {
		t.Errorf("index holds %d keys, %d surrogate keys, %d references, %d wide objects, %d sites, Objects() = %d; want all 0",
			keys, tags, refs, wide, len(s.idx.sites), s.Objects())
	}
}

// TestPurgeByKeyExact: purges find exactly the objects tagged, whether a key tags one object,
// a few or every one, and soft purges keep what they mark.
func TestPurgeByKeyExact(t *testing.T) {
	s := newStore(t, Options{Clock: newClock().Now})
	const n = 30
	for i := range n {
		mustSet(t, s, entry("blog", fmt.Sprintf("http://a/%d", i), "x", "all", fmt.Sprintf("group-%d", i/10), fmt.Sprintf("post-%d", i)))
	}
	present := func(i int) bool { return s.Get([]byte(fmt.Sprintf("http://a/%d", i)), nil) != nil }
	f := func(keys []string, soft bool, want int, gone func(i int) bool) {
		t.Helper()
		if got := s.PurgeKeys("blog", keys, soft); got != want {
			t.Errorf("PurgeKeys(%q, soft %v) = %d, want %d", keys, soft, got, want)
		}
		for i := range n {
			if present(i) == gone(i) {
				t.Errorf("after PurgeKeys(%q): object %d present %v, want %v", keys, i, present(i), !gone(i))
			}
		}
	}
	f([]string{"post-7"}, false, 1, func(i int) bool { return i == 7 })
	f([]string{"post-7", "nothing"}, false, 0, func(i int) bool { return i == 7 })
	f([]string{"group-0", "post-3"}, false, 9, func(i int) bool { return i < 10 })
	f([]string{"group-1"}, true, 10, func(i int) bool { return i < 10 })
	for i := 10; i < 20; i++ {
		if e := s.Get([]byte(fmt.Sprintf("http://a/%d", i)), nil); !e.Purged() {
			t.Errorf("object %d not marked by the soft purge", i)
		}
	}
	if _, _, refs, _ := s.idx.size(); refs != 3*20 {
		t.Errorf("index holds %d references for 20 objects of 3 keys, want 60", refs)
	}
	f([]string{"all"}, false, 20, func(int) bool { return true })
	wantIndexEmpty(t, s)
}

// TestPurgeByKeyAcrossVariants: the surrogate keys of a primary key are those of all its
// variants; replacing a variant drops only the keys no other variant carries.
func TestPurgeByKeyAcrossVariants(t *testing.T) {
	s := newStore(t, Options{Clock: newClock().Now})
	variant := func(lang string, keys ...string) *Entry {
		e := entry("blog", "http://a/", lang, keys...)
		e.Vary = []string{"accept-language"}
		e.VaryValues = [][]byte{[]byte(lang)}
		return e
	}
	mustSet(t, s, variant("en", "post-1", "en-only"))
	mustSet(t, s, variant("de", "post-1", "de-only"))
	mustSet(t, s, variant("en", "post-1", "en-new"))
	for _, tt := range []struct {
		key  string
		want int
	}{{"en-only", 0}, {"de-only", 2}} {
		if got := s.PurgeKeys("blog", []string{tt.key}, true); got != tt.want {
			t.Errorf("PurgeKeys(%q) = %d, want %d", tt.key, got, tt.want)
		}
	}
	if got := s.PurgeKeys("blog", []string{"post-1"}, false); got != 2 {
		t.Errorf("PurgeKeys(post-1) = %d, want both variants", got)
	}
	wantIndexEmpty(t, s)
}

// TestIndexEmptyAfterEvictions: objects the budget evicts leave the index with them; purging
// their keys afterwards finds nothing, and once the rest is deleted nothing is left.
func TestIndexEmptyAfterEvictions(t *testing.T) {
	s := newStore(t, Options{MaxBytes: 256 << 10, Clock: newClock().Now})
	const n = 2000
	for i := range n {
		s.Set(entry("blog", fmt.Sprintf("http://a/%d", i), strings.Repeat("x", 512),
			"all", fmt.Sprintf("term-%d", i%7), fmt.Sprintf("post-%d", i), fmt.Sprintf("pair-%d", i/2)))
	}
	if s.Evictions() == 0 {
		t.Fatalf("no eviction: the test needs a budget smaller than what it stores")
	}
	// The index holds exactly the keys of what is stored.
	held := s.idx.matching("", nil)
	want := 0
	for _, v := range held {
		tags, _ := v.tags()
		want += len(tags)
		if s.Get([]byte(v.key), nil) == nil {
			t.Errorf("index holds %q, which the store does not", v.key)
		}
	}
	if keys, _, refs, _ := s.idx.size(); int64(keys) != s.Objects() || refs != want {
		t.Errorf("index holds %d keys and %d references for %d objects with %d keys, want equal", keys, refs, s.Objects(), want)
	}
	evicted := 0
	for i := range n {
		if s.Get([]byte(fmt.Sprintf("http://a/%d", i)), nil) == nil {
			evicted++
			if got := s.PurgeKeys("blog", []string{fmt.Sprintf("post-%d", i)}, false); got != 0 {
				t.Fatalf("PurgeKeys(post-%d) of an evicted object = %d, want 0", i, got)
			}
		}
	}
	if evicted == 0 {
		t.Fatalf("every object still stored")
	}
	for _, v := range held {
		s.Delete([]byte(v.key))
	}
	wantIndexEmpty(t, s)
}

// TestWideObjectsPurgedByEveryKey: an object with more surrogate keys than the index holds,
// or a key longer than it holds, is stored and purged by any of its keys, by a scan.
func TestWideObjectsPurgedByEveryKey(t *testing.T) {
	many := make([]string, MaxKeys+1)
	for i := range many {
		many[i] = fmt.Sprintf("tag-%d", i)
	}
	long := strings.Repeat("k", MaxKeyBytes+1)
	tests := []struct {
		name  string
		keys  []string
		purge string
	}{
		{"too many keys, the last", many, many[MaxKeys]},
		{"too many keys, the first", many, many[0]},
		{"a key too long", []string{"post-1", long}, long},
		{"a key too long, the other key", []string{"post-1", long}, "post-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, Options{Clock: newClock().Now})
			mustSet(t, s, entry("blog", "http://a/wide", "wide", tt.keys...))
			mustSet(t, s, entry("blog", "http://a/narrow", "narrow", "post-1", "post-2"))
			if _, _, _, wide := s.idx.size(); wide != 1 {
				t.Errorf("%d wide objects, want 1", wide)
			}
			if got := s.PurgeKeys("blog", []string{tt.purge, "post-2"}, false); got != 2 {
				t.Errorf("PurgeKeys(%.20q..., post-2) = %d, want 2 (the wide object and the other)", tt.purge, got)
			}
			if s.Get([]byte("http://a/wide"), nil) != nil {
				t.Errorf("the wide object is still stored")
			}
			wantIndexEmpty(t, s)
		})
	}
	// A wide object that becomes narrow, and back, keeps the index exact.
	s := newStore(t, Options{Clock: newClock().Now})
	mustSet(t, s, entry("blog", "http://a/", "1", many...))
	mustSet(t, s, entry("blog", "http://a/", "2", "post-1"))
	if got := s.PurgeKeys("blog", []string{many[5]}, false); got != 0 {
		t.Errorf("PurgeKeys of a key the object lost = %d, want 0", got)
	}
	mustSet(t, s, entry("blog", "http://a/", "3", many...))
	if got := s.PurgeKeys("blog", []string{"post-1"}, false); got != 0 {
		t.Errorf("PurgeKeys of a key the object lost = %d, want 0", got)
	}
	if got := s.PurgeKeys("blog", []string{many[5]}, false); got != 1 {
		t.Errorf("PurgeKeys of a key of the wide object = %d, want 1", got)
	}
	wantIndexEmpty(t, s)
}

// TestSharedKeysInterned: a surrogate key carried by many objects is held once by the index
// and the objects stored after it (the first keeps its own copy).
func TestSharedKeysInterned(t *testing.T) {
	s := newStore(t, Options{Clock: newClock().Now})
	var es []*Entry
	for i := range 3 {
		e := entry("blog", fmt.Sprintf("http://a/%d", i), "x", string([]byte("home")), fmt.Sprintf("post-%d", i))
		mustSet(t, s, e)
		es = append(es, e)
	}
	for _, e := range es[2:] {
		if unsafe.StringData(e.Keys[0]) != unsafe.StringData(es[1].Keys[0]) {
			t.Errorf("%s: key %q not shared with the second object's", e.Key, e.Keys[0])
		}
	}
}

// TestIndexGivesBackWhatItHeld: after most objects are gone the index's maps are rebuilt, so
// its heap follows what it holds now, not what it held at its peak (Go maps never shrink).
func TestIndexGivesBackWhatItHeld(t *testing.T) {
	const n, kept = 40_000, 1_000
	vs := make([]*variants, n)
	for i := range vs {
		e := entry("blog", fmt.Sprintf("http://a/%d", i), "x", "all", fmt.Sprintf("post-%d", i), fmt.Sprintf("pair-%d", i/2), fmt.Sprintf("media-%d", i))
		vs[i] = &variants{key: e.Key, site: e.Site, entries: []*Entry{e}}
	}
	// heap is what an index grows the heap by once it holds vs[:kept] after holding vs[:peak].
	heap := func(peak int) (*index, int64) {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		x := newIndex()
		for _, v := range vs[:peak] {
			x.put(v, nil)
		}
		for _, v := range vs[kept:peak] {
			x.remove(v)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		return x, int64(after.HeapAlloc) - int64(before.HeapAlloc)
	}
	fresh, want := heap(kept)
	churned, got := heap(n)
	if got > 2*want+64<<10 {
		t.Errorf("an index holding %d objects after holding %d takes %d bytes, want ≤ 2 × %d (one that only held them) + 64 KiB", kept, n, got, want)
	}
	for _, x := range []*index{fresh, churned} {
		if k, tags, refs, _ := x.size(); k != kept || tags != 2*kept+kept/2+1 || refs != 4*kept {
			t.Errorf("index holds %d keys, %d surrogate keys, %d references; want %d, %d, %d", k, tags, refs, kept, 2*kept+kept/2+1, 4*kept)
		}
	}
	runtime.KeepAlive(vs)
}
