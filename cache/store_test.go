package cache

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable clock for tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newStore(t testing.TB, o Options) *Store {
	t.Helper()
	if o.MaxBytes == 0 {
		o.MaxBytes = 1 << 20
	}
	s, err := New(o)
	if err != nil {
		t.Fatalf("New(%+v): %v", o, err)
	}
	t.Cleanup(s.Close)
	return s
}

// entry builds an entry for site stored at t0, fresh for a minute, tagged with keys.
func entry(site, key, body string, keys ...string) *Entry {
	return &Entry{
		Key: key, Site: site, Status: 200, Body: []byte(body),
		Header:       fields("Content-Type", "text/html"),
		Keys:         keys,
		RequestTime:  t0,
		ResponseTime: t0,
		Policy:       Policy{Store: true, Freshness: time.Minute, Hold: time.Hour},
	}
}

func mustSet(t *testing.T, s *Store, e *Entry) {
	t.Helper()
	if !s.Set(e) {
		t.Fatalf("Set(%q) = false, want stored", e.Key)
	}
}

func body(e *Entry) string {
	if e == nil {
		return "<nil>"
	}
	return string(e.Body)
}

func TestNewErrors(t *testing.T) {
	for _, n := range []int64{0, -1} {
		if _, err := New(Options{MaxBytes: n}); err == nil || !strings.Contains(err.Error(), "MaxBytes: must be > 0") {
			t.Errorf("New(MaxBytes=%d) = %v, want a MaxBytes error", n, err)
		}
	}
}

func TestStoreSetGet(t *testing.T) {
	c := newClock()
	s := newStore(t, Options{Clock: c.Now})
	mustSet(t, s, entry("blog", "http://a/x", "one"))
	if got := s.Get([]byte("http://a/x"), nil); body(got) != "one" {
		t.Errorf("Get(http://a/x) = %s, want one", body(got))
	}
	if got := s.Get([]byte("http://a/y"), nil); got != nil {
		t.Errorf("Get(http://a/y) = %s, want nil", body(got))
	}
	if got := s.Get(nil, nil); got != nil {
		t.Errorf("Get(nil) = %s, want nil", body(got))
	}
	mustSet(t, s, entry("blog", "http://a/x", "two"))
	if got := s.Get([]byte("http://a/x"), nil); body(got) != "two" {
		t.Errorf("Get after replace = %s, want two", body(got))
	}
	if s.Objects() != 1 || s.Bytes() <= 0 {
		t.Errorf("Objects() = %d, Bytes() = %d; want 1 and > 0", s.Objects(), s.Bytes())
	}
}

func TestStoreSetRefuses(t *testing.T) {
	c := newClock()
	s := newStore(t, Options{MaxBytes: 4096, Clock: c.Now})
	big := entry("blog", "http://a/big", strings.Repeat("x", 5000))
	noHold := entry("blog", "http://a/nohold", "x")
	noHold.Policy.Hold = 0
	past := entry("blog", "http://a/past", "x")
	past.ResponseTime = t0.Add(-2 * time.Hour)
	bad := entry("blog", "http://a/bad", "x")
	bad.Vary = []string{"accept"}
	for _, e := range []*Entry{nil, big, noHold, past, bad, {Policy: Policy{Hold: time.Hour}}} {
		if s.Set(e) {
			t.Errorf("Set(%v) = true, want refused", e)
		}
	}
	if s.Objects() != 0 {
		t.Errorf("Objects() = %d after refusals, want 0", s.Objects())
	}
}

