package cache

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// variants is what the store keeps under one primary key: the responses for each set of Vary
// values. It is immutable: a change builds a new one (copy-on-write), so readers need no lock.
type variants struct {
	key     string
	site    string
	entries []*Entry
	cost    int64
}

// tags returns every surrogate key of the variants, each once, and whether the index can hold
// them: at most MaxKeys keys, none longer than MaxKeyBytes. Variants it cannot hold are wide:
// not indexed by key, found by a scan at purge time.
func (v *variants) tags() (tags []string, indexable bool) {
	n := 0
	for _, e := range v.entries {
		n += len(e.Keys)
	}
	var seen map[string]struct{}
	if n > 16 {
		seen = make(map[string]struct{}, n)
	}
	for _, e := range v.entries {
		for _, k := range e.Keys {
			if seen != nil {
				if _, dup := seen[k]; dup {
					continue
				}
				seen[k] = struct{}{}
			} else if slices.Contains(tags, k) {
				continue
			}
			tags = append(tags, k)
		}
	}
	for _, k := range tags {
		if len(k) > MaxKeyBytes {
			return tags, false
		}
	}
	return tags, len(tags) <= MaxKeys
}

// tagged reports whether one of the variants carries one of keys.
func (v *variants) tagged(keys map[string]struct{}) bool {
	for _, e := range v.entries {
		for _, k := range e.Keys {
			if _, ok := keys[k]; ok {
				return true
			}
		}
	}
	return false
}

// index knows what the store holds, per site: ristretto keeps only hashes and cannot be
// enumerated, and purges by prefix or surrogate key need the keys. It is kept in step with the
// store through ristretto's exit callback, so it holds only what is cached.
//
// Its memory is in the store's budget: Entry.Size charges each surrogate key keyCost beyond
// its bytes. A surrogate key that tags one object costs one map slot (the common case: Drupal
// tags most pages with keys of their own); only one shared by several objects has a set, and
// its string is interned: the objects stored after the first share one copy.
type index struct {
	mu      sync.Mutex
	sites   map[string]*siteIndex
	objects atomic.Int64 // entries (variants counted one by one)
}

type siteIndex struct {
	keys map[string]*variants // primary key → what the store holds for it
	one  map[string]string    // surrogate key of one primary key → that key
	many map[string]*tagSet   // surrogate key of several primary keys → them
	wide map[string]struct{}  // primary keys with surrogate keys the index does not hold (see variants.tags)

	// The most each map held since it was built: Go maps never give back their slots, so a
	// map that holds less than a quarter of its peak is rebuilt (see shrink).
	keysPeak, onePeak, manyPeak int
}

// shrinkMin is the smallest peak worth rebuilding a map for.
const shrinkMin = 1024

// grew notes the maps' sizes after an insertion.
func (si *siteIndex) grew() {
	si.keysPeak = max(si.keysPeak, len(si.keys))
	si.onePeak = max(si.onePeak, len(si.one))
	si.manyPeak = max(si.manyPeak, len(si.many))
}

// shrink rebuilds the maps that hold less than a quarter of their peak, so that the index
// gives back what a larger past held (the budget only counts what is held now). Rebuilding
// costs the live size, at most once per three quarters of the peak deleted.
func (si *siteIndex) shrink() {
	if si.keysPeak >= shrinkMin && len(si.keys) < si.keysPeak/4 {
		si.keys, si.keysPeak = rebuilt(si.keys), len(si.keys)
	}
	if si.onePeak >= shrinkMin && len(si.one) < si.onePeak/4 {
		si.one, si.onePeak = rebuilt(si.one), len(si.one)
	}
	if si.manyPeak >= shrinkMin && len(si.many) < si.manyPeak/4 {
		si.many, si.manyPeak = rebuilt(si.many), len(si.many)
	}
}

