// Package cache is edgevitals' shared HTTP cache: storage with a byte budget, the RFC 9111
// policy (Cache-Control, freshness, Vary, validators), cache keys, the surrogate-key index and
// request coalescing. It works on bytes and plain structs, never on fasthttp types, so that it
// can be fuzzed and benchmarked alone.
package cache

import (
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dgraph-io/ristretto/v2"
)

// MaxVariants bounds the responses kept for one primary key (one per set of Vary values); the
// oldest go first.
const MaxVariants = 32

// Options configure a Store.
type Options struct {
	MaxBytes int64            // byte budget, > 0
	Clock    func() time.Time // nil = time.Now
	// OnEvict, optional, is called for each entry the budget evicts (not for expiry, deletes,
	// purges or Close). It runs on the store's internal goroutine: it must be quick and must
	// not call the Store.
	OnEvict func(e *Entry)
}

// Store holds entries within a byte budget. Gets are lock-free and do not allocate; Sets,
// deletes and purges of one primary key are serialized. All methods are safe for concurrent
// use; no method may be called after Close.
type Store struct {
	c        *ristretto.Cache[string, *variants]
	idx      *index
	clock    func() time.Time
	onEvict  func(*Entry)
	maxBytes int64

	evictions atomic.Uint64
	closed    atomic.Bool
	closeMu   sync.RWMutex // held shared by writers, exclusively by Close

	seed  maphash.Seed
	locks [256]sync.Mutex // writers of one primary key, by key hash
}

// New returns a Store, or an error naming the bad option (MaxBytes is the only one checked).
func New(o Options) (*Store, error) {
	if o.MaxBytes <= 0 {
		return nil, fmt.Errorf("MaxBytes: must be > 0, got %d", o.MaxBytes)
	}
	s := &Store{idx: newIndex(), clock: o.Clock, onEvict: o.OnEvict, maxBytes: o.MaxBytes, seed: maphash.MakeSeed()}
	if s.clock == nil {
		s.clock = time.Now
	}
	// Ristretto wants about ten counters per object it may hold; guess 4 KiB per object.
	counters := min(max(o.MaxBytes/4096*10, 1<<10), 1<<24)
	c, err := ristretto.NewCache(&ristretto.Config[string, *variants]{
		NumCounters:        counters,
		MaxCost:            o.MaxBytes,
		BufferItems:        64,
		IgnoreInternalCost: true,
		OnEvict:            s.evicted,
		OnExit:             func(v *variants) { s.idx.remove(v) },
	})
	if err != nil {
		return nil, fmt.Errorf("create store: %w", err)
	}
	s.c = c
	return s, nil
}

func (s *Store) evicted(it *ristretto.Item[*variants]) {
	// Budget victims carry no expiration; expired items (we always set a TTL) do.
	if s.closed.Load() || it.Value == nil || !it.Expiration.IsZero() {
		return
	}
	s.evictions.Add(uint64(len(it.Value.entries)))
	if s.onEvict != nil {
		for _, e := range it.Value.entries {
			s.onEvict(e)
		}
	}
}

func (s *Store) lockFor(key string) *sync.Mutex {
	return &s.locks[maphash.String(s.seed, key)%uint64(len(s.locks))]
}

// Get returns the entry stored under key whose Vary values match req, or nil. It compares the
// full key, does not allocate, and neither key nor req is kept. The entry is shared: read it,
// never modify it. A nil req stands for a request without header fields.
func (s *Store) Get(key []byte, req Header) *Entry {
	if len(key) == 0 {
		return nil
	}
	// The key is only hashed, not kept, so a string view of it is safe.
	v, ok := s.c.Get(unsafe.String(unsafe.SliceData(key), len(key)))
	if !ok || v == nil || v.key != string(key) {
		return nil
	}
	for _, e := range v.entries {
		if e.Matches(req) {
			return e
		}
	}
	return nil
}