func TestStoreVary(t *testing.T) {
	c := newClock()
	s := newStore(t, Options{Clock: c.Now})
	gz := header{"Accept-Encoding": {"gzip"}}
	br := header{"Accept-Encoding": {"br"}}
	variant := func(b string, req header) *Entry {
		e := entry("blog", "http://a/", b)
		e.Vary = []string{"accept-encoding"}
		e.VaryValues = AppendVaryValues(nil, e.Vary, req)
		return e
	}
	mustSet(t, s, variant("gzip-1", gz))
	mustSet(t, s, variant("br-1", br))
	mustSet(t, s, variant("gzip-2", gz))
	tests := []struct {
		req  Header
		want string
	}{
		{gz, "gzip-2"},
		{br, "br-1"},
		{header{"Accept-Encoding": {" gzip "}}, "gzip-2"},
		{header{}, "<nil>"},
		{nil, "<nil>"},
	}
	for _, tt := range tests {
		if got := s.Get([]byte("http://a/"), tt.req); body(got) != tt.want {
			t.Errorf("Get(%v) = %s, want %s", tt.req, body(got), tt.want)
		}
	}
	if s.Objects() != 2 {
		t.Errorf("Objects() = %d, want 2 variants", s.Objects())
	}
	// The origin stops varying: the old variants go.
	mustSet(t, s, entry("blog", "http://a/", "plain"))
	if got := s.Get([]byte("http://a/"), br); body(got) != "plain" || s.Objects() != 1 {
		t.Errorf("Get after Vary dropped = %s with %d objects, want plain and 1", body(got), s.Objects())
	}
	if n := s.Delete([]byte("http://a/")); n != 1 {
		t.Errorf("Delete = %d, want 1", n)
	}
}

func TestStoreVariantsExpire(t *testing.T) {
	c := newClock()
	s := newStore(t, Options{Clock: c.Now})
	e1 := entry("blog", "http://a/", "de")
	e1.Vary, e1.VaryValues = []string{"accept-language"}, [][]byte{[]byte("de")}
	mustSet(t, s, e1)
	c.Advance(2 * time.Hour) // past e1's Hold
	e2 := entry("blog", "http://a/", "en")
	e2.ResponseTime = c.Now()
	e2.Vary, e2.VaryValues = []string{"accept-language"}, [][]byte{[]byte("en")}
	mustSet(t, s, e2)
	if s.Objects() != 1 || s.Get([]byte("http://a/"), header{"Accept-Language": {"de"}}) != nil {
		t.Errorf("a variant past its hold was kept: %d objects", s.Objects())
	}
}

func TestStoreDelete(t *testing.T) {
	s := newStore(t, Options{Clock: newClock().Now})
	mustSet(t, s, entry("blog", "http://a/1", "1", "post"))
	mustSet(t, s, entry("blog", "http://a/2", "2", "post"))
	if n := s.Delete([]byte("http://a/1")); n != 1 {
		t.Errorf("Delete(http://a/1) = %d, want 1", n)
	}
	if n := s.Delete([]byte("http://a/1")); n != 0 {
		t.Errorf("second Delete(http://a/1) = %d, want 0", n)
	}
	if s.Get([]byte("http://a/1"), nil) != nil || s.Get([]byte("http://a/2"), nil) == nil {
		t.Errorf("Delete removed the wrong entry")
	}
	if n := s.PurgeKeys("blog", []string{"post"}, false); n != 1 {
		t.Errorf("PurgeKeys after Delete = %d, want 1 (the index forgot the deleted key)", n)
	}
}

// fill stores, for site blog: /post/1..3 tagged post-N and home, /page/about tagged page,
// and for site shop: /post/1 tagged home.
func fill(t *testing.T, s *Store) {
	t.Helper()
	for i := 1; i <= 3; i++ {
		mustSet(t, s, entry("blog", fmt.Sprintf("https://blog.example/post/%d", i), "p", fmt.Sprintf("post-%d", i), "home"))
	}
	mustSet(t, s, entry("blog", "https://blog.example/page/about", "a", "page"))
	mustSet(t, s, entry("shop", "https://shop.example/post/1", "s", "home"))
}