// rebuilt copies m into a map sized for what it holds (maps.Clone keeps m's size).
func rebuilt[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// tagSet is the primary keys tagged with one surrogate key, and the key's interned string. A
// few keys are a slice (most shared tags are shared by a handful of pages); a map past that.
type tagSet struct {
	tag  string
	few  []string            // the primary keys, while there are at most smallSet
	keys map[string]struct{} // the primary keys, once there were more
	peak int                 // the most keys held since keys was built
}

// smallSet is how many primary keys a tagSet keeps in a slice.
const smallSet = 8

func (ts *tagSet) len() int {
	if ts.keys != nil {
		return len(ts.keys)
	}
	return len(ts.few)
}

func (ts *tagSet) add(key string) {
	switch {
	case ts.keys != nil:
		ts.keys[key] = struct{}{}
		ts.peak = max(ts.peak, len(ts.keys))
	case slices.Contains(ts.few, key):
	case len(ts.few) < smallSet:
		ts.few = append(ts.few, key)
	default:
		ts.keys = make(map[string]struct{}, 2*smallSet)
		for _, k := range ts.few {
			ts.keys[k] = struct{}{}
		}
		ts.keys[key] = struct{}{}
		ts.few = nil
	}
}

// del removes key. Go maps do not shrink: a map down to half a slice's worth goes back to a
// slice, and one down to a quarter of its peak is rebuilt.
func (ts *tagSet) del(key string) {
	if ts.keys == nil {
		if i := slices.Index(ts.few, key); i >= 0 {
			ts.few = slices.Delete(ts.few, i, i+1)
		}
		return
	}
	delete(ts.keys, key)
	switch {
	case len(ts.keys) <= smallSet/2:
		few := make([]string, 0, smallSet)
		for k := range ts.keys {
			few = append(few, k)
		}
		ts.few, ts.keys, ts.peak = few, nil, 0
	case len(ts.keys) < ts.peak/4:
		ts.keys, ts.peak = rebuilt(ts.keys), len(ts.keys)
	}
}

// each calls f for each primary key.
func (ts *tagSet) each(f func(key string)) {
	for _, k := range ts.few {
		f(k)
	}
	for k := range ts.keys {
		f(k)
	}
}

func newIndex() *index { return &index{sites: make(map[string]*siteIndex)} }

// put records v as what the store holds (or is about to hold) for v.key, replacing whatever
// was recorded. fresh, when not nil, is the entry of v not yet shared with any reader: its Keys
// are replaced by the interned strings.
func (x *index) put(v *variants, fresh *Entry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	si := x.sites[v.site]
	if si == nil {
		si = &siteIndex{
			keys: make(map[string]*variants), one: make(map[string]string),
			many: make(map[string]*tagSet), wide: make(map[string]struct{}),
		}
		x.sites[v.site] = si
	}
	newTags, indexable := v.tags()
	if old := si.keys[v.key]; old != nil {
		x.objects.Add(-int64(len(old.entries)))
		si.unindex(old, newTags, indexable)
	}
	si.keys[v.key] = v
	x.objects.Add(int64(len(v.entries)))
	defer si.grew()
	if !indexable {
		si.wide[v.key] = struct{}{}
		return
	}
	for _, t := range newTags {
		si.tag(t, v.key)
	}
	if fresh != nil {
		si.intern(fresh)
	}
}

// unindex removes the surrogate keys of old, what is recorded for its key, from the index,
// except those of keep when keepIndexed (the replacing variants still carry them). It does
// not allocate when there is nothing to keep.
func (si *siteIndex) unindex(old *variants, keep []string, keepIndexed bool) {
	if _, wide := si.wide[old.key]; wide {
		delete(si.wide, old.key)
		return
	}
	var kept map[string]struct{}
	if keepIndexed && len(keep) > 0 {
		kept = make(map[string]struct{}, len(keep))
		for _, t := range keep {
			kept[t] = struct{}{}
		}
	}
	for _, e := range old.entries {
		for _, t := range e.Keys {
			if _, ok := kept[t]; !ok {
				si.untag(t, old.key) // a key carried twice is untagged twice: no harm
			}
		}
	}
}

// tag records that key is tagged with t.
func (si *siteIndex) tag(t, key string) {
	if ts := si.many[t]; ts != nil {
		ts.add(key)
		return
	}
	other, ok := si.one[t]
	switch {
	case !ok:
		si.one[t] = key
	case other != key:
		delete(si.one, t)
		si.many[t] = &tagSet{tag: t, few: []string{other, key}}
	}
}

// untag records that key is no longer tagged with t. A set left with one key goes back to a
// single slot: Go maps do not shrink, and a tag shared for a while must not keep its set.
func (si *siteIndex) untag(t, key string) {
	if ts := si.many[t]; ts != nil {
		ts.del(key)
		if ts.len() > 1 {
			return
		}
		delete(si.many, t)
		ts.each(func(k string) { si.one[ts.tag] = k })
		return
	}
	if si.one[t] == key {
		delete(si.one, t)
	}
}

// intern points e's Keys at the index's copies of shared surrogate keys, in a new slice when
// one changes (e's slice may be shared with an entry already stored), so that a key carried by
// many objects is held once.
func (si *siteIndex) intern(e *Entry) {
	keys := e.Keys
	copied := false
	for i, k := range keys {
		ts := si.many[k]
		if ts == nil || unsafe.StringData(ts.tag) == unsafe.StringData(k) {
			continue
		}
		if !copied {
			keys, copied = slices.Clone(keys), true
		}
		keys[i] = ts.tag
	}
	e.Keys = keys
}

// remove forgets v if it is still what is recorded for its key (a newer set may have replaced
// it already), and reports whether it did.
func (x *index) remove(v *variants) bool {
	if v == nil {
		return false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	si := x.sites[v.site]
	if si == nil || si.keys[v.key] != v {
		return false
	}
	delete(si.keys, v.key)
	x.objects.Add(-int64(len(v.entries)))
	si.unindex(v, nil, false)
	if len(si.keys) == 0 {
		delete(x.sites, v.site)
		return true
	}
	si.shrink()
	return true
}

// current returns what is recorded for key in site, or nil.
func (x *index) current(site, key string) *variants {
	x.mu.Lock()
	defer x.mu.Unlock()
	if si := x.sites[site]; si != nil {
		return si.keys[key]
	}
	return nil
}

// byTags returns the variants of site tagged with any of tags: those the index holds, and the
// wide ones that carry one of tags, found by a scan outside the lock (entries are immutable).
func (x *index) byTags(site string, tags []string) []*variants {
	var out, wide []*variants
	x.mu.Lock()
	si := x.sites[site]
	if si == nil {
		x.mu.Unlock()
		return nil
	}
	seen := make(map[string]struct{})
	add := func(k string) {
		if _, ok := seen[k]; ok {
			return
		}
		seen[k] = struct{}{}
		out = append(out, si.keys[k])
	}
	for _, t := range tags {
		if k, ok := si.one[t]; ok {
			add(k)
		} else if ts := si.many[t]; ts != nil {
			ts.each(add)
		}
	}
	for k := range si.wide {
		if _, ok := seen[k]; !ok {
			wide = append(wide, si.keys[k])
		}
	}
	x.mu.Unlock()
	if len(wide) == 0 {
		return out
	}
	want := make(map[string]struct{}, len(tags))
	for _, t := range tags {
		want[t] = struct{}{}
	}
	for _, v := range wide {
		if v.tagged(want) {
			out = append(out, v)
		}
	}
	return out
}

// size is what the index holds over every site: primary keys, surrogate keys, key-to-object
// references and wide objects. All are 0 once the store is empty.
func (x *index) size() (keys, tags, refs, wide int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, si := range x.sites {
		keys += len(si.keys)
		tags += len(si.one) + len(si.many)
		refs += len(si.one)
		for _, ts := range si.many {
			refs += ts.len()
		}
		wide += len(si.wide)
	}
	return keys, tags, refs, wide
}

// matching returns the variants of site ("" = every site) whose key match accepts. match runs
// outside the lock, so a slow one (a regular expression) does not stall the store.
func (x *index) matching(site string, match func(key string) bool) []*variants {
	var all []*variants
	x.mu.Lock()
	for name, si := range x.sites {
		if site != "" && name != site {
			continue
		}
		for _, v := range si.keys {
			all = append(all, v)
		}
	}
	x.mu.Unlock()
	if match == nil {
		return all
	}
	out := all[:0]
	for _, v := range all {
		if match(v.key) {
			out = append(out, v)
		}
	}
	return out
}

// KeyPath returns the part of a key built by AppendKey that starts at the path: the path and
// the query, as escaped in the key. Purges match prefixes and patterns against it.
func KeyPath(key string) string {
	if i := strings.Index(key, "://"); i >= 0 {
		rest := key[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			return rest[j:]
		}
		return ""
	}
	return key
}