// Set stores e under e.Key, replacing the variant with equal Vary values (and variants that
// vary on other names, or belong to another site), and reports whether it is stored: it may be
// refused by the admission policy, for being larger than the budget, for a Hold already past,
// for Vary and VaryValues of different lengths, or for more than MaxVaryNames Vary names (a
// variant keyed on fewer names than the response varies on would answer requests it does not
// fit). When Set returns true, Get sees e. The store keeps e and its slices: the caller must
// not modify them afterwards. Set may point e.Keys at a new slice of equal strings that the
// store's index shares.
func (s *Store) Set(e *Entry) bool {
	if e == nil || e.Key == "" || e.Policy.Hold <= 0 || len(e.Vary) != len(e.VaryValues) || len(e.Vary) > MaxVaryNames {
		return false
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed.Load() {
		return false
	}
	if e.size == 0 {
		e.size = e.computeSize()
	}
	if e.size > s.maxBytes {
		return false
	}
	now := s.clock()
	ttl := e.ResponseTime.Add(e.Policy.Hold).Sub(now)
	if ttl <= 0 {
		return false
	}
	mu := s.lockFor(e.Key)
	mu.Lock()
	defer mu.Unlock()

	old, _ := s.c.Get(e.Key)
	nv := &variants{key: e.Key, site: e.Site, entries: []*Entry{e}, cost: e.size}
	if old != nil && old.key == e.Key && old.site == e.Site {
		for _, o := range old.entries {
			if len(nv.entries) == MaxVariants {
				break
			}
			left := o.ResponseTime.Add(o.Policy.Hold).Sub(now)
			if left <= 0 || sameVary(o, e) || !slices.Equal(o.Vary, e.Vary) || nv.cost+o.Size() > s.maxBytes {
				continue
			}
			nv.entries = append(nv.entries, o)
			nv.cost += o.Size()
			ttl = max(ttl, left)
		}
	}
	s.idx.put(nv, e)
	if old == nil || nv.cost > old.cost {
		// Ristretto evicts for new items only, not when an update grows one: delete first so
		// that the budget holds (the key keeps its access counts).
		s.c.Del(e.Key)
	}
	if !s.c.SetWithTTL(e.Key, nv, nv.cost, ttl) {
		s.idx.remove(nv)
		return false
	}
	s.c.Wait()
	// A refusal by the admission policy has removed nv from the index by now.
	return s.idx.current(e.Site, e.Key) == nv
}

// Delete removes every variant stored under the primary key and returns how many it removed.
func (s *Store) Delete(key []byte) int {
	if len(key) == 0 {
		return 0
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed.Load() {
		return 0
	}
	k := string(key)
	mu := s.lockFor(k)
	mu.Lock()
	defer mu.Unlock()
	v, _ := s.c.Get(k)
	s.c.Del(k)
	s.c.Wait() // so that Bytes no longer counts it
	if v == nil || v.key != k {
		return 0
	}
	s.idx.remove(v)
	return len(v.entries)
}

// PurgeKeys purges every entry of site tagged with any of the surrogate keys, and returns how
// many entries it purged. Variants of one primary key are purged together. A soft purge keeps
// the entries but marks them stale (see Entry.State); a hard purge removes them.
func (s *Store) PurgeKeys(site string, keys []string, soft bool) int {
	return s.purge(s.idx.byTags(site, keys), soft)
}

// PurgeKey purges the entries of site stored under one primary key, as PurgeKeys does, and
// returns how many it purged. It finds them through the index, without a scan.
func (s *Store) PurgeKey(site string, key []byte, soft bool) int {
	v := s.idx.current(site, string(key))
	if v == nil {
		return 0
	}
	return s.purge([]*variants{v}, soft)
}

// PurgePrefix purges every entry of site whose key starts with prefix. A prefix starting with
// '/' matches the path part of keys (every host and scheme of the site), escaped as AppendKey
// escapes paths; any other prefix matches whole keys ("https://example.com/blog/").
func (s *Store) PurgePrefix(site, prefix string, soft bool) int {
	match := func(key string) bool { return strings.HasPrefix(key, prefix) }
	if strings.HasPrefix(prefix, "/") {
		p := string(AppendKeyPath(nil, []byte(prefix)))
		match = func(key string) bool { return strings.HasPrefix(KeyPath(key), p) }
	}
	return s.PurgeMatch(site, match, soft)
}

// PurgeMatch purges every entry of site ("" = every site) whose key match accepts, e.g. a
// regular expression purge. match runs without the store's locks held.
func (s *Store) PurgeMatch(site string, match func(key string) bool, soft bool) int {
	if match == nil {
		return 0
	}
	return s.purge(s.idx.matching(site, match), soft)
}

// PurgeAll purges every entry of site, or of every site when site is "".
func (s *Store) PurgeAll(site string, soft bool) int {
	return s.purge(s.idx.matching(site, nil), soft)
}

func (s *Store) purge(vs []*variants, soft bool) int {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed.Load() {
		return 0
	}
	n := 0
	for _, v := range vs {
		n += len(v.entries)
		if soft {
			for _, e := range v.entries {
				e.purged.Store(true)
			}
			continue
		}
		mu := s.lockFor(v.key)
		mu.Lock()
		s.c.Del(v.key)
		s.idx.remove(v) // when the store had already let it expire
		mu.Unlock()
	}
	if !soft && len(vs) > 0 {
		s.c.Wait() // so that Bytes no longer counts them
	}
	return n
}

// Bytes is the cost of what the store holds, within the budget.
func (s *Store) Bytes() int64 { return s.maxBytes - s.c.RemainingCost() }

// Objects is the number of entries held (each variant counts).
func (s *Store) Objects() int64 { return s.idx.objects.Load() }

// Evictions is the number of entries evicted by the budget so far.
func (s *Store) Evictions() uint64 { return s.evictions.Load() }

// Close stops the store's goroutines and drops everything. It waits for running writers;
// later calls do nothing.
func (s *Store) Close() {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed.Swap(true) {
		return
	}
	s.c.Close()
}