func TestStorePurge(t *testing.T) {
	all := []string{"https://blog.example/post/1", "https://blog.example/post/2", "https://blog.example/post/3",
		"https://blog.example/page/about", "https://shop.example/post/1"}
	tests := []struct {
		name   string
		purge  func(s *Store, soft bool) int
		purged []string
	}{
		{"one key tags many", func(s *Store, soft bool) int { return s.PurgeKeys("blog", []string{"home"}, soft) }, all[:3]},
		{"several keys", func(s *Store, soft bool) int { return s.PurgeKeys("blog", []string{"post-2", "page", "none"}, soft) }, []string{all[1], all[3]}},
		{"keys of another site", func(s *Store, soft bool) int { return s.PurgeKeys("shop", []string{"home"}, soft) }, all[4:]},
		{"unknown site", func(s *Store, soft bool) int { return s.PurgeKeys("nope", []string{"home"}, soft) }, nil},
		{"one primary key", func(s *Store, soft bool) int { return s.PurgeKey("blog", []byte(all[1]), soft) }, all[1:2]},
		{"primary key of another site", func(s *Store, soft bool) int { return s.PurgeKey("shop", []byte(all[1]), soft) }, nil},
		{"path prefix", func(s *Store, soft bool) int { return s.PurgePrefix("blog", "/post/", soft) }, all[:3]},
		{"key prefix", func(s *Store, soft bool) int { return s.PurgePrefix("blog", "https://blog.example/page", soft) }, all[3:4]},
		{"match", func(s *Store, soft bool) int {
			return s.PurgeMatch("blog", func(k string) bool { return strings.HasSuffix(k, "/2") }, soft)
		}, all[1:2]},
		{"all of a site", func(s *Store, soft bool) int { return s.PurgeAll("blog", soft) }, all[:4]},
		{"all sites", func(s *Store, soft bool) int { return s.PurgeAll("", soft) }, all},
	}
	for _, tt := range tests {
		for _, soft := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s soft=%v", tt.name, soft), func(t *testing.T) {
				s := newStore(t, Options{Clock: newClock().Now})
				fill(t, s)
				if n := tt.purge(s, soft); n != len(tt.purged) {
					t.Errorf("purged %d, want %d", n, len(tt.purged))
				}
				for _, k := range all {
					want := !slices.Contains(tt.purged, k)
					e := s.Get([]byte(k), nil)
					switch {
					case soft && e == nil:
						t.Errorf("soft purge removed %s", k)
					case soft && (e.State(t0) == Fresh) != want:
						t.Errorf("after soft purge %s is %v, want fresh=%v", k, e.State(t0), want)
					case !soft && (e != nil) != want:
						t.Errorf("after hard purge Get(%s) = %v, want present=%v", k, e != nil, want)
					}
				}
				wantObjects := int64(len(all))
				if !soft {
					wantObjects -= int64(len(tt.purged))
				}
				if s.Objects() != wantObjects {
					t.Errorf("Objects() = %d, want %d", s.Objects(), wantObjects)
				}
			})
		}
	}
}

func TestStoreTagsFollowReplacement(t *testing.T) {
	s := newStore(t, Options{Clock: newClock().Now})
	mustSet(t, s, entry("blog", "http://a/", "1", "old"))
	mustSet(t, s, entry("blog", "http://a/", "2", "new"))
	if n := s.PurgeKeys("blog", []string{"old"}, false); n != 0 {
		t.Errorf("PurgeKeys(old) = %d after the entry lost the tag, want 0", n)
	}
	if n := s.PurgeKeys("blog", []string{"new"}, false); n != 1 {
		t.Errorf("PurgeKeys(new) = %d, want 1", n)
	}
	if len(s.idx.sites) != 0 {
		t.Errorf("index keeps %d sites after everything went", len(s.idx.sites))
	}
}

func TestStoreBudget(t *testing.T) {
	const maxBytes = 64 << 10
	var evicted atomic.Int64
	s := newStore(t, Options{MaxBytes: maxBytes, Clock: newClock().Now, OnEvict: func(*Entry) { evicted.Add(1) }})
	const n = 2000 // about 40 times the budget
	stored := 0
	for i := range n {
		if s.Set(entry("blog", fmt.Sprintf("http://a/%d", i), strings.Repeat("x", 1024), "all", fmt.Sprintf("k%d", i))) {
			stored++
		}
		if b := s.Bytes(); b > maxBytes {
			t.Fatalf("Bytes() = %d after %d sets, budget %d", b, i+1, maxBytes)
		}
	}
	objects := s.Objects()
	keys, tags, _, _ := s.idx.size()
	if objects <= 0 || objects*1024 > maxBytes || int64(keys) != objects || tags != keys+1 {
		t.Errorf("after %d sets: %d objects, index of %d keys and %d tags; want them equal (tags+1) and within budget", n, objects, keys, tags)
	}
	if s.Evictions() == 0 || uint64(evicted.Load()) != s.Evictions() {
		t.Errorf("Evictions() = %d, OnEvict called %d times; want equal and > 0", s.Evictions(), evicted.Load())
	}
	if stored == 0 {
		t.Errorf("no Set was admitted")
	}
	if got := s.PurgeKeys("blog", []string{"all"}, false); int64(got) != objects || s.Objects() != 0 || s.Bytes() != 0 {
		t.Errorf("PurgeKeys(all) = %d, then Objects() = %d, Bytes() = %d; want %d, 0, 0", got, s.Objects(), s.Bytes(), objects)
	}
}

func TestStoreGrowingUpdateKeepsBudget(t *testing.T) {
	const maxBytes = 16 << 10
	s := newStore(t, Options{MaxBytes: maxBytes, Clock: newClock().Now})
	for i := range 12 {
		s.Set(entry("blog", fmt.Sprintf("http://a/%d", i), strings.Repeat("x", 1000)))
	}
	for i := range 12 {
		s.Set(entry("blog", fmt.Sprintf("http://a/%d", i), strings.Repeat("y", 4000)))
		if b := s.Bytes(); b > maxBytes {
			t.Fatalf("Bytes() = %d after growing %d entries, budget %d", b, i+1, maxBytes)
		}
	}
}

func TestStoreGetAllocs(t *testing.T) {
	s := newStore(t, Options{Clock: newClock().Now})
	e := entry("blog", "https://blog.example/", "hello")
	e.Vary = []string{"accept-encoding"}
	e.VaryValues = [][]byte{[]byte("gzip")}
	mustSet(t, s, e)
	key := []byte("https://blog.example/")
	var req Header = staticHeader{[]byte("gzip")}
	if n := testing.AllocsPerRun(1000, func() {
		if s.Get(key, req) == nil {
			t.Fatal("Get = nil")
		}
	}); n != 0 {
		t.Errorf("Get allocs = %v, want 0", n)
	}
}

// staticHeader answers every PeekAll with the same lines, without allocating.
type staticHeader [][]byte

func (h staticHeader) Peek(string) []byte { return h[0] }

func (h staticHeader) PeekAll(string) [][]byte { return h }

func TestStoreConcurrent(t *testing.T) {
	s := newStore(t, Options{MaxBytes: 256 << 10, Clock: newClock().Now})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 300 {
				k := fmt.Sprintf("http://a/%d", i%50)
				switch (g + i) % 5 {
				case 0, 1:
					s.Set(entry("blog", k, strings.Repeat("x", 100*(i%7)), fmt.Sprintf("t%d", i%3)))
				case 2:
					s.Get([]byte(k), nil)
				case 3:
					s.PurgeKeys("blog", []string{"t1"}, i%2 == 0)
				case 4:
					s.Delete([]byte(k))
				}
			}
		})
	}
	wg.Wait()
	s.PurgeAll("", false)
	if s.Objects() != 0 || len(s.idx.sites) != 0 {
		t.Errorf("after PurgeAll: Objects() = %d, %d sites indexed; want 0", s.Objects(), len(s.idx.sites))
	}
}

func TestStoreClose(t *testing.T) {
	var evicted atomic.Int64
	s, err := New(Options{MaxBytes: 1 << 20, OnEvict: func(*Entry) { evicted.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	e := entry("blog", "http://a/", "x")
	e.ResponseTime = time.Now()
	mustSet(t, s, e)
	s.Close()
	s.Close()
	if s.Get([]byte("http://a/"), nil) != nil || s.Set(e) || s.Delete([]byte("http://a/")) != 0 || s.PurgeAll("", false) != 0 {
		t.Errorf("a closed store still answers")
	}
	if evicted.Load() != 0 {
		t.Errorf("Close called OnEvict %d times, want 0", evicted.Load())
	}
}
